// Command repeatcorpus makes a large document corpus out of a small one for
// throughput measurements: it repeats the documents of a Parquet shard
// (testdata/cranfield/docs-00000.parquet by default) with new ids until it
// has -n documents, writes them as -shards Parquet shards (columns id and
// text, the input splash encode reads) into -out, and the same documents
// in the same order as texts.jsonl ({"id", "text"} per line) for peers
// that read JSON, such as scripts/gpu/torch_peer.py.
//
//	go run ./scripts/repeatcorpus -n 100000 -shards 8 -out /tmp/corpus
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/parquet-go/parquet-go"
)

type document struct {
	ID   string `json:"id" parquet:"id"`
	Text string `json:"text" parquet:"text"`
}

func main() {
	in := flag.String("in", "testdata/cranfield/docs-00000.parquet", "Parquet shard of documents to repeat (columns id and text)")
	n := flag.Int("n", 100000, "documents to write")
	count := flag.Int("shards", 8, "Parquet shards to write")
	out := flag.String("out", "", "output directory (created)")
	flag.Parse()
	if *out == "" || *n < 1 || *count < 1 {
		fmt.Fprintln(os.Stderr, "usage: repeatcorpus -out DIR [-n 100000] [-shards 8] [-in SHARD.parquet]")
		os.Exit(2)
	}
	if err := run(*in, *out, *n, *count); err != nil {
		fmt.Fprintln(os.Stderr, "repeatcorpus:", err)
		os.Exit(1)
	}
}

func run(in, out string, n, count int) error {
	src, err := readDocs(in)
	if err != nil {
		return err
	}
	if len(src) == 0 {
		return fmt.Errorf("%s holds no documents", in)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	jf, err := os.Create(filepath.Join(out, "texts.jsonl"))
	if err != nil {
		return err
	}
	defer jf.Close()
	jw := bufio.NewWriter(jf)
	enc := json.NewEncoder(jw)
	per := (n + count - 1) / count
	for s, written := 0, 0; written < n; s++ {
		docs := make([]document, 0, per)
		for ; len(docs) < per && written < n; written++ {
			d := src[written%len(src)]
			docs = append(docs, document{ID: fmt.Sprintf("r%d-%s", written/len(src), d.ID), Text: d.Text})
		}
		for _, d := range docs {
			if err := enc.Encode(d); err != nil {
				return err
			}
		}
		path := filepath.Join(out, fmt.Sprintf("docs-%05d.parquet", s))
		if err := parquet.WriteFile(path, docs); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := jw.Flush(); err != nil {
		return err
	}
	return jf.Close()
}

// readDocs reads the id and text columns of a Parquet shard (string
// columns, as Cranfield's). It uses parquet-go directly: splash's reader
// (package shards) would link the object-store clients into a binary that
// scripts/gpu/prepare.sh carries to GPU machines.
func readDocs(path string) ([]document, error) {
	type row struct {
		ID   *string `parquet:"id,optional"`
		Text *string `parquet:"text,optional"`
	}
	rows, err := parquet.ReadFile[row](path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	docs := make([]document, 0, len(rows))
	for _, r := range rows {
		if r.ID != nil && r.Text != nil && *r.ID != "" {
			docs = append(docs, document{ID: *r.ID, Text: *r.Text})
		}
	}
	return docs, nil
}
