package testmodel

import "fmt"

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
