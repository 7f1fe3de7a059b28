package job

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
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
	// Session holds ONNX Runtime session settings (see SessionTuning).
	Session SessionTuning
	// Hardware says where the model runs (CPU, GPUs, auto).
	Hardware Hardware
	Columns  shards.Columns
	Format   shards.Format
	Encode   EncodeOptions
	// LongDocs says what happens to documents longer than the max length
	// (truncation by default).
	LongDocs LongDocs
	// LogitsBudget bounds the bytes of one batch's [batch, sequence, vocab]
	// float32 logits, which grow with the vocabulary (an LLM's 128k ids):
	// the batch token budget is lowered to fit. 0: 1 GiB on the CPU; on
	// GPUs the budget from free memory already accounts for the logits.
	LogitsBudget int64
	// Role, Echo and Bag are passed to OpenModel (see ModelOptions).
	Role string
	Echo bool
	Bag  *BagOptions
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
	// finalize` does once every index is done. 0 or 1 means all inputs.
	ShardIndex, ShardCount int
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
	// sources opens the inputs (files or objects); remote, when the output
	// is in object storage, stages and publishes its shards. Run sets both.
	sources *inputSet
	remote  *remoteOutput
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
	ByOther  int // encoded by a concurrent run while this one ran
	Rejected int64
	// Duplicates are document ids found in more than one output shard (both
	// rows are kept); DuplicateExamples lists some of them.
	Duplicates        int
	DuplicateExamples []string
	Counts            Counts
	Wall              time.Duration
	ModelLoad         time.Duration // part of Wall: reading the model and creating the session
	MaxLen            int
	NonZero           [3]int // mean (rounded), p50, p99
	DocsPerS          float64
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
	sources, err := discoverInputs(ctx, cfg.Inputs)
	if err != nil {
		return Summary{}, err
	}
	defer sources.Close()
	cfg.sources = sources
	inputs := sources.names
	remote, err := openRemoteOutput(ctx, cfg.OutputDir)
	if err != nil {
		return Summary{}, err
	}
	outputName := cfg.OutputDir
	if remote != nil {
		defer remote.Close()
		if cfg.Overwrite {
			return Summary{}, fmt.Errorf("%w: --overwrite is not supported with an object storage --output yet: delete the shard's manifest (_manifest.NAME.json) under %s instead", ErrSettings, cfg.OutputDir)
		}
		cfg.remote = remote
		cfg.OutputDir = remote.staging
		log.Info("output in object storage: shards are staged locally, then published", slog.String("output", outputName), slog.String("staging", remote.staging))
	}
	if cfg.ShardCount > 1 {
		mine, err := shards.AssignShards(inputs, cfg.ShardIndex, cfg.ShardCount)
		if err != nil {
			return Summary{}, fmt.Errorf("%w: %w", ErrSettings, err)
		}
		log.Info("shard index", slog.Int("shard_index", cfg.ShardIndex), slog.Int("shard_count", cfg.ShardCount),
			slog.Int("inputs", len(inputs)), slog.Int("assigned", len(mine)))
		if len(mine) == 0 {
			log.Info("no input shard falls to this index: nothing to do")
			return Summary{}, nil
		}
		inputs = mine
	}
	cfg.Inputs = inputs
	if err := checkOutputsSpareInputs(cfg); err != nil {
		return Summary{}, err
	}
	m, err := OpenModel(ctx, cfg.ModelDir, ModelOptions{
		MaxLength: cfg.MaxLength, Pooling: cfg.Pooling, Threads: cfg.Threads, Library: cfg.Library, Session: cfg.Session,
		Hardware: cfg.Hardware, Log: log, Role: cfg.Role, Echo: cfg.Echo, Bag: cfg.Bag,
	})
	if err != nil {
		return Summary{}, err
	}
	defer m.Close()
	modelLoad := time.Since(start)
	if cfg.LongDocs, err = cfg.LongDocs.resolve(m.MaxLength, m.Tokenizer.NumSpecialTokens(), m.Echo); err != nil {
		return Summary{}, err
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
		return Summary{}, fmt.Errorf("%w: %w", ErrSettings, err)
	}
	if err := os.MkdirAll(cfg.OutputDir, 0o755); err != nil {
		return Summary{}, fmt.Errorf("create output directory: %w", err)
	}
	runLock, cleaned, err := shards.LockRun(ctx, cfg.OutputDir)
	if err != nil {
		return Summary{}, err
	}
	defer runLock.Unlock()
	if len(cleaned) > 0 {
		log.Info("removed temp files of killed runs", slog.Int("files", len(cleaned)))
	}
	if err := shards.WriteVocabulary(cfg.OutputDir, m.Tokenizer.Vocab()); err != nil {
		return Summary{}, err
	}
	if cfg.remote != nil {
		if err := cfg.remote.putVocabulary(ctx); err != nil {
			return Summary{}, err
		}
	}
	settings := settingsOf(m, cfg)
	p, err := planShards(ctx, m, cfg, settings, log)
	if err != nil {
		return Summary{}, err
	}
	tasks := p.tasks
	sum := Summary{MaxLen: m.MaxLength, Skipped: p.skipped, ModelLoad: modelLoad}
	log.Info("plan", slog.Int("shards", len(inputs)), slog.Int("to_encode", len(tasks)), slog.Int("already_done", p.skipped),
		slog.Int("unreadable", len(p.failed)))
	if len(tasks) > 0 || len(p.failed) > 0 {
		// A _SUCCESS from an earlier run no longer holds while shards are redone.
		if err := shards.RemoveSuccess(cfg.OutputDir); err != nil {
			return Summary{}, err
		}
		if cfg.remote != nil {
			if err := cfg.remote.store.RemoveSuccess(ctx); err != nil {
				return Summary{}, err
			}
		}
	}
	var planned int64 // documents of the shards to encode
	for _, t := range tasks {
		planned += t.rows
	}
	cfg.Metrics.Plan(len(tasks), planned)
	var progress Progress
	if cfg.NewProgress != nil {
		progress = cfg.NewProgress(pipeline.Totals{Docs: planned, Shards: len(tasks)})
		progress.Start(ctx)
	}
	bad := &badBudget{maxFraction: cfg.MaxBadFraction, totalRows: p.totalRows, rejected: p.rejected, outDir: cfg.OutputDir}
	counts, res, err := runPipeline(ctx, m, tasks, cfg, settings, bad, progress, log)
	if progress != nil {
		progress.Stop()
	}
	if err != nil {
		return Summary{}, err
	}
	sum.Shards, sum.ByOther, sum.Rejected = res.encoded, res.byOther, res.rejected
	sum.Counts = counts
	sum.Wall = time.Since(start)
	sum.DocsPerS = float64(sum.Counts.Docs) / max(sum.Wall.Seconds(), 1e-9)
	sum.NonZero = nonZeroStats(sum.Counts.NonZeros)
	if removed, err := runLock.CleanIfAlone(); err != nil {
		log.Warn("could not remove temp files", slog.String("error", err.Error()))
	} else if len(removed) > 0 {
		log.Info("removed temp files of killed runs", slog.Int("files", len(removed)))
	}
	if failed := append(p.failed, res.failed...); len(failed) > 0 {
		return sum, failedShardsError(failed, len(inputs))
	}
	if cfg.ShardCount > 1 {
		// The directory is complete only once every index is done: that is
		// for `splash finalize` to check.
		log.Info("this shard index is done; run splash finalize once every index is", slog.Int("shard_index", cfg.ShardIndex),
			slog.Int("shard_count", cfg.ShardCount), slog.Int64("documents", sum.Counts.Docs), slog.Duration("wall", sum.Wall))
		cfg.Metrics.Succeeded(time.Now())
		return sum, nil
	}
	// Every shard is done now, by this run or another: check the whole
	// directory against the bad-row budget and for ids in two shards.
	checkDir := cfg.OutputDir
	var all []shards.Manifest
	if cfg.remote != nil {
		checkDir = filepath.Join(cfg.remote.staging, "complete")
		if err := os.MkdirAll(checkDir, 0o755); err != nil {
			return sum, fmt.Errorf("create %s: %w", checkDir, err)
		}
		var problems []string
		bases := make([]string, len(inputs))
		for i, in := range inputs {
			bases[i] = shards.InputBase(in)
		}
		if all, problems, err = cfg.remote.completeShards(ctx, bases, checkDir); err != nil {
			return sum, err
		}
		if len(problems) > 0 {
			return sum, fmt.Errorf("%d shard(s) in %s do not verify after the run:\n  %s", len(problems), outputName, strings.Join(problems, "\n  "))
		}
	} else if all, err = doneManifests(cfg.OutputDir, inputs); err != nil {
		return sum, err
	}
	dups, err := checkDirectory(ctx, checkDir, all, cfg.MaxBadFraction, log)
	if err != nil {
		return sum, err
	}
	sum.Duplicates = len(dups)
	for _, d := range dups[:min(len(dups), 20)] {
		sum.DuplicateExamples = append(sum.DuplicateExamples, d.id)
	}
	cfg.failpoint(FailpointBeforeSuccess)
	if cfg.remote != nil {
		if err := cfg.remote.store.WriteSuccess(ctx, sum.record(len(inputs))); err != nil {
			return Summary{}, err
		}
	} else if err := shards.WriteSuccess(cfg.OutputDir, sum.record(len(inputs))); err != nil {
		return Summary{}, err
	}
	cfg.Metrics.Succeeded(time.Now())
	log.Info("done", slog.Int64("documents", sum.Counts.Docs), slog.Duration("wall", sum.Wall))
	return sum, nil
}

// badBudget enforces MaxBadFraction: rejected rows against all input rows.
type badBudget struct {
	maxFraction float64
	totalRows   int64
	rejected    int64
	outDir      string
}

func (b *badBudget) add(n int64) error {
	b.rejected += n
	return b.check()
}

func (b *badBudget) check() error {
	if b.rejected == 0 || float64(b.rejected) <= b.maxFraction*float64(b.totalRows) {
		return nil
	}
	return fmt.Errorf("%w: %d of %d input rows (%.4g%%) were rejected, more than --max-bad-fraction %g allows: see the dead-letter files %s",
		ErrBadInput, b.rejected, b.totalRows, 100*float64(b.rejected)/float64(max(b.totalRows, 1)), b.maxFraction,
		filepath.Join(b.outDir, "_rejected.*.jsonl"))
}

// failedShardsError reports every input shard that could not be encoded.
// It is bad input (exit code 3) when every failure is.
func failedShardsError(failed []shardFailure, total int) error {
	var b strings.Builder
	allBad := true
	for _, f := range failed {
		fmt.Fprintf(&b, "\n  %s: %v", f.input, f.err)
		allBad = allBad && errors.Is(f.err, ErrBadInput)
	}
	msg := fmt.Sprintf("%d of %d input shard(s) could not be encoded (the others were):%s", len(failed), total, b.String())
	if allBad {
		return fmt.Errorf("%w: %s", ErrBadInput, msg)
	}
	return fmt.Errorf("%s", msg)
}

// doneManifests reads the manifest of every input's shard; all are done.
func doneManifests(outDir string, inputs []string) ([]shards.Manifest, error) {
	var all []shards.Manifest
	for _, in := range inputs {
		m, err := shards.ReadManifest(filepath.Join(outDir, shards.ManifestName(shards.InputBase(in))))
		if err != nil {
			return nil, err
		}
		all = append(all, m)
	}
	return all, nil
}

// plan is what planShards found.
type plan struct {
	tasks     []shardTask
	skipped   int            // done by an earlier run
	failed    []shardFailure // inputs that cannot be read at all
	totalRows int64          // input rows of all shards that can be read
	rejected  int64          // rows rejected by the earlier runs of skipped shards
}

// planShards decides, for every input, whether to encode it: it hashes the
// input and compares with the manifest of a previous run. An input that
// cannot be opened (not Parquet, truncated, missing columns...) fails alone
// and the others are planned. Nothing is removed here: the reader clears a
// shard's leftovers once it holds the shard's lock.
func planShards(ctx context.Context, m *Model, cfg Config, settings map[string]string, log *slog.Logger) (plan, error) {
	var p plan
	for _, in := range cfg.Inputs {
		if err := ctx.Err(); err != nil {
			return plan{}, err
		}
		fail := func(err error) {
			if errors.Is(err, fs.ErrPermission) && !errors.Is(err, ErrBadInput) {
				err = fmt.Errorf("%w: %w", ErrBadInput, err) // fixing it takes a person
			}
			log.Error("input shard cannot be read", slog.String("input", in), slog.String("error", err.Error()))
			p.failed = append(p.failed, shardFailure{input: in, err: err})
		}
		ident, err := cfg.sources.identity(in)
		if err != nil {
			fail(err)
			continue
		}
		base := shards.InputBase(in)
		d, err := checkResume(ctx, cfg, base, ident, settings)
		if err != nil {
			return plan{}, err
		}
		switch d.State {
		case shards.ResumeDone:
			log.Info("shard already done, skipping", slog.String("input", in))
			p.skipped++
			p.totalRows += d.Manifest.Input.Rows
			if d.Manifest.Rejected != nil {
				p.rejected += d.Manifest.Rejected.Rows
			}
			continue
		case shards.ResumeConflict:
			if !cfg.Overwrite {
				return plan{}, fmt.Errorf("%w: %s was encoded before differently (%s): pass --overwrite to re-encode it, or choose another --output",
					ErrSettings, in, d.Reason)
			}
			log.Warn("re-encoding shard (--overwrite)", slog.String("input", in), slog.String("reason", d.Reason))
		case shards.ResumeBroken:
			log.Warn("re-encoding shard whose output does not verify", slog.String("input", in), slog.String("reason", d.Reason))
		}
		r, err := cfg.sources.open(ctx, in, cfg.Columns)
		if err != nil {
			fail(classify(err))
			continue
		}
		rows := r.NumRows()
		r.Close()
		ident.Rows = rows
		p.totalRows += rows
		p.tasks = append(p.tasks, shardTask{
			index: len(p.tasks), input: in, base: base, ident: ident, rows: rows,
			meta: shards.Metadata{
				SplashVersion: cfg.Version, ModelSHA256: m.ModelSHA256, TokenizerSHA256: m.TokenizerSHA256,
				VocabSize: m.Backend.VocabSize(), MaxLength: m.MaxLength, Pooling: m.Pooling.String(),
				MinWeight: cfg.Encode.Sparsify.MinWeight, TopK: cfg.Encode.Sparsify.TopK, Scale: cfg.Encode.Sparsify.Scale,
				SourcePath: in, SourceSize: ident.Size, SourceSHA256: ident.SHA256,
				Extra: encodingMetadata(m, cfg),
			},
		})
	}
	return p, nil
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

// encodingSettings are the settings beyond those of every run: the role,
// how texts reach the model, and windows. Only settings that differ from
// the defaults are listed, so that documents encoded by default keep the
// settings (and metadata) they had before these existed, and resume.
func encodingSettings(m *Model, cfg Config) map[string]string {
	s := map[string]string{}
	if m.Role != RoleDocument {
		s["role"] = m.Role
	}
	if k := m.encoderKind(); k != "model" {
		s["encoder"] = k
	}
	if cfg.LongDocs.windowed() {
		maps.Copy(s, cfg.LongDocs.settings())
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

// encoderKind names how texts become vectors: "model", "model+echo", "bag"
// or "bag+idf".
func (m *Model) encoderKind() string {
	switch {
	case m.Bag && m.BagIDF != "":
		return "bag+idf"
	case m.Bag:
		return "bag"
	case m.Echo:
		return "model+echo"
	default:
		return "model"
	}
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
