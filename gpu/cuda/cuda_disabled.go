//go:build !cuda

package cuda

import (
	"context"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/gpu"
)

// Devices lists the NVIDIA GPUs; without the cuda build tag it always fails.
func Devices() ([]gpu.Device, error) { return nil, ErrDisabled }

// Engine runs splash's kernels on one GPU; without the cuda build tag it
// cannot be opened and every method returns ErrDisabled.
type Engine struct{}

// Open fails with ErrDisabled in a build without the cuda tag.
func Open(ctx context.Context, deviceIndex int) (*Engine, error) { return nil, ErrDisabled }

// Close does nothing in a build without the cuda tag.
func (e *Engine) Close() error { return nil }

// PoolMax returns ErrDisabled in a build without the cuda tag.
func (e *Engine) PoolMax(logits []float32, mask []int64, b, t, v int) ([]float32, error) {
	return nil, ErrDisabled
}

// PoolSum returns ErrDisabled in a build without the cuda tag.
func (e *Engine) PoolSum(logits []float32, mask []int64, b, t, v int) ([]float32, error) {
	return nil, ErrDisabled
}

// Sparsify returns ErrDisabled in a build without the cuda tag.
func (e *Engine) Sparsify(pooled []float32, b, v int, minWeight float32, topK int) (offsets, terms []uint32, weights []float32, err error) {
	return nil, nil, nil, ErrDisabled
}

// PoolSparsify returns ErrDisabled in a build without the cuda tag.
func (e *Engine) PoolSparsify(p encode.Pooling, logits []float32, mask []int64, b, t, v int, minWeight float32, topK int) (offsets, terms []uint32, weights []float32, err error) {
	return nil, nil, nil, ErrDisabled
}

// SelfCheck returns ErrDisabled in a build without the cuda tag.
func SelfCheck(ctx context.Context, deviceIndex, b, t, v int, seed uint64) (gpu.KernelCheck, error) {
	return gpu.KernelCheck{}, ErrDisabled
}
