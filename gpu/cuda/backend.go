package cuda

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/gpu"
	"github.com/splash-encode/splash/gpu/cuda/sys"
	"github.com/splash-encode/splash/kernels"
)

func init() { gpu.Register(modelEngine{}) }

// modelEngine is splash's own CUDA engine as a gpu.Engine ("cuda"): it
// runs BERT, DistilBERT and RoBERTa masked LMs and Llama and Mistral causal
// LMs from config.json and model.safetensors (or a sharded checkpoint,
// model.safetensors.index.json, or the ONNX file's initializers) with
// cuBLAS and the kernels of package kernels, on GPUs only.
type modelEngine struct{}

var _ gpu.Engine = modelEngine{}

// Name implements gpu.Engine.
func (modelEngine) Name() string { return gpu.EngineCUDA }

// GPUOnly tells the registry that this engine cannot run on the CPU.
func (modelEngine) GPUOnly() bool { return true }

// Precision is the arithmetic of the engine.
type Precision string

// Precisions.
const (
	FP32 Precision = "fp32" // float32 everywhere, no TF32: the parity mode
	TF32 Precision = "tf32" // float32 storage, TF32 tensor-core GEMMs
	BF16 Precision = "bf16" // bfloat16 storage, fp32 accumulation
	FP16 Precision = "fp16" // float16 storage, fp32 accumulation
)

// resolvePrecision picks the default (bf16 on compute capability 8.0 and
// newer, which have bf16 tensor cores; fp16 before) and maps a precision
// to the storage type and the cuBLAS compute type.
func resolvePrecision(p string, info sys.DeviceInfo) (Precision, kernels.DType, sys.ComputeType, error) {
	if p == "" {
		p = string(FP16)
		if info.ComputeMajor >= 8 {
			p = string(BF16)
		}
	}
	switch Precision(p) {
	case FP32:
		return FP32, kernels.F32, sys.Compute32F, nil
	case TF32:
		return TF32, kernels.F32, sys.Compute32FFastTF32, nil
	case BF16:
		if info.ComputeMajor < 8 {
			return "", 0, 0, fmt.Errorf("%w: --precision bf16 needs a GPU of compute capability 8.0 or newer; %s is %d.%d (use fp16)",
				encode.ErrSettings, info.Name, info.ComputeMajor, info.ComputeMinor)
		}
		return BF16, kernels.BF16, sys.Compute32F, nil
	case FP16:
		return FP16, kernels.F16, sys.Compute32F, nil
	case FP8:
		if info.ComputeMajor < fp8MinCompute {
			return "", 0, 0, fmt.Errorf("%w: --precision fp8 needs a GPU of compute capability 9.0 or newer (FP8 tensor cores through cuBLASLt); %s is %d.%d (use bf16)",
				encode.ErrSettings, info.Name, info.ComputeMajor, info.ComputeMinor)
		}
		return FP8, kernels.BF16, sys.Compute32F, nil
	}
	return "", 0, 0, fmt.Errorf("%w: precision %q: want fp32, tf32, bf16, fp16 or fp8", encode.ErrSettings, p)
}

// cublas is the process's cuBLAS, loaded on first use, as LoadDriver
// loads the driver: the library is process-wide and never closed.
var cublas struct {
	once sync.Once
	lib  *sys.CUBLASLib
	err  error
}

// loadLibraries returns the driver and cuBLAS; when either cannot be used
// the error matches gpu.ErrUnavailable (--device auto then falls back to
// the CPU) and says what was looked for and where.
func loadLibraries() (*sys.Driver, *sys.CUBLASLib, error) {
	d, err := LoadDriver()
	if err != nil {
		return nil, nil, &gpu.UnavailableError{Reason: "the NVIDIA driver (libcuda.so.1) does not load", Err: err}
	}
	cublas.once.Do(func() { cublas.lib, cublas.err = sys.LoadCUBLAS() })
	if cublas.err != nil {
		return nil, nil, &gpu.UnavailableError{Reason: "cuBLAS (libcublas.so.13, .12 or .11) does not load", Err: cublas.err}
	}
	return d, cublas.lib, nil
}

// Open implements gpu.Engine: it loads the driver and cuBLAS, reads the
// architecture and the weights of modelDir, checks that they and the
// smallest batch fit the device (MemoryPlan), uploads them to dev and
// returns a backend that runs one batch at a time. Decoders run the
// attention of opts.Attention (causal by default; see OpenAttention).
func (modelEngine) Open(ctx context.Context, modelDir string, dev *gpu.Device, opts gpu.Options) (encode.Backend, error) {
	return OpenAttention(ctx, modelDir, dev, opts, opts.Attention)
}

// OpenAttention is Open with the attention of a decoder-only model
// (ParseAttention's values; "" is the model's own: causal for decoders,
// bidirectional for the BERT family, which runs nothing else).
func OpenAttention(ctx context.Context, modelDir string, dev *gpu.Device, opts gpu.Options, attention string) (encode.Backend, error) {
	if dev == nil {
		return nil, fmt.Errorf("the %s engine runs on GPUs only", gpu.EngineCUDA)
	}
	att, err := ParseAttention(attention)
	if err != nil {
		return nil, err
	}
	driver, blas, err := loadLibraries()
	if err != nil {
		return nil, err
	}
	arch, err := ReadArch(modelDir)
	if err != nil {
		return nil, err
	}
	maxLen, err := checkModelOptions(modelDir, arch, opts, attention)
	if err != nil {
		return nil, err
	}
	info, err := driver.Device(dev.Index)
	if err != nil {
		return nil, fmt.Errorf("cuda engine: %w", err)
	}
	precision, dt, compute, err := resolvePrecision(opts.Precision, info)
	if err != nil {
		return nil, err
	}
	ckpt, err := OpenCheckpoint(modelDir)
	if err != nil {
		return nil, err
	}
	defer ckpt.Close()
	// A BERT-family model is bound whole before the upload; a decoder (up
	// to 8B parameters, 32 GB in float32) is bound and uploaded one layer
	// at a time by NewDecoderNet.
	var w *Weights
	tied := arch.TiedEmbeddings
	if !arch.Family.Decoder() {
		if w, err = BindWeights(arch, ckpt); err != nil {
			return nil, err
		}
		tied = w.Tied
	}
	dctx, err := driver.Retain(dev.Index)
	if err != nil {
		return nil, fmt.Errorf("cuda engine: %w", err)
	}
	free, _, err := dctx.MemInfo()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("cuda engine on %s: %w", dev, err), dctx.Release())
	}
	plan := PlanMemory(arch, tied, dt, maxLen, DefaultHeadChunk, DefaultLanes)
	if precision == FP8 {
		plan = plan.WithFP8(arch)
	}
	if err := plan.Check(free); err != nil {
		return nil, errors.Join(fmt.Errorf("cuda engine on %s (%s): %w", dev, precision, err), dctx.Release())
	}
	var lanes []*lane
	fail := func(err error) (encode.Backend, error) {
		errs := []error{fmt.Errorf("cuda engine on %s: %w", dev, oom(err))}
		for i := len(lanes) - 1; i >= 0; i-- { // the shared nets before the owner
			errs = append(errs, lanes[i].close())
		}
		return nil, errors.Join(append(errs, dctx.Release())...)
	}
	for i := 0; i < DefaultLanes; i++ {
		ops, err := NewDeviceOps(dctx, blas, dt, compute)
		if err != nil {
			return fail(err)
		}
		if precision == FP8 {
			if err := enableFP8(ops); err != nil {
				return fail(errors.Join(err, ops.Close()))
			}
		}
		l := &lane{ops: ops, closeOps: ops.Close}
		if i == 0 {
			if w != nil {
				l.net, err = NewNet(ops, w, DefaultHeadChunk)
			} else {
				l.net, err = NewDecoderNet(ops, arch, ckpt, DefaultHeadChunk)
			}
			if err == nil && precision == FP8 {
				err = l.net.KeepHeadBF16()
			}
			if err != nil {
				ops.Close()
				return fail(fmt.Errorf("upload the weights: %w", err))
			}
			if attention != "" {
				if err := l.net.SetAttention(att); err != nil {
					lanes = append(lanes, l)
					return fail(err)
				}
			}
		} else {
			l.net = lanes[0].net.Share(ops)
		}
		lanes = append(lanes, l)
	}
	free, _, err = dctx.MemInfo()
	if err != nil {
		return fail(err)
	}
	b := newBackend(lanes, opts.Pooling, precision, BatchTokens(free/uint64(len(lanes)), arch, dt, maxLen, DefaultHeadChunk))
	b.release = dctx.Release
	return b, nil
}

// checkModelOptions checks the settings against the model of modelDir and
// returns the max length the engine sizes batches for: echo (PoolMask) and
// causal attention are for decoders only; a max length (GPU.MaxSeqLen)
// beyond Mistral's sliding_window is refused, naming it (the engine
// attends over whole documents).
func checkModelOptions(modelDir string, arch Arch, opts gpu.Options, attention string) (int, error) {
	att, err := ParseAttention(attention)
	if err != nil {
		return 0, err
	}
	if !arch.Family.Decoder() {
		if opts.PoolMask {
			return 0, fmt.Errorf("%w: the CUDA engine runs %s masked LMs without echo; the echo pooling is for causal encoders (Llama, Mistral)", encode.ErrSettings, arch.Family)
		}
		if attention != "" && att != AttentionBidirectional {
			return 0, fmt.Errorf("%w: attention %q: %s models attend bidirectionally only", encode.ErrSettings, attention, arch.Family)
		}
	}
	if arch.SlidingWindow > 0 && opts.GPU.MaxSeqLen > arch.SlidingWindow {
		return 0, fmt.Errorf("%w: %s: sliding_window is %d, shorter than the max length %d: the CUDA engine attends over whole documents (lower --max-length)",
			encode.ErrBadModel, filepath.Join(modelDir, "config.json"), arch.SlidingWindow, opts.GPU.MaxSeqLen)
	}
	if opts.GPU.MaxSeqLen <= 0 {
		return min(arch.MaxTokens(), 512), nil
	}
	return min(arch.MaxTokens(), opts.GPU.MaxSeqLen), nil
}

// DefaultLanes is the number of batches the engine keeps in flight on one
// GPU: each lane has its own stream, cuBLAS handle, pinned staging buffer
// and batch buffers (the weights are shared), so that while one lane's
// worker prepares, uploads or waits for its batch, the other's kernels keep
// the GPU busy.
const DefaultLanes = 2

// Batch token budgets BatchTokens chooses between.
const (
	minBatchTokens = 2048
	maxBatchTokens = 1 << 17
	// memoryReserve is left free for cuBLAS's workspace, the driver and
	// fragmentation.
	memoryReserve = 512 << 20
)

// BytesPerToken is the engine's peak device memory per batch token
// (documents × longest length, padding included) of a forward pass
// (Net.Forward): the activation buffers in dt (activationsPerToken: for
// the BERT family the hidden states x and c (2·H), the QKV/feed-forward
// buffer y (max(3H, I)), the padded Q, K and V blocks (3·H), the attention
// scores (heads·L for a longest length L); for decoders likewise with
// grouped K and V and the SwiGLU widths); plus the packed index arrays
// (4 int32) and the pooled rows (V float32 per document, counted for
// documents of 16 tokens and more).
func BytesPerToken(a Arch, dt kernels.DType, maxLen int) int {
	return activationsPerToken(a, maxLen)*dt.Size() + 16 + 4*a.Vocab/16
}

// BatchTokens is the batch token budget for a device with free bytes left
// after the weights: half of what the logits chunk ([chunk][V]) and the
// reserve leave, divided by BytesPerToken, within
// [max(2048, maxLen), 131072]. A wrong guess costs time, never documents:
// a batch that runs out of memory is split and retried.
func BatchTokens(free uint64, a Arch, dt kernels.DType, maxLen, chunk int) int {
	floor := max(minBatchTokens, maxLen)
	fixed := uint64(chunk*a.Vocab*dt.Size()) + memoryReserve
	if free <= fixed {
		return floor
	}
	n := (free - fixed) / 2 / uint64(BytesPerToken(a, dt, maxLen))
	return int(min(max(n, uint64(floor)), maxBatchTokens))
}

// BatchTokens implements gpu.TokenBudgeter: the budget chosen at Open from
// the free memory after the weights.
func (b *Backend) BatchTokens() int { return b.batchTokens }

// oom makes an out-of-memory error of the driver or cuBLAS match
// encode.ErrOutOfMemory, on which encode.SplitOnOOM splits the batch.
func oom(err error) error {
	if errors.Is(err, sys.ErrOutOfMemory) && !errors.Is(err, encode.ErrOutOfMemory) {
		return fmt.Errorf("%w: %w", encode.ErrOutOfMemory, err)
	}
	return err
}

// lane is one batch in flight: an Ops (a stream on the GPU) and a Net over
// it; the lanes of a Backend share the first lane's weights.
type lane struct {
	ops      Ops
	net      *Net
	closeOps func() error // nil: nothing to close
}

func (l *lane) close() error {
	var errs []error
	if l.net != nil {
		errs = append(errs, l.net.Close())
	}
	if l.closeOps != nil {
		errs = append(errs, l.closeOps())
	}
	return errors.Join(errs...)
}

// Backend is the engine's encode.Backend on one GPU. It runs up to Lanes
// batches at once, one per lane, so several encoder workers may share it
// (Lanes says how many are useful); it is safe for concurrent use.
type Backend struct {
	lanes       []*lane
	free        chan *lane
	vocab       int
	pooling     encode.Pooling
	precision   Precision
	batchTokens int
	release     func() error // releases the device context; nil in tests
	closeOnce   sync.Once
	closed      chan struct{}
}

var (
	_ encode.Backend       = (*Backend)(nil)
	_ encode.SparseBackend = (*Backend)(nil)
)

func newBackend(lanes []*lane, pooling encode.Pooling, precision Precision, batchTokens int) *Backend {
	b := &Backend{lanes: lanes, free: make(chan *lane, len(lanes)), vocab: lanes[0].net.Arch().Vocab,
		pooling: pooling, precision: precision, batchTokens: batchTokens, closed: make(chan struct{})}
	for _, l := range lanes {
		b.free <- l
	}
	return b
}

// run unpacks batch, takes a free lane (waiting for one), runs f on it and
// gives it back.
func (b *Backend) run(ctx context.Context, batch *encode.Batch, f func(*Net, Input) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	in, err := InputFromBatch(batch)
	if err != nil {
		return err
	}
	select {
	case <-b.closed:
		return errors.New("cuda engine: backend is closed")
	default:
	}
	var l *lane
	select {
	case l = <-b.free:
	case <-b.closed:
		return errors.New("cuda engine: backend is closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { b.free <- l }()
	return oom(f(l.net, in))
}

// Encode implements encode.Backend.
func (b *Backend) Encode(ctx context.Context, batch *encode.Batch, out []float32) error {
	return b.run(ctx, batch, func(n *Net, in Input) error { return n.Forward(in, b.pooling, out) })
}

// EncodeSparse implements encode.SparseBackend: the pooled rows are made
// sparse on the GPU and only their non-zeros are copied to the host.
func (b *Backend) EncodeSparse(ctx context.Context, batch *encode.Batch, dst *encode.CSR) error {
	return b.run(ctx, batch, func(n *Net, in Input) error { return n.ForwardSparse(in, b.pooling, dst) })
}

// Lanes implements gpu.Laner: the batches the backend runs at once.
func (b *Backend) Lanes() int { return len(b.lanes) }

// VocabSize implements encode.Backend.
func (b *Backend) VocabSize() int { return b.vocab }

// Precision is the arithmetic the backend runs.
func (b *Backend) Precision() Precision { return b.precision }

// Close implements encode.Backend: it waits for the batches in flight,
// then frees the lanes (the sharing lanes before the one that owns the
// weights) and releases the device.
func (b *Backend) Close() error {
	var err error
	b.closeOnce.Do(func() {
		close(b.closed)
		for range b.lanes {
			<-b.free
		}
		var errs []error
		for i := len(b.lanes) - 1; i >= 0; i-- {
			errs = append(errs, b.lanes[i].close())
		}
		if b.release != nil {
			errs = append(errs, b.release())
		}
		err = errors.Join(errs...)
	})
	return err
}
