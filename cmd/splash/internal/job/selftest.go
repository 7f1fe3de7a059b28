package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/gpu"
)

// SelftestConfig configures Selftest.
type SelftestConfig struct {
	// ModelDir is a model to test; "" generates a test model (TestModel,
	// with the synthetic tokenizer) into WorkDir, which also enables the
	// float64 oracle check.
	ModelDir  string
	WorkDir   string
	TestModel testmodel.Config
	// Docs is the number of synthetic documents encoded (0: 256).
	Docs int
	// Device is the device checked against the CPU; Backend configures
	// the engine, on the CPU as on the device; Registry opens the backends
	// and holds the CUDA driver (nil: gpu.Default()).
	Device   gpu.Selection
	Backend  gpu.Options
	Registry *gpu.Registry
	// Tolerance bounds the largest weight difference between the CPU and
	// each GPU, and between the CPU and the oracle (0: 1e-4).
	Tolerance float64
}

// Throughput is one timed encoding of the whole corpus.
type Throughput struct {
	Wall       time.Duration
	DocsPerS   float64
	TokensPerS float64
}

// DeviceResult is one GPU's encoding compared with the CPU's.
type DeviceResult struct {
	Device gpu.Device
	Throughput
	// MaxDiff is the largest |weight difference| over every document and
	// term; WorstDoc is the document where it occurred.
	MaxDiff  float64
	WorstDoc int
}

// SelftestReport is what Selftest found.
type SelftestReport struct {
	Model     string
	Generated bool
	Docs      int
	Tokens    int64
	Tolerance float64
	// OracleDocs documents were compared with the float64 oracle (only for
	// a generated model); OracleMaxDiff is the largest difference.
	OracleDocs    int
	OracleMaxDiff float64
	// AloneDocs documents of a model given with --model (no oracle) were
	// encoded on the CPU alone, one per batch, and compared with their
	// batched vectors: padding and batching must not change a vector.
	// AloneMaxDiff is the largest difference.
	AloneDocs    int
	AloneMaxDiff float64
	CPU          Throughput
	Devices      []DeviceResult
	// DeviceNote says why no GPU ran, when none did.
	DeviceNote string
	Kernels    []gpu.KernelCheck
	// KernelNote says why the kernels were not checked, when they were not.
	KernelNote string
	Pass       bool
}

// Selftest encodes a synthetic corpus on the CPU and on the selected GPUs
// and compares the vectors: the check a user runs on their own hardware.
// It returns an error when the selected device cannot be used (--device
// cuda without a GPU or without ONNX Runtime's CUDA provider); differences
// beyond the tolerance are reported in the report (Pass false), not as an
// error.
func Selftest(ctx context.Context, cfg SelftestConfig, log *slog.Logger) (SelftestReport, error) {
	rep := SelftestReport{Tolerance: cfg.Tolerance, Docs: cfg.Docs}
	if rep.Tolerance <= 0 {
		rep.Tolerance = 1e-4
	}
	if rep.Docs <= 0 {
		rep.Docs = 256
	}
	dir := cfg.ModelDir
	if dir == "" {
		dir = filepath.Join(cfg.WorkDir, "model")
		if err := generateSelftestModel(dir, cfg.TestModel); err != nil {
			return rep, err
		}
		rep.Generated = true
	}
	rep.Model = dir
	texts := testmodel.SyntheticCorpus(rep.Docs, 1)

	// The device first: a device that cannot be used fails the test at
	// once, before the CPU pass.
	registry := cfg.Registry
	if registry == nil {
		registry = gpu.Default()
	}
	var dev *Model
	if cfg.Device.Kind == gpu.CPU {
		rep.DeviceNote = "--device cpu: only the CPU path was run"
	} else {
		var err error
		dev, err = OpenModel(ctx, dir, ModelOptions{Device: cfg.Device, Backend: cfg.Backend, Registry: registry, Log: log})
		if err != nil {
			return rep, err
		}
		if len(dev.Devices) == 0 {
			rep.DeviceNote = "--device auto: " + dev.Fallback + " (see the warning); only the CPU path was run"
			dev.Close()
			dev = nil
		} else {
			defer dev.Close()
		}
	}

	cpuModel, err := OpenModel(ctx, dir, ModelOptions{Backend: cfg.Backend, Registry: registry, Log: log})
	if err != nil {
		return rep, fmt.Errorf("open the model on the CPU: %w", err)
	}
	defer cpuModel.Close()
	want, counts, tp, err := timedEncode(ctx, cpuModel, cpuModel.Workers(1), texts)
	if err != nil {
		return rep, fmt.Errorf("encode on the CPU: %w", err)
	}
	rep.CPU, rep.Tokens = tp, counts.Tokens
	log.Info("selftest: CPU", slog.Int("docs", rep.Docs), slog.Float64("docs_per_s", tp.DocsPerS))
	vocab := cpuModel.Backend.VocabSize()
	if rep.Generated {
		if rep.OracleDocs, rep.OracleMaxDiff, err = testmodel.CompareWithOracle(dir, cpuModel.Model, texts, want, 16); err != nil {
			return rep, err
		}
	} else if rep.AloneDocs, rep.AloneMaxDiff, err = encode.CompareAlone(ctx, cpuModel.Model, cpuModel.Workers(1), cpuModel.BatchTokens(0), texts, want, 16); err != nil {
		return rep, err
	}

	if dev != nil {
		if err := compareDevices(ctx, &rep, dev, texts, want, log); err != nil {
			return rep, err
		}
	}
	if cfg.Device.Kind != gpu.CPU {
		if err := checkKernels(ctx, &rep, cfg, registry, dev, vocab, log); err != nil {
			return rep, err
		}
	}
	if rep.KernelNote == "" && len(rep.Kernels) == 0 {
		rep.KernelNote = "no GPU: splash's own CUDA kernels were not run"
	}
	rep.Pass = rep.passed()
	return rep, nil
}

// passed tells whether every comparison stayed within the tolerance; a run
// that compared nothing has not passed.
func (rep SelftestReport) passed() bool {
	pass := rep.OracleDocs+rep.AloneDocs+len(rep.Devices) > 0
	pass = pass && rep.OracleMaxDiff <= rep.Tolerance && rep.AloneMaxDiff <= rep.Tolerance
	for _, d := range rep.Devices {
		pass = pass && d.MaxDiff <= rep.Tolerance
	}
	for _, k := range rep.Kernels {
		pass = pass && k.OK
	}
	return pass
}

// compareDevices encodes texts on each GPU of dev and compares the vectors
// with the CPU's (want).
func compareDevices(ctx context.Context, rep *SelftestReport, dev *Model, texts []string, want []encode.Result, log *slog.Logger) error {
	for i, d := range dev.Devices {
		got, _, tp, err := timedEncode(ctx, dev, dev.Workers(0)[i:i+1], texts)
		if err != nil {
			return fmt.Errorf("encode on %s: %w", d, err)
		}
		r := DeviceResult{Device: d, Throughput: tp}
		for k := range want {
			if diff := encode.MaxDiff(want[k].Vec, got[k].Vec); diff > r.MaxDiff {
				r.MaxDiff, r.WorstDoc = diff, k
			}
		}
		rep.Devices = append(rep.Devices, r)
		log.Info("selftest: GPU", slog.String("device", d.String()), slog.Float64("docs_per_s", tp.DocsPerS), slog.Float64("max_diff", r.MaxDiff))
	}
	return nil
}

// checkKernels checks splash's own CUDA kernels against their twins on
// every selected GPU. They need only the driver, not ONNX Runtime's
// provider: also when auto fell back to the CPU.
func checkKernels(ctx context.Context, rep *SelftestReport, cfg SelftestConfig, registry *gpu.Registry, dev *Model, vocab int, log *slog.Logger) error {
	var gpus []gpu.Device
	if dev != nil {
		gpus = dev.Devices
	} else {
		discover := cfg.Backend.Discover
		if discover == nil {
			discover = registry.Discover
		}
		gpus, _ = cfg.Device.Pick(discover(ctx).Devices)
	}
	for _, d := range gpus {
		check, err := registry.Driver().SelfCheck(ctx, d.Index, 8, 128, vocab, 1)
		if errors.Is(err, gpu.ErrNoDriver) {
			rep.KernelNote = "splash's own CUDA kernels were not checked: " + err.Error()
			return nil
		}
		if err != nil {
			return fmt.Errorf("kernel check on %s: %w", d, err)
		}
		log.Info("selftest: kernels", slog.String("device", d.String()), slog.Bool("ok", check.OK))
		rep.Kernels = append(rep.Kernels, check)
	}
	return nil
}

// generateSelftestModel writes the synthetic tokenizer and a test model
// into dir.
func generateSelftestModel(dir string, mc testmodel.Config) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	tok := filepath.Join(dir, "tokenizer.json")
	if err := os.WriteFile(tok, testmodel.SyntheticTokenizerJSON(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tok, err)
	}
	if err := testmodel.Generate(dir, mc, tok); err != nil {
		return fmt.Errorf("generate the test model: %w", err)
	}
	return nil
}

// timedEncode encodes texts through encode's stream on workers, once to
// warm the session up (first use of every batch shape, the GPU's
// libraries) and once timed.
func timedEncode(ctx context.Context, m *Model, workers []encode.Worker, texts []string) ([]encode.Result, encode.Counts, Throughput, error) {
	cfg := encode.StreamConfig{
		Options: encode.EncodeOptions{BatchTokens: m.BatchTokens(0), MaxBatch: 128, Sparsify: encode.DefaultSparsifyOptions()},
		Workers: workers,
	}
	if err := cfg.Options.Check(m.MaxLength); err != nil {
		return nil, encode.Counts{}, Throughput{}, err
	}
	if _, _, err := encode.EncodeTexts(ctx, m.Model, texts, cfg); err != nil {
		return nil, encode.Counts{}, Throughput{}, err
	}
	start := time.Now()
	res, counts, err := encode.EncodeTexts(ctx, m.Model, texts, cfg)
	if err != nil {
		return nil, encode.Counts{}, Throughput{}, err
	}
	wall := time.Since(start)
	s := max(wall.Seconds(), 1e-9)
	return res, counts, Throughput{Wall: wall, DocsPerS: float64(len(texts)) / s, TokensPerS: float64(counts.Tokens) / s}, nil
}
