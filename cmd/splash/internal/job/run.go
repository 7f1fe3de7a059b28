package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/pipeline"
	"github.com/splash-encode/splash/shards"
)

// Config is everything `splash encode` needs.
type Config struct {
	ModelDir string
	// Inputs are files, directories (their *.parquet files) or globs.
	Inputs    []string
	OutputDir string
	MaxLength int
	Pooling   encode.Pooling
	Threads   int
	Library   string
	Columns   shards.Columns
	Format    shards.Format
	Encode    EncodeOptions
	// Window is how many tokenized documents the batcher sorts by length
	// together; 0 means 4096.
	Window int
	// TokenizeWorkers defaults to the number of CPUs; EncodeWorkers (ONNX
	// Runtime sessions run concurrently) to 1.
	TokenizeWorkers int
	EncodeWorkers   int
	// Overwrite re-encodes shards whose manifest records other settings or
	// another input instead of refusing to run.
	Overwrite bool
	Version   string
	// NewProgress, when set, is called once the run knows the work left
	// (documents and shards to encode) and is told about written documents.
	NewProgress func(pipeline.Totals) Progress
	// Failpoint, when set, is called at the named points of the commit
	// protocol (see the Failpoint* constants) so that crash tests can kill
	// the process exactly there. Nil in normal runs.
	Failpoint func(name string)
}

// Failpoints: the moments of the commit protocol a crash test can stop at.
const (
	FailpointRowWritten      = "row-written"      // after each row is handed to a shard writer
	FailpointShardCommitted  = "shard-committed"  // after a shard's data file took its name, before its manifest
	FailpointManifestWritten = "manifest-written" // after a shard's manifest took its name
	FailpointBeforeSuccess   = "before-success"   // after every shard, before _SUCCESS
)

func (c Config) failpoint(name string) {
	if c.Failpoint != nil {
		c.Failpoint(name)
	}
}

// Summary reports a finished run.
type Summary struct {
	Shards   int // encoded by this run
	Skipped  int // already done by an earlier run
	Counts   Counts
	Wall     time.Duration
	MaxLen   int
	NonZero  [3]int // mean (rounded), p50, p99
	DocsPerS float64
}

// String renders the summary printed at the end of a run.
func (s Summary) String() string {
	c := s.Counts
	var b strings.Builder
	fmt.Fprintf(&b, "encoded %d documents from %d shard(s) in %s (%.1f docs/s, %.0f tokens/s); %d shard(s) already done\n",
		c.Docs, s.Shards, s.Wall.Round(time.Millisecond), s.DocsPerS, float64(c.Tokens)/max(s.Wall.Seconds(), 1e-9), s.Skipped)
	fmt.Fprintf(&b, "tokens %d, padding waste %.1f%%, batches %d, truncated %d (max length %d), empty %d\n",
		c.Tokens, 100*c.PaddingWaste(), c.Batches, c.Truncated, s.MaxLen, c.Empty)
	fmt.Fprintf(&b, "non-zeros per document: mean %d, p50 %d, p99 %d", s.NonZero[0], s.NonZero[1], s.NonZero[2])
	return b.String()
}

// successRecord is the JSON summary written to _SUCCESS.
type successRecord struct {
	Shards        int     `json:"shards"`
	EncodedShards int     `json:"encoded_shards"`
	SkippedShards int     `json:"skipped_shards"`
	Documents     int64   `json:"documents"`
	Tokens        int64   `json:"tokens"`
	PaddingWaste  float64 `json:"padding_waste"`
	Truncated     int64   `json:"truncated"`
	Empty         int64   `json:"empty"`
	NonZerosMean  int     `json:"nonzeros_mean"`
	NonZerosP50   int     `json:"nonzeros_p50"`
	NonZerosP99   int     `json:"nonzeros_p99"`
	WallSeconds   float64 `json:"wall_seconds"`
	DocsPerSecond float64 `json:"docs_per_second"`
	FinishedAt    string  `json:"finished_at"`
}

func (s Summary) record(totalShards int) successRecord {
	return successRecord{
		Shards: totalShards, EncodedShards: s.Shards, SkippedShards: s.Skipped,
		Documents: s.Counts.Docs, Tokens: s.Counts.Tokens, PaddingWaste: s.Counts.PaddingWaste(),
		Truncated: s.Counts.Truncated, Empty: s.Counts.Empty,
		NonZerosMean: s.NonZero[0], NonZerosP50: s.NonZero[1], NonZerosP99: s.NonZero[2],
		WallSeconds: s.Wall.Seconds(), DocsPerSecond: s.DocsPerS, FinishedAt: time.Now().UTC().Format(time.RFC3339),
	}
}

// Run encodes every input shard into cfg.OutputDir. Shards whose manifest
// already verifies with the same input and settings are skipped; shards
// whose manifest records another input or other settings are refused unless
// cfg.Overwrite. _SUCCESS is written once every shard is done.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (Summary, error) {
	start := time.Now()
	if cfg.Window <= 0 {
		cfg.Window = 4096
	}
	if cfg.TokenizeWorkers <= 0 {
		cfg.TokenizeWorkers = runtime.GOMAXPROCS(0)
	}
	if cfg.EncodeWorkers <= 0 {
		cfg.EncodeWorkers = 1
	}
	inputs, err := shards.DiscoverInputs(cfg.Inputs)
	if errors.Is(err, shards.ErrBaseCollision) {
		return Summary{}, fmt.Errorf("%w: %w", ErrSettings, err)
	}
	if err != nil {
		return Summary{}, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	cfg.Inputs = inputs
	if err := checkOutputsSpareInputs(cfg); err != nil {
		return Summary{}, err
	}
	m, err := OpenModel(ctx, cfg.ModelDir, ModelOptions{MaxLength: cfg.MaxLength, Pooling: cfg.Pooling, Threads: cfg.Threads, Library: cfg.Library})
	if err != nil {
		return Summary{}, err
	}
	defer m.Close()
	log.Info("model loaded", slog.String("model", m.ModelFile), slog.Int("vocab", m.Backend.VocabSize()),
		slog.Int("max_length", m.MaxLength), slog.String("pooling", m.Pooling.String()))
	if err := cfg.Encode.Check(m.MaxLength); err != nil {
		return Summary{}, fmt.Errorf("%w: %w", ErrSettings, err)
	}
	if err := os.MkdirAll(cfg.OutputDir, 0o755); err != nil {
		return Summary{}, fmt.Errorf("create output directory: %w", err)
	}
	if err := shards.WriteVocabulary(cfg.OutputDir, m.Tokenizer.Vocab()); err != nil {
		return Summary{}, err
	}
	settings := settingsOf(m, cfg)
	tasks, skipped, err := planShards(ctx, m, cfg, settings, log)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{MaxLen: m.MaxLength, Skipped: skipped, Shards: len(tasks)}
	log.Info("plan", slog.Int("shards", len(inputs)), slog.Int("to_encode", len(tasks)), slog.Int("already_done", skipped))
	if len(tasks) > 0 {
		// A _SUCCESS from an earlier run no longer holds while shards are redone.
		if err := shards.RemoveSuccess(cfg.OutputDir); err != nil {
			return Summary{}, err
		}
	}
	var progress Progress
	if cfg.NewProgress != nil {
		var docs int64
		for _, t := range tasks {
			docs += t.rows
		}
		progress = cfg.NewProgress(pipeline.Totals{Docs: docs, Shards: len(tasks)})
		progress.Start(ctx)
	}
	counts, err := runPipeline(ctx, m, tasks, cfg, settings, progress, log)
	if progress != nil {
		progress.Stop()
	}
	if err != nil {
		return Summary{}, err
	}
	sum.Counts = counts
	sum.Wall = time.Since(start)
	sum.DocsPerS = float64(sum.Counts.Docs) / max(sum.Wall.Seconds(), 1e-9)
	sum.NonZero = nonZeroStats(sum.Counts.NonZeros)
	cfg.failpoint(FailpointBeforeSuccess)
	if err := shards.WriteSuccess(cfg.OutputDir, sum.record(len(inputs))); err != nil {
		return Summary{}, err
	}
	log.Info("done", slog.Int64("documents", sum.Counts.Docs), slog.Duration("wall", sum.Wall))
	return sum, nil
}

// planShards decides, for every input, whether to encode it: it hashes the
// input and compares with the manifest of a previous run.
func planShards(ctx context.Context, m *Model, cfg Config, settings map[string]string, log *slog.Logger) ([]shardTask, int, error) {
	var tasks []shardTask
	skipped := 0
	for _, in := range cfg.Inputs {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		st, err := os.Stat(in)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: input %s: %w", ErrBadInput, in, err)
		}
		sum, size, err := shards.FileSHA256(in)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %w", ErrBadInput, err)
		}
		ident := shards.ManifestInput{Path: in, Size: size, MTime: st.ModTime().UTC(), SHA256: sum}
		base := shards.InputBase(in)
		d, err := shards.CheckResume(cfg.OutputDir, base, ident, settings)
		if err != nil {
			return nil, 0, err
		}
		switch d.State {
		case shards.ResumeDone:
			log.Info("shard already done, skipping", slog.String("input", in))
			skipped++
			continue
		case shards.ResumeConflict:
			if !cfg.Overwrite {
				return nil, 0, fmt.Errorf("%w: %s was encoded before differently (%s): pass --overwrite to re-encode it, or choose another --output",
					ErrSettings, in, d.Reason)
			}
			log.Warn("re-encoding shard (--overwrite)", slog.String("input", in), slog.String("reason", d.Reason))
			if err := shards.RemoveShard(cfg.OutputDir, base); err != nil {
				return nil, 0, err
			}
		case shards.ResumeBroken:
			log.Warn("re-encoding shard whose output does not verify", slog.String("input", in), slog.String("reason", d.Reason))
			if err := shards.RemoveShard(cfg.OutputDir, base); err != nil {
				return nil, 0, err
			}
		}
		r, err := shards.OpenInput(in, cfg.Columns)
		if err != nil {
			return nil, 0, classify(err)
		}
		rows := r.NumRows()
		r.Close()
		tasks = append(tasks, shardTask{
			index: len(tasks), input: in, base: base, ident: ident, rows: rows,
			meta: shards.Metadata{
				SplashVersion: cfg.Version, ModelSHA256: m.ModelSHA256, TokenizerSHA256: m.TokenizerSHA256,
				VocabSize: m.Backend.VocabSize(), MaxLength: m.MaxLength, Pooling: m.Pooling.String(),
				MinWeight: cfg.Encode.Sparsify.MinWeight, TopK: cfg.Encode.Sparsify.TopK, Scale: cfg.Encode.Sparsify.Scale,
				SourcePath: in, SourceSize: size, SourceSHA256: sum,
			},
		})
	}
	return tasks, skipped, nil
}

// ErrSettings marks settings that cannot work together (for example a batch
// token budget smaller than the max length); the CLI reports bad usage.
var ErrSettings = errors.New("bad settings")

func nonZeroStats(nnz []int) [3]int {
	if len(nnz) == 0 {
		return [3]int{}
	}
	s := slices.Clone(nnz)
	slices.Sort(s)
	total := 0
	for _, n := range s {
		total += n
	}
	pct := func(p float64) int { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return [3]int{(total + len(s)/2) / len(s), pct(0.5), pct(0.99)}
}

// checkOutputsSpareInputs refuses settings under which an impact shard
// would replace one of the input shards (output directory = input directory
// with the same format). Inputs sharing a base name are refused earlier, by
// shards.DiscoverInputs.
func checkOutputsSpareInputs(cfg Config) error {
	for _, in := range cfg.Inputs {
		out := filepath.Join(cfg.OutputDir, shards.InputBase(in)+cfg.Format.Ext())
		inInfo, err := os.Stat(in)
		if err != nil {
			continue // reported when the input is read
		}
		if outInfo, err := os.Stat(out); err == nil && os.SameFile(inInfo, outInfo) {
			return fmt.Errorf("%w: the impact shard for %s would overwrite the input itself: choose another --output", ErrSettings, in)
		}
	}
	return nil
}

func settingsOf(m *Model, cfg Config) map[string]string {
	return map[string]string{
		"model_sha256":     m.ModelSHA256,
		"tokenizer_sha256": m.TokenizerSHA256,
		"max_length":       strconv.Itoa(m.MaxLength),
		"pooling":          m.Pooling.String(),
		"min_weight":       strconv.FormatFloat(float64(cfg.Encode.Sparsify.MinWeight), 'g', -1, 32),
		"top_k":            strconv.Itoa(cfg.Encode.Sparsify.TopK),
		"scale":            strconv.FormatFloat(float64(cfg.Encode.Sparsify.Scale), 'g', -1, 32),
		"id_column":        cfg.Columns.ID,
		"text_column":      cfg.Columns.Text,
		"title_column":     cfg.Columns.Title,
		"format":           cfg.Format.String(),
	}
}
