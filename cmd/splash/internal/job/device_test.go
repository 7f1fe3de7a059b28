package job

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/gpu"
	_ "github.com/splash-encode/splash/gpu/engines" // OpenModel's default registry, as in the CLI
	"github.com/splash-encode/splash/shards"
)

// logTo returns a logger writing text lines into buf.
func logTo(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func discovered(devs ...gpu.Device) func(context.Context) gpu.Discovery {
	return func(context.Context) gpu.Discovery {
		if len(devs) == 0 {
			return gpu.Discovery{Note: "no NVIDIA driver found (nvidia-smi is not on PATH)"}
		}
		return gpu.Discovery{Devices: devs, Source: "test"}
	}
}

var twoH100 = []gpu.Device{
	{Index: 0, Name: "NVIDIA H100 80GB HBM3", TotalMemory: 80 << 30, FreeMemory: 79 << 30},
	{Index: 1, Name: "NVIDIA H100 80GB HBM3", TotalMemory: 80 << 30, FreeMemory: 60 << 30},
}

// cudaProviderLoads tells whether the default registry's engine opens a
// session on GPU 0 on this machine: ONNX Runtime's GPU build beside an
// NVIDIA GPU. It fails the test on errors other than gpu.ErrUnavailable.
func cudaProviderLoads(t *testing.T, ctx context.Context, model string) bool {
	t.Helper()
	engine, err := gpu.Default().Engine("")
	if err != nil {
		t.Fatal(err)
	}
	b, err := engine.Open(ctx, model, &gpu.Device{Index: 0}, gpu.Options{Provider: "cuda"})
	if err == nil {
		_ = b.Close()
		return true
	}
	if !errors.Is(err, gpu.ErrUnavailable) {
		t.Fatalf("probe of the cuda provider on GPU 0: %v", err)
	}
	return false
}

// TestDeviceSelection opens a model with every --device form. Where ONNX
// Runtime has no CUDA provider (these machines: the npm package's CPU
// build), auto with --engine ort falls back to the CPU with exactly one
// warning (a GPU whose provider cannot load), and cuda and cuda:N fail with
// errors that say why. Where the provider loads (ONNX Runtime's GPU build
// beside a GPU), auto and cuda must open the GPU instead. With the default
// engine, auto without a GPU says so in one info line and no warning (CPU
// nightly jobs stay quiet), and a GPU that splash's CUDA engine cannot use
// (no usable driver here) gets one warning naming libcuda.so.1.
func TestDeviceSelection(t *testing.T) {
	requireEnvironment(t)
	model := genModel(t, testmodel.Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 3})
	ctx := context.Background()
	auto, _ := gpu.ParseDevice("auto")
	cuda, _ := gpu.ParseDevice("cuda")
	cuda3, _ := gpu.ParseDevice("cuda:3")
	providerLoads := cudaProviderLoads(t, ctx, model)
	if providerLoads {
		t.Log("ONNX Runtime's cuda provider loads on GPU 0 here: checking that auto and cuda use the GPU instead of the fallback")
	}
	_, driverErr := gpu.Default().Driver().Devices()

	for _, c := range []struct {
		name     string
		engine   string
		devices  []gpu.Device
		level    string // of the one line that says why
		warnings []string
	}{
		{"no GPU", "", nil, "INFO", []string{"encoding on the CPU", "no NVIDIA GPU found", "nvidia-smi is not on PATH"}},
		{"GPU without a usable driver", "", twoH100[:1], "WARN", []string{"found cuda:0 (NVIDIA H100 80GB HBM3", "libcuda.so.1"}},
		{"GPU without provider", gpu.EngineORT, twoH100[:1], "WARN", []string{"found cuda:0 (NVIDIA H100 80GB HBM3", "cannot load its cuda execution provider", "libonnxruntime_providers_shared.so"}},
	} {
		if c.engine == "" && c.devices != nil && driverErr == nil {
			continue // a real GPU here: the CUDA engine would open it
		}
		var logs bytes.Buffer
		m, err := OpenModel(ctx, model, ModelOptions{Device: auto, Backend: gpu.Options{Engine: c.engine, Discover: discovered(c.devices...)}, Log: logTo(&logs)})
		if err != nil {
			t.Fatalf("auto, %s: %v", c.name, err)
		}
		if providerLoads && len(c.devices) > 0 && c.engine == gpu.EngineORT {
			if m.DeviceName() != "cuda:0" || len(m.Backends) != 1 || m.Fallback != "" || strings.Contains(logs.String(), "level=WARN") {
				t.Errorf("auto, a GPU whose provider loads: device %s, %d backends, fallback %q; want cuda:0 without a warning:\n%s",
					m.DeviceName(), len(m.Backends), m.Fallback, logs.String())
			}
			m.Close()
			continue
		}
		if m.DeviceName() != "cpu" || len(m.Backends) != 1 || m.BatchTokens(0) != CPUBatchTokens || m.Fallback == "" {
			t.Errorf("auto, %s: device %s, %d backends, batch tokens %d; want the CPU", c.name, m.DeviceName(), len(m.Backends), m.BatchTokens(0))
		}
		m.Close()
		if n, warn := strings.Count(logs.String(), "level="+c.level), strings.Count(logs.String(), "level=WARN"); n != 1 || c.level == "INFO" && warn != 0 {
			t.Errorf("auto, %s: %d lines at %s and %d warnings, want exactly one line at %s:\n%s", c.name, n, c.level, warn, c.level, logs.String())
		}
		for _, w := range c.warnings {
			if !strings.Contains(logs.String(), w) {
				t.Errorf("auto, %s: the line does not say %q:\n%s", c.name, w, logs.String())
			}
		}
	}

	_, err := OpenModel(ctx, model, ModelOptions{Device: cuda, Backend: gpu.Options{Discover: discovered()}})
	if err == nil || !strings.Contains(err.Error(), "--device cuda: no NVIDIA GPU found") || !strings.Contains(err.Error(), "nvidia-smi") || !errors.Is(err, gpu.ErrNoGPU) {
		t.Errorf("cuda without GPUs: %v", err)
	}
	if providerLoads {
		m, err := OpenModel(ctx, model, ModelOptions{Device: cuda, Backend: gpu.Options{Engine: gpu.EngineORT, Discover: discovered(twoH100[:1]...)}})
		if err != nil || m.DeviceName() != "cuda:0" {
			t.Errorf("cuda with a GPU whose provider loads: %v", err)
		}
		if err == nil {
			m.Close()
		}
	} else {
		_, err = OpenModel(ctx, model, ModelOptions{Device: cuda, Backend: gpu.Options{Engine: gpu.EngineORT, Discover: discovered(twoH100...)}})
		if !errors.Is(err, gpu.ErrUnavailable) || !errors.Is(err, gpu.ErrNoGPU) || !strings.Contains(err.Error(), "on cuda:0") || !strings.Contains(err.Error(), "--device cpu") {
			t.Errorf("cuda with a GPU but no provider: %v", err)
		}
	}
	if driverErr != nil {
		_, err = OpenModel(ctx, model, ModelOptions{Device: cuda, Backend: gpu.Options{Discover: discovered(twoH100...)}})
		if !errors.Is(err, gpu.ErrUnavailable) || !errors.Is(err, gpu.ErrNoGPU) || !strings.Contains(err.Error(), "on cuda:0") || !strings.Contains(err.Error(), "libcuda.so.1") {
			t.Errorf("cuda with a GPU the CUDA engine cannot use: %v", err)
		}
	}
	_, err = OpenModel(ctx, model, ModelOptions{Device: cuda3, Backend: gpu.Options{Discover: discovered(twoH100...)}})
	if err == nil || !strings.Contains(err.Error(), "there is no GPU 3 (found 2") {
		t.Errorf("cuda:3 of two GPUs: %v", err)
	}
}

// standInGPU is an engine that opens CPU sessions of the real engine in
// place of GPU ones: each fails with encode.ErrOutOfMemory on batches over
// limit padded tokens, as a device with little free memory does. It
// records the devices and providers it was asked for and counts runs and
// out-of-memory failures.
type standInGPU struct {
	cpu        gpu.Engine
	limit      int
	ooms, runs atomic.Int64
	deviceIDs  []int
	providers  []string
}

type oomBackend struct {
	encode.Backend
	g *standInGPU
}

func (b oomBackend) Encode(ctx context.Context, batch *encode.Batch, out []float32) error {
	b.g.runs.Add(1)
	if batch.Size*batch.SeqLen > b.g.limit {
		b.g.ooms.Add(1)
		return fmt.Errorf("run: CUDA failure 2: out of memory: %w", encode.ErrOutOfMemory)
	}
	return b.Backend.Encode(ctx, batch, out)
}

func (g *standInGPU) Name() string { return gpu.DefaultEngine }

func (g *standInGPU) Open(ctx context.Context, dir string, dev *gpu.Device, opts gpu.Options) (encode.Backend, error) {
	b, err := g.cpu.Open(ctx, dir, nil, opts)
	if err != nil || dev == nil {
		return b, err
	}
	g.providers = append(g.providers, opts.Provider)
	g.deviceIDs = append(g.deviceIDs, dev.Index)
	return oomBackend{Backend: b, g: g}, nil
}

// TestMultiGPURunSplitsOnOutOfMemory runs the encode pipeline on two
// stand-in GPUs (CPU sessions that run out of memory above 600 padded
// tokens) with the batch budget chosen from their free memory, and
// compares every output shard with a CPU run: no document lost, none
// reordered, every vector identical.
func TestMultiGPURunSplitsOnOutOfMemory(t *testing.T) {
	glob := requireEnvironment(t)[0] // one shard of 350 documents
	model := genModel(t, testmodel.Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 31})
	ctx := context.Background()
	cpuOut := filepath.Join(t.TempDir(), "cpu")
	if _, err := Run(ctx, baseConfig(model, cpuOut, glob), quietLog()); err != nil {
		t.Fatal(err)
	}

	cpu, err := gpu.Default().Engine("")
	if err != nil {
		t.Fatal(err)
	}
	g := &standInGPU{cpu: cpu, limit: 600}
	registry := &gpu.Registry{}
	registry.Register(g)
	cfg := baseConfig(model, filepath.Join(t.TempDir(), "gpu"), glob)
	cfg.Encode.BatchTokens = 0 // chosen from the devices' free memory
	cfg.Device = gpu.Selection{Kind: gpu.CUDA, Index: gpu.AllDevices}
	cfg.Backend.Discover = discovered(twoH100...)
	cfg.Registry = registry
	var logs bytes.Buffer
	sum, err := Run(ctx, cfg, logTo(&logs))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(g.deviceIDs) != "[0 1]" || fmt.Sprint(g.providers) != "[cuda cuda]" {
		t.Errorf("opened devices %v with providers %v, want [0 1] with cuda", g.deviceIDs, g.providers)
	}
	if !strings.Contains(logs.String(), "device=cuda:0,cuda:1") {
		t.Errorf("the log does not name both GPUs:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "ran out of GPU memory") {
		t.Errorf("the out-of-memory splits were not logged:\n%s", logs.String())
	}
	// 60 GiB free on the emptier GPU: the budget's cap.
	if !strings.Contains(logs.String(), fmt.Sprintf("batch_tokens=%d", gpu.MaxBatchTokens)) {
		t.Errorf("the batch budget was not chosen from free memory:\n%s", logs.String())
	}
	if g.ooms.Load() == 0 {
		t.Fatalf("no batch ran out of memory (%d runs): the test does not exercise the back-off", g.runs.Load())
	}
	t.Logf("%d documents, %d batches, %d runs, %d out-of-memory failures", sum.Counts.Docs, sum.Counts.Batches, g.runs.Load(), g.ooms.Load())
	// Splitting changes a batch's shape, and with it the order of float32
	// sums inside ONNX Runtime's kernels: vectors agree to 1e-5, as
	// between any two batch compositions (TestVectorDoesNotDependOnBatch).
	worst := 0.0
	for _, base := range listDir(t, cpuOut) {
		if !strings.HasSuffix(base, ".parquet") || base == shards.VocabularyFile {
			continue
		}
		want, got := shardRows(t, filepath.Join(cpuOut, base)), shardRows(t, filepath.Join(cfg.OutputDir, base))
		if len(got) != len(want) {
			t.Fatalf("%s: %d rows on the stand-in GPUs, %d on the CPU", base, len(got), len(want))
		}
		for i, w := range want {
			g := got[i]
			if g.DocID != w.DocID || g.NumTokens != w.NumTokens || g.Truncated != w.Truncated {
				t.Fatalf("%s row %d: %s (%d tokens) on the stand-in GPUs, %s (%d tokens) on the CPU", base, i, g.DocID, g.NumTokens, w.DocID, w.NumTokens)
			}
			d := encode.MaxDiff(w.Vec, g.Vec)
			worst = max(worst, d)
			if d > 1e-5 {
				t.Fatalf("%s: document %s differs by %g", base, w.DocID, d)
			}
		}
	}
	t.Logf("largest difference from the CPU run: %.3g", worst)
}

func shardRows(t *testing.T, path string) []shards.Row {
	t.Helper()
	var rows []shards.Row
	if err := shards.ReadShard(path, func(r shards.Row) error { rows = append(rows, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestWorkersPerLane: a GPU backend that runs two batches at once (splash's
// CUDA engine) gets two encoder workers, an ONNX Runtime session one.
func TestWorkersPerLane(t *testing.T) {
	m := &Model{Model: &encode.Model{Backends: []encode.Backend{nil, nil}}, Devices: twoH100, lanes: []int{2, 1}}
	var got []string
	for _, w := range m.Workers(1) {
		got = append(got, w.Device)
	}
	if want := []string{"cuda:0", "cuda:0", "cuda:1"}; !slices.Equal(got, want) {
		t.Errorf("workers on %v, want %v", got, want)
	}
}
