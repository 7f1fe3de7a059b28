package job

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/testmodel"
)

// TestCancelStopsARunningBatch cancels the context while ONNX Runtime is in
// the middle of a large batch: Encode must return the cancellation (after
// the native run has stopped), and the backend must stay usable.
func TestCancelStopsARunningBatch(t *testing.T) {
	requireEnvironment(t)
	m, err := OpenModel(context.Background(), genModel(t, testmodel.Config{Layers: 2, Hidden: 64, Heads: 4, Seed: 9}), ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// 64 × 512 tokens: tens of GFLOP in the vocabulary projection alone,
	// far more than the 50 ms before the cancellation.
	seqs := make([][]int32, 64)
	for i := range seqs {
		seqs[i] = make([]int32, 512)
		for k := range seqs[i] {
			seqs[i][k] = int32(1000 + (i*512+k)%20000)
		}
	}
	batch := encode.NewBatch(seqs, 0)
	out := make([]float32, batch.Size*m.Backend.VocabSize())
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err = m.Backend.Encode(ctx, batch, out)
	t.Logf("Encode returned after %v: %v", time.Since(start), err)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Encode returned %v, want context.Canceled", err)
	}
	small := encode.NewBatch([][]int32{{101, 2000, 102}}, 0)
	if err := m.Backend.Encode(context.Background(), small, out[:m.Backend.VocabSize()]); err != nil {
		t.Fatalf("backend unusable after a cancelled run: %v", err)
	}
}
