package job

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
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
	// and holds the CUDA driver (nil: gpu.Default()). When the GPUs run
	// splash's CUDA engine (Backend.Engine "", auto or cuda), the
	// comparison with the CPU runs it in fp32 whatever Backend.Precision
	// says, and a second run in Backend.Precision (the engine's default
	// when "") is compared by ranking (SelftestReport.Reduced).
	Device   gpu.Selection
	Backend  gpu.Options
	Registry *gpu.Registry
	// Tolerance bounds the largest weight difference between the CPU and
	// each GPU (the CUDA engine in fp32), and between the CPU and the
	// oracle (0: 1e-4).
	Tolerance float64
	// MinTopOverlap is the least mean top-20 overlap with the CPU's
	// vectors that the CUDA engine's reduced-precision run must keep (0:
	// DefaultMinTopOverlap).
	MinTopOverlap float64
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
	// Precision is the arithmetic of splash's CUDA engine in this run
	// ("fp32": the selftest holds the engine to the tolerance in fp32);
	// "" for another engine (ONNX Runtime).
	Precision string `json:",omitempty"`
	Throughput
	// MaxDiff is the largest |weight difference| over every document and
	// term; WorstDoc is the document where it occurred.
	MaxDiff  float64
	WorstDoc int
}

// DefaultMinTopOverlap is the least mean top-20 overlap with the CPU's
// vectors that a GPU run of the CUDA engine in bf16 or fp16 must keep
// (ReducedResult.OK) unless SelftestConfig.MinTopOverlap says otherwise.
// A broken engine keeps far less; a sound one loses only terms whose
// weights are within bf16's rounding of each other, which random test
// models have many of: the engine's twins (which round as the GPU does)
// keep about 0.96 in bf16 and 0.997 in fp16 on the default generated
// model over the synthetic corpus (measured on its first 48 documents),
// trained models more. The engine's own check
// on the device (gpu.EngineParity) holds bf16 and fp16 to 0.95 on models
// chosen for it.
const DefaultMinTopOverlap = 0.9

// selftestTopK is the k of the top-k overlap.
const selftestTopK = 20

// ReducedResult is one GPU's encoding by splash's CUDA engine in a reduced
// precision (its default, bf16 or fp16, or --precision), compared with the
// CPU's vectors by what it keeps of them rather than by the tolerance,
// which 8 or 11 bits of mantissa cannot meet.
type ReducedResult struct {
	Device gpu.Device
	// Precision is the engine's arithmetic in this run: "bf16", "fp16"
	// or "tf32".
	Precision string
	Throughput
	// MaxDiff is the largest |weight difference| from the CPU.
	MaxDiff float64
	// MaxRel is the largest relative difference over the CPU's weights
	// above 0.1 (a term the GPU lacks counts as 1); WorstDoc is the
	// document where it occurred.
	MaxRel   float64
	WorstDoc int
	// TopOverlap is the mean, over the documents, of the share of the
	// CPU's 20 heaviest terms that are also among the GPU's 20 heaviest.
	TopOverlap float64
	// OK is TopOverlap >= SelftestReport.MinTopOverlap.
	OK bool
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
	// Devices are the GPUs' runs held to the tolerance: splash's CUDA
	// engine in fp32, or ONNX Runtime.
	Devices []DeviceResult
	// Reduced are the CUDA engine's runs in its default precision (or
	// --precision, unless fp32), one per GPU, compared with the CPU by
	// their top-20 terms; MinTopOverlap is the bound they are held to.
	Reduced       []ReducedResult `json:",omitempty"`
	MinTopOverlap float64         `json:",omitempty"`
	// DeviceNote says why no GPU ran, when none did.
	DeviceNote string
	// Kernels are the checks of splash's own kernels on each GPU
	// (gpu.Driver.SelfCheck): pooling and sparsification, and the CUDA
	// engine's kernels and GEMMs against their twins (Transformer) and
	// its forward pass against the float64 oracle of generated BERT,
	// DistilBERT and RoBERTa models in fp32, bf16 and fp16 (Engine).
	Kernels []gpu.KernelCheck
	// KernelNote says why the kernels were not checked, when they were not.
	KernelNote string
	Pass       bool
}

// Selftest encodes a synthetic corpus on the CPU and on the selected GPUs
// and compares the vectors: the check a user runs on their own hardware.
// With splash's CUDA engine on the GPUs, the comparison held to the
// tolerance runs the engine in fp32; a second run in its default precision
// (bf16 or fp16, or Backend.Precision) reports its speed and how much of
// the CPU's vectors it keeps (ReducedResult). On each GPU it then checks
// splash's kernels and the engine through gpu.Driver.SelfCheck.
//
// It returns an error when the selected device cannot be used (--device
// cuda without a GPU, or without what its engine needs: the CUDA driver and
// cuBLAS, or ONNX Runtime's CUDA provider with --engine ort); differences
// beyond the tolerance are reported in the report (Pass false), not as an
// error.
func Selftest(ctx context.Context, cfg SelftestConfig, log *slog.Logger) (SelftestReport, error) {
	rep := SelftestReport{Tolerance: cfg.Tolerance, Docs: cfg.Docs}
	if rep.Tolerance <= 0 {
		rep.Tolerance = 1e-4
	}
	minOverlap := cfg.MinTopOverlap
	if minOverlap <= 0 {
		minOverlap = DefaultMinTopOverlap
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
	// once, before the CPU pass. splash's CUDA engine runs in fp32 there,
	// so that its vectors can be held to the tolerance.
	registry := cfg.Registry
	if registry == nil {
		registry = gpu.Default()
	}
	var dev *Model
	defer func() {
		if dev != nil {
			dev.Close()
		}
	}()
	if cfg.Device.Kind == gpu.CPU {
		rep.DeviceNote = "--device cpu: only the CPU path was run"
	} else {
		strict := cfg.Backend
		if runsCUDAEngine(cfg.Backend.Engine) {
			strict.Precision = precisionFP32
		}
		var err error
		dev, err = OpenModel(ctx, dir, ModelOptions{Device: cfg.Device, Backend: strict, Registry: registry, Log: log})
		if err != nil {
			return rep, err
		}
		if len(dev.Devices) == 0 {
			rep.DeviceNote = "--device auto: " + dev.Fallback + " (see the log); only the CPU path was run"
			dev.Close()
			dev = nil
		}
	}

	// The CPU runs ONNX Runtime, also when --engine cuda names the GPUs'
	// engine (auto picks it for the CPU).
	cpuOpts := cfg.Backend
	if cpuOpts.Engine == gpu.EngineCUDA {
		cpuOpts.Engine = gpu.EngineAuto
	}
	cpuModel, err := OpenModel(ctx, dir, ModelOptions{Backend: cpuOpts, Registry: registry, Log: log})
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

	var gpus []gpu.Device
	if dev != nil {
		gpus = dev.Devices
		if err := compareDevices(ctx, &rep, dev, texts, want, log); err != nil {
			return rep, err
		}
		// The CUDA engine in its faster precision, on the same GPUs: the
		// fp32 sessions go first, so that both never hold device memory.
		reduced := len(rep.Devices) > 0 && rep.Devices[0].Precision != "" && cfg.Backend.Precision != precisionFP32
		dev.Close()
		dev = nil
		if reduced {
			if err := compareReduced(ctx, &rep, dir, cfg, minOverlap, registry, texts, want, log); err != nil {
				return rep, err
			}
		}
	}
	if cfg.Device.Kind != gpu.CPU {
		if err := checkKernels(ctx, &rep, cfg, registry, gpus, vocab, log); err != nil {
			return rep, err
		}
	}
	if rep.KernelNote == "" && len(rep.Kernels) == 0 {
		rep.KernelNote = "no GPU: splash's CUDA engine and kernels were not checked"
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
	for _, r := range rep.Reduced {
		pass = pass && r.OK
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
		r := DeviceResult{Device: d, Precision: enginePrecision(dev.Backends[i]), Throughput: tp}
		for k := range want {
			if diff := encode.MaxDiff(want[k].Vec, got[k].Vec); diff > r.MaxDiff {
				r.MaxDiff, r.WorstDoc = diff, k
			}
		}
		rep.Devices = append(rep.Devices, r)
		log.Info("selftest: GPU", slog.String("device", d.String()), slog.String("precision", r.Precision),
			slog.Float64("docs_per_s", tp.DocsPerS), slog.Float64("max_diff", r.MaxDiff))
	}
	return nil
}

// precisionFP32 is the CUDA engine's float32 arithmetic (gpu.Options.Precision).
const precisionFP32 = "fp32"

// runsCUDAEngine tells whether gpu.Options.Engine engine puts splash's
// CUDA engine on GPUs (when the registry has it).
func runsCUDAEngine(engine string) bool {
	return engine == "" || engine == gpu.EngineAuto || engine == gpu.EngineCUDA
}

// enginePrecision is the arithmetic of a backend of splash's CUDA engine
// ("fp32", "bf16", ...), under encode's out-of-memory wrapper, or "" for a
// backend of another engine. It reads the backend's Precision method by
// reflection: its result type is gpu/cuda's, and this package opens models
// through package gpu, never through an engine's package.
func enginePrecision(b encode.Backend) string {
	for {
		w, ok := b.(interface{ Inner() encode.Backend })
		if !ok {
			break
		}
		b = w.Inner()
	}
	if b == nil {
		return ""
	}
	m := reflect.ValueOf(b).MethodByName("Precision")
	if !m.IsValid() || m.Type().NumIn() != 0 || m.Type().NumOut() != 1 || m.Type().Out(0).Kind() != reflect.String {
		return ""
	}
	return m.Call(nil)[0].String()
}

// compareReduced opens the model on the selected GPUs with cfg.Backend as
// given (the CUDA engine's default precision, or --precision), encodes
// texts on each and compares the vectors with the CPU's (want) by their
// heaviest terms: each keeps at least minOverlap of the CPU's top 20.
func compareReduced(ctx context.Context, rep *SelftestReport, dir string, cfg SelftestConfig, minOverlap float64, registry *gpu.Registry,
	texts []string, want []encode.Result, log *slog.Logger) error {
	m, err := OpenModel(ctx, dir, ModelOptions{Device: cfg.Device, Backend: cfg.Backend, Registry: registry, Log: log})
	if err != nil {
		return fmt.Errorf("open the model on the GPU in the CUDA engine's precision %q: %w", cfg.Backend.Precision, err)
	}
	defer m.Close()
	rep.MinTopOverlap = minOverlap
	for i, d := range m.Devices {
		got, _, tp, err := timedEncode(ctx, m, m.Workers(0)[i:i+1], texts)
		if err != nil {
			return fmt.Errorf("encode on %s: %w", d, err)
		}
		r := ReducedResult{Device: d, Precision: enginePrecision(m.Backends[i]), Throughput: tp}
		for k := range want {
			r.MaxDiff = max(r.MaxDiff, encode.MaxDiff(want[k].Vec, got[k].Vec))
			rel, overlap := rankedDiff(want[k].Vec, got[k].Vec, selftestTopK)
			if rel > r.MaxRel {
				r.MaxRel, r.WorstDoc = rel, k
			}
			r.TopOverlap += overlap
		}
		if len(want) > 0 {
			r.TopOverlap /= float64(len(want))
		}
		r.OK = r.TopOverlap >= minOverlap
		rep.Reduced = append(rep.Reduced, r)
		log.Info("selftest: GPU", slog.String("device", d.String()), slog.String("precision", r.Precision),
			slog.Float64("docs_per_s", tp.DocsPerS), slog.Float64("top_overlap", r.TopOverlap), slog.Float64("max_rel", r.MaxRel))
	}
	return nil
}

// rankedDiff compares got with the reference want: the largest
// |got - want| / want over want's weights above 0.1 (a term got lacks
// counts as 1), and the share of want's k heaviest terms that are among
// got's k heaviest (ties broken by the lower term; 1 when want is empty).
func rankedDiff(want, got encode.SparseVec, k int) (maxRel, overlap float64) {
	gotW := make(map[uint32]float32, len(got.Terms))
	for i, t := range got.Terms {
		gotW[t] = got.Weights[i]
	}
	for i, t := range want.Terms {
		if w := float64(want.Weights[i]); w > 0.1 {
			maxRel = max(maxRel, math.Abs(float64(gotW[t])-w)/w)
		}
	}
	wt, gt := topTerms(want, k), topTerms(got, k)
	if len(wt) == 0 {
		return maxRel, 1
	}
	hit := 0
	for _, t := range wt {
		if slices.Contains(gt, t) {
			hit++
		}
	}
	return maxRel, float64(hit) / float64(len(wt))
}

// topTerms returns the terms of v's k heaviest positive weights, ties
// broken by the lower term.
func topTerms(v encode.SparseVec, k int) []uint32 {
	idx := make([]int, 0, len(v.Terms))
	for i, w := range v.Weights {
		if w > 0 {
			idx = append(idx, i)
		}
	}
	slices.SortFunc(idx, func(a, b int) int {
		if c := cmp.Compare(v.Weights[b], v.Weights[a]); c != 0 {
			return c
		}
		return cmp.Compare(v.Terms[a], v.Terms[b])
	})
	terms := make([]uint32, 0, min(k, len(idx)))
	for _, i := range idx[:min(k, len(idx))] {
		terms = append(terms, v.Terms[i])
	}
	return terms
}

// checkKernels checks splash's own CUDA kernels and engine on every
// selected GPU (gpus: those the model ran on, nil when it ran on none).
// They need only the driver (and cuBLAS for the engine), not ONNX
// Runtime's provider: also when auto fell back to the CPU.
func checkKernels(ctx context.Context, rep *SelftestReport, cfg SelftestConfig, registry *gpu.Registry, gpus []gpu.Device, vocab int, log *slog.Logger) error {
	if gpus == nil {
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
		log.Info("selftest: kernels", slog.String("device", d.String()), slog.Bool("ok", check.OK),
			slog.Int("engine_kernel_checks", len(check.Transformer)), slog.Int("engine_checks", len(check.Engine)))
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
