package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/splash-encode/splash/cmd/splash/internal/job"
	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/shards"
)

func newEncodeCommand() *cobra.Command {
	var (
		cfg     job.Config
		pooling string
		format  string
	)
	cmd := &cobra.Command{
		Use:   "encode --model DIR --input PATH... --output DIR",
		Short: "Encode Parquet document shards into SPLADE impact shards",
		Long: `encode reads Parquet document shards (an id and a text column, optionally a
title), encodes every document with the SPLADE model and writes one impact
shard per input shard into the output directory, named after the input, with
the vocabulary (_vocabulary.tsv) and a manifest per shard (_manifest.NAME.json,
written last: a shard counts as done only once its manifest exists).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfg.ModelDir == "" || len(cfg.Inputs) == 0 || cfg.OutputDir == "" {
				return usageErrorf("--model, --input and --output are required")
			}
			p, err := encode.ParsePooling(pooling)
			if err != nil {
				return usageErrorf("--pooling: %v", err)
			}
			cfg.Pooling = p
			switch format {
			case "parquet":
				cfg.Format = shards.FormatParquet
			case "arrow":
				cfg.Format = shards.FormatArrow
			default:
				return usageErrorf("--format %q: want parquet or arrow", format)
			}
			if err := cfg.Encode.Sparsify.Validate(); err != nil {
				return usageErrorf("%v", err)
			}
			if cfg.Encode.BatchTokens <= 0 {
				return usageErrorf("--batch-tokens %d: must be positive", cfg.Encode.BatchTokens)
			}
			if cfg.Threads < 0 {
				return usageErrorf("--threads %d: must be >= 0", cfg.Threads)
			}
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			cfg.Version = version
			summary, err := job.Run(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), summary)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.ModelDir, "model", "", "model directory (model.onnx or onnx/model.onnx, tokenizer.json, config.json)")
	f.StringSliceVar(&cfg.Inputs, "input", nil, "input Parquet shard(s); repeat the flag or separate with commas")
	f.StringVar(&cfg.OutputDir, "output", "", "output directory for impact shards")
	f.IntVar(&cfg.MaxLength, "max-length", 0, "truncate documents to N tokens, specials included (0: the model's max_position_embeddings, at most 512)")
	f.IntVar(&cfg.Encode.BatchTokens, "batch-tokens", 8192, "token budget of a batch: documents × longest document")
	f.IntVar(&cfg.Encode.MaxBatch, "max-batch", 128, "most documents in one batch")
	f.Float32Var(&cfg.Encode.Sparsify.MinWeight, "min-weight", 0, "keep weights strictly above W")
	f.IntVar(&cfg.Encode.Sparsify.TopK, "top-k", 0, "keep the K largest weights of each document (0: all)")
	f.Float32Var(&cfg.Encode.Sparsify.Scale, "scale", 100, "impacts = round(weight × S)")
	f.StringVar(&pooling, "pooling", "max", "pooling over positions: max (SPLADE v2+) or sum (SPLADE v1)")
	f.IntVar(&cfg.Threads, "threads", runtime.NumCPU(), "ONNX Runtime intra-op threads")
	f.StringVar(&cfg.Columns.ID, "id-column", "id", "input column holding document ids")
	f.StringVar(&cfg.Columns.Text, "text-column", "text", "input column holding document text")
	f.StringVar(&cfg.Columns.Title, "title-column", "", "optional input column holding a title, encoded as title + \" \" + text")
	f.StringVar(&format, "format", "parquet", "output format: parquet or arrow")
	f.StringVar(&cfg.Library, "ort-library", "", "ONNX Runtime shared library (default: $ONNXRUNTIME_SHARED_LIBRARY_PATH, then third_party/onnxruntime)")
	return cmd
}
