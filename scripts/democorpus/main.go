// Command democorpus converts demo/corpus.jsonl (the bundled sample
// documents) into a Parquet document shard with id, title and text columns,
// the input format splash encode reads.
//
//	go run ./scripts/democorpus demo/corpus.jsonl demo/out/input/corpus.parquet
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/parquet-go/parquet-go"
)

type document struct {
	ID    string `json:"id" parquet:"id"`
	Title string `json:"title" parquet:"title"`
	Text  string `json:"text" parquet:"text"`
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: democorpus IN.jsonl OUT.parquet")
		os.Exit(2)
	}
	if err := convert(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "democorpus:", err)
		os.Exit(1)
	}
}

func convert(in, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("open %s: %w", in, err)
	}
	defer f.Close()
	var docs []document
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		var d document
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			return fmt.Errorf("%s line %d: %w", in, line, err)
		}
		docs = append(docs, d)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", in, err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(out), err)
	}
	tmp := out + ".tmp"
	if err := parquet.WriteFile(tmp, docs); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}
