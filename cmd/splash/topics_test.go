package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/splash-encode/splash/shards"
	"github.com/splash-encode/splash/shards/export/exporttest"
)

// TestExportAnseriniTopicsCranfield encodes Cranfield's 225 queries and
// exports them with --format anserini-topics: read back as Anserini's
// TsvString reader and pretokenized analyzer would, every query with a
// posting left is there, in order, each token counted as many times as its
// impact; and query tokens are found, as the same strings, among the keys of
// the documents' anserini export, so the two files match in Anserini.
func TestExportAnseriniTopicsCranfield(t *testing.T) {
	docsDir, queriesDir := encodeCranfieldForIndex(t)
	queries, err := shards.ListManifests(queriesDir)
	if err != nil || len(queries) == 0 {
		t.Fatalf("query manifests %v, %v", queries, err)
	}
	var paths []string
	for _, b := range queries {
		paths = append(paths, filepath.Join(queriesDir, b+".parquet"))
	}
	rows, err := exporttest.ReadRows(paths)
	if err != nil {
		t.Fatal(err)
	}
	vocab, err := shards.ReadVocabulary(filepath.Join(queriesDir, shards.VocabularyFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 225 {
		t.Fatalf("%d queries, want Cranfield's 225", len(rows))
	}
	for _, c := range []struct {
		args  []string
		scale float64
	}{{nil, 100}, {[]string{"--scale", "7"}, 7}} {
		t.Run(strings.Join(append([]string{"anserini-topics"}, c.args...), " "), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "topics.tsv")
			_, stderr, err := runExport(context.Background(), append([]string{"--format", "anserini-topics", "--input", queriesDir, "--output", out}, c.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			docs, err := exporttest.ReadAnseriniTopics(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := exporttest.Compare(docs, rows, exporttest.Expect{Format: "anserini-topics", Vocab: vocab, Scale: c.scale}); err != nil {
				t.Fatal(err)
			}
			skipped := len(rows) - len(docs)
			if len(docs) < 200 || !strings.Contains(stderr, "exported ") || (skipped > 0) != strings.Contains(stderr, " skipped") {
				t.Errorf("%d queries written, %d skipped; summary %q", len(docs), skipped, stderr)
			}
		})
	}

	// The tokens of the topics are the keys of the documents' export.
	docOut := filepath.Join(t.TempDir(), "docs.jsonl")
	topicOut := filepath.Join(t.TempDir(), "topics.tsv")
	for _, a := range [][]string{
		{"--format", "anserini", "--input", docsDir, "--output", docOut},
		{"--format", "anserini-topics", "--input", queriesDir, "--output", topicOut},
	} {
		if _, _, err := runExport(context.Background(), a...); err != nil {
			t.Fatal(err)
		}
	}
	df, err := os.Open(docOut)
	if err != nil {
		t.Fatal(err)
	}
	defer df.Close()
	docs, err := exporttest.ReadAnserini(df)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, d := range docs {
		for _, p := range d.Postings {
			keys[p.Token] = true
		}
	}
	tf, err := os.Open(topicOut)
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	topics, err := exporttest.ReadAnseriniTopics(tf)
	if err != nil {
		t.Fatal(err)
	}
	matched := 0
	for _, q := range topics {
		for _, p := range q.Postings {
			if keys[p.Token] {
				matched++
			}
		}
	}
	if matched == 0 {
		t.Error("no query token is a token of the documents' export")
	}
}
