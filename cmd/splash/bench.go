package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/splash-encode/splash/cmd/splash/internal/job"
	"github.com/splash-encode/splash/encode"
)

// newModelBenchCommand is `splash model bench`: the bare ONNX Runtime session
// on pre-tokenized, pre-batched documents, the limit `splash encode` runs
// against (see docs/BENCHMARKS.md).
func newModelBenchCommand() *cobra.Command {
	var (
		modelDir string
		pooling  string
		mopts    job.ModelOptions
		cfg      job.BenchConfig
		hw       hardwareFlags
	)
	cmd := &cobra.Command{
		Use:   "bench --model DIR --input PATH[,PATH...]",
		Short: "Time the bare ONNX Runtime session on pre-batched documents (the pipeline's limit)",
		Long: `bench reads and tokenizes every input document, packs them into the batches
that encode would form with the same settings (windows of 4096 documents
sorted by length under --batch-tokens), then times only the ONNX Runtime
session with its pooled graph over all batches: one untimed warm-up pass,
then --repeats timed passes (--cold: no warm-up). Nothing is written. Each pass prints one JSON
line: documents, tokens, padded tokens, padding waste, wall seconds,
documents/s, tokens/s and the process's peak RSS so far.`,
		Example: `  # Time the model on the CPU with one input shard
  splash model bench --device cpu --threads 8 --model models/splade-v3 --input corpus/part-0.parquet

  # On GPU 0, with splash's CUDA engine in bf16
  splash model bench --device cuda:0 --precision bf16 --model models/splade-v3 --input corpus/part-0.parquet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if modelDir == "" || len(cfg.Inputs) == 0 {
				return usageErrorf("--model and --input are required")
			}
			p, err := encode.ParsePooling(pooling)
			if err != nil {
				return usageErrorf("--pooling: %v", err)
			}
			mopts.Backend.Pooling = p
			cfg.Encode.Sparsify = encode.DefaultSparsifyOptions() // not used: nothing is sparsified
			if cfg.Encode.BatchTokens < 0 || cfg.Repeats <= 0 || cfg.Workers <= 0 || mopts.Backend.Threads < 0 {
				return usageErrorf("--repeats and --sessions must be positive, --batch-tokens and --threads >= 0")
			}
			if mopts.Device, err = hw.hardware(cfg.Encode.MaxBatch, &mopts.Backend); err != nil {
				return err
			}
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			mopts.Log = log
			m, err := job.OpenModel(cmd.Context(), modelDir, mopts)
			if err != nil {
				return err
			}
			defer m.Close()
			log.Info("model loaded", slog.String("model", m.ModelFile), slog.Int("vocab", m.Backend.VocabSize()),
				slog.Int("max_length", m.MaxLength), slog.String("device", m.DeviceName()), slog.Int("threads", mopts.Backend.Threads), slog.Int("sessions", cfg.Workers))
			runs, err := job.Bench(cmd.Context(), m, cfg)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			for i, r := range runs {
				line := map[string]any{
					"system": "bare-session", "run": i + 1, "cold": cfg.Cold && i == 0, "docs": r.Docs, "tokens": r.Tokens,
					"padded_tokens": r.PaddedTokens, "padding_waste": r.PaddingWaste(), "batches": r.Batches,
					"wall_s": r.Wall.Seconds(), "docs_per_s": r.DocsPerS(), "tokens_per_s": r.TokensPerS(),
					"threads": mopts.Backend.Threads, "sessions": cfg.Workers, "device": m.DeviceName(), "peak_rss_mb": peakRSSMiB(),
				}
				if err := enc.Encode(line); err != nil {
					return fmt.Errorf("write result: %w", err)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	modelFlags(f, &mopts.MaxLength, &mopts.Backend.Threads, &mopts.Backend.Library, &cfg.Columns, &mopts.Backend.Session)
	hw.register(f, "auto")
	f.StringVar(&modelDir, "model", "", "model directory (model.onnx or onnx/model.onnx, tokenizer.json, config.json)")
	f.StringSliceVar(&cfg.Inputs, "input", nil, "input shards, as for encode: Parquet, JSON Lines or TSV files, directories or globs")
	f.IntVar(&cfg.Encode.BatchTokens, "batch-tokens", 0, "token budget of a batch, as for encode (0: chosen for the device)")
	f.IntVar(&cfg.Encode.MaxBatch, "max-batch", 128, "most documents in one batch, as for encode")
	f.StringVar(&pooling, "pooling", "max", "pooling over positions: max or sum")
	f.IntVar(&cfg.Workers, "sessions", 1, "batches run concurrently, as encode's --sessions")
	f.IntVar(&cfg.Repeats, "repeats", 3, "timed passes over all batches (after one warm-up pass)")
	f.BoolVar(&cfg.Cold, "cold", false, "no warm-up pass: the first timed pass pays ONNX Runtime's first use, as an encode run does")
	f.StringVar(&mopts.Backend.Session.ProfilePrefix, "ort-profile", "", "write ONNX Runtime's per-node JSON profile to PREFIX_DATE.json")
	f.BoolVar(&mopts.Backend.Session.DisableMemArena, "ort-no-arena", false, "turn off ONNX Runtime's CPU memory arena")
	f.StringVar(&mopts.Backend.Session.OptLevel, "ort-opt-level", "all", "ONNX Runtime graph optimization level: all, extended, basic or disabled")
	markRequired(cmd, "model", "input")
	return cmd
}

// peakRSSMiB is the process's peak resident set size in MiB (Linux reports
// ru_maxrss in KiB); 0 when unknown.
func peakRSSMiB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}
