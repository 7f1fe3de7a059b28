package job

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/gpu"
	"github.com/splash-encode/splash/gpu/ort"
	"github.com/splash-encode/splash/kernels"
)

// standInCUDA stands in for splash's CUDA engine ("cuda", GPUs only): it
// opens CPU sessions of ONNX Runtime whose backends say their precision
// as the engine's do, fp32 vectors unchanged and other precisions rounded
// to bf16 (or, with scramble, ranked badly). It records the precisions it
// was opened with.
type standInCUDA struct {
	ort      gpu.Engine
	scramble bool
	mu       sync.Mutex
	opened   []string
}

func (e *standInCUDA) Name() string  { return gpu.EngineCUDA }
func (e *standInCUDA) GPUOnly() bool { return true }

func (e *standInCUDA) Open(ctx context.Context, dir string, dev *gpu.Device, opts gpu.Options) (encode.Backend, error) {
	if dev == nil {
		return nil, errors.New("stand-in CUDA engine: GPUs only")
	}
	e.mu.Lock()
	e.opened = append(e.opened, opts.Precision)
	e.mu.Unlock()
	b, err := e.ort.Open(ctx, dir, nil, opts)
	if err != nil {
		return nil, err
	}
	p := opts.Precision
	if p == "" {
		p = "bf16"
	}
	return &standInBackend{Backend: b, precision: p, scramble: e.scramble}, nil
}

type standInBackend struct {
	encode.Backend
	precision string
	scramble  bool
}

// Precision is what splash's CUDA backend answers (a string type of its
// own there).
func (b *standInBackend) Precision() string { return b.precision }

func (b *standInBackend) Encode(ctx context.Context, batch *encode.Batch, out []float32) error {
	if err := b.Backend.Encode(ctx, batch, out); err != nil {
		return err
	}
	if b.precision == precisionFP32 {
		return nil
	}
	v := b.VocabSize()
	for r := 0; r < batch.Size; r++ {
		row := out[r*v : (r+1)*v]
		for j := range row {
			row[j] = kernels.BF16.Round(row[j])
		}
		if b.scramble {
			slices.Reverse(row)
		}
	}
	return nil
}

// selftestDriver is a CUDA driver whose SelfCheck reports engine checks,
// all OK or with one failed.
type selftestDriver struct{ engineFails bool }

func (selftestDriver) Devices() ([]gpu.Device, error) { return twoH100[:1], nil }

func (d selftestDriver) SelfCheck(ctx context.Context, deviceIndex, b, t, v int, seed uint64) (gpu.KernelCheck, error) {
	return gpu.KernelCheck{
		Device: deviceIndex, B: b, T: t, V: v, SparsifyExact: true,
		Transformer: []gpu.KernelParity{{Name: "embed-ln", DType: "bf16", Values: 100, MaxAbs: 0.001, MaxRel: 0.002, Tolerance: 0x1p-7, OK: true}},
		Engine: []gpu.EngineParity{
			{Arch: "bert", Precision: "fp32", Docs: 24, Tokens: 1101, MaxAbs: 2e-6, TopOverlap: 1, OK: true},
			{Arch: "bert", Precision: "bf16", Docs: 24, Tokens: 1101, MaxAbs: 0.03, MaxRel: 0.09, TopOverlap: 0.98, OK: !d.engineFails},
		},
		OK: !d.engineFails,
	}, nil
}

// selftestRegistry is a registry with ONNX Runtime, engine standing in
// for the CUDA engine (nil: none) and driver.
func selftestRegistry(t *testing.T, engine gpu.Engine, driver gpu.Driver) *gpu.Registry {
	t.Helper()
	if err := ort.Usable(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	ortEngine, err := gpu.Default().Engine(gpu.EngineORT)
	if err != nil {
		t.Fatal(err)
	}
	r := &gpu.Registry{}
	r.Register(ortEngine)
	if engine != nil {
		r.Register(engine)
	}
	if driver != nil {
		r.SetDriver(driver)
	}
	return r
}

// tinySelftest is a small Selftest config on one stand-in GPU.
func tinySelftest(t *testing.T, registry *gpu.Registry, sel string, opts gpu.Options) SelftestConfig {
	device, err := gpu.ParseDevice(sel)
	if err != nil {
		t.Fatal(err)
	}
	opts.Discover = discovered(twoH100[:1]...)
	return SelftestConfig{
		WorkDir: t.TempDir(), TestModel: testmodel.Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 1}, Docs: 24,
		Device: device, Backend: opts, Registry: registry,
	}
}

// TestSelftestCUDAEngine: with splash's CUDA engine on the GPU (--engine
// auto and cuda), the run held to the tolerance is fp32, a second run in
// the engine's default precision is compared by its top-20 terms, the
// driver's engine checks are reported, and everything passes.
func TestSelftestCUDAEngine(t *testing.T) {
	for _, engine := range []string{"", gpu.EngineAuto, gpu.EngineCUDA} {
		cuda := &standInCUDA{}
		registry := selftestRegistry(t, cuda, selftestDriver{})
		cuda.ort, _ = registry.Engine(gpu.EngineORT)
		rep, err := Selftest(context.Background(), tinySelftest(t, registry, "cuda", gpu.Options{Engine: engine}), quietLog())
		if err != nil {
			t.Fatalf("engine %q: %v", engine, err)
		}
		if !slices.Equal(cuda.opened, []string{"fp32", ""}) {
			t.Errorf("engine %q: the CUDA engine was opened with precisions %q, want fp32 then the default", engine, cuda.opened)
		}
		if len(rep.Devices) != 1 || rep.Devices[0].Precision != "fp32" || rep.Devices[0].MaxDiff > rep.Tolerance || rep.Devices[0].DocsPerS <= 0 {
			t.Errorf("engine %q: devices %+v", engine, rep.Devices)
		}
		if len(rep.Reduced) != 1 {
			t.Fatalf("engine %q: reduced runs %+v, want one", engine, rep.Reduced)
		}
		r := rep.Reduced[0]
		if r.Precision != "bf16" || !r.OK || r.TopOverlap < DefaultMinTopOverlap || r.MaxRel <= 0 || r.MaxRel > 0x1p-7 || r.DocsPerS <= 0 || rep.MinTopOverlap != DefaultMinTopOverlap {
			t.Errorf("engine %q: reduced run %+v", engine, r)
		}
		if len(rep.Kernels) != 1 || len(rep.Kernels[0].Engine) != 2 || len(rep.Kernels[0].Transformer) != 1 {
			t.Errorf("engine %q: kernel checks %+v", engine, rep.Kernels)
		}
		if !rep.Pass || rep.OracleDocs == 0 {
			t.Errorf("engine %q: report %+v does not pass", engine, rep)
		}
	}
}

// TestSelftestCUDAEngineFailures: a reduced-precision run that loses the
// CPU's top terms, or an engine check that fails on the device, fail the
// selftest; --precision fp32 runs the engine once.
func TestSelftestCUDAEngineFailures(t *testing.T) {
	ctx := context.Background()
	cuda := &standInCUDA{scramble: true}
	registry := selftestRegistry(t, cuda, selftestDriver{})
	cuda.ort, _ = registry.Engine(gpu.EngineORT)
	rep, err := Selftest(ctx, tinySelftest(t, registry, "cuda", gpu.Options{}), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pass || len(rep.Reduced) != 1 || rep.Reduced[0].OK || rep.Reduced[0].TopOverlap >= DefaultMinTopOverlap || len(rep.Devices) != 1 || rep.Devices[0].MaxDiff > rep.Tolerance {
		t.Errorf("scrambled bf16 run: pass %v, devices %+v, reduced %+v", rep.Pass, rep.Devices, rep.Reduced)
	}

	cuda = &standInCUDA{}
	registry = selftestRegistry(t, cuda, selftestDriver{engineFails: true})
	cuda.ort, _ = registry.Engine(gpu.EngineORT)
	rep, err = Selftest(ctx, tinySelftest(t, registry, "cuda", gpu.Options{}), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pass || len(rep.Reduced) != 1 || !rep.Reduced[0].OK {
		t.Errorf("failed engine check: pass %v, reduced %+v", rep.Pass, rep.Reduced)
	}

	cuda = &standInCUDA{}
	registry = selftestRegistry(t, cuda, selftestDriver{})
	cuda.ort, _ = registry.Engine(gpu.EngineORT)
	rep, err = Selftest(ctx, tinySelftest(t, registry, "cuda", gpu.Options{Precision: "fp32"}), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Pass || len(rep.Reduced) != 0 || !slices.Equal(cuda.opened, []string{"fp32"}) {
		t.Errorf("--precision fp32: pass %v, reduced %+v, opened %q", rep.Pass, rep.Reduced, cuda.opened)
	}

	cuda = &standInCUDA{}
	registry = selftestRegistry(t, cuda, selftestDriver{})
	cuda.ort, _ = registry.Engine(gpu.EngineORT)
	rep, err = Selftest(ctx, tinySelftest(t, registry, "cuda", gpu.Options{Precision: "fp16"}), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Pass || len(rep.Reduced) != 1 || rep.Reduced[0].Precision != "fp16" || !slices.Equal(cuda.opened, []string{"fp32", "fp16"}) {
		t.Errorf("--precision fp16: pass %v, reduced %+v, opened %q", rep.Pass, rep.Reduced, cuda.opened)
	}
}

// TestSelftestORTOnGPU: with --engine ort the GPU runs ONNX Runtime as
// before: no precision is forced, no reduced run, the tolerance holds.
func TestSelftestORTOnGPU(t *testing.T) {
	registry := selftestRegistry(t, nil, selftestDriver{})
	ortEngine, _ := registry.Engine(gpu.EngineORT)
	g := &standInGPU{cpu: ortEngine, limit: 1 << 30}
	onGPU := &gpu.Registry{}
	onGPU.Register(g) // "ort", opening CPU sessions for GPUs
	onGPU.SetDriver(selftestDriver{})
	rep, err := Selftest(context.Background(), tinySelftest(t, onGPU, "cuda", gpu.Options{Engine: gpu.EngineORT}), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Pass || len(rep.Devices) != 1 || rep.Devices[0].Precision != "" || len(rep.Reduced) != 0 || rep.MinTopOverlap != 0 || len(g.deviceIDs) != 1 {
		t.Errorf("report %+v (GPU sessions opened for %v)", rep, g.deviceIDs)
	}
}

// TestSelftestAutoWithoutGPUNotes: --device auto without a GPU runs the
// CPU path, and says why neither the GPU nor the engine ran.
func TestSelftestAutoWithoutGPUNotes(t *testing.T) {
	cuda := &standInCUDA{}
	registry := selftestRegistry(t, cuda, nil)
	cuda.ort, _ = registry.Engine(gpu.EngineORT)
	cfg := tinySelftest(t, registry, "auto", gpu.Options{})
	cfg.Backend.Discover = discovered()
	rep, err := Selftest(context.Background(), cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Pass || len(rep.Devices)+len(rep.Reduced)+len(rep.Kernels) != 0 || len(cuda.opened) != 0 ||
		rep.DeviceNote == "" || rep.KernelNote != "no GPU: splash's CUDA engine and kernels were not checked" {
		t.Errorf("report %+v", rep)
	}
}

// TestSelftestRankedDiff checks the comparison of a reduced-precision
// vector with the CPU's.
func TestSelftestRankedDiff(t *testing.T) {
	vec := func(terms []uint32, weights []float32) encode.SparseVec {
		return encode.SparseVec{Terms: terms, Weights: weights}
	}
	want := vec([]uint32{1, 2, 3, 4}, []float32{1, 0.5, 0.05, 2})
	for _, c := range []struct {
		got     encode.SparseVec
		k       int
		rel, ov float64
	}{
		{want, 2, 0, 1},
		{vec([]uint32{1, 2, 3, 4}, []float32{1.1, 0.5, 0.05, 2}), 2, 0.1, 1},
		{vec([]uint32{1, 3, 4}, []float32{1, 0.05, 2}), 3, 1, 2.0 / 3},  // term 2 lost
		{vec([]uint32{1, 2, 3, 4}, []float32{1, 0.5, 3, 2}), 2, 0, 0.5}, // weights <= 0.1 have no relative error
		{vec([]uint32{2, 4}, []float32{0.5, 2}), 1, 1, 1},
	} {
		rel, ov := rankedDiff(want, c.got, c.k)
		if math.Abs(rel-c.rel) > 1e-6 || math.Abs(ov-c.ov) > 1e-9 {
			t.Errorf("rankedDiff(%v, %v, %d) = %g, %g; want %g, %g", want, c.got, c.k, rel, ov, c.rel, c.ov)
		}
	}
	if _, ov := rankedDiff(encode.SparseVec{}, want, 20); ov != 1 {
		t.Errorf("an empty reference: overlap %g, want 1", ov)
	}
	// Ties go to the lower term.
	if got := topTerms(vec([]uint32{7, 3, 5}, []float32{1, 1, 2}), 2); !slices.Equal(got, []uint32{5, 3}) {
		t.Errorf("topTerms = %v, want [5 3]", got)
	}
}

// TestSelftestEnginePrecision reads the precision of a CUDA engine
// backend through encode's out-of-memory wrapper, and none from others.
func TestSelftestEnginePrecision(t *testing.T) {
	b := &standInBackend{precision: "bf16"}
	if got := enginePrecision(encode.NewSplitOnOOM(b, nil)); got != "bf16" {
		t.Errorf("wrapped: %q", got)
	}
	if got := enginePrecision(oomBackend{}); got != "" {
		t.Errorf("another engine's backend: %q", got)
	}
	if got := enginePrecision(nil); got != "" {
		t.Errorf("nil: %q", got)
	}
}
