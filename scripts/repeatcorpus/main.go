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
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/parquet-go/parquet-go"

	"github.com/splash-encode/splash/shards"
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

// readDocs reads every document of a Parquet shard with splash's reader.
func readDocs(path string) ([]document, error) {
	r, err := shards.OpenInput(path, shards.Columns{})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var docs []document
	for {
		batch, err := r.Next(context.Background(), 1024)
		for _, d := range batch {
			docs = append(docs, document{ID: d.Doc.ID, Text: d.Doc.Text})
		}
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
