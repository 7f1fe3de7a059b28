package testmodel

import (
	"fmt"
	"math"
)

// checkSequence is the Validate of both oracles: a non-empty sequence of at
// most maxLen ids inside [0, vocab). what names the oracle in errors.
func checkSequence(what string, ids []int32, vocab, maxLen int) error {
	if len(ids) == 0 {
		return fmt.Errorf("testmodel: %s: empty sequence", what)
	}
	if len(ids) > maxLen {
		return fmt.Errorf("testmodel: %s: sequence of %d tokens, longer than %d positions", what, len(ids), maxLen)
	}
	for i, id := range ids {
		if id < 0 || int(id) >= vocab {
			return fmt.Errorf("testmodel: %s: id %d at position %d outside vocabulary [0, %d)", what, id, i, vocab)
		}
	}
	return nil
}

// roundLogits rounds every logit to float16 in place when fp16 (a model
// whose logits output is float16) and returns logits.
func roundLogits(logits [][]float64, fp16 bool) [][]float64 {
	if fp16 {
		for _, row := range logits {
			for j, z := range row {
				row[j] = RoundToFloat16(z)
			}
		}
	}
	return logits
}

// poolLogits is SPLADE pooling the naive way over positions from.. of
// logits: log(1 + relu(z_ij)) at each position, then "max" or "sum" over
// them. It returns nil for another pooling name, for nil logits, or when
// from is outside the positions.
func poolLogits(logits [][]float64, vocab, from int, pooling string) []float64 {
	if pooling != "max" && pooling != "sum" || logits == nil || from < 0 || from >= len(logits) {
		return nil
	}
	out := make([]float64, vocab)
	for i := from; i < len(logits); i++ {
		for j, z := range logits[i] {
			a := math.Log1p(math.Max(z, 0))
			switch {
			case pooling == "sum":
				out[j] += a
			case i == from || a > out[j]:
				out[j] = a
			}
		}
	}
	return out
}
