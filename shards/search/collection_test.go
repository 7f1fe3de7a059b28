package search

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/splash-encode/splash/shards"
)

// writeDir writes docs as the impact shard dir/base.parquet with its
// manifest, and vocab as the directory's vocabulary (when not nil).
func writeDir(t *testing.T, dir, base string, vocabSize int, scale float32, vocab []string, docs []doc) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	meta := shards.Metadata{SplashVersion: "test", VocabSize: vocabSize, MaxLength: 512, Pooling: "max", Scale: scale,
		ModelSHA256: strings.Repeat("ab", 32), TokenizerSHA256: strings.Repeat("cd", 32), SourcePath: base + ".parquet"}
	w, err := shards.NewWriter(dir, base, shards.FormatParquet, meta, shards.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		if err := w.Write(shards.Row{DocID: d.id, Vec: d.v, NumTokens: 3}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	settings, err := meta.Map()
	if err != nil {
		t.Fatal(err)
	}
	m := shards.Manifest{SplashVersion: "test", Settings: settings, Output: shards.NewManifestOutput(out, shards.FormatParquet),
		Input: shards.ManifestInput{Path: "/in/" + base + ".parquet", Size: 1, MTime: time.Unix(0, 0).UTC(), Rows: int64(len(docs))}}
	if err := shards.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	if vocab != nil {
		if err := shards.WriteVocabulary(dir, vocab); err != nil {
			t.Fatal(err)
		}
	}
	return out.Path
}

var vocab8 = []string{"[PAD]", "a", "b", "c", "d", "e", "f", "g"}

func TestCollectionFromDirectoryAndFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "docs")
	writeDir(t, dir, "part-1", 8, 4, vocab8, handDocs[:3])
	f2 := writeDir(t, dir, "part-0", 8, 4, nil, handDocs[3:])
	c, err := OpenCollection(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Files) != 2 || filepath.Base(c.Files[0]) != "part-0.parquet" || c.Rows != int64(len(handDocs)) ||
		c.VocabSize != 8 || c.Scale != 4 || len(c.Vocabulary) != 8 {
		t.Errorf("collection %+v", c)
	}
	ix, err := BuildIndex(context.Background(), c, ScoreImpacts)
	if err != nil {
		t.Fatal(err)
	}
	hits, err := ix.NewSearcher().Search(handQuery, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hitString(hits), "d3:9 d1:3 d10:3 d5:3 d2:2"; got != want {
		t.Errorf("hits %s, want %s", got, want)
	}
	// A single file, with its manifest.
	c, err = OpenCollection(f2)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Files) != 1 || c.Rows != int64(len(handDocs)-3) || len(c.Vocabulary) != 8 {
		t.Errorf("file collection %+v", c)
	}
	// A bare file (no manifest beside it) is read as it is.
	bare := filepath.Join(t.TempDir(), "bare.parquet")
	data, _ := os.ReadFile(f2)
	os.WriteFile(bare, data, 0o644)
	if c, err = OpenCollection(bare); err != nil || c.Rows != 0 || c.Vocabulary != nil {
		t.Errorf("bare file: %+v %v", c, err)
	}
	// Duplicate ids across shards.
	writeDir(t, dir, "part-2", 8, 4, nil, handDocs[:1])
	c, err = OpenCollection(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = BuildIndex(context.Background(), c, ScoreImpacts)
	if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "part-2.parquet row 0") || !strings.Contains(err.Error(), "d3 occurs twice") {
		t.Errorf("duplicate id: %v", err)
	}
}

func TestCollectionRefuses(t *testing.T) {
	root := t.TempDir()
	// A shard that no longer matches its manifest.
	broken := filepath.Join(root, "broken")
	f := writeDir(t, broken, "p", 8, 4, nil, handDocs)
	data, _ := os.ReadFile(f)
	data[len(data)/2] ^= 0xff
	os.WriteFile(f, data, 0o644)
	if _, err := OpenCollection(broken); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "shard p of") {
		t.Errorf("corrupt shard: %v", err)
	}
	if _, err := OpenCollection(f); !errors.Is(err, ErrBadInput) {
		t.Errorf("corrupt shard file: %v", err)
	}
	// No manifests.
	if _, err := OpenCollection(t.TempDir()); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "no impact shard manifest") {
		t.Errorf("empty directory: %v", err)
	}
	// Shards of two scales.
	mixed := filepath.Join(root, "mixed")
	writeDir(t, mixed, "p0", 8, 4, nil, handDocs[:2])
	writeDir(t, mixed, "p1", 8, 100, nil, handDocs[2:])
	if _, err := OpenCollection(mixed); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "impact scale 100") {
		t.Errorf("mixed scales: %v", err)
	}
}

func TestSameVocabulary(t *testing.T) {
	root := t.TempDir()
	open := func(name string, size int, vocab []string) *Collection {
		dir := filepath.Join(root, name)
		writeDir(t, dir, "p", size, 4, vocab, handDocs[:1])
		c, err := OpenCollection(dir)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	docs := open("docs", 8, vocab8)
	if err := SameVocabulary(docs, open("same", 8, vocab8)); err != nil {
		t.Errorf("same vocabulary: %v", err)
	}
	if err := SameVocabulary(docs, open("novocab", 8, nil)); err != nil {
		t.Errorf("queries without _vocabulary.parquet: %v", err)
	}
	other := append([]string(nil), vocab8...)
	other[5] = "E"
	err := SameVocabulary(docs, open("other", 8, other))
	if !errors.Is(err, ErrVocabularyMismatch) || !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), `id 5 is "e"`) {
		t.Errorf("different token: %v", err)
	}
	err = SameVocabulary(docs, open("bigger", 9, nil))
	if !errors.Is(err, ErrVocabularyMismatch) || !strings.Contains(err.Error(), "vocabulary size 8") {
		t.Errorf("different size: %v", err)
	}
}
