package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode/encodetest"
	"github.com/splash-encode/splash/shards"
)

// TestSmallRun runs both cases on a few documents and checks what the
// timed runs wrote: every document once, in input order, with the fake
// backend's 100–200 terms, Cranfield lengths in the cran case and 512
// tokens in the long case, and a report line per case and GOMAXPROCS.
func TestSmallRun(t *testing.T) {
	work := t.TempDir()
	cfg := config{
		tokenizer: "../../testdata/tokenizers/bert-base-uncased/tokenizer.json", input: "../../testdata/cranfield/docs-00000.parquet",
		cases: []string{"cran", "long"}, cranDocs: 900, longDocs: 120, join: 8, procs: []int{1, 2}, runs: 1,
		batchTokens: 65536, maxBatch: 128, shardRows: 400, workDir: work,
		minTerms: encodetest.DefaultMinTerms, maxTerms: encodetest.DefaultMaxTerms,
	}
	var out bytes.Buffer
	if err := run(context.Background(), cfg, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cran, GOMAXPROCS=1: 900 documents", "cran, GOMAXPROCS=2: 900 documents",
		"long, GOMAXPROCS=1: 120 documents, 61440 tokens (512.0 per document), 120 truncated", "docs/s per core (÷ 2)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report does not say %q:\n%s", want, out.String())
		}
	}
	src, err := readDocs(cfg.input)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name        string
		docs, files int
	}{{"cran", 900, 3}, {"long", 120, 1}} {
		paths, err := filepath.Glob(filepath.Join(work, c.name, "output", "docs-*.parquet"))
		if err != nil || len(paths) != c.files {
			t.Fatalf("%s: output shards %v (%v), want %d", c.name, paths, err, c.files)
		}
		n, long := 0, 0
		for _, p := range paths {
			err := shards.ReadShard(p, func(r shards.Row) error {
				wantID := src[n%len(src)].ID + "-" + strconv.Itoa(n/len(src))
				if c.name == "long" {
					wantID = "long-" + strconv.Itoa(n)
				}
				if r.DocID != wantID {
					t.Fatalf("%s row %d: id %q, want %q", c.name, n, r.DocID, wantID)
				}
				if k := r.Vec.Len(); k < encodetest.DefaultMinTerms-5 || k > encodetest.DefaultMaxTerms {
					t.Errorf("%s row %d: %d terms", c.name, n, k)
				}
				if r.NumTokens == 512 {
					long++
				}
				n++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if n != c.docs {
			t.Errorf("%s: %d rows, want %d", c.name, n, c.docs)
		}
		if c.name == "long" && long != n || c.name == "cran" && long > n/20 {
			t.Errorf("%s: %d of %d documents have 512 tokens", c.name, long, n)
		}
	}
}
