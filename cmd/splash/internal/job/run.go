package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/gpu"
	"github.com/splash-encode/splash/pipeline"
	"github.com/splash-encode/splash/shards"
)

// Config is everything `splash encode` needs.
type Config struct {
	ModelDir string
	// Inputs are files, directories (their *.parquet and text inputs) or
	// globs. Text inputs (JSON Lines, TSV) larger than PartSize are cut
	// into parts, each its own output shard (0: shards.DefaultPartSize).
	Inputs    []string
	PartSize  int64
	OutputDir string
	MaxLength int
	// Device says where the model runs (CPU, GPUs, auto); Backend
	// configures the engine (pooling, threads, library, session and GPU
	// settings); Registry opens the backends (nil: gpu.Default()). See
	// ModelOptions.
	Device   gpu.Selection
	Backend  gpu.Options
	Registry *gpu.Registry
	Columns  shards.Columns
	Format   shards.Format
	Encode   encode.EncodeOptions
	// LongDocs says what happens to documents longer than the max length
	// (truncation by default).
	LongDocs encode.LongDocs
	// LogitsBudget bounds the bytes of one batch's [batch, sequence, vocab]
	// float32 logits, which grow with the vocabulary (an LLM's 128k ids):
	// the batch token budget is lowered to fit. 0: 1 GiB on the CPU; on
	// GPUs the budget from free memory already accounts for the logits.
	LogitsBudget int64
	// Role, Echo and Bag are passed to OpenModel (see ModelOptions).
	Role string
	Echo bool
	Bag  *encode.BagOptions
	// Window is how many tokenized documents the batcher sorts by length
	// together; 0 means 4096.
	Window int
	// TokenizeWorkers defaults to the number of CPUs; EncodeWorkers (ONNX
	// Runtime sessions run concurrently) to 1.
	TokenizeWorkers int
	EncodeWorkers   int
	// Metrics, when set, records the run for Prometheus (documents, tokens,
	// bad rows, batch times per device, shards); nil records nothing.
	Metrics *pipeline.Metrics
	// ShardIndex and ShardCount split the inputs between ShardCount
	// processes (shards.AssignShards); this run encodes index ShardIndex's
	// share. With ShardCount > 1 the run does not write _SUCCESS: `splash
	// finalize` does once every index is done, or, with
	// FinalizeWhenComplete, the index that finishes last. 0 or 1 means all
	// inputs.
	ShardIndex, ShardCount int
	// FinalizeWhenComplete (--finalize-when-complete), with ShardCount > 1:
	// once this index has committed its shards, it looks whether every
	// input shard of the whole run (all of Inputs) is committed; if so it
	// runs splash finalize's checks and writes _SUCCESS create-only, so
	// that exactly one index finalizes (shards.Output.FinalizeIfComplete).
	// A failed check fails the run. Without ShardCount > 1 it changes
	// nothing: the run writes _SUCCESS anyway.
	FinalizeWhenComplete bool
	// Overwrite re-encodes shards whose manifest records other settings or
	// another input instead of refusing to run.
	Overwrite bool
	// MaxBadFraction fails the run once the rejected input rows (see
	// shards.Rejected) exceed this fraction of all input rows of the output
	// directory's shards: 0 fails on the first rejected row, 1 never.
	MaxBadFraction float64
	Version        string
	// NewProgress, when set, is called once the run knows the work left
	// (documents and shards to encode) and is told about written documents.
	NewProgress func(pipeline.Totals) Progress
	// Failpoint, when set, is called at the named points of the commit
	// protocol (see the shards.Failpoint* constants) so that crash tests
	// can kill the process exactly there. Nil in normal runs.
	Failpoint func(name string)
}

// Progress receives a run's progress (pipeline.Progress implements it).
type Progress interface {
	Start(ctx context.Context)
	AddDocs(docs, tokens int64)
	ShardDone()
	Stop()
}

// Summary reports a finished run.
type Summary struct {
	Shards   int // encoded by this run
	Skipped  int // already done by an earlier run
	ByOther  int // encoded by a concurrent run while this one ran
	Rejected int64
	// Duplicates are document ids found in more than one output shard (both
	// rows are kept); DuplicateExamples lists some of them.
	Duplicates        int
	DuplicateExamples []string
	Counts            encode.Counts
	Wall              time.Duration
	ModelLoad         time.Duration // part of Wall: reading the model and creating the session
	MaxLen            int
	NonZero           [3]int // mean (rounded), p50, p99
	DocsPerS          float64
	// Finalized is set when this index of a --shard-count run found every
	// shard committed and wrote _SUCCESS (Config.FinalizeWhenComplete).
	Finalized bool
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
	if s.Rejected > 0 {
		fmt.Fprintf(&b, "\nrejected %d input rows (see _rejected.*.jsonl)", s.Rejected)
	}
	if s.ByOther > 0 {
		fmt.Fprintf(&b, "\n%d shard(s) encoded by another run meanwhile", s.ByOther)
	}
	if s.Duplicates > 0 {
		fmt.Fprintf(&b, "\n%d document id(s) appear in more than one shard, e.g. %q", s.Duplicates, s.DuplicateExamples[0])
	}
	if s.Finalized {
		b.WriteString("\nevery shard of the run is done: this index finalized the output (_SUCCESS)")
	}
	return b.String()
}

// successRecord is the JSON summary written to _SUCCESS.
type successRecord struct {
	Shards        int      `json:"shards"`
	EncodedShards int      `json:"encoded_shards"`
	SkippedShards int      `json:"skipped_shards"`
	ByOtherShards int      `json:"shards_encoded_by_other_runs"`
	Rejected      int64    `json:"rejected_rows"`
	Duplicates    int      `json:"duplicate_ids_across_shards"`
	DupExamples   []string `json:"duplicate_id_examples,omitempty"`
	Documents     int64    `json:"documents"`
	Tokens        int64    `json:"tokens"`
	PaddingWaste  float64  `json:"padding_waste"`
	Truncated     int64    `json:"truncated"`
	Empty         int64    `json:"empty"`
	NonZerosMean  int      `json:"nonzeros_mean"`
	NonZerosP50   int      `json:"nonzeros_p50"`
	NonZerosP99   int      `json:"nonzeros_p99"`
	WallSeconds   float64  `json:"wall_seconds"`
	ModelLoadSecs float64  `json:"model_load_seconds"`
	DocsPerSecond float64  `json:"docs_per_second"`
	FinishedAt    string   `json:"finished_at"`
}

func (s Summary) record(totalShards int) successRecord {
	return successRecord{
		Shards: totalShards, EncodedShards: s.Shards, SkippedShards: s.Skipped, ByOtherShards: s.ByOther,
		Rejected: s.Rejected, Duplicates: s.Duplicates, DupExamples: s.DuplicateExamples,
		Documents: s.Counts.Docs, Tokens: s.Counts.Tokens, PaddingWaste: s.Counts.PaddingWaste(),
		Truncated: s.Counts.Truncated, Empty: s.Counts.Empty,
		NonZerosMean: s.NonZero[0], NonZerosP50: s.NonZero[1], NonZerosP99: s.NonZero[2],
		WallSeconds: s.Wall.Seconds(), ModelLoadSecs: s.ModelLoad.Seconds(), DocsPerSecond: s.DocsPerS, FinishedAt: time.Now().UTC().Format(time.RFC3339),
	}
}

// Run encodes every input shard into cfg.OutputDir. Shards whose manifest
// already verifies with the same input and settings are skipped; shards
// whose manifest records another input or other settings are refused unless
// cfg.Overwrite. _SUCCESS is written once every shard is done.
//
// Run is wiring: shards finds the inputs and owns the output and its commit
// protocol, gpu's registry opens the model's backends, and encode.Stream
// (built from package pipeline's stages) runs the documents from the
// output's reader to its writer.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (Summary, error) {
	start := time.Now()
	if cfg.Window <= 0 {
		cfg.Window = encode.DefaultWindow
	}
	if cfg.TokenizeWorkers <= 0 {
		cfg.TokenizeWorkers = runtime.GOMAXPROCS(0)
	}
	if cfg.EncodeWorkers <= 0 {
		cfg.EncodeWorkers = 1
	}
	sources, err := shards.DiscoverSources(ctx, cfg.Inputs, shards.SourceOptions{PartSize: cfg.PartSize})
	if err != nil {
		return Summary{}, err
	}
	defer sources.Close()
	out, err := openOutput(ctx, cfg, log)
	if err != nil {
		return Summary{}, err
	}
	defer out.Close()
	inputs, err := assignedInputs(cfg, sources.Names, log)
	if err != nil {
		return Summary{}, err
	}
	if cfg.ShardCount > 1 && len(inputs) == 0 {
		return Summary{}, nil // logged: no input falls to this index
	}
	if err := out.SpareInputs(inputs); err != nil {
		return Summary{}, err
	}
	m, err := OpenModel(ctx, cfg.ModelDir, ModelOptions{
		MaxLength: cfg.MaxLength, Device: cfg.Device, Backend: cfg.Backend, Registry: cfg.Registry,
		Log: log, Role: cfg.Role, Echo: cfg.Echo, Bag: cfg.Bag,
	})
	if err != nil {
		return Summary{}, err
	}
	defer m.Close()
	modelLoad := time.Since(start)
	if err := resolveEncoding(&cfg, m, modelLoad, log); err != nil {
		return Summary{}, err
	}
	if err := out.Begin(ctx, m.Tokenizer.Vocab()); err != nil {
		return Summary{}, err
	}
	p, err := out.Plan(ctx, sources, inputs, settingsOf(m, cfg), shards.Metadata{
		SplashVersion: cfg.Version, ModelSHA256: m.ModelSHA256, TokenizerSHA256: m.TokenizerSHA256,
		VocabSize: m.Backend.VocabSize(), MaxLength: m.MaxLength, Pooling: m.Pooling.String(),
		MinWeight: cfg.Encode.Sparsify.MinWeight, TopK: cfg.Encode.Sparsify.TopK, Scale: cfg.Encode.Sparsify.Scale,
		Extra: encodingMetadata(m, cfg),
	})
	if err != nil {
		return Summary{}, err
	}
	log.Info("plan", slog.Int("shards", len(inputs)), slog.Int("to_encode", len(p.Tasks)), slog.Int("already_done", p.Skipped),
		slog.Int("unreadable", len(p.Failed)))
	if len(p.Tasks) > 0 || len(p.Failed) > 0 {
		// A _SUCCESS from an earlier run no longer holds while shards are redone.
		if err := out.RemoveSuccess(ctx); err != nil {
			return Summary{}, err
		}
	}
	counts, res, err := encodePlan(ctx, cfg, m, out, p)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{MaxLen: m.MaxLength, Skipped: p.Skipped, ModelLoad: modelLoad,
		Shards: res.Encoded, ByOther: res.ByOther, Rejected: res.Rejected, Counts: counts}
	sum.Wall = time.Since(start)
	sum.DocsPerS = float64(sum.Counts.Docs) / max(sum.Wall.Seconds(), 1e-9)
	sum.NonZero = nonZeroStats(sum.Counts.NonZeros)
	out.CleanTemp()
	if failed := append(p.Failed, res.Failed...); len(failed) > 0 {
		return sum, failedShardsError(failed, len(inputs))
	}
	if cfg.ShardCount > 1 && cfg.FinalizeWhenComplete {
		return finalizeIfComplete(ctx, cfg, out, sources, settingsOf(m, cfg), sum, log)
	}
	return complete(ctx, cfg, out, inputs, sum, log)
}

// openOutput opens the output directory or bucket with the run's settings.
func openOutput(ctx context.Context, cfg Config, log *slog.Logger) (*shards.Output, error) {
	var observer shards.Observer
	if cfg.Metrics != nil {
		observer = cfg.Metrics
	}
	out, err := shards.OpenOutput(ctx, cfg.OutputDir, shards.OutputOptions{
		Format: cfg.Format, Columns: cfg.Columns, Overwrite: cfg.Overwrite, MaxBadFraction: cfg.MaxBadFraction,
		Version: cfg.Version, Observer: observer, Failpoint: cfg.Failpoint, Log: log,
	})
	if err != nil {
		return nil, err
	}
	if out.Remote() {
		log.Info("output in object storage: shards are staged locally, then published", slog.String("output", out.Name()), slog.String("staging", out.Dir()))
	}
	return out, nil
}

// assignedInputs returns this run's share of inputs (--shard-index of
// --shard-count); none when no input falls to it.
func assignedInputs(cfg Config, inputs []string, log *slog.Logger) ([]string, error) {
	if cfg.ShardCount <= 1 {
		return inputs, nil
	}
	mine, err := shards.AssignShards(inputs, cfg.ShardIndex, cfg.ShardCount)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSettings, err)
	}
	log.Info("shard index", slog.Int("shard_index", cfg.ShardIndex), slog.Int("shard_count", cfg.ShardCount),
		slog.Int("inputs", len(inputs)), slog.Int("assigned", len(mine)))
	if len(mine) == 0 {
		log.Info("no input shard falls to this index: nothing to do")
	}
	return mine, nil
}

// resolveEncoding fills the settings that depend on the model: windows,
// the batch token budget (lowered to the logits budget), and checks them.
func resolveEncoding(cfg *Config, m *Model, modelLoad time.Duration, log *slog.Logger) error {
	var err error
	if cfg.LongDocs, err = cfg.LongDocs.Resolve(m.MaxLength, m.Tokenizer.NumSpecialTokens(), m.Echo); err != nil {
		return err
	}
	cfg.Encode.BatchTokens = m.BatchTokens(cfg.Encode.BatchTokens)
	if limited, ok := m.logitsBound(cfg.Encode.BatchTokens, cfg.LogitsBudget); ok {
		log.Info("batch token budget lowered so that one batch's logits stay within the logits budget",
			slog.Int("batch_tokens", limited), slog.Int("from", cfg.Encode.BatchTokens), slog.Int("vocab", m.Backend.VocabSize()))
		cfg.Encode.BatchTokens = limited
	}
	log.Info("model loaded", slog.Duration("in", modelLoad), slog.String("model", m.ModelFile), slog.Int("vocab", m.Backend.VocabSize()),
		slog.Int("max_length", m.MaxLength), slog.String("pooling", m.Pooling.String()), slog.String("device", m.DeviceName()),
		slog.Int("batch_tokens", cfg.Encode.BatchTokens))
	if err := cfg.Encode.Check(m.MaxLength); err != nil {
		return fmt.Errorf("%w: %w", ErrSettings, err)
	}
	return nil
}

// encodePlan runs the plan's shards through encode's stream, from the
// output's reader to its writer, with the run's progress.
func encodePlan(ctx context.Context, cfg Config, m *Model, out *shards.Output, p *shards.Plan) (encode.Counts, shards.EncodeResult, error) {
	planned := p.Docs()
	cfg.Metrics.Plan(len(p.Tasks), planned)
	stream := encode.StreamConfig{
		Options: cfg.Encode, LongDocs: cfg.LongDocs, Shards: len(p.Tasks), Window: cfg.Window,
		TokenizeWorkers: cfg.TokenizeWorkers, Workers: m.Workers(cfg.EncodeWorkers), Metrics: cfg.Metrics,
	}
	if cfg.NewProgress != nil {
		progress := cfg.NewProgress(pipeline.Totals{Docs: planned, Shards: len(p.Tasks)})
		progress.Start(ctx)
		defer progress.Stop()
		stream.Progress = progress
	}
	enc := out.Encode(p, cfg.LongDocs.Windowed())
	defer enc.Close()
	counts, err := encode.Stream(ctx, m.Model, stream, enc, enc)
	return counts, enc.Result(), err
}

// complete ends a run whose shards are all done: with --shard-count the
// index is done (splash finalize checks the whole output; with
// --finalize-when-complete Run calls finalizeIfComplete instead); otherwise
// the whole output is checked (bad-row budget, ids in two shards) and
// _SUCCESS written.
func complete(ctx context.Context, cfg Config, out *shards.Output, inputs []string, sum Summary, log *slog.Logger) (Summary, error) {
	if cfg.ShardCount > 1 {
		log.Info("this shard index is done; run splash finalize once every index is", slog.Int("shard_index", cfg.ShardIndex),
			slog.Int("shard_count", cfg.ShardCount), slog.Int64("documents", sum.Counts.Docs), slog.Duration("wall", sum.Wall))
		cfg.Metrics.Succeeded(time.Now())
		return sum, nil
	}
	dups, err := out.Complete(ctx, inputs)
	if err != nil {
		return sum, err
	}
	sum.Duplicates = len(dups)
	for _, d := range dups[:min(len(dups), 20)] {
		sum.DuplicateExamples = append(sum.DuplicateExamples, d.ID)
	}
	if err := out.WriteSuccess(ctx, sum.record(len(inputs))); err != nil {
		return Summary{}, err
	}
	cfg.Metrics.Succeeded(time.Now())
	log.Info("done", slog.Int64("documents", sum.Counts.Docs), slog.Duration("wall", sum.Wall))
	return sum, nil
}

// finalizeIfComplete ends an index of a --shard-count run with
// --finalize-when-complete: its shards are committed; when every other
// index's are too, the output is checked as splash finalize checks it and
// _SUCCESS written, by exactly one index (see
// shards.Output.FinalizeIfComplete). settings are the run's manifest
// settings.
func finalizeIfComplete(ctx context.Context, cfg Config, out *shards.Output, sources *shards.Inputs, settings map[string]string, sum Summary, log *slog.Logger) (Summary, error) {
	host, _ := os.Hostname() // the pod's name on Kubernetes; informative only
	by := shards.FinalizingIndex{ShardIndex: cfg.ShardIndex, ShardCount: cfg.ShardCount, Host: host}
	index := []any{slog.Int("shard_index", cfg.ShardIndex), slog.Int("shard_count", cfg.ShardCount)}
	f, err := out.FinalizeIfComplete(ctx, sources, sources.Names, settings, by)
	if err != nil {
		return sum, fmt.Errorf("shard index %d committed its shards, but finalizing %s failed: %w", cfg.ShardIndex, out.Name(), err)
	}
	switch f.State {
	case shards.FinalizePending:
		log.Info(fmt.Sprintf("this shard index is done; %d of %d shards still to come; the index that finishes last finalizes", len(f.Pending), f.Total),
			append(index, slog.String("next_pending", f.Pending[0].Input), slog.String("reason", f.Pending[0].Reason),
				slog.Int64("documents", sum.Counts.Docs), slog.Duration("wall", sum.Wall))...)
	case shards.FinalizeByOther:
		log.Info("this shard index is done; every shard is committed and another index finalized the output (_SUCCESS)",
			append(index, slog.Int64("documents", sum.Counts.Docs), slog.Duration("wall", sum.Wall))...)
	case shards.FinalizeWritten:
		sum.Finalized = true
		sum.Duplicates = f.Summary.Duplicates
		sum.DuplicateExamples = f.Summary.DupExamples
		log.Info("every shard of the run is committed: this index finalized the output (_SUCCESS written)",
			append(index, slog.Int("shards", f.Summary.Shards), slog.Int64("run_documents", f.Summary.Documents),
				slog.Int64("rejected_rows", f.Summary.Rejected), slog.Int("duplicate_ids", f.Summary.Duplicates),
				slog.Int64("documents", sum.Counts.Docs), slog.Duration("wall", sum.Wall))...)
	}
	cfg.Metrics.Succeeded(time.Now())
	return sum, nil
}

// failedShardsError reports every input shard that could not be encoded.
// It is bad input (exit code 3) when every failure is.
func failedShardsError(failed []shards.ShardFailure, total int) error {
	var b strings.Builder
	allBad := true
	for _, f := range failed {
		fmt.Fprintf(&b, "\n  %s: %v", f.Input, f.Err)
		allBad = allBad && errors.Is(f.Err, ErrBadInput)
	}
	msg := fmt.Sprintf("%d of %d input shard(s) could not be encoded (the others were):%s", len(failed), total, b.String())
	if allBad {
		return fmt.Errorf("%w: %s", ErrBadInput, msg)
	}
	return fmt.Errorf("%s", msg)
}

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

// encodingSettings are the settings beyond those of every run: the role,
// how texts reach the model, and windows. Only settings that differ from
// the defaults are listed, so that documents encoded by default keep the
// settings (and metadata) they had before these existed, and resume.
func encodingSettings(m *Model, cfg Config) map[string]string {
	s := map[string]string{}
	if m.Role != encode.RoleDocument {
		s["role"] = m.Role
	}
	if k := m.EncoderKind(); k != "model" {
		s["encoder"] = k
	}
	if cfg.LongDocs.Windowed() {
		maps.Copy(s, cfg.LongDocs.Settings())
	}
	if cfg.Backend.Attention == "bidirectional" {
		s["attention"] = "bidirectional" // causal is every decoder's default
	}
	return s
}

// encodingMetadata is encodingSettings as shard metadata ("splash." keys),
// with the sha256 of the IDF file of IDF bags.
func encodingMetadata(m *Model, cfg Config) map[string]string {
	md := map[string]string{}
	for k, v := range encodingSettings(m, cfg) {
		md["splash."+k] = v
	}
	if m.BagIDF != "" {
		md["splash.idf.sha256"] = m.ModelSHA256
	}
	if len(md) == 0 {
		return nil
	}
	return md
}

func settingsOf(m *Model, cfg Config) map[string]string {
	s := baseSettings(m, cfg)
	maps.Copy(s, encodingSettings(m, cfg))
	return s
}

func baseSettings(m *Model, cfg Config) map[string]string {
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
