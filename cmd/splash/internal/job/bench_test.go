package job

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/splash-encode/splash/encode/testmodel"
)

// TestBenchSessionRunsThePipelinesBatches checks that `splash model bench`
// measures the batches `splash encode` forms: on one Cranfield shard with a
// small window (so several windows are packed) the bare session counts the
// same documents, tokens, padded tokens and batches as an encode run, every
// timed pass, warm or cold.
func TestBenchSessionRunsThePipelinesBatches(t *testing.T) {
	dir, _ := cranfieldDocs(t)
	model := genModel(t, testmodel.Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 32})
	input := filepath.Join(dir, "docs-00001.parquet")
	cfg := baseConfig(model, filepath.Join(t.TempDir(), "out"), input)
	cfg.Window = 100
	cfg.Encode.BatchTokens, cfg.Encode.MaxBatch = 2048, 16
	sum, err := Run(context.Background(), cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	m, err := OpenModel(context.Background(), model, ModelOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, cold := range []bool{false, true} {
		runs, err := BenchSession(context.Background(), m, SessionBenchConfig{
			Inputs: []string{input}, Columns: cfg.Columns, Encode: cfg.Encode, Window: cfg.Window, Repeats: 1, Cold: cold,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 1 {
			t.Fatalf("cold=%v: %d timed passes, want 1", cold, len(runs))
		}
		for _, r := range runs {
			c := sum.Counts
			if r.Docs != c.Docs || r.Tokens != c.Tokens || r.PaddedTokens != c.PaddedTokens || int64(r.Batches) != c.Batches {
				t.Fatalf("cold=%v: bench ran %d docs, %d tokens, %d padded, %d batches; encode: %d, %d, %d, %d",
					cold, r.Docs, r.Tokens, r.PaddedTokens, r.Batches, c.Docs, c.Tokens, c.PaddedTokens, c.Batches)
			}
			if r.Wall <= 0 || r.DocsPerS() <= 0 {
				t.Fatalf("cold=%v: pass took %v", cold, r.Wall)
			}
		}
	}
}
