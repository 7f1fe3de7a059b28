package testmodel

import (
	"path/filepath"
	"testing"
)

// BenchmarkOracleLogits times the oracle on a 200-token sequence of the
// 1 x 32 x 2 model (the vocabulary projection dominates).
func BenchmarkOracleLogits(b *testing.B) {
	o, err := LoadOracle(generate(b, Config{Layers: 1, Hidden: 32, Heads: 2}))
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]int32, 200)
	for i := range ids {
		ids[i] = int32(1000 + 37*i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if o.Logits(ids) == nil {
			b.Fatal("ids rejected")
		}
	}
}

// BenchmarkGenerateBase times generating a BERT-base-sized model (12 x 768).
func BenchmarkGenerateBase(b *testing.B) {
	requireFile(b, bertTokenizer)
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(b.TempDir(), "m")
		if err := Generate(dir, Config{Layers: 12, Hidden: 768, Heads: 12}, bertTokenizer); err != nil {
			b.Fatal(err)
		}
	}
}
