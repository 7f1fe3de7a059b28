package main

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/splash-encode/splash/cmd/splash/internal/job"
	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/pipeline"
	"github.com/splash-encode/splash/shards"
)

func newEncodeCommand() *cobra.Command {
	var (
		cfg           job.Config
		pooling       string
		format        string
		progressEvery time.Duration
		hw            hardwareFlags
		shardIndex    int
		metricsAddr   string
		pushgateway   string
		queryMode     string
		idfPath       string
		windowAgg     string
		emit          string
		logitsMiB     int64
	)
	cmd := &cobra.Command{
		Use:   "encode --model DIR --input PATH[,PATH...] --output DIR",
		Short: "Encode Parquet document shards into SPLADE impact shards",
		Long: `encode reads Parquet document shards (an id and a text column, optionally a
title), encodes every document with the SPLADE model and writes one impact
shard per input shard into the output directory, named after the input, with
the vocabulary (_vocabulary.parquet) and a manifest per shard (_manifest.NAME.json,
written last: a shard counts as done only once its manifest verifies), and
_SUCCESS with a summary once every shard is done.

--role query encodes queries (query files have the same id and text
columns) with the query encoder given as --model, into the same shard
format; the max length defaults to 64. --query-mode bag encodes them without
a model, for SPLADE-doc and inference-free SPLADE: each distinct token of
the query (the tokenizer's [CLS]/[SEP]-style specials left out) gets weight
1, or its weight from --idf FILE (a JSON object {"token": weight}, or lines
token<TAB>weight); --model then needs only tokenizer.json.

Documents longer than the max length are truncated (--long-docs truncate)
or cut into windows (--long-docs window) of --window tokens, starting every
--stride tokens, at most --max-windows of them; the document's vector is
the max (--window-agg sum: the sum) over its windows' vectors, pruned by
--min-weight and --top-k afterwards, and the num_windows column records the
windows seen. --emit passages writes one row per window instead, with ids
DOCID#K (K from 0).

--echo (causal LLM encoders) feeds every text twice and pools only the
second copy's positions, which have seen the whole text; each copy gets half
of the max length.

--input takes files, directories (their *.parquet, *.jsonl, *.jsonl.gz,
*.tsv and *.tsv.gz files, sorted) and globs. JSON Lines use the fields id
(else BEIR's _id), text (else Pyserini's contents) and title when present;
a TSV without a header is id<TAB>text (MS MARCO). Bad lines go to the
dead-letter file with their line numbers. Plain text inputs larger than
--part-size are encoded in parts, NAME.part00000, NAME.part00001, ...
Re-running the same command skips the shards already done and encodes the
rest; a shard encoded before with other settings or from another input is
refused unless --overwrite.`,
		Example: `  # Encode a directory of Parquet shards (on every visible GPU, else the CPU)
  splash encode --model models/splade-v3 --input corpus/ --output out/

  # On the CPU with 8 ONNX Runtime threads, a title column prepended
  splash encode --device cpu --threads 8 --model models/splade-v3 \
    --input 'corpus/part-*.parquet' --title-column title --output out/

  # A BEIR corpus (JSON Lines; MS MARCO's collection.tsv works the same way)
  splash encode --model models/splade-v3 --input scifact/corpus.jsonl --output out/

  # Queries, with the query encoder
  splash encode --role query --model models/splade-v3-query \
    --input queries.parquet --output out-queries/

  # Process 0 of 4 (e.g. an Indexed Job), then splash finalize once all are done
  splash encode --shard-count 4 --shard-index 0 --model models/splade-v3 \
    --input corpus/ --output out/

  # The same, but the last of the 4 processes to finish writes _SUCCESS itself
  splash encode --shard-count 4 --shard-index 0 --finalize-when-complete \
    --model models/splade-v3 --input corpus/ --output out/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfg.ModelDir == "" || len(cfg.Inputs) == 0 || cfg.OutputDir == "" {
				return usageErrorf("--model, --input and --output are required")
			}
			p, err := encode.ParsePooling(pooling)
			if err != nil {
				return usageErrorf("--pooling: %v", err)
			}
			cfg.Backend.Pooling = p
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
			if err := encodingFlags(&cfg, queryMode, idfPath, windowAgg, emit, logitsMiB); err != nil {
				return err
			}
			if cfg.Encode.BatchTokens < 0 {
				return usageErrorf("--batch-tokens %d: must be positive (or 0: chosen for the device)", cfg.Encode.BatchTokens)
			}
			if cfg.Device, err = hw.hardware(cfg.Encode.MaxBatch, &cfg.Backend); err != nil {
				return err
			}
			if cfg.ShardIndex, err = resolveShardIndex(cmd, shardIndex, cfg.ShardCount); err != nil {
				return err
			}
			if cfg.MaxBadFraction < 0 || cfg.MaxBadFraction > 1 || cfg.MaxBadFraction != cfg.MaxBadFraction {
				return usageErrorf("--max-bad-fraction %g: want a fraction from 0 to 1", cfg.MaxBadFraction)
			}
			if cfg.Backend.Threads < 0 {
				return usageErrorf("--threads %d: must be >= 0", cfg.Backend.Threads)
			}
			if cfg.Failpoint, err = failpointFromEnv(); err != nil {
				return err
			}
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			cfg.Version = version
			tty := false
			if f, ok := cmd.ErrOrStderr().(*os.File); ok {
				tty = pipeline.IsTerminal(f)
			}
			if tty {
				// The bar owns the terminal line: keep routine log lines off it.
				log = quieter(cmd, log)
			}
			progressLog := log
			cfg.NewProgress = func(t pipeline.Totals) job.Progress {
				return pipeline.NewProgress(pipeline.ProgressOptions{
					Out: cmd.ErrOrStderr(), IsTerminal: tty, Logger: progressLog, Interval: progressEvery, Totals: t,
				})
			}
			if metricsAddr != "" || pushgateway != "" {
				cfg.Metrics = pipeline.NewMetrics(version)
			}
			if metricsAddr != "" {
				srv, err := cfg.Metrics.Serve(cmd.Context(), metricsAddr)
				if err != nil {
					return err
				}
				defer srv.Close()
				log.Info("serving metrics", slog.String("url", "http://"+srv.Addr()+"/metrics"))
			}
			summary, err := job.Run(cmd.Context(), cfg, log)
			if pushgateway != "" {
				pushMetrics(cmd.Context(), cfg, pushgateway, log)
			}
			if err != nil {
				return err
			}
			return printRunSummary(cmd, cmd.OutOrStdout(), summary.String(), encodeSummaryJSON(summary))
		},
	}
	f := cmd.Flags()
	modelFlags(f, &cfg.MaxLength, &cfg.Backend.Threads, &cfg.Backend.Library, &cfg.Columns, &cfg.Backend.Session)
	hw.register(f, "auto")
	f.IntVar(&cfg.ShardCount, "shard-count", 1, "split the inputs between `N` processes (a Kubernetes Indexed Job's completions); this one encodes the share of --shard-index, and splash finalize writes _SUCCESS once all are done (or the last index: --finalize-when-complete)")
	f.BoolVar(&cfg.FinalizeWhenComplete, "finalize-when-complete", false, "with --shard-count: once this index's shards are committed, if every shard of the run (all of --input) is, check the output as splash finalize does and write _SUCCESS (create-only: exactly one index does; a failed check fails this index); without --shard-count (or with 1) it changes nothing: the run writes _SUCCESS anyway")
	f.StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus metrics on ADDR (e.g. :9090) at /metrics while the run lasts")
	f.StringVar(&pushgateway, "pushgateway", "", "push the run's metrics to the Prometheus Pushgateway at URL when it ends (job splash_encode, grouped by shard_index with --shard-count)")
	f.IntVar(&shardIndex, "shard-index", 0, "this process's share of the inputs, 0 to --shard-count - 1 (default: $JOB_COMPLETION_INDEX, which Indexed Jobs set)")
	f.StringVar(&cfg.ModelDir, "model", "", "model directory (model.onnx or onnx/model.onnx, tokenizer.json, config.json)")
	f.StringSliceVar(&cfg.Inputs, "input", nil, "input shards: Parquet files, JSON Lines (.jsonl, .jsonl.gz: BEIR, Pyserini) and TSV files (.tsv, .tsv.gz: MS MARCO's id<TAB>text, or with a header line), directories (those directly inside) or globs; repeat the flag or separate with commas")
	partSizeFlag(f, &cfg.PartSize)
	f.StringVar(&cfg.OutputDir, "output", "", "output directory for impact shards")
	f.IntVar(&cfg.Encode.BatchTokens, "batch-tokens", 0, "token budget of a batch: documents × longest document (peak memory grows with it: ONNX Runtime holds about 4 [tokens × vocab] float tensors); 0: 2048 on the CPU, chosen from free memory on GPUs")
	f.IntVar(&cfg.Encode.MaxBatch, "max-batch", 128, "most documents in one batch")
	f.Float32Var(&cfg.Encode.Sparsify.MinWeight, "min-weight", 0, "keep weights strictly above W")
	f.IntVar(&cfg.Encode.Sparsify.TopK, "top-k", 0, "keep the K largest weights of each document (0: all)")
	f.Float32Var(&cfg.Encode.Sparsify.Scale, "scale", 100, "impacts = round(weight × S)")
	f.StringVar(&pooling, "pooling", "max", "pooling over positions: max (SPLADE v2+) or sum (SPLADE v1)")
	f.StringVar(&format, "format", "parquet", "output format: parquet or arrow")
	f.BoolVar(&cfg.Overwrite, "overwrite", false, "re-encode shards that an earlier run encoded with other settings or from another input")
	f.Float64Var(&cfg.MaxBadFraction, "max-bad-fraction", 0.001, "fail the run when rejected input rows (null or empty ids, null texts, repeated ids; see _rejected.*.jsonl) exceed this fraction of all input rows (0: fail on the first)")
	f.IntVar(&cfg.EncodeWorkers, "sessions", 1, "batches run concurrently on the CPU's ONNX Runtime session (GPUs: one each)")
	f.DurationVar(&progressEvery, "progress-every", 30*time.Second, "interval of progress log lines when stderr is not a terminal")
	f.StringVar(&cfg.Role, "role", encode.RoleDocument, "what the texts are: document, or query (query encoder, max length 64 unless --max-length)")
	f.StringVar(&queryMode, "query-mode", "model", "with --role query: model (run --model), or bag (no model: each distinct token weighs 1, or its --idf weight)")
	f.StringVar(&idfPath, "idf", "", "with --query-mode bag: token weights, a JSON object {\"token\": weight} (.json) or lines token<TAB>weight; tokens not listed are left out")
	f.BoolVar(&cfg.Echo, "echo", false, "feed each text twice and pool only the second copy (echo embeddings for causal LLM encoders)")
	f.StringVar(&cfg.LongDocs.Mode, "long-docs", encode.LongDocsTruncate, "documents over the max length: truncate, or window (encode overlapping windows and combine them)")
	f.IntVar(&cfg.LongDocs.Window, "window", 0, "with --long-docs window: tokens per window, specials included (0: the max length)")
	f.IntVar(&cfg.LongDocs.Stride, "stride", 0, "with --long-docs window: tokens between window starts (0: half a window, so windows overlap by half)")
	f.IntVar(&cfg.LongDocs.MaxWindows, "max-windows", encode.DefaultMaxWindows, "with --long-docs window: most windows per document (0: no bound); text past them is not seen and the row is marked truncated")
	f.StringVar(&windowAgg, "window-agg", "max", "with --long-docs window: combine windows by max or sum")
	f.StringVar(&emit, "emit", "documents", "with --long-docs window: documents (one row each), or passages (one row per window, ids DOCID#K)")
	f.Int64Var(&logitsMiB, "logits-budget", 0, "bound one batch's [batch × length × vocab] float32 logits to N MiB by lowering --batch-tokens (0: 1024 on the CPU; on GPUs the free-memory budget already counts them)")
	markRequired(cmd, "model", "input", "output")
	return cmd
}

// encodingFlags resolves the flags about roles, query bags, echo and long
// documents into cfg.
func encodingFlags(cfg *job.Config, queryMode, idfPath, windowAgg, emit string, logitsMiB int64) error {
	switch cfg.Role {
	case encode.RoleDocument, encode.RoleQuery:
	default:
		return usageErrorf("--role %q: want document or query", cfg.Role)
	}
	switch queryMode {
	case "model":
		if idfPath != "" {
			return usageErrorf("--idf needs --query-mode bag")
		}
	case "bag":
		if cfg.Role != encode.RoleQuery {
			return usageErrorf("--query-mode bag needs --role query")
		}
		if cfg.Echo {
			return usageErrorf("--echo runs a model: it does not go with --query-mode bag")
		}
		cfg.Bag = &encode.BagOptions{IDFPath: idfPath}
	default:
		return usageErrorf("--query-mode %q: want model or bag", queryMode)
	}
	agg, err := encode.ParseWindowAgg(windowAgg)
	if err != nil {
		return usageErrorf("--window-agg: %v", err)
	}
	cfg.LongDocs.Agg = agg
	switch emit {
	case "documents":
	case "passages":
		cfg.LongDocs.Passages = true
	default:
		return usageErrorf("--emit %q: want documents or passages", emit)
	}
	if cfg.LongDocs.Mode != encode.LongDocsWindow && (cfg.LongDocs.Window != 0 || cfg.LongDocs.Stride != 0 || cfg.LongDocs.Passages || windowAgg != "max") {
		return usageErrorf("--window, --stride, --window-agg and --emit passages need --long-docs window")
	}
	if logitsMiB < 0 {
		return usageErrorf("--logits-budget %d: must be >= 0", logitsMiB)
	}
	cfg.LogitsBudget = logitsMiB << 20
	return nil
}

// pushMetrics pushes the run's metrics to the Pushgateway, also after a
// failed or interrupted run (splash_last_success_timestamp_seconds then
// stays 0 or older). A failed push is logged, not returned: the encoding
// itself is done.
func pushMetrics(ctx context.Context, cfg job.Config, url string, log *slog.Logger) {
	grouping := map[string]string{}
	if cfg.ShardCount > 1 {
		grouping["shard_index"] = strconv.Itoa(cfg.ShardIndex)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pipeline.DefaultPushTimeout)
	defer cancel()
	if err := cfg.Metrics.Push(ctx, url, pipeline.DefaultPushJob, grouping); err != nil {
		log.Warn("could not push metrics", slog.String("error", err.Error()))
		return
	}
	log.Info("pushed metrics", slog.String("pushgateway", url))
}

// encodeSummary is encode's end-of-run summary with --log-format json: the
// numbers of the text summary (job.Summary.String), one JSON object.
type encodeSummary struct {
	Summary           string   `json:"summary"` // "encode"
	Documents         int64    `json:"documents"`
	Shards            int      `json:"shards"`
	SkippedShards     int      `json:"skipped_shards"`
	ShardsByOtherRun  int      `json:"shards_by_other_run"`
	WallSeconds       float64  `json:"wall_seconds"`
	ModelLoadSeconds  float64  `json:"model_load_seconds"`
	DocsPerSecond     float64  `json:"docs_per_second"`
	TokensPerSecond   float64  `json:"tokens_per_second"`
	Tokens            int64    `json:"tokens"`
	PaddingWaste      float64  `json:"padding_waste"` // fraction, 0 to 1
	Batches           int64    `json:"batches"`
	Truncated         int64    `json:"truncated"`
	MaxLength         int      `json:"max_length"`
	Empty             int64    `json:"empty"`
	NonZeroMean       int      `json:"nonzeros_mean"`
	NonZeroP50        int      `json:"nonzeros_p50"`
	NonZeroP99        int      `json:"nonzeros_p99"`
	Rejected          int64    `json:"rejected_rows"`
	Duplicates        int      `json:"duplicate_ids_across_shards"`
	DuplicateExamples []string `json:"duplicate_id_examples,omitempty"`
	// Finalized: this index of a --shard-count run wrote _SUCCESS
	// (--finalize-when-complete).
	Finalized bool `json:"finalized,omitempty"`
}

func encodeSummaryJSON(s job.Summary) encodeSummary {
	c := s.Counts
	return encodeSummary{
		Summary: "encode", Documents: c.Docs, Shards: s.Shards, SkippedShards: s.Skipped, ShardsByOtherRun: s.ByOther,
		WallSeconds: s.Wall.Seconds(), ModelLoadSeconds: s.ModelLoad.Seconds(), DocsPerSecond: s.DocsPerS,
		TokensPerSecond: float64(c.Tokens) / max(s.Wall.Seconds(), 1e-9), Tokens: c.Tokens, PaddingWaste: c.PaddingWaste(),
		Batches: c.Batches, Truncated: c.Truncated, MaxLength: s.MaxLen, Empty: c.Empty,
		NonZeroMean: s.NonZero[0], NonZeroP50: s.NonZero[1], NonZeroP99: s.NonZero[2],
		Rejected: s.Rejected, Duplicates: s.Duplicates, DuplicateExamples: s.DuplicateExamples, Finalized: s.Finalized,
	}
}
