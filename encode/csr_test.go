package encode_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/encodetest"
)

// csrBackend turns a dense backend into a SparseBackend, as splash's CUDA
// engine is one: EncodeSparse keeps every positive weight of each pooled
// row. oomAbove > 0 makes batches of more rows fail with ErrOutOfMemory.
type csrBackend struct {
	encode.Backend
	oomAbove int
	calls    int
}

func (c *csrBackend) EncodeSparse(ctx context.Context, b *encode.Batch, dst *encode.CSR) error {
	c.calls++
	if c.oomAbove > 0 && b.Size > c.oomAbove {
		return fmt.Errorf("fake: %d rows: %w", b.Size, encode.ErrOutOfMemory)
	}
	v := c.VocabSize()
	dense := make([]float32, b.Size*v)
	if err := c.Encode(ctx, b, dense); err != nil {
		return err
	}
	dst.Reset()
	for r := 0; r < b.Size; r++ {
		for j, w := range dense[r*v : (r+1)*v] {
			if w > 0 {
				dst.Terms = append(dst.Terms, uint32(j))
				dst.Weights = append(dst.Weights, w)
			}
		}
		dst.Offsets = append(dst.Offsets, uint32(len(dst.Terms)))
	}
	return nil
}

// TestSparsifyRow: sparsifying a row's positive weights gives the vector
// that sparsifying the dense row gives, for every option.
func TestSparsifyRow(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 200; trial++ {
		row := make([]float32, 1+rng.IntN(300))
		for j := range row {
			switch rng.IntN(4) {
			case 0:
				row[j] = float32(rng.NormFloat64())
			case 1:
				row[j] = float32(rng.IntN(3)) / 2 // ties
			}
		}
		var terms []uint32
		var weights []float32
		for j, w := range row {
			if w > 0 {
				terms, weights = append(terms, uint32(j)), append(weights, w)
			}
		}
		o := encode.SparsifyOptions{MinWeight: float32(rng.IntN(3)) / 4, TopK: rng.IntN(20), Scale: 100}
		want := encode.Sparsify(row, o, encode.SparseVec{})
		got := encode.SparsifyRow(terms, weights, o, encode.SparseVec{})
		if !slices.Equal(got.Terms, want.Terms) || !slices.Equal(got.Weights, want.Weights) || !slices.Equal(got.Impacts, want.Impacts) {
			t.Fatalf("trial %d, options %+v: got %v, want %v", trial, o, got, want)
		}
	}
}

// TestStreamSparseBackend runs the stream over a SparseBackend, alone and
// behind SplitOnOOM splitting every batch of more than three rows: the
// results equal those of the dense path, document for document.
func TestStreamSparseBackend(t *testing.T) {
	docs := corpus(2, 200, 9)
	run := func(b encode.Backend, m *encode.Model) *encode.CollectSink {
		t.Helper()
		cfg := streamConfig(2)
		cfg.Workers = []encode.Worker{{Backend: b, Device: "fake"}}
		sink := encode.NewCollectSink(2)
		if _, err := encode.Stream(context.Background(), m, cfg, encode.MemorySource{Docs: docs}, sink); err != nil {
			t.Fatal(err)
		}
		return sink
	}
	dense := &encodetest.Backend{}
	m := encodetest.Model(t, dense, 64)
	want := run(dense, m)

	terms := 0
	for s := range docs {
		for _, d := range want.Shards[s] {
			for _, r := range d.Results {
				terms += len(r.Vec.Terms)
			}
		}
	}
	if terms == 0 {
		t.Fatal("the fake backend gave no terms: the comparison would prove nothing")
	}
	sparse := &csrBackend{Backend: dense}
	if encode.AsSparse(sparse) == nil || encode.AsSparse(dense) != nil || encode.AsSparse(encode.NewSplitOnOOM(dense, nil)) != nil {
		t.Fatal("AsSparse does not tell sparse backends from dense ones")
	}
	split := &csrBackend{Backend: dense, oomAbove: 3}
	for name, b := range map[string]encode.Backend{"sparse": sparse, "split": encode.NewSplitOnOOM(split, nil)} {
		got := run(b, m)
		for s := range docs {
			for i := range docs[s] {
				g, w := got.Shards[s][i], want.Shards[s][i]
				if g.ID != w.ID || len(g.Results) != len(w.Results) {
					t.Fatalf("%s: shard %d document %d: %s with %d results, want %s with %d", name, s, i, g.ID, len(g.Results), w.ID, len(w.Results))
				}
				for k := range w.Results {
					if !sameResult(g.Results[k], w.Results[k]) {
						t.Fatalf("%s: shard %d document %d: %+v, want %+v", name, s, i, g.Results[k], w.Results[k])
					}
				}
			}
		}
	}
	if sparse.calls == 0 || split.calls == 0 {
		t.Errorf("EncodeSparse calls: %d and %d", sparse.calls, split.calls)
	}
}
