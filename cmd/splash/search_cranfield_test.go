package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/splash-encode/splash/cmd/splash/internal/job"
	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/gpu/ort"
	"github.com/splash-encode/splash/shards"
	"github.com/splash-encode/splash/shards/search"
	"github.com/splash-encode/splash/shards/trec"
)

// cranfieldParquet is the directory of the Cranfield shards, queries and
// qrels of the repository's test data (testdata/README.md).
const cranfieldParquet = "../../testdata/cranfield"

// encodeCranfieldForIndex encodes the first Cranfield document shard (350
// documents, truncated to 64 tokens to keep the test short) and the 225
// queries with a one-layer test model, and returns the two output
// directories. It skips without ONNX Runtime.
func encodeCranfieldForIndex(t *testing.T) (docs, queries string) {
	t.Helper()
	if err := ort.Usable(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	docShard := filepath.Join(cranfieldParquet, "docs-00000.parquet")
	if m, _ := filepath.Glob(docShard); len(m) == 0 {
		t.Fatalf("no Cranfield shards at %s", cranfieldParquet)
	}
	root := t.TempDir()
	model := filepath.Join(root, "model")
	if err := testmodel.Generate(model, testmodel.Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 5}, sharedBert); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	run := func(out, input string, cols shards.Columns, maxLen int) {
		cfg := job.Config{ModelDir: model, Inputs: []string{input}, OutputDir: out, Format: shards.FormatParquet,
			Columns: cols, MaxLength: maxLen,
			Encode: encode.EncodeOptions{BatchTokens: 8192, MaxBatch: 64, Sparsify: encode.DefaultSparsifyOptions()}}
		if _, err := job.Run(context.Background(), cfg, log); err != nil {
			t.Fatal(err)
		}
	}
	docs, queries = filepath.Join(root, "docs"), filepath.Join(root, "queries")
	run(docs, docShard, shards.Columns{Title: "title"}, 64)
	run(queries, filepath.Join(cranfieldParquet, "queries.parquet"), shards.Columns{}, 32)
	return docs, queries
}

// readAllRows reads every row of the impact shards in dir (not through
// search.Collection); a directory without rows fails the test.
func readAllRows(t *testing.T, dir string) []shards.Row {
	t.Helper()
	rows := readDirRows(t, dir)
	if len(rows) == 0 {
		t.Fatalf("no rows in %s", dir)
	}
	return rows
}

// bruteForce scores q against every document by merging the two sorted
// term lists, keeps the scores > 0, and ranks them by score descending and
// id ascending: the full ranking, without an index.
func bruteForce(q encode.SparseVec, docs []shards.Row, scoring search.Scoring) []search.Hit {
	var hits []search.Hit
	for _, d := range docs {
		var ints int64
		var floats float64
		i, j := 0, 0
		for i < len(q.Terms) && j < len(d.Vec.Terms) {
			switch {
			case q.Terms[i] < d.Vec.Terms[j]:
				i++
			case q.Terms[i] > d.Vec.Terms[j]:
				j++
			default:
				ints += int64(q.Impacts[i]) * int64(d.Vec.Impacts[j])
				floats += float64(q.Weights[i]) * float64(d.Vec.Weights[j])
				i++
				j++
			}
		}
		score := floats
		if scoring == search.ScoreImpacts {
			score = float64(ints)
		}
		if score > 0 {
			hits = append(hits, search.Hit{DocID: d.DocID, Score: score})
		}
	}
	slices.SortFunc(hits, func(a, b search.Hit) int {
		if a.Score != b.Score {
			if a.Score > b.Score {
				return -1
			}
			return 1
		}
		return strings.Compare(a.DocID, b.DocID)
	})
	return hits
}

// TestIndexMatchesBruteForceOnCranfield compares the index search with the
// brute-force ranking for every Cranfield query, in both scoring modes, for
// a cutoff inside the ranking and one beyond the collection, and the run
// that search.SearchAll writes from the shard directories with the
// brute-force top 100. It tests package search (shards/search) but lives
// here: encoding the collection needs the encoder job, internal to the CLI.
func TestIndexMatchesBruteForceOnCranfield(t *testing.T) {
	start := time.Now()
	docsDir, queriesDir := encodeCranfieldForIndex(t)
	t.Logf("encoded in %v", time.Since(start))
	docs, queries := readAllRows(t, docsDir), readAllRows(t, queriesDir)
	dc, err := search.OpenCollection(docsDir)
	if err != nil {
		t.Fatal(err)
	}
	qc, err := search.OpenCollection(queriesDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := search.SameVocabulary(dc, qc); err != nil {
		t.Fatal(err)
	}
	for _, scoring := range []search.Scoring{search.ScoreImpacts, search.ScoreWeights} {
		ix, err := search.BuildIndex(context.Background(), dc, scoring)
		if err != nil {
			t.Fatal(err)
		}
		if ix.Docs() != len(docs) {
			t.Fatalf("index of %d documents, shards hold %d", ix.Docs(), len(docs))
		}
		s := ix.NewSearcher()
		withHits, ties := 0, 0
		brute := map[string][]search.Hit{}
		for _, q := range queries {
			want := bruteForce(q.Vec, docs, scoring)
			brute[q.DocID] = want
			if len(want) > 0 {
				withHits++
			}
			for i := 1; i < len(want); i++ {
				if want[i].Score == want[i-1].Score {
					ties++
				}
			}
			for _, k := range []int{10, len(docs) + 1} {
				got, err := s.Search(q.Vec, k)
				if err != nil {
					t.Fatal(err)
				}
				want := want[:min(k, len(want))]
				if !slices.Equal(got, want) {
					t.Fatalf("%s, query %s, k=%d:\nindex       %s\nbrute force %s", scoring, q.DocID, k, hitString(got), hitString(want))
				}
			}
		}
		// The comparison is not vacuous: most queries have hits, and in
		// impact mode some rankings hold ties.
		if withHits < len(queries)*9/10 {
			t.Errorf("%s: only %d of %d queries have hits", scoring, withHits, len(queries))
		}
		if scoring == search.ScoreImpacts && ties == 0 {
			t.Errorf("no tied scores in any ranking: the tie order is untested")
		}
		t.Logf("%s: %d queries, %d with hits, %d ties", scoring, len(queries), withHits, ties)

		// The run written from the shard directories.
		var buf bytes.Buffer
		rw, _ := trec.NewRunWriter(&buf, "test")
		stats, err := search.SearchAll(context.Background(), ix, qc.Queries, search.RunOptions{K: 100, Workers: 3}, rw)
		if err != nil {
			t.Fatal(err)
		}
		rw.Flush()
		run, err := trec.ParseRun(&buf, "run")
		if err != nil {
			t.Fatal(err)
		}
		if stats.Queries != len(queries) || stats.Queries-stats.NoHits != len(run) {
			t.Errorf("stats %+v, run of %d queries", stats, len(run))
		}
		for qid, want := range brute {
			want = want[:min(100, len(want))]
			got := run[qid]
			if len(got) != len(want) {
				t.Fatalf("%s: run has %d lines for query %s, brute force %d hits", scoring, len(got), qid, len(want))
			}
			for i := range want {
				if got[i].DocID != want[i].DocID || got[i].Score != want[i].Score {
					t.Fatalf("%s: run line %d of query %s: %v, brute force %v", scoring, i+1, qid, got[i], want[i])
				}
			}
		}
	}
}

func hitString(hits []search.Hit) string {
	var parts []string
	for _, h := range hits {
		parts = append(parts, fmt.Sprintf("%s:%g", h.DocID, h.Score))
	}
	return strings.Join(parts, " ")
}
