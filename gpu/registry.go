package gpu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/splash-encode/splash/encode"
)

// Engines by name. Options.Engine "" (or EngineAuto) picks EngineCUDA on
// GPUs, when it is registered, and EngineORT on the CPU.
const (
	// EngineAuto chooses per device: splash's CUDA engine on GPUs, ONNX
	// Runtime on the CPU.
	EngineAuto = "auto"
	// EngineORT is ONNX Runtime (gpu/ort): the CPU, and GPUs through its
	// CUDA and TensorRT execution providers when a GPU build is installed.
	EngineORT = "ort"
	// EngineCUDA is splash's own CUDA engine (gpu/cuda): GPUs only.
	EngineCUDA = "cuda"
)

// DefaultEngine is the engine that runs models on the CPU: ONNX Runtime.
const DefaultEngine = EngineORT

// ErrUnavailable marks an engine's report that it cannot run on a GPU on
// this machine (its GPU libraries, or the driver, do not load): --device
// auto then encodes on the CPU instead. gpu/ort's ErrProviderUnavailable
// wraps it.
var ErrUnavailable = errors.New("the engine cannot run on this GPU here")

// UnavailableError is an engine's ErrUnavailable with its short reason,
// which the auto fallback records ("found cuda:0 (...) but " + Reason).
// Its text is Err's; it matches ErrUnavailable and whatever Err matches.
type UnavailableError struct {
	// Reason says in a few words what cannot run: "ONNX Runtime cannot
	// load its cuda execution provider".
	Reason string
	Err    error
}

func (e *UnavailableError) Error() string { return e.Err.Error() }

func (e *UnavailableError) Unwrap() error { return e.Err }

// Is makes every UnavailableError match ErrUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// ErrNoDriver is what a Driver's errors match when the CUDA driver cannot
// be used here (gpu/cuda's, when libcuda.so.1 does not load or finds no
// device, or the binary was built without cgo), and what the Registry's
// Driver returns when no driver registered: discovery then asks
// nvidia-smi, and the selftest skips the kernel check.
var ErrNoDriver = errors.New("no usable CUDA driver")

// ErrNoGPU marks the failure of --device cuda or cuda:N when no GPU it names
// can be used: none found, or the engine cannot run on it (the driver or
// cuBLAS do not load). The CLI exits with its usage code: the command asks
// for what this machine does not have.
var ErrNoGPU = errors.New("no usable GPU")

// noGPUError is an error of Open for --device cuda: its text is err's, and
// it matches ErrNoGPU and whatever err matches.
type noGPUError struct{ err error }

func (e *noGPUError) Error() string { return e.err.Error() }

func (e *noGPUError) Unwrap() error { return e.err }

func (e *noGPUError) Is(target error) bool { return target == ErrNoGPU }

// Engine runs models: it opens one encode.Backend per device. Engines
// register themselves with Register from an init function (gpu/ort
// registers "ort"); gpu/engines links every engine into a binary.
type Engine interface {
	// Name is what Options.Engine selects the engine by.
	Name() string
	// Open loads the model in modelDir on dev, or on the CPU when dev is
	// nil. An engine that cannot use the GPU on this machine (missing
	// libraries, no driver) fails with an error that matches
	// ErrUnavailable; a model whose files do not fit fails with one that
	// matches encode.ErrBadModel.
	Open(ctx context.Context, modelDir string, dev *Device, opts Options) (encode.Backend, error)
}

// Driver is what gpu/cuda provides through the CUDA driver: the device list
// with names and free memory, and the check of splash's own kernels. A
// build without CUDA support registers a Driver whose methods fail with an
// error that wraps ErrNoDriver.
type Driver interface {
	// Devices lists the GPUs as CUDA numbers them.
	Devices() ([]Device, error)
	// SelfCheck runs splash's kernels on device deviceIndex over
	// deterministic random logits of shape [b, t, v] and compares them with
	// their pure-Go twins; then the CUDA engine's kernels and GEMMs against
	// their twins, and its forward pass against the float64 oracle of
	// generated models (KernelCheck.Transformer and Engine).
	SelfCheck(ctx context.Context, deviceIndex, b, t, v int, seed uint64) (KernelCheck, error)
}

// KernelCheck is what Driver.SelfCheck measured on one device.
type KernelCheck struct {
	Device  int
	B, T, V int
	// PoolMaxRel and PoolSumRel are the largest relative differences
	// between the pooling kernels and their twins.
	PoolMaxRel, PoolSumRel float64
	// SparsifyExact says the sparsify kernel's CSR equals the twin's.
	SparsifyExact bool
	// PoolSparsifyTime is one PoolSparsify call, host transfers included.
	PoolSparsifyTime time.Duration
	// Transformer holds the CUDA engine's kernels and GEMMs (cuBLAS) run
	// on the device against their pure-Go twins over the same random
	// inputs, one entry per check and storage type (f32, bf16, f16).
	Transformer []KernelParity
	// Engine holds the CUDA engine's forward pass over generated models
	// (one per architecture) run on the device against the float64
	// oracle, one entry per architecture and precision.
	Engine []EngineParity
	// EngineNote says why Transformer and Engine are empty, when they are
	// (cuBLAS does not load, or the GPU is older than the engine needs).
	EngineNote string
	// OK: pooling within 1e-6 relative, sparsification exact, and every
	// entry of Transformer and Engine OK.
	OK bool
}

// KernelParity is one kernel (or GEMM) of the CUDA engine run on a device
// and compared with its pure-Go twin over the same inputs.
type KernelParity struct {
	// Name names the check: the kernel ("embed-ln", "bias-gelu exact",
	// ...) or the GEMM ("linear-t qkv", "scores", "context").
	Name string
	// DType is the activations' storage type: "f32", "bf16" or "f16".
	DType string
	// Values is the number of output values compared.
	Values int
	// MaxAbs is the largest |device - twin| over the outputs; MaxRel the
	// largest |device - twin| / max(|twin|, RMS of the twin's outputs),
	// so values far below the output's typical size are held to that size
	// rather than to themselves. A value NaN or infinite on one side only
	// counts as math.MaxFloat64.
	MaxAbs, MaxRel float64
	// Tolerance bounds MaxRel: 1e-5 for fp32 kernels (and for every
	// kernel whose output is float32), 1e-4 for fp32 GEMMs (cuBLAS sums in
	// another order), 2^-7 for bf16 and 2^-10 for fp16 kernels (two units
	// of the storage's rounding: one rounding step apart), twice that for
	// bf16 and fp16 GEMMs (cuBLAS may add split-K partial sums in the
	// storage type).
	Tolerance float64
	// OK is MaxRel <= Tolerance.
	OK bool
	// Skipped, when not empty, says why the check did not run on this
	// device (fp8 below compute capability 9.0); OK is then true.
	Skipped string `json:",omitempty"`
}

// EngineParity is the CUDA engine's forward pass in one precision on a
// generated model, compared with the model's float64 oracle (SPLADE max
// pooling).
type EngineParity struct {
	// Arch is the generated model's architecture: "bert", "distilbert" or
	// "roberta"; Precision the engine's arithmetic ("fp32", "bf16",
	// "fp16").
	Arch, Precision string
	// Docs documents of Tokens tokens in all were encoded in one batch.
	Docs, Tokens int
	// MaxAbs is the largest |engine - oracle| weight difference.
	MaxAbs float64
	// MaxRel is the largest relative difference over the oracle's weights
	// above 0.1.
	MaxRel float64
	// TopOverlap is the mean share of each document's top-20 oracle terms
	// that are also among its top-20 engine terms.
	TopOverlap float64
	// OK: fp32 within 1e-4 of the oracle (MaxAbs); bf16 and fp16 with a
	// TopOverlap of at least 0.95.
	OK bool
	// Skipped, when not empty, says why this precision did not run on
	// this device (fp8 below compute capability 9.0); OK is then true.
	Skipped string `json:",omitempty"`
}

// Options configure the backends Open makes: the engine, the pooling and
// the session settings, the GPU settings, and where warnings go.
type Options struct {
	// Engine names the registered engine that runs the model; "" and
	// EngineAuto mean EngineCUDA on GPUs (EngineORT when no CUDA engine is
	// registered) and EngineORT on the CPU.
	Engine string
	// Precision is the CUDA engine's arithmetic: "fp32", "tf32", "bf16",
	// "fp16", or "" for its default (bf16 on GPUs with bf16 tensor cores,
	// else fp16). Other engines ignore it.
	Precision string
	// Pooling is the SPLADE pooling the backends end in.
	Pooling encode.Pooling
	// Threads bounds the engine's intra-op threads on the CPU (0: all
	// cores).
	Threads int
	// Library overrides the engine's shared library path (ONNX Runtime's).
	Library string
	// Session holds session settings for experiments; zero is the default.
	Session SessionTuning
	// PoolMask makes the pooling read encode.Batch.PoolMask instead of the
	// attention mask (the echo variant of causal LLM encoders).
	PoolMask bool
	// Attention is the attention mask of a decoder-only model on the CUDA
	// engine: "causal" (as pretrained) or "bidirectional" (CSPLADE's
	// bidirectional variant); "" is the model's own. ONNX Runtime runs the
	// attention its graph was exported with and refuses any other value.
	Attention string
	// Provider is the GPU execution provider: "cuda" (also "") or
	// "tensorrt".
	Provider string
	// GPU holds the GPU provider settings; Open sets DeviceID per device.
	GPU GPUOptions
	// Log receives the warnings of an auto fallback to the CPU and of
	// batches split after running out of GPU memory; nil discards them.
	Log *slog.Logger
	// Discover finds the GPUs; nil means the registry's Discover. Tests
	// replace it.
	Discover func(context.Context) Discovery
}

// SessionTuning are ONNX Runtime session settings that `splash model bench`
// exposes for measuring their effect (see gpu/ort.Options).
type SessionTuning struct {
	// ProfilePrefix, when set, makes ONNX Runtime write a JSON profile of
	// every node run (PREFIX_DATE.json) when the backend is closed.
	ProfilePrefix string
	// DisableMemArena turns off ONNX Runtime's CPU memory arena.
	DisableMemArena bool
	// DisableSpinning stops ONNX Runtime's intra-op threads from
	// busy-waiting for work between runs.
	DisableSpinning bool
	// DisableMemPattern turns off ONNX Runtime's per-shape memory pattern
	// planning.
	DisableMemPattern bool
	// OptLevel is ONNX Runtime's graph optimization level: "all" (also ""),
	// "extended", "basic" or "disabled".
	OptLevel string
}

// GPUOptions configure the CUDA and TensorRT execution providers.
type GPUOptions struct {
	// DeviceID is the CUDA device ordinal the session runs on.
	DeviceID int
	// MemLimit bounds the CUDA provider's memory arena, in bytes (0: no
	// bound but the device's).
	MemLimit uint64
	// AllowTF32 lets the CUDA provider round float32 MatMul inputs to TF32
	// (10 fraction bits) on Ampere and newer GPUs: several times faster for
	// fp32 models, but vectors then differ from the CPU's by about 1e-3.
	AllowTF32 bool
	// TensorRTFP16 lets TensorRT run layers in float16 (faster; the vectors
	// then differ from fp32 ones by float16 rounding).
	TensorRTFP16 bool
	// TensorRTCacheDir, when set, keeps TensorRT's built engines (and timing
	// caches) there, so later runs skip the minutes-long engine build.
	TensorRTCacheDir string
	// MaxBatch and MaxSeqLen bound the input shapes, for TensorRT's
	// optimization profile; 0 leaves the profile to TensorRT.
	MaxBatch, MaxSeqLen int
}

// Backends are the sessions Open made.
type Backends struct {
	// List holds one backend per GPU in use (each splits a batch that runs
	// out of device memory), or the one CPU backend.
	List []encode.Backend
	// Devices are the GPUs in use, in the order of List; nil on the CPU.
	Devices []Device
	// Fallback says why --device auto runs on the CPU ("" otherwise).
	Fallback string
	// BatchTokens is the batch token budget that the GPU backends chose
	// from their free memory after loading the weights (the smallest of
	// them), when their engine knows its own peak (TokenBudgeter); 0
	// otherwise.
	BatchTokens int
	// Lanes holds, in the order of List, how many batches each backend runs
	// at once (Laner; 1 for the others).
	Lanes []int
}

// Laner is a backend that runs several batches at once on its device, each
// on its own stream (splash's CUDA engine): that many encoder workers feed
// it, so that one prepares its batch while the other's runs.
type Laner interface {
	Lanes() int
}

// TokenBudgeter is a backend that knows how many batch tokens (documents ×
// longest length) fit on its device: splash's CUDA engine, which measures
// its free memory after uploading the weights and knows its own peak.
type TokenBudgeter interface {
	BatchTokens() int
}

// Close closes every backend.
func (b *Backends) Close() error {
	var errs []error
	for _, x := range b.List {
		errs = append(errs, x.Close())
	}
	return errors.Join(errs...)
}

// Registry holds the engines by name and the CUDA driver binding. The
// package-level functions use a default Registry that engines register
// into from their init functions; tests build their own (the zero value
// is an empty registry, ready to use).
type Registry struct {
	mu      sync.RWMutex
	engines map[string]Engine
	driver  Driver
}

var defaultRegistry Registry

// Default returns the registry that Register and SetDriver fill.
func Default() *Registry { return &defaultRegistry }

// Register adds an engine to the default registry (see Registry.Register).
func Register(e Engine) { defaultRegistry.Register(e) }

// SetDriver sets the default registry's driver (see Registry.SetDriver).
func SetDriver(d Driver) { defaultRegistry.SetDriver(d) }

// Open opens a model with the default registry (see Registry.Open).
func Open(ctx context.Context, modelDir string, sel Selection, opts Options) (*Backends, error) {
	return defaultRegistry.Open(ctx, modelDir, sel, opts)
}

// Discover finds the visible NVIDIA GPUs with the default registry's
// driver (see Registry.Discover).
func Discover(ctx context.Context) Discovery { return defaultRegistry.Discover(ctx) }

// Register adds an engine under its Name. It panics when e is nil or its
// name is taken, as registering twice is a bug of the program.
func (r *Registry) Register(e Engine) {
	if e == nil {
		panic("gpu: Register of a nil engine")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	name := e.Name()
	if _, dup := r.engines[name]; dup {
		panic("gpu: Register called twice for engine " + name)
	}
	if r.engines == nil {
		r.engines = make(map[string]Engine)
	}
	r.engines[name] = e
}

// SetDriver sets the CUDA driver binding. It panics when d is nil or a
// driver is set already.
func (r *Registry) SetDriver(d Driver) {
	if d == nil {
		panic("gpu: SetDriver of a nil driver")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.driver != nil {
		panic("gpu: SetDriver called twice")
	}
	r.driver = d
}

// Engines returns the names of the registered engines, sorted.
func (r *Registry) Engines() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.engines))
	for name := range r.engines {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Engine returns the engine registered as name ("" means DefaultEngine).
func (r *Registry) Engine(name string) (Engine, error) {
	if name == "" {
		name = DefaultEngine
	}
	r.mu.RLock()
	e, ok := r.engines[name]
	r.mu.RUnlock()
	if !ok {
		linked := "none"
		if names := r.Engines(); len(names) > 0 {
			linked = strings.Join(names, ", ")
		}
		return nil, fmt.Errorf("engine %q is not linked into this binary (linked: %s; cmd/splash links them by importing gpu/engines)", name, linked)
	}
	return e, nil
}

// Driver returns the CUDA driver binding; without one, a Driver whose
// methods fail with ErrNoDriver.
func (r *Registry) Driver() Driver {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.driver == nil {
		return noDriver{}
	}
	return r.driver
}

// noDriver is the Driver of a registry that has none.
type noDriver struct{}

func (noDriver) Devices() ([]Device, error) { return nil, ErrNoDriver }

func (noDriver) SelfCheck(ctx context.Context, deviceIndex, b, t, v int, seed uint64) (KernelCheck, error) {
	return KernelCheck{}, ErrNoDriver
}

// Discover finds the visible NVIDIA GPUs: through the driver when one that
// works is set, else through nvidia-smi (see Discoverer.Discover).
func (r *Registry) Discover(ctx context.Context) Discovery {
	return Discoverer{Driver: r.Driver().Devices}.Discover(ctx)
}

// Open opens the model in modelDir on the devices sel selects, with the
// engine opts.Engine names: one CPU backend, or one backend per GPU, each
// wrapped to split batches that run out of device memory
// (encode.NewSplitOnOOM, with a warning). --device auto falls back to the
// CPU, with one warning, when no GPU is found or the engine cannot use the
// GPU (ErrUnavailable), and records why in Backends.Fallback; --device cuda
// fails instead.
func (r *Registry) Open(ctx context.Context, modelDir string, sel Selection, opts Options) (*Backends, error) {
	cpuEngine, gpuEngine, err := r.enginesFor(opts.Engine)
	if err != nil {
		return nil, err
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// openCPU opens the CPU backend; for an auto fallback it logs the
	// reason (a warning when a GPU was found but cannot be used, an info
	// line when there is none) and records its short form.
	openCPU := func(short, why string, found bool) (*Backends, error) {
		switch {
		case why == "":
		case found:
			log.Warn("--device auto: encoding on the CPU", slog.String("reason", why))
		default:
			log.Info("--device auto: encoding on the CPU", slog.String("reason", why))
		}
		if cpuEngine == nil {
			return nil, fmt.Errorf("the %s engine runs on GPUs only: use --device cuda, or --engine %s for the CPU", gpuEngine.Name(), EngineORT)
		}
		b, err := cpuEngine.Open(ctx, modelDir, nil, opts)
		if err != nil {
			return nil, err
		}
		return &Backends{List: []encode.Backend{b}, Fallback: short}, nil
	}
	if sel.Kind == CPU {
		return openCPU("", "", false)
	}
	discover := opts.Discover
	if discover == nil {
		discover = r.Discover
	}
	found := discover(ctx)
	devices, err := sel.Pick(found.Devices)
	if err != nil {
		if found.Note != "" {
			err = fmt.Errorf("%w (%s)", err, found.Note)
		}
		if sel.Kind == Auto {
			why := strings.TrimPrefix(err.Error(), "--device auto: ")
			return openCPU(why, why, len(found.Devices) > 0)
		}
		return nil, &noGPUError{err}
	}
	engine := gpuEngine
	if opts.Provider == "" {
		opts.Provider = "cuda"
	}
	out := &Backends{Devices: devices}
	for i := range devices {
		d := devices[i]
		b, err := engine.Open(ctx, modelDir, &d, opts)
		if err != nil {
			_ = out.Close()
			if sel.Kind == Auto && errors.Is(err, ErrUnavailable) {
				short := "found " + d.String() + " but " + unavailableReason(engine, err)
				return openCPU(short, short+": "+err.Error(), true)
			}
			err = fmt.Errorf("open the model on %s: %w", d, err)
			if errors.Is(err, ErrUnavailable) {
				err = &noGPUError{err}
			}
			return nil, err
		}
		lanes := 1
		if l, ok := b.(Laner); ok && l.Lanes() > 1 {
			lanes = l.Lanes()
		}
		out.Lanes = append(out.Lanes, lanes)
		if tb, ok := b.(TokenBudgeter); ok {
			if n := tb.BatchTokens(); n > 0 && (out.BatchTokens == 0 || n < out.BatchTokens) {
				out.BatchTokens = n
			}
		}
		name := d.String()
		out.List = append(out.List, encode.NewSplitOnOOM(b, func(docs, seqLen int) {
			log.Warn("a batch ran out of GPU memory: splitting it in two and retrying (later batches this large are split first)",
				slog.String("device", name), slog.Int("documents", docs), slog.Int("seq_len", seqLen))
		}))
	}
	return out, nil
}

// enginesFor resolves Options.Engine into the engine for the CPU (nil when the
// named engine runs on GPUs only) and the one for GPUs.
func (r *Registry) enginesFor(name string) (cpu, gpu Engine, err error) {
	if name == "" || name == EngineAuto {
		if cpu, err = r.Engine(EngineORT); err != nil {
			return nil, nil, err
		}
		if gpu, err = r.Engine(EngineCUDA); err != nil {
			gpu = cpu // a registry without the CUDA engine (tests)
		}
		return cpu, gpu, nil
	}
	e, err := r.Engine(name)
	if err != nil {
		return nil, nil, err
	}
	if g, ok := e.(interface{ GPUOnly() bool }); ok && g.GPUOnly() {
		return nil, e, nil
	}
	return e, e, nil
}

// unavailableReason is the short reason of an ErrUnavailable failure.
func unavailableReason(e Engine, err error) string {
	var u *UnavailableError
	if errors.As(err, &u) && u.Reason != "" {
		return u.Reason
	}
	return "the " + e.Name() + " engine cannot use it"
}
