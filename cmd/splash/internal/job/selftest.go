package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/gpu"
	"github.com/splash-encode/splash/gpu/cuda"
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
	Docs     int
	Hardware Hardware
	Threads  int
	Library  string
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
	CPU           Throughput
	Devices       []DeviceResult
	// DeviceNote says why no GPU ran, when none did.
	DeviceNote string
	Kernels    []cuda.KernelCheck
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
	var dev *Model
	if cfg.Hardware.Device.Kind == gpu.CPU {
		rep.DeviceNote = "--device cpu: only the CPU path was run"
	} else {
		var err error
		dev, err = OpenModel(ctx, dir, ModelOptions{Threads: cfg.Threads, Library: cfg.Library, Hardware: cfg.Hardware, Log: log})
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

	cpuModel, err := OpenModel(ctx, dir, ModelOptions{Threads: cfg.Threads, Library: cfg.Library, Log: log})
	if err != nil {
		return rep, fmt.Errorf("open the model on the CPU: %w", err)
	}
	defer cpuModel.Close()
	want, counts, tp, err := timedEncode(ctx, cpuModel, texts)
	if err != nil {
		return rep, fmt.Errorf("encode on the CPU: %w", err)
	}
	rep.CPU, rep.Tokens = tp, counts.Tokens
	log.Info("selftest: CPU", slog.Int("docs", rep.Docs), slog.Float64("docs_per_s", tp.DocsPerS))
	vocab := cpuModel.Backend.VocabSize()
	if rep.Generated {
		if rep.OracleDocs, rep.OracleMaxDiff, err = compareWithOracle(dir, cpuModel, texts, want, 16); err != nil {
			return rep, err
		}
	}

	if dev != nil {
		for i, d := range dev.Devices {
			one := *dev
			one.Backend = dev.Backends[i]
			got, _, tp, err := timedEncode(ctx, &one, texts)
			if err != nil {
				return rep, fmt.Errorf("encode on %s: %w", d, err)
			}
			r := DeviceResult{Device: d, Throughput: tp}
			for k := range want {
				if diff := maxVecDiff(want[k].Vec, got[k].Vec, vocab); diff > r.MaxDiff {
					r.MaxDiff, r.WorstDoc = diff, k
				}
			}
			rep.Devices = append(rep.Devices, r)
			log.Info("selftest: GPU", slog.String("device", d.String()), slog.Float64("docs_per_s", tp.DocsPerS), slog.Float64("max_diff", r.MaxDiff))
		}
	}
	if cfg.Hardware.Device.Kind != gpu.CPU {
		// The kernels need only the driver, not ONNX Runtime's provider:
		// check them on every selected GPU, also when auto fell back.
		var gpus []gpu.Device
		if dev != nil {
			gpus = dev.Devices
		} else {
			gpus, _ = cfg.Hardware.Device.Pick(discover(ctx, cfg.Hardware).Devices)
		}
		for _, d := range gpus {
			check, err := cuda.SelfCheck(ctx, d.Index, 8, 128, vocab, 1)
			if errors.Is(err, cuda.ErrDisabled) {
				rep.KernelNote = "splash's own CUDA kernels are not compiled into this build (build with -tags cuda to check them)"
				break
			}
			if err != nil {
				return rep, fmt.Errorf("kernel check on %s: %w", d, err)
			}
			log.Info("selftest: kernels", slog.String("device", d.String()), slog.Bool("ok", check.OK))
			rep.Kernels = append(rep.Kernels, check)
		}
	}
	if rep.KernelNote == "" && len(rep.Kernels) == 0 {
		rep.KernelNote = "no GPU: splash's own CUDA kernels were not run"
	}
	rep.Pass = rep.OracleMaxDiff <= rep.Tolerance
	for _, d := range rep.Devices {
		rep.Pass = rep.Pass && d.MaxDiff <= rep.Tolerance
	}
	for _, k := range rep.Kernels {
		rep.Pass = rep.Pass && k.OK
	}
	return rep, nil
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

// timedEncode encodes texts once to warm the session up (first use of
// every batch shape, the GPU's libraries) and once timed.
func timedEncode(ctx context.Context, m *Model, texts []string) ([]Result, Counts, Throughput, error) {
	e, err := NewEncoder(m, EncodeOptions{BatchTokens: m.BatchTokens(0), MaxBatch: 128, Sparsify: encode.DefaultSparsifyOptions()})
	if err != nil {
		return nil, Counts{}, Throughput{}, err
	}
	if _, _, err := e.Encode(ctx, texts); err != nil {
		return nil, Counts{}, Throughput{}, err
	}
	start := time.Now()
	res, counts, err := e.Encode(ctx, texts)
	if err != nil {
		return nil, Counts{}, Throughput{}, err
	}
	wall := time.Since(start)
	s := max(wall.Seconds(), 1e-9)
	return res, counts, Throughput{Wall: wall, DocsPerS: float64(len(texts)) / s, TokensPerS: float64(counts.Tokens) / s}, nil
}

// compareWithOracle compares the CPU's vectors of the first n documents
// that have content with the float64 forward pass of the generated model.
func compareWithOracle(dir string, m *Model, texts []string, got []Result, n int) (int, float64, error) {
	o, err := testmodel.LoadOracle(dir)
	if err != nil {
		return 0, 0, fmt.Errorf("load the float64 oracle: %w", err)
	}
	compared, worst := 0, 0.0
	for k, text := range texts {
		if compared == n {
			break
		}
		ids := m.Tokenizer.Encode(text, m.MaxLength).IDs
		if len(ids) <= m.Tokenizer.NumSpecialTokens() {
			continue
		}
		want := o.Pooled(ids, m.Pooling.String())
		if want == nil {
			return 0, 0, fmt.Errorf("the oracle cannot run document %d", k)
		}
		dense := make([]float64, len(want))
		for i, j := range got[k].Vec.Terms {
			dense[j] = float64(got[k].Vec.Weights[i])
		}
		for j := range want {
			worst = math.Max(worst, math.Abs(want[j]-dense[j]))
		}
		compared++
	}
	return compared, worst, nil
}

// maxVecDiff is the largest |a_j - b_j| over the vocabulary, absent terms
// counting as 0.
func maxVecDiff(a, b encode.SparseVec, vocab int) float64 {
	da := make([]float64, vocab)
	for k, j := range a.Terms {
		da[j] = float64(a.Weights[k])
	}
	db := make([]float64, vocab)
	for k, j := range b.Terms {
		db[j] = float64(b.Weights[k])
	}
	worst := 0.0
	for j := range da {
		worst = math.Max(worst, math.Abs(da[j]-db[j]))
	}
	return worst
}

// discover runs the hardware's GPU discovery (gpu.Discover unless a test
// replaced it).
func discover(ctx context.Context, hw Hardware) gpu.Discovery {
	if hw.Discover != nil {
		return hw.Discover(ctx)
	}
	return gpu.Discover(ctx)
}
