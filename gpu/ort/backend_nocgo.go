//go:build !cgo

package ort

import (
	"context"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/gpu"
)

// cgoEnabled: this build cannot call ONNX Runtime.
const cgoEnabled = false

// Options configures a Backend (see the cgo build).
type Options struct {
	Library           string
	Pooling           encode.Pooling
	LogitsOutput      string
	IntraOpThreads    int
	Provider          string
	GPU               GPUOptions
	ProfilePrefix     string
	DisableMemArena   bool
	DisableSpinning   bool
	DisableMemPattern bool
	OptLevel          string
	PoolMask          bool
}

// GPUOptions configure the CUDA and TensorRT execution providers (see
// gpu.GPUOptions).
type GPUOptions = gpu.GPUOptions

// Backend is unavailable without cgo.
type Backend struct{}

// Open always fails without cgo.
func Open(ctx context.Context, modelPath string, opts Options) (*Backend, error) {
	return nil, ErrNoCgo
}

// Version is empty without cgo.
func Version() string { return "" }

// VocabSize implements encode.Backend.
func (b *Backend) VocabSize() int { return 0 }

// Info is nil without cgo.
func (b *Backend) Info() *GraphInfo { return nil }

// Encode implements encode.Backend.
func (b *Backend) Encode(ctx context.Context, batch *encode.Batch, out []float32) error {
	return ErrNoCgo
}

// Close implements encode.Backend.
func (b *Backend) Close() error { return nil }
