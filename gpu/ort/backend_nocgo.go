//go:build !cgo

package ort

import (
	"context"
	"errors"

	"github.com/splash-encode/splash/encode"
)

// ErrNoCgo explains how to get a build that can run ONNX Runtime.
var ErrNoCgo = errors.New("this splash was built without cgo, which ONNX Runtime needs: rebuild with CGO_ENABLED=1 and gcc installed")

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

// GPUOptions configure the CUDA and TensorRT execution providers (see the
// cgo build).
type GPUOptions struct {
	DeviceID         int
	MemLimit         uint64
	AllowTF32        bool
	TensorRTFP16     bool
	TensorRTCacheDir string
	MaxBatch         int
	MaxSeqLen        int
}

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
