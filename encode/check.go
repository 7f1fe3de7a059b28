package encode

import (
	"context"
	"fmt"
	"math"
)

// CompareAlone encodes the first n texts that have content tokens one per
// batch (no padding, no neighbours) on workers and compares them with their
// vectors got from a batched run of texts: padding and batching must not
// change a vector. It returns how many documents it compared and the
// largest weight difference (the check `splash selftest --model` runs when
// no oracle exists).
func CompareAlone(ctx context.Context, m *Model, workers []Worker, batchTokens int, texts []string, got []Result, n int) (int, float64, error) {
	var picked []string
	var idx []int
	for k, text := range texts {
		if len(picked) == n {
			break
		}
		if len(m.Tokenizer.Encode(text, m.MaxLength).IDs) > m.Tokenizer.NumSpecialTokens() {
			picked, idx = append(picked, text), append(idx, k)
		}
	}
	cfg := StreamConfig{
		Options: EncodeOptions{BatchTokens: batchTokens, MaxBatch: 1, Sparsify: DefaultSparsifyOptions()},
		Workers: workers,
	}
	alone, _, err := EncodeTexts(ctx, m, picked, cfg)
	if err != nil {
		return 0, 0, fmt.Errorf("encode one document at a time: %w", err)
	}
	worst := 0.0
	for i, k := range idx {
		worst = math.Max(worst, MaxDiff(got[k].Vec, alone[i].Vec))
	}
	return len(picked), worst, nil
}
