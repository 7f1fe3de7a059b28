package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/splash-encode/splash/cmd/splash/internal/job"
	"github.com/splash-encode/splash/gpu"
)

// errSelftestFailed is returned when the vectors differ beyond tolerance.
var errSelftestFailed = errors.New("selftest failed")

func newSelftestCommand() *cobra.Command {
	var (
		cfg      job.SelftestConfig
		hw       hardwareFlags
		asJSON   bool
		keepWork bool
	)
	cmd := &cobra.Command{
		Use:   "selftest [--device auto|cpu|cuda|cuda:N]",
		Short: "Check on this machine that the GPU computes the same vectors as the CPU",
		Long: `selftest generates a small BERT masked-LM with random weights and a synthetic
vocabulary (or takes --model), encodes a synthetic corpus of --docs documents
on the CPU and on the chosen device, and reports the largest weight difference
and the throughput of each. With a generated model it also compares the CPU's
vectors with a float64 forward pass in pure Go; with --model, it compares the
CPU's batched vectors with those of documents encoded one per batch.

On GPUs, splash's CUDA engine (the default --engine) is held to --tolerance in
fp32; it then runs again in its default precision (bf16 on GPUs with bf16
tensor cores, else fp16; or --precision), which cannot meet that tolerance: that
run reports its speed, its largest relative difference from the CPU and the
share of each document's 20 heaviest terms it keeps (at least --min-top-overlap
to pass).
On each GPU it also checks splash's own CUDA kernels against their Go twins:
pooling and sparsification, and the engine's kernels and GEMMs in fp32, bf16
and fp16; and the engine's forward pass against the float64 forward pass of
generated BERT, DistilBERT and RoBERTa models. With --engine ort the GPU runs
ONNX Runtime, held to --tolerance as the CPU is.

It needs no data files and writes only to a temporary directory. It exits 0
when every check passes, 1 otherwise or when the chosen device cannot be used
(--device cuda without a GPU, without the CUDA driver and cuBLAS, or with
--engine ort without ONNX Runtime's CUDA provider). --device auto runs the CPU
path alone, and says so, when no GPU can be used.`,
		Example: `  # Encode a generated model on the default device and check it against the oracle
  splash selftest

  # On GPU 0, as JSON
  splash selftest --device cuda:0 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if cfg.Device, err = hw.hardware(128, &cfg.Backend); err != nil {
				return err
			}
			if cfg.Docs <= 0 || cfg.Tolerance <= 0 || cfg.Backend.Threads < 0 || !(cfg.MinTopOverlap > 0 && cfg.MinTopOverlap <= 1) {
				return usageErrorf("--docs and --tolerance must be positive, --threads >= 0, --min-top-overlap in (0, 1]")
			}
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			work, err := os.MkdirTemp("", "splash-selftest-")
			if err != nil {
				return fmt.Errorf("create a work directory: %w", err)
			}
			if !keepWork {
				defer os.RemoveAll(work)
			}
			cfg.WorkDir = work
			rep, err := job.Selftest(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return fmt.Errorf("write report: %w", err)
				}
			} else {
				printSelftest(cmd.OutOrStdout(), rep)
			}
			if !rep.Pass {
				return fmt.Errorf("%w: differences beyond the tolerance %g or a failed check (see the report above)", errSelftestFailed, rep.Tolerance)
			}
			return nil
		},
	}
	f := cmd.Flags()
	hw.register(f, "auto")
	f.StringVar(&cfg.ModelDir, "model", "", "test this model directory instead of a generated one (no oracle check then)")
	f.IntVar(&cfg.Docs, "docs", 256, "synthetic documents to encode")
	f.Float64Var(&cfg.Tolerance, "tolerance", 1e-4, "largest accepted weight difference between the CPU and a GPU (splash's CUDA engine in fp32), and between the CPU and the oracle")
	f.Float64Var(&cfg.MinTopOverlap, "min-top-overlap", job.DefaultMinTopOverlap, "least mean share of each document's 20 heaviest CPU terms that splash's CUDA engine must keep in bf16 or fp16")
	f.IntVar(&cfg.TestModel.Layers, "layers", 2, "layers of the generated model")
	f.IntVar(&cfg.TestModel.Hidden, "hidden", 128, "hidden size of the generated model")
	f.IntVar(&cfg.TestModel.Heads, "heads", 4, "attention heads of the generated model")
	f.IntVar(&cfg.Backend.Threads, "threads", 0, "ONNX Runtime intra-op threads of the CPU session (0: every core)")
	f.StringVar(&cfg.Backend.Library, "ort-library", "", "ONNX Runtime shared library (default: $ONNXRUNTIME_SHARED_LIBRARY_PATH, then third_party/onnxruntime)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.BoolVar(&keepWork, "keep", false, "keep the generated model in the temporary directory")
	cfg.TestModel.Seed = 1 // the generated model's other fields take testmodel's defaults
	return cmd
}

// printSelftest writes the report for people.
func printSelftest(w io.Writer, r job.SelftestReport) {
	kind := "model " + r.Model
	if r.Generated {
		kind = "generated test model (random weights, synthetic 4,000-id vocabulary)"
	}
	fmt.Fprintf(w, "selftest: %s, %d synthetic documents, %d tokens\n", kind, r.Docs, r.Tokens)
	fmt.Fprintf(w, "  cpu: %8.1f docs/s %10.0f tokens/s\n", r.CPU.DocsPerS, r.CPU.TokensPerS)
	if r.OracleDocs > 0 {
		fmt.Fprintf(w, "  cpu vs float64 oracle (%d documents): largest difference %.3g\n", r.OracleDocs, r.OracleMaxDiff)
	}
	if r.AloneDocs > 0 {
		fmt.Fprintf(w, "  cpu batched vs one document per batch (%d documents): largest difference %.3g\n", r.AloneDocs, r.AloneMaxDiff)
	}
	for _, d := range r.Devices {
		engine := ""
		if d.Precision != "" {
			engine = " [CUDA engine, " + d.Precision + "]"
		}
		fmt.Fprintf(w, "  %s%s: %8.1f docs/s %10.0f tokens/s (%.1f× the CPU); largest difference from the CPU %.3g (document %d)\n",
			d.Device, engine, d.DocsPerS, d.TokensPerS, d.DocsPerS/max(r.CPU.DocsPerS, 1e-9), d.MaxDiff, d.WorstDoc)
	}
	for _, d := range r.Reduced {
		fmt.Fprintf(w, "  %s [CUDA engine, %s]: %8.1f docs/s %10.0f tokens/s (%.1f× the CPU); top-20 terms shared with the CPU %.3f (%s %.2f); largest relative difference %.3g on weights > 0.1 (document %d)\n",
			d.Device, d.Precision, d.DocsPerS, d.TokensPerS, d.DocsPerS/max(r.CPU.DocsPerS, 1e-9), d.TopOverlap, okMark(d.OK, ">=", "<"), r.MinTopOverlap, d.MaxRel, d.WorstDoc)
	}
	if r.DeviceNote != "" {
		fmt.Fprintf(w, "  %s\n", r.DeviceNote)
	}
	for _, k := range r.Kernels {
		fmt.Fprintf(w, "  kernels on cuda:%d [%d×%d×%d]: max pooling %.3g, sum pooling %.3g relative; sparsify exact %v; pool+sparsify %s\n",
			k.Device, k.B, k.T, k.V, k.PoolMaxRel, k.PoolSumRel, k.SparsifyExact, k.PoolSparsifyTime)
		printEngineChecks(w, k)
	}
	if r.KernelNote != "" {
		fmt.Fprintf(w, "  %s\n", r.KernelNote)
	}
	verdict := "PASS"
	switch {
	case r.OracleDocs+r.AloneDocs+len(r.Devices) == 0:
		verdict = "FAIL: nothing was compared"
	case !r.Pass:
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "%s (tolerance %g)\n", verdict, r.Tolerance)
}

// okMark is pass when ok, else fail: the comparison of a value with its
// bound.
func okMark(ok bool, pass, fail string) string {
	if ok {
		return pass
	}
	return fail
}

// printEngineChecks writes the CUDA engine's checks on one GPU: per
// storage type, how many kernel and GEMM checks are within tolerance (and
// each that is not), then per architecture the forward pass against the
// float64 oracle.
func printEngineChecks(w io.Writer, k gpu.KernelCheck) {
	if k.EngineNote != "" {
		fmt.Fprintf(w, "    %s\n", k.EngineNote)
	}
	var dtypes []string
	for _, p := range k.Transformer {
		if !slices.Contains(dtypes, p.DType) {
			dtypes = append(dtypes, p.DType)
		}
	}
	for _, dt := range dtypes {
		n, ok, worst := 0, 0, 0.0
		var failed []string
		for _, p := range k.Transformer {
			if p.DType != dt {
				continue
			}
			n++
			worst = max(worst, p.MaxRel/max(p.Tolerance, 1e-300))
			if p.OK {
				ok++
			} else {
				failed = append(failed, fmt.Sprintf("%s: relative %.3g > %.3g", p.Name, p.MaxRel, p.Tolerance))
			}
		}
		fmt.Fprintf(w, "    engine kernels and GEMMs vs their twins, %s: %d of %d within tolerance (worst at %.2g of its tolerance)\n", dt, ok, n, worst)
		for _, f := range failed {
			fmt.Fprintf(w, "      FAIL %s\n", f)
		}
	}
	var archs []string
	for _, e := range k.Engine {
		if !slices.Contains(archs, e.Arch) {
			archs = append(archs, e.Arch)
		}
	}
	for _, a := range archs {
		var parts []string
		docs := 0
		for _, e := range k.Engine {
			if e.Arch != a {
				continue
			}
			docs = e.Docs
			mark := ""
			if !e.OK {
				mark = " FAIL"
			}
			switch {
			case e.Skipped != "":
				parts = append(parts, fmt.Sprintf("%s skipped (%s)", e.Precision, e.Skipped))
			case e.Precision == "fp32":
				parts = append(parts, fmt.Sprintf("fp32 largest difference %.3g%s", e.MaxAbs, mark))
			default:
				parts = append(parts, fmt.Sprintf("%s top-20 overlap %.3f, relative error %.3g%s", e.Precision, e.TopOverlap, e.MaxRel, mark))
			}
		}
		fmt.Fprintf(w, "    engine vs float64 oracle, generated %s (%d documents): %s\n", a, docs, strings.Join(parts, "; "))
	}
}
