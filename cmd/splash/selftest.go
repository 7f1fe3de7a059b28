package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/splash-encode/splash/cmd/splash/internal/job"
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
CPU's batched vectors with those of documents encoded one per batch. On each
GPU it also checks splash's own CUDA kernels against their Go twins.

It needs no data files and writes only to a temporary directory. It exits 0
when every difference is within --tolerance, 1 otherwise or when the chosen
device cannot be used (--device cuda without a GPU or without ONNX Runtime's
CUDA provider). --device auto runs the CPU path alone, and says so, when no
GPU can be used.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if cfg.Device, err = hw.hardware(128, &cfg.Backend); err != nil {
				return err
			}
			if cfg.Docs <= 0 || cfg.Tolerance <= 0 || cfg.Backend.Threads < 0 {
				return usageErrorf("--docs and --tolerance must be positive, --threads >= 0")
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
				return fmt.Errorf("%w: differences beyond the tolerance %g (see the report above)", errSelftestFailed, rep.Tolerance)
			}
			return nil
		},
	}
	f := cmd.Flags()
	hw.register(f, "auto")
	f.StringVar(&cfg.ModelDir, "model", "", "test this model directory instead of a generated one (no oracle check then)")
	f.IntVar(&cfg.Docs, "docs", 256, "synthetic documents to encode")
	f.Float64Var(&cfg.Tolerance, "tolerance", 1e-4, "largest accepted weight difference between the CPU and a GPU (and the oracle)")
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
		fmt.Fprintf(w, "  %s: %8.1f docs/s %10.0f tokens/s (%.1f× the CPU); largest difference from the CPU %.3g (document %d)\n",
			d.Device, d.DocsPerS, d.TokensPerS, d.DocsPerS/max(r.CPU.DocsPerS, 1e-9), d.MaxDiff, d.WorstDoc)
	}
	if r.DeviceNote != "" {
		fmt.Fprintf(w, "  %s\n", r.DeviceNote)
	}
	for _, k := range r.Kernels {
		fmt.Fprintf(w, "  kernels on cuda:%d [%d×%d×%d]: max pooling %.3g, sum pooling %.3g relative; sparsify exact %v; pool+sparsify %s\n",
			k.Device, k.B, k.T, k.V, k.PoolMaxRel, k.PoolSumRel, k.SparsifyExact, k.PoolSparsifyTime)
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
