package testmodel

import (
	"fmt"
	"math"

	"github.com/splash-encode/splash/encode"
)

// CompareWithOracle compares the vectors got, encoded from texts by m (a
// model this package generated into dir), with the float64 forward pass of
// the first n texts that have content tokens. It returns how many it
// compared and the largest weight difference.
func CompareWithOracle(dir string, m *encode.Model, texts []string, got []encode.Result, n int) (int, float64, error) {
	o, err := LoadOracle(dir)
	if err != nil {
		return 0, 0, fmt.Errorf("load the float64 oracle: %w", err)
	}
	compared, worst := 0, 0.0
	for k, text := range texts {
		if compared == n {
			break
		}
		ids := m.Tokenizer.Encode(text, m.MaxLength).IDs
		if len(ids) <= m.Tokenizer.NumSpecialTokens() {
			continue
		}
		want := o.Pooled(ids, m.Pooling.String())
		if want == nil {
			return 0, 0, fmt.Errorf("the oracle cannot run document %d", k)
		}
		dense := make([]float64, len(want))
		for i, j := range got[k].Vec.Terms {
			dense[j] = float64(got[k].Vec.Weights[i])
		}
		for j := range want {
			worst = math.Max(worst, math.Abs(want[j]-dense[j]))
		}
		compared++
	}
	return compared, worst, nil
}
