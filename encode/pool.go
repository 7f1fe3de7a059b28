package encode

import "math"

// PoolReference is the plain float64 definition of SPLADE pooling, used as
// the oracle for every fast path. logits is [sequence][vocab]; positions
// whose mask is 0 never contribute. It applies the activation
// log(1 + relu(z)) at every position before reducing, exactly as the papers
// write it (the fast paths reduce first, which is equal for max pooling).
func PoolReference(logits [][]float64, mask []int64, p Pooling) []float64 {
	if len(logits) == 0 {
		return nil
	}
	out := make([]float64, len(logits[0]))
	for i, row := range logits {
		if i < len(mask) && mask[i] == 0 {
			continue
		}
		for j, z := range row {
			a := math.Log1p(math.Max(z, 0))
			if p == PoolSum {
				out[j] += a
			} else if a > out[j] {
				out[j] = a
			}
		}
	}
	return out
}
