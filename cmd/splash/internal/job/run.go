package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/shards"
)

// Config is everything `splash encode` needs.
type Config struct {
	ModelDir  string
	Inputs    []string
	OutputDir string
	MaxLength int
	Pooling   encode.Pooling
	Threads   int
	Library   string
	Columns   shards.Columns
	Format    shards.Format
	Encode    EncodeOptions
	// Window is how many documents are read, tokenized and length-sorted
	// together; 0 means 4096.
	Window  int
	Version string
}

// Summary reports a finished run.
type Summary struct {
	Shards   int
	Counts   Counts
	Wall     time.Duration
	MaxLen   int
	Outputs  []string
	NonZero  [3]int // mean (rounded), p50, p99
	DocsPerS float64
}

// String renders the summary printed at the end of a run.
func (s Summary) String() string {
	c := s.Counts
	var b strings.Builder
	fmt.Fprintf(&b, "encoded %d documents from %d shard(s) in %s (%.1f docs/s, %.0f tokens/s)\n",
		c.Docs, s.Shards, s.Wall.Round(time.Millisecond), s.DocsPerS, float64(c.Tokens)/max(s.Wall.Seconds(), 1e-9))
	fmt.Fprintf(&b, "tokens %d, padding waste %.1f%%, batches %d, truncated %d (max length %d), empty %d\n",
		c.Tokens, 100*c.PaddingWaste(), c.Batches, c.Truncated, s.MaxLen, c.Empty)
	fmt.Fprintf(&b, "non-zeros per document: mean %d, p50 %d, p99 %d\n", s.NonZero[0], s.NonZero[1], s.NonZero[2])
	for _, o := range s.Outputs {
		fmt.Fprintf(&b, "wrote %s\n", o)
	}
	return strings.TrimRight(b.String(), "\n")
}

// Run loads the model and encodes every input shard into cfg.OutputDir.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (Summary, error) {
	start := time.Now()
	if cfg.Window <= 0 {
		cfg.Window = 4096
	}
	for _, in := range cfg.Inputs {
		if st, err := os.Stat(in); err != nil {
			return Summary{}, fmt.Errorf("%w: input %s: %v", ErrBadInput, in, err)
		} else if st.IsDir() {
			return Summary{}, fmt.Errorf("%w: input %s is a directory; pass its Parquet files", ErrBadInput, in)
		}
	}
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
	enc, err := NewEncoder(m, cfg.Encode)
	if err != nil {
		return Summary{}, fmt.Errorf("%w: %w", ErrSettings, err)
	}
	if err := os.MkdirAll(cfg.OutputDir, 0o755); err != nil {
		return Summary{}, fmt.Errorf("create output directory: %w", err)
	}
	if err := shards.WriteVocabulary(cfg.OutputDir, m.Tokenizer.Vocab()); err != nil {
		return Summary{}, err
	}
	sum := Summary{MaxLen: m.MaxLength}
	for _, in := range cfg.Inputs {
		counts, out, err := encodeShard(ctx, m, enc, in, cfg, log)
		if err != nil {
			return Summary{}, err
		}
		sum.Shards++
		sum.Counts.Add(counts)
		sum.Outputs = append(sum.Outputs, out)
	}
	sum.Wall = time.Since(start)
	sum.DocsPerS = float64(sum.Counts.Docs) / max(sum.Wall.Seconds(), 1e-9)
	sum.NonZero = nonZeroStats(sum.Counts.NonZeros)
	log.Info("done", slog.Int64("documents", sum.Counts.Docs), slog.Duration("wall", sum.Wall))
	return sum, nil
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
// with the same format), or two inputs would write the same output.
func checkOutputsSpareInputs(cfg Config) error {
	seen := map[string]string{}
	for _, in := range cfg.Inputs {
		out := filepath.Join(cfg.OutputDir, shardBase(in)+cfg.Format.Ext())
		if prev, dup := seen[out]; dup {
			return fmt.Errorf("%w: inputs %s and %s would both be written to %s", ErrSettings, prev, in, out)
		}
		seen[out] = in
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

// shardBase is the output base name of an input shard: its file name
// without the .parquet extension.
func shardBase(input string) string {
	base := filepath.Base(input)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// encodeShard encodes one input shard and commits its output and manifest.
func encodeShard(ctx context.Context, m *Model, enc *Encoder, input string, cfg Config, log *slog.Logger) (Counts, string, error) {
	var counts Counts
	st, err := os.Stat(input)
	if err != nil {
		return counts, "", fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	srcMTime := st.ModTime().UTC()
	srcSum, srcSize, err := shards.FileSHA256(input)
	if err != nil {
		return counts, "", fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	r, err := shards.OpenInput(input, cfg.Columns)
	if err != nil {
		return counts, "", fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	defer r.Close()
	meta := shards.Metadata{
		SplashVersion: cfg.Version, ModelSHA256: m.ModelSHA256, TokenizerSHA256: m.TokenizerSHA256,
		VocabSize: m.Backend.VocabSize(), MaxLength: m.MaxLength, Pooling: m.Pooling.String(),
		MinWeight: cfg.Encode.Sparsify.MinWeight, TopK: cfg.Encode.Sparsify.TopK, Scale: cfg.Encode.Sparsify.Scale,
		SourcePath: input, SourceSize: srcSize, SourceSHA256: srcSum,
	}
	base := shardBase(input)
	w, err := shards.NewWriter(cfg.OutputDir, base, cfg.Format, meta, shards.WriterOptions{})
	if err != nil {
		return counts, "", err
	}
	committed := false
	defer func() {
		if !committed {
			_ = w.Abort()
		}
	}()
	log.Info("encoding shard", slog.String("input", input), slog.Int64("rows", r.NumRows()))
	texts := make([]string, 0, cfg.Window)
	for {
		docs, err := r.Next(ctx, cfg.Window)
		if len(docs) > 0 {
			texts = texts[:0]
			for _, d := range docs {
				texts = append(texts, d.Doc.Text)
			}
			results, c, encErr := enc.Encode(ctx, texts)
			if encErr != nil {
				return counts, "", fmt.Errorf("%s: %w", input, encErr)
			}
			counts.Add(c)
			for i, d := range docs {
				row := shards.Row{DocID: d.Doc.ID, Vec: results[i].Vec, NumTokens: results[i].NumTokens, Truncated: results[i].Truncated}
				if err := w.Write(row); err != nil {
					return counts, "", fmt.Errorf("write %s row %d: %w", base, d.Row, err)
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, shards.ErrInvalidInput) {
				return counts, "", fmt.Errorf("%w: %w", ErrBadInput, err)
			}
			return counts, "", err
		}
	}
	out, err := w.Commit()
	if err != nil {
		return counts, "", err
	}
	committed = true
	man := shards.Manifest{
		SchemaVersion: shards.SchemaVersion,
		SplashVersion: cfg.Version,
		Input:         shards.ManifestInput{Path: input, Size: srcSize, MTime: srcMTime, SHA256: srcSum},
		Settings:      settingsOf(m, cfg),
		Output:        shards.NewManifestOutput(out, cfg.Format),
		CreatedAt:     time.Now().UTC(),
	}
	if err := shards.WriteManifest(cfg.OutputDir, man); err != nil {
		return counts, "", err
	}
	log.Info("shard done", slog.String("output", out.Path), slog.Int64("rows", out.Rows))
	return counts, out.Path, nil
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
