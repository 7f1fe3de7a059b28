//go:build cgo

package testmodel

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/splash-encode/splash/encode"
)

// TestOptimumNamesONNXRuntime runs Config.OptimumNames models (dense
// weights multiplied as pre-transposed onnx::MatMul_N initializers) through
// gpu/ort on a padded batch of Cranfield documents and compares the SPLADE
// vectors with the oracle, which binds those weights through the graph.
func TestOptimumNamesONNXRuntime(t *testing.T) {
	requireORT(t)
	texts := cranfieldTexts(t, 0)
	for _, arch := range []Arch{ArchBERT, ArchDistilBERT, ArchRoBERTa} {
		t.Run(string(arch), func(t *testing.T) {
			dir := generateArch(t, Config{Arch: arch, Layers: 2, Hidden: 32, Heads: 4, Seed: 17, OptimumNames: true})
			tk := loadTokenizer(t, filepath.Join(dir, TokenizerFile))
			var seqs [][]int32
			for k, n := range []int{40, 7, 25} {
				seqs = append(seqs, tk.Encode(texts[(k*311+5)%len(texts)], n).IDs)
			}
			o, err := LoadOracle(dir)
			if err != nil {
				t.Fatal(err)
			}
			got := ortPooled(t, dir, encode.PoolMax, encode.NewBatch(seqs, tk.PadID()))
			worst := 0.0
			for r, s := range seqs {
				for j, w := range o.Pooled(s, "max") {
					d := math.Abs(got[r][j] - w)
					worst = max(worst, d)
					if d > 1e-4 {
						t.Fatalf("row %d term %d: ONNX Runtime %v, oracle %v", r, j, got[r][j], w)
					}
				}
			}
			t.Logf("pooled weights within %.2g of the oracle", worst)
		})
	}
}
