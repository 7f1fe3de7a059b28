package job

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/pipeline"
	"github.com/splash-encode/splash/shards"
)

// cranfieldDocs returns the glob of the four Cranfield document shards (the
// directory also holds queries.parquet, which has no title column).
func cranfieldDocs(t *testing.T) (dir, glob string) {
	t.Helper()
	inputs := requireEnvironment(t)
	dir = filepath.Dir(inputs[0])
	return dir, filepath.Join(dir, "docs-*.parquet")
}

func baseConfig(model, out string, inputs ...string) Config {
	return Config{
		ModelDir: model, Inputs: inputs, OutputDir: out, Format: shards.FormatParquet,
		Columns: shards.Columns{Title: "title"},
		Encode:  encode.EncodeOptions{BatchTokens: 8192, MaxBatch: 64, Sparsify: encode.DefaultSparsifyOptions()},
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// TestDirectoryRun encodes the Cranfield directory: exactly one impact shard
// per input shard plus the sidecars, every id once, each vector equal to the
// document encoded alone, and a second run into another directory gives
// byte-identical shards.
func TestDirectoryRun(t *testing.T) {
	dir, glob := cranfieldDocs(t)
	model := genModel(t, testmodel.Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 31})
	out1 := filepath.Join(t.TempDir(), "out1")
	sum, err := Run(context.Background(), baseConfig(model, out1, glob), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"_SUCCESS", "_locks", "_manifest.docs-00000.json", "_manifest.docs-00001.json", "_manifest.docs-00002.json",
		"_manifest.docs-00003.json", "_vocabulary.parquet", "docs-00000.parquet", "docs-00001.parquet", "docs-00002.parquet", "docs-00003.parquet"}
	if got := listDir(t, out1); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("output directory holds %v, want %v", got, want)
	}
	if sum.Counts.Docs != 1400 || sum.Shards != 4 {
		t.Fatalf("summary: %d docs, %d shards", sum.Counts.Docs, sum.Shards)
	}
	rows := readOutputs(t, out1) // fails on a duplicate id
	docs := readInputs(t, mustGlob(t, filepath.Join(dir, "docs-*.parquet")), shards.Columns{Title: "title"})
	if len(rows) != 1400 || len(docs) != 1400 {
		t.Fatalf("%d output rows, %d input documents", len(rows), len(docs))
	}
	// Every document is there; every fourth vector equals the document's
	// encoding alone (a batch of one).
	m, err := OpenModel(context.Background(), model, ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	alone := encode.EncodeOptions{BatchTokens: 512, MaxBatch: 1, Sparsify: encode.DefaultSparsifyOptions()}
	for i, d := range docs {
		got, ok := rows[d.id]
		if !ok {
			t.Fatalf("document %s missing from the output", d.id)
		}
		if i%4 != 0 {
			continue // a quarter suffices (CI time); TestVectorDoesNotDependOnBatch covers batching
		}
		res := encodeTexts(t, m, alone, []string{d.text})
		if diff := encode.MaxDiff(res[0].Vec, got.Vec); diff > 1e-5 || res[0].Vec.Len() != got.Vec.Len() {
			t.Fatalf("document %s: pipeline vector differs from its encoding alone by %g (%d vs %d terms)", d.id, diff, got.Vec.Len(), res[0].Vec.Len())
		}
	}
	// Output order within each shard is the input order.
	for _, p := range mustGlob(t, filepath.Join(out1, "docs-*.parquet")) {
		var ids []string
		shards.ReadShard(p, func(r shards.Row) error { ids = append(ids, r.DocID); return nil })
		in := readInputs(t, []string{filepath.Join(dir, filepath.Base(p))}, shards.Columns{Title: "title"})
		for i := range in {
			if ids[i] != in[i].id {
				t.Fatalf("%s row %d is %s, input has %s", p, i, ids[i], in[i].id)
			}
		}
	}
	// A second run gives byte-identical shards (batches are formed in
	// reading order, whatever order the tokenizer workers finish in).
	out2 := filepath.Join(t.TempDir(), "out2")
	if _, err := Run(context.Background(), baseConfig(model, out2, glob), quietLog()); err != nil {
		t.Fatal(err)
	}
	for _, name := range want {
		if !strings.HasSuffix(name, ".parquet") {
			continue
		}
		a, _ := os.ReadFile(filepath.Join(out1, name))
		b, _ := os.ReadFile(filepath.Join(out2, name))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two runs: %s", name, firstRowDifference(t, filepath.Join(out1, name), filepath.Join(out2, name)))
		}
	}
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) == 0 {
		t.Fatalf("glob %s: %v (%d matches)", pattern, err, len(m))
	}
	return m
}

// TestResume re-runs a finished run (everything skipped, nothing rewritten),
// then changes a setting (refused without --overwrite), then an input shard.
func TestResume(t *testing.T) {
	dir, _ := cranfieldDocs(t)
	model := genModel(t, testmodel.Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 32})
	in := t.TempDir()
	for _, name := range []string{"docs-00000.parquet", "docs-00001.parquet"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(in, name), data, 0o644)
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := Run(context.Background(), baseConfig(model, out, in), quietLog()); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(out, "docs-00000.parquet"))
	st0, _ := os.Stat(filepath.Join(out, "docs-00000.parquet"))

	sum, err := Run(context.Background(), baseConfig(model, out, in), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Skipped != 2 || sum.Shards != 0 || sum.Counts.Docs != 0 {
		t.Fatalf("re-run: skipped %d, encoded %d shards, %d docs; want everything skipped", sum.Skipped, sum.Shards, sum.Counts.Docs)
	}
	st1, _ := os.Stat(filepath.Join(out, "docs-00000.parquet"))
	if !os.SameFile(st0, st1) || !st0.ModTime().Equal(st1.ModTime()) {
		t.Fatal("a skipped shard was rewritten")
	}

	changed := baseConfig(model, out, in)
	changed.Encode.Sparsify.TopK = 10
	_, err = Run(context.Background(), changed, quietLog())
	if !errors.Is(err, ErrSettings) || !strings.Contains(err.Error(), "top_k") || !strings.Contains(err.Error(), "--overwrite") {
		t.Fatalf("changed settings: got %v, want a refusal naming top_k and --overwrite", err)
	}
	changed.Overwrite = true
	if sum, err = Run(context.Background(), changed, quietLog()); err != nil || sum.Shards != 2 {
		t.Fatalf("--overwrite: %v, %d shards encoded", err, sum.Shards)
	}

	// Restore the first settings, then change one input shard: only that
	// shard conflicts (the other one was encoded with top-k, so overwrite).
	restore := baseConfig(model, out, in)
	restore.Overwrite = true
	if _, err := Run(context.Background(), restore, quietLog()); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(out, "docs-00000.parquet"))
	if !bytes.Equal(before, after) {
		t.Fatal("re-encoding with the original settings did not reproduce the original shard")
	}
	data, _ := os.ReadFile(filepath.Join(dir, "docs-00002.parquet"))
	os.WriteFile(filepath.Join(in, "docs-00001.parquet"), data, 0o644)
	_, err = Run(context.Background(), baseConfig(model, out, in), quietLog())
	if !errors.Is(err, ErrSettings) || !strings.Contains(err.Error(), "docs-00001.parquet") {
		t.Fatalf("changed input: got %v, want a refusal naming docs-00001.parquet", err)
	}
}

// TestCancelledRunLeavesNothingLookingDone cancels a run part-way and checks
// that every file with a final name is a verified shard, then re-runs to
// completion.
func TestCancelledRunLeavesNothingLookingDone(t *testing.T) {
	_, glob := cranfieldDocs(t)
	model := genModel(t, testmodel.Config{Layers: 2, Hidden: 64, Heads: 4, Seed: 33})
	out := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithCancel(context.Background())
	cfg := baseConfig(model, out, glob)
	cfg.NewProgress = func(pipeline.Totals) Progress { return &cancelAfter{docs: 500, cancel: cancel} }
	_, err := Run(ctx, cfg, quietLog())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run returned %v", err)
	}
	for _, name := range listDir(t, out) {
		switch {
		case name == "_vocabulary.parquet", name == shards.LockDir:
		case strings.HasPrefix(name, "_manifest."):
		case strings.HasSuffix(name, ".parquet"):
			base := strings.TrimSuffix(name, ".parquet")
			if _, err := shards.VerifyShard(out, base); err != nil {
				t.Errorf("%s has its final name but does not verify: %v", name, err)
			}
		default:
			t.Errorf("cancelled run left %s", name)
		}
	}
	sum, err := Run(context.Background(), baseConfig(model, out, glob), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if got := readOutputs(t, out); len(got) != 1400 {
		t.Fatalf("after the re-run: %d documents", len(got))
	}
	t.Logf("re-run encoded %d shards, skipped %d", sum.Shards, sum.Skipped)
}

// cancelAfter cancels the run once the writer has written docs documents.
type cancelAfter struct {
	docs, seen int64
	cancel     func()
}

func (c *cancelAfter) AddDocs(docs, tokens int64) {
	c.seen += docs
	if c.seen >= c.docs {
		c.cancel()
	}
}

func (c *cancelAfter) ShardDone()                {}
func (c *cancelAfter) Start(ctx context.Context) {}
func (c *cancelAfter) Stop()                     {}

// firstRowDifference describes the first row where two shards differ.
func firstRowDifference(t *testing.T, a, b string) string {
	t.Helper()
	var rowsA, rowsB []shards.Row
	shards.ReadShard(a, func(r shards.Row) error { rowsA = append(rowsA, r); return nil })
	shards.ReadShard(b, func(r shards.Row) error { rowsB = append(rowsB, r); return nil })
	if len(rowsA) != len(rowsB) {
		return fmt.Sprintf("%d vs %d rows", len(rowsA), len(rowsB))
	}
	for i := range rowsA {
		ra, rb := rowsA[i], rowsB[i]
		if ra.DocID != rb.DocID || ra.Vec.Len() != rb.Vec.Len() || ra.NumTokens != rb.NumTokens {
			return fmt.Sprintf("row %d: %s/%d terms vs %s/%d terms", i, ra.DocID, ra.Vec.Len(), rb.DocID, rb.Vec.Len())
		}
		for k := range ra.Vec.Terms {
			if ra.Vec.Terms[k] != rb.Vec.Terms[k] || ra.Vec.Weights[k] != rb.Vec.Weights[k] {
				return fmt.Sprintf("row %d (%s) term %d: %d=%v vs %d=%v", i, ra.DocID, k, ra.Vec.Terms[k], ra.Vec.Weights[k], rb.Vec.Terms[k], rb.Vec.Weights[k])
			}
		}
	}
	return "rows equal; the files differ elsewhere (metadata or layout)"
}
