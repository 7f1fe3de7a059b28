package ort

import (
	"context"
	"errors"
	"fmt"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/gpu"
)

// EngineName is the name ONNX Runtime registers under with package gpu
// (gpu.DefaultEngine).
const EngineName = "ort"

func init() { gpu.Register(Engine{}) }

// Engine is ONNX Runtime as a gpu.Engine: it opens a Backend on the CPU or,
// with the execution provider of gpu.Options.Provider, on one GPU. Builds
// without cgo register it too; its Open then fails with ErrNoCgo.
type Engine struct{}

var _ gpu.Engine = Engine{}

// Name implements gpu.Engine.
func (Engine) Name() string { return EngineName }

// Open implements gpu.Engine: dev nil opens a CPU session. A GPU provider
// that cannot load fails with an error that matches both
// ErrProviderUnavailable and gpu.ErrUnavailable.
func (Engine) Open(ctx context.Context, modelDir string, dev *gpu.Device, opts gpu.Options) (encode.Backend, error) {
	if opts.Attention != "" {
		return nil, fmt.Errorf("%w: attention %q: ONNX Runtime runs the attention the ONNX graph was exported with; --attention applies to splash's CUDA engine (for a bidirectional model on the CPU, export it with bidirectional attention)", encode.ErrSettings, opts.Attention)
	}
	o := Options{
		Library: opts.Library, Pooling: opts.Pooling, IntraOpThreads: opts.Threads, PoolMask: opts.PoolMask,
		ProfilePrefix: opts.Session.ProfilePrefix, DisableMemArena: opts.Session.DisableMemArena, DisableSpinning: opts.Session.DisableSpinning,
		DisableMemPattern: opts.Session.DisableMemPattern, OptLevel: opts.Session.OptLevel,
	}
	if dev != nil {
		o.Provider = opts.Provider
		if o.Provider == "" {
			o.Provider = "cuda"
		}
		o.GPU = opts.GPU
		o.GPU.DeviceID = dev.Index
	}
	b, err := Open(ctx, modelDir, o)
	if err != nil {
		if errors.Is(err, ErrProviderUnavailable) {
			return nil, &gpu.UnavailableError{Reason: "ONNX Runtime cannot load its " + o.Provider + " execution provider", Err: err}
		}
		return nil, err // not a typed nil in the interface
	}
	return b, nil
}
