package testmodel

import (
	"os"
	"testing"
)

func TestTmpCos(t *testing.T) {
	if os.Getenv("TMPCOS") == "" {
		t.Skip()
	}
	docs := cranfieldSample(t, 50)
	var sum, n float64
	for _, d := range docs {
		n += float64(len(d))
	}
	t.Logf("sample mean length %.1f", n/float64(len(docs)))
	for _, cfg := range []Config{{Layers: 1, Hidden: 32, Heads: 2}, {Layers: 2, Hidden: 64, Heads: 4}, {Layers: 12, Hidden: 768, Heads: 12}} {
		o, err := LoadOracle(generate(t, cfg))
		if err != nil {
			t.Fatal(err)
		}
		sum, n = 0, 0
		minC := 1.0
		for _, d := range docs[:3] {
			z := o.Logits(d)
			for i, id := range d {
				c := (z[i][id] - o.outBias[id]) / logitScale
				sum += c
				n++
				minC = min(minC, c)
			}
		}
		t.Logf("%dx%d: mean cos(h_i, E_own) %.3f min %.3f", cfg.Layers, cfg.Hidden, sum/n, minC)
	}
}
