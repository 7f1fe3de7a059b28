package testmodel

import (
	"path/filepath"
	"testing"
)

func BenchmarkOracleLogits(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "m")
	if err := Generate(dir, Config{Layers: 1, Hidden: 32, Heads: 2}, bertTokenizer); err != nil {
		b.Fatal(err)
	}
	o, err := LoadOracle(dir)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]int32, 200)
	for i := range ids {
		ids[i] = int32(1000 + 37*i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		o.Logits(ids)
	}
}

func BenchmarkGenerateBase(b *testing.B) {
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(b.TempDir(), "m")
		if err := Generate(dir, Config{Layers: 12, Hidden: 768, Heads: 12}, bertTokenizer); err != nil {
			b.Fatal(err)
		}
	}
}
