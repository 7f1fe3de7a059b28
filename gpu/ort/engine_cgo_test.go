//go:build cgo

package ort

import (
	"context"
	"errors"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/gpu"
)

// TestEngineOpen opens a model through the gpu.Engine: on the CPU (dev
// nil), and on GPU 0, which either works (ONNX Runtime's GPU build beside a
// GPU) or fails with an error that package gpu's auto fallback recognises,
// with its short reason.
func TestEngineOpen(t *testing.T) {
	requireLibrary(t)
	table := [][]float32{{0.5, -1, 2}, {1.5, 0.25, -3}, {-0.5, 4, 1}}
	dir := writeModel(t, lookupModel(t, 14, table, false))
	ctx := context.Background()
	cpu, err := Engine{}.Open(ctx, dir, nil, gpu.Options{Pooling: encode.PoolMax, Threads: 1, Provider: "tensorrt"})
	if err != nil {
		t.Fatal(err)
	}
	if cpu.VocabSize() != 3 {
		t.Errorf("vocab %d, want 3", cpu.VocabSize())
	}
	cpu.Close()
	b, err := Engine{}.Open(ctx, dir, &gpu.Device{Index: 0}, gpu.Options{Pooling: encode.PoolMax})
	if err == nil {
		b.Close()
		t.Skip("ONNX Runtime's cuda provider loads here: nothing to check of its failure")
	}
	var u *gpu.UnavailableError
	if !errors.Is(err, gpu.ErrUnavailable) || !errors.Is(err, ErrProviderUnavailable) || !errors.As(err, &u) ||
		u.Reason != "ONNX Runtime cannot load its cuda execution provider" {
		t.Fatalf("GPU 0 without the cuda provider: %v (%#v)", err, u)
	}
	if b != nil {
		t.Errorf("a failed Open returned the backend %#v", b)
	}
}
