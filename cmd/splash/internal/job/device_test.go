package job

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/gpu"
	"github.com/splash-encode/splash/gpu/ort"
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

// TestDeviceSelection opens a model with every --device form on this
// machine, whose ONNX Runtime has no CUDA provider: auto falls back to the
// CPU with exactly one warning (no GPU, or a GPU whose provider cannot
// load); cuda and cuda:N fail with errors that say why.
func TestDeviceSelection(t *testing.T) {
	requireEnvironment(t)
	model := genModel(t, testmodel.Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 3})
	ctx := context.Background()
	auto, _ := gpu.ParseDevice("auto")
	cuda, _ := gpu.ParseDevice("cuda")
	cuda3, _ := gpu.ParseDevice("cuda:3")

	for _, c := range []struct {
		name     string
		devices  []gpu.Device
		warnings []string
	}{
		{"no GPU", nil, []string{"encoding on the CPU", "no NVIDIA GPU found", "nvidia-smi is not on PATH"}},
		{"GPU without provider", twoH100[:1], []string{"found cuda:0 (NVIDIA H100 80GB HBM3", "cannot load its cuda execution provider", "libonnxruntime_providers_shared.so"}},
	} {
		var logs bytes.Buffer
		m, err := OpenModel(ctx, model, ModelOptions{Hardware: Hardware{Device: auto, Discover: discovered(c.devices...)}, Log: logTo(&logs)})
		if err != nil {
			t.Fatalf("auto, %s: %v", c.name, err)
		}
		if m.DeviceName() != "cpu" || len(m.Backends) != 1 || m.BatchTokens(0) != CPUBatchTokens || m.Fallback == "" {
			t.Errorf("auto, %s: device %s, %d backends, batch tokens %d; want the CPU", c.name, m.DeviceName(), len(m.Backends), m.BatchTokens(0))
		}
		m.Close()
		if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
			t.Errorf("auto, %s: %d warnings, want exactly 1:\n%s", c.name, n, logs.String())
		}
		for _, w := range c.warnings {
			if !strings.Contains(logs.String(), w) {
				t.Errorf("auto, %s: warning does not say %q:\n%s", c.name, w, logs.String())
			}
		}
	}

	_, err := OpenModel(ctx, model, ModelOptions{Hardware: Hardware{Device: cuda, Discover: discovered()}})
	if err == nil || !strings.Contains(err.Error(), "--device cuda: no NVIDIA GPU found") || !strings.Contains(err.Error(), "nvidia-smi") {
		t.Errorf("cuda without GPUs: %v", err)
	}
	_, err = OpenModel(ctx, model, ModelOptions{Hardware: Hardware{Device: cuda, Discover: discovered(twoH100...)}})
	if !errors.Is(err, ort.ErrProviderUnavailable) || !strings.Contains(err.Error(), "on cuda:0") || !strings.Contains(err.Error(), "--device cpu") {
		t.Errorf("cuda with a GPU but no provider: %v", err)
	}
	_, err = OpenModel(ctx, model, ModelOptions{Hardware: Hardware{Device: cuda3, Discover: discovered(twoH100...)}})
	if err == nil || !strings.Contains(err.Error(), "there is no GPU 3 (found 2") {
		t.Errorf("cuda:3 of two GPUs: %v", err)
	}
}

// standInGPU opens CPU sessions in place of GPU ones: each fails with
// encode.ErrOutOfMemory on batches over limit padded tokens, as a device
// with little free memory does. It records the device ids and options it
// was asked for and counts runs and out-of-memory failures.
type standInGPU struct {
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

func (g *standInGPU) open(ctx context.Context, dir string, opts ort.Options) (encode.Backend, error) {
	g.providers = append(g.providers, opts.Provider)
	g.deviceIDs = append(g.deviceIDs, opts.GPU.DeviceID)
	cpu := opts
	cpu.Provider, cpu.GPU = "cpu", ort.GPUOptions{}
	b, err := ort.Open(ctx, dir, cpu)
	if err != nil {
		return nil, err
	}
	if opts.Provider == "cpu" || opts.Provider == "" {
		return b, nil
	}
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

	g := &standInGPU{limit: 600}
	cfg := baseConfig(model, filepath.Join(t.TempDir(), "gpu"), glob)
	cfg.Encode.BatchTokens = 0 // chosen from the devices' free memory
	cfg.Hardware = Hardware{Device: gpu.Selection{Kind: gpu.CUDA, Index: gpu.AllDevices}, Discover: discovered(twoH100...), Open: g.open}
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
		if !strings.HasSuffix(base, ".parquet") {
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
			d := maxVecDiff(w.Vec, g.Vec, 30522)
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
