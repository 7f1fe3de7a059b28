// Command cpubench measures the CPU side of `splash encode`: the whole
// pipeline from Parquet documents to committed impact shards, with a
// backend that does no arithmetic (encodetest.SpladeLike) in place of
// the model, so that what it measures is what the CPU must keep up with
// while a GPU encodes.
//
//	go run ./scripts/cpubench                      # both cases, GOMAXPROCS 1 and 2, 3 runs each
//	go run ./scripts/cpubench -cases cran -procs 1 -cpuprofile /tmp/cpubench
//
// It writes the input shards once per case (outside the timed runs), then
// runs, for every GOMAXPROCS of -procs, what job.Run does after loading the
// model: shards.Output plans the shards (hashing each input), the stream
// reads them (shards' Parquet reader), tokenizes them with the real
// tokenizer (testdata/tokenizers/bert-base-uncased/tokenizer.json, bert-base-uncased), batches
// them by length, runs the fake backend, sparsifies the pooled rows and
// writes, commits and checks the impact shards (zstd Parquet, manifests,
// the duplicate-id check, _SUCCESS).
//
// Cases:
//   - cran: the Cranfield documents of testdata/cranfield/docs-00000.parquet
//     (title + text, 350 abstracts), repeated with new ids.
//   - long: eight consecutive Cranfield documents joined, each truncated at
//     512 tokens.
//
// The fake backend gives each document 100–200 non-zero weights at
// pseudo-random term ids (a function of its tokens). With -rows csr (the
// default) it hands the stream each row's non-zeros, as splash's CUDA
// engine does (encodetest.SpladeLikeCSR); with -rows dense it writes every
// float of the [batch × 30,522] pooled rows, as ONNX Runtime's copy to the
// host does, and the stream sparsifies them on the CPU.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/encodetest"
	"github.com/splash-encode/splash/shards"
)

// config is what the flags set.
type config struct {
	tokenizer   string
	input       string
	cases       []string
	cranDocs    int
	longDocs    int
	join        int
	procs       []int
	runs        int
	warmup      bool
	batchTokens int
	maxBatch    int
	shardRows   int
	workDir     string
	cpuProfile  string
	minTerms    int
	maxTerms    int
	rows        string
}

func main() {
	var cfg config
	var cases, procs string
	flag.StringVar(&cfg.tokenizer, "tokenizer", "testdata/tokenizers/bert-base-uncased/tokenizer.json", "tokenizer.json of the model")
	flag.StringVar(&cfg.input, "input", "testdata/cranfield/docs-00000.parquet", "Parquet documents (id, title, text) to repeat")
	flag.StringVar(&cases, "cases", "cran,long", "cases to run: cran (the documents as they are), long (each truncated at 512 tokens)")
	flag.IntVar(&cfg.cranDocs, "cran-docs", 40000, "documents of the cran case")
	flag.IntVar(&cfg.longDocs, "long-docs", 10000, "documents of the long case")
	flag.IntVar(&cfg.join, "join", 8, "input documents joined into one of the long case")
	flag.StringVar(&procs, "procs", "1,2", "GOMAXPROCS values to run each case with")
	flag.IntVar(&cfg.runs, "runs", 3, "timed runs per case and GOMAXPROCS")
	flag.BoolVar(&cfg.warmup, "warmup", true, "one untimed run per case first")
	flag.IntVar(&cfg.batchTokens, "batch-tokens", 65536, "batch token budget (65536: what splash chooses on an 80 GB GPU)")
	flag.IntVar(&cfg.maxBatch, "max-batch", 128, "most documents in one batch (splash encode's default)")
	flag.IntVar(&cfg.shardRows, "shard-rows", 10000, "documents per input shard")
	flag.StringVar(&cfg.workDir, "work", "", "directory for the inputs and outputs (default: a new temp directory, removed at the end)")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the timed runs of each case and GOMAXPROCS to PREFIX.CASE.pN.pprof")
	flag.IntVar(&cfg.minTerms, "min-terms", encodetest.DefaultMinTerms, "fewest non-zero weights the fake backend gives a document")
	flag.IntVar(&cfg.maxTerms, "max-terms", encodetest.DefaultMaxTerms, "most non-zero weights the fake backend gives a document")
	flag.StringVar(&cfg.rows, "rows", "csr", "what the fake backend hands the stream: csr (each row's non-zeros, as splash's CUDA engine does) or dense (the [batch × vocabulary] pooled rows, as ONNX Runtime does, sparsified on the CPU)")
	flag.Parse()
	if cfg.rows != "csr" && cfg.rows != "dense" {
		fmt.Fprintf(os.Stderr, "cpubench: -rows %q: want csr or dense\n", cfg.rows)
		os.Exit(2)
	}
	cfg.cases = strings.Split(cases, ",")
	for _, p := range strings.Split(procs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "cpubench: -procs %q: want positive integers\n", procs)
			os.Exit(2)
		}
		cfg.procs = append(cfg.procs, n)
	}
	if err := run(context.Background(), cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cpubench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, w io.Writer) error {
	work := cfg.workDir
	if work == "" {
		dir, err := os.MkdirTemp("", "cpubench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		work = dir
	}
	m, err := loadModel(cfg, filepath.Join(work, "model"))
	if err != nil {
		return err
	}
	src, err := readDocs(cfg.input)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "machine: %d CPUs (%s), %s %s/%s\n", runtime.NumCPU(), cpuModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "batch tokens %d, max batch %d, window %d, fake backend %d–%d terms per document, rows handed over as %s\n",
		cfg.batchTokens, cfg.maxBatch, encode.DefaultWindow, cfg.minTerms, cfg.maxTerms, cfg.rows)
	for _, c := range cfg.cases {
		var docs []inDoc
		switch c {
		case "cran":
			docs = cranCase(src, cfg.cranDocs)
		case "long":
			docs = longCase(src, cfg.longDocs, cfg.join)
		default:
			return fmt.Errorf("unknown case %q: want cran or long", c)
		}
		in := filepath.Join(work, c, "input")
		if err := writeInputs(in, docs, cfg.shardRows); err != nil {
			return err
		}
		r := runner{cfg: cfg, m: m, glob: filepath.Join(in, "*.parquet"), out: filepath.Join(work, c, "output")}
		if cfg.warmup {
			if _, err := r.once(ctx); err != nil {
				return err
			}
		}
		for _, p := range cfg.procs {
			prev := runtime.GOMAXPROCS(p)
			res, err := r.repeat(ctx, c, p)
			runtime.GOMAXPROCS(prev)
			if err != nil {
				return err
			}
			res.print(w, c, p)
		}
	}
	return nil
}

// inDoc is a row of an input shard.
type inDoc struct {
	ID    string `parquet:"id"`
	Title string `parquet:"title"`
	Text  string `parquet:"text"`
}

// readDocs reads the documents to repeat.
func readDocs(path string) ([]inDoc, error) {
	type row struct {
		ID    *string `parquet:"id,optional"`
		Title *string `parquet:"title,optional"`
		Text  *string `parquet:"text,optional"`
	}
	rows, err := parquet.ReadFile[row](path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	str := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	var docs []inDoc
	for _, r := range rows {
		if r.ID != nil && r.Text != nil {
			docs = append(docs, inDoc{ID: *r.ID, Title: str(r.Title), Text: *r.Text})
		}
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: no documents", path)
	}
	return docs, nil
}

// cranCase repeats src to n documents, each with a new id.
func cranCase(src []inDoc, n int) []inDoc {
	docs := make([]inDoc, n)
	for i := range docs {
		d := src[i%len(src)]
		d.ID = fmt.Sprintf("%s-%d", d.ID, i/len(src))
		docs[i] = d
	}
	return docs
}

// longCase makes n documents of join consecutive documents of src each.
func longCase(src []inDoc, n, join int) []inDoc {
	docs := make([]inDoc, n)
	for i := range docs {
		parts := make([]string, join)
		for k := range parts {
			d := src[(i+k)%len(src)]
			parts[k] = d.Title + " " + d.Text
		}
		docs[i] = inDoc{ID: fmt.Sprintf("long-%d", i), Title: src[i%len(src)].Title, Text: strings.Join(parts, "\n")}
	}
	return docs
}

// writeInputs writes docs into dir as shards of rows documents (zstd, one
// row group each, as DuckDB writes Cranfield's).
func writeInputs(dir string, docs []inDoc, rows int) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for k, lo := 0, 0; lo < len(docs); k, lo = k+1, lo+rows {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("docs-%05d.parquet", k)))
		if err != nil {
			return err
		}
		pw := parquet.NewGenericWriter[inDoc](f, parquet.Compression(&parquet.Zstd), parquet.MaxRowsPerRowGroup(int64(rows)))
		if _, err := pw.Write(docs[lo:min(lo+rows, len(docs))]); err != nil {
			f.Close()
			return err
		}
		if err := errors.Join(pw.Close(), f.Close()); err != nil {
			return err
		}
	}
	return nil
}

// loadModel makes a model directory of the tokenizer (and a model file
// that nothing reads) and attaches the fake backend.
func loadModel(cfg config, dir string) (*encode.Model, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tok, err := os.ReadFile(cfg.tokenizer)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tok, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), []byte("cpubench: no model runs"), 0o644); err != nil {
		return nil, err
	}
	m, err := encode.LoadModel(dir, encode.ModelOptions{MaxLength: 512})
	if err != nil {
		return nil, err
	}
	var b encode.Backend = &encodetest.SpladeLike{Vocab: m.Tokenizer.VocabSize(), MinTerms: cfg.minTerms, MaxTerms: cfg.maxTerms}
	if cfg.rows == "csr" {
		b = &encodetest.SpladeLikeCSR{SpladeLike: *b.(*encodetest.SpladeLike)}
	}
	if err := m.Attach([]encode.Backend{b}); err != nil {
		return nil, err
	}
	return m, nil
}

// runner runs one case.
type runner struct {
	cfg  config
	m    *encode.Model
	glob string
	out  string
}

// measure is one run.
type measure struct {
	counts     encode.Counts
	wall       time.Duration // plan, stream, complete, _SUCCESS
	stream     time.Duration // encode.Stream alone
	cpu        time.Duration // user + system CPU time of the process during wall
	outBytes   int64
	inputBytes int64
}

func (r runner) once(ctx context.Context) (measure, error) {
	if err := os.RemoveAll(r.out); err != nil {
		return measure{}, err
	}
	runtime.GC()
	cpu0 := cpuTime()
	start := time.Now()
	var res measure
	sources, err := shards.DiscoverSources(ctx, []string{r.glob}, shards.SourceOptions{})
	if err != nil {
		return res, err
	}
	defer sources.Close()
	out, err := shards.OpenOutput(ctx, r.out, shards.OutputOptions{
		Format: shards.FormatParquet, Columns: shards.Columns{Title: "title"}, Version: "cpubench",
		Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return res, err
	}
	defer out.Close()
	m := r.m
	long, err := encode.LongDocs{}.Resolve(m.MaxLength, m.Tokenizer.NumSpecialTokens(), false)
	if err != nil {
		return res, err
	}
	opts := encode.EncodeOptions{BatchTokens: r.cfg.batchTokens, MaxBatch: r.cfg.maxBatch, Sparsify: encode.DefaultSparsifyOptions()}
	if err := opts.Check(m.MaxLength); err != nil {
		return res, err
	}
	if err := out.Begin(ctx, m.Tokenizer.Vocab()); err != nil {
		return res, err
	}
	settings := map[string]string{"model_sha256": m.ModelSHA256, "tokenizer_sha256": m.TokenizerSHA256, "max_length": strconv.Itoa(m.MaxLength)}
	p, err := out.Plan(ctx, sources, sources.Names, settings, shards.Metadata{
		SplashVersion: "cpubench", ModelSHA256: m.ModelSHA256, TokenizerSHA256: m.TokenizerSHA256,
		VocabSize: m.Backend.VocabSize(), MaxLength: m.MaxLength, Pooling: m.Pooling.String(), Scale: opts.Sparsify.Scale,
	})
	if err != nil {
		return res, err
	}
	if len(p.Failed) > 0 || p.Skipped > 0 {
		return res, fmt.Errorf("plan: %d failed, %d skipped: %v", len(p.Failed), p.Skipped, p.Failed)
	}
	enc := out.Encode(p, false)
	streamStart := time.Now()
	res.counts, err = encode.Stream(ctx, m, encode.StreamConfig{
		Options: opts, LongDocs: long, Shards: len(p.Tasks), TokenizeWorkers: runtime.GOMAXPROCS(0),
		Workers: []encode.Worker{{Backend: m.Backend, Device: "cuda:0"}},
	}, enc, enc)
	res.stream = time.Since(streamStart)
	enc.Close()
	if err != nil {
		return res, err
	}
	if er := enc.Result(); len(er.Failed) > 0 || er.Encoded != len(p.Tasks) {
		return res, fmt.Errorf("encoded %d of %d shards: %v", er.Encoded, len(p.Tasks), er.Failed)
	}
	dups, err := out.Complete(ctx, sources.Names)
	if err != nil {
		return res, err
	}
	if len(dups) > 0 {
		return res, fmt.Errorf("%d ids in two shards", len(dups))
	}
	if err := out.WriteSuccess(ctx, map[string]any{"documents": res.counts.Docs}); err != nil {
		return res, err
	}
	res.wall = time.Since(start)
	res.cpu = cpuTime() - cpu0
	if res.counts.Docs != p.Docs() {
		return res, fmt.Errorf("wrote %d of %d documents", res.counts.Docs, p.Docs())
	}
	for _, t := range p.Tasks {
		res.inputBytes += t.Ident.Size
		st, err := os.Stat(filepath.Join(r.out, t.Base+".parquet"))
		if err != nil {
			return res, err
		}
		res.outBytes += st.Size()
	}
	return res, nil
}

// result is the runs of a case at one GOMAXPROCS.
type result struct{ runs []measure }

func (r runner) repeat(ctx context.Context, name string, procs int) (result, error) {
	if r.cfg.cpuProfile != "" {
		f, err := os.Create(fmt.Sprintf("%s.%s.p%d.pprof", r.cfg.cpuProfile, name, procs))
		if err != nil {
			return result{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return result{}, err
		}
		defer pprof.StopCPUProfile()
	}
	var res result
	for range max(r.cfg.runs, 1) {
		m, err := r.once(ctx)
		if err != nil {
			return res, err
		}
		res.runs = append(res.runs, m)
	}
	return res, nil
}

// stat is the median, min and max of f over the runs.
func (r result) stat(f func(measure) float64) (med, lo, hi float64) {
	vs := make([]float64, len(r.runs))
	for i, m := range r.runs {
		vs[i] = f(m)
	}
	slices.Sort(vs)
	n := len(vs)
	med = vs[n/2]
	if n%2 == 0 {
		med = (vs[n/2-1] + vs[n/2]) / 2
	}
	return med, vs[0], vs[n-1]
}

func (r result) print(w io.Writer, name string, procs int) {
	c := r.runs[0].counts
	nnz := 0
	for _, n := range c.NonZeros {
		nnz += n
	}
	fmt.Fprintf(w, "\n%s, GOMAXPROCS=%d: %d documents, %d tokens (%.1f per document), %d truncated, %.1f non-zeros per document, %d batches, padding waste %.1f%%, input %.1f MB, output %.1f MB\n",
		name, procs, c.Docs, c.Tokens, float64(c.Tokens)/float64(max(c.Docs, 1)), c.Truncated, float64(nnz)/float64(max(len(c.NonZeros), 1)),
		c.Batches, 100*c.PaddingWaste(), float64(r.runs[0].inputBytes)/1e6, float64(r.runs[0].outBytes)/1e6)
	for i, m := range r.runs {
		fmt.Fprintf(w, "  run %d: %.2f s (stream %.2f s), %.0f docs/s, %.0f tokens/s, CPU %.2f s\n", i+1, m.wall.Seconds(), m.stream.Seconds(),
			float64(m.counts.Docs)/m.wall.Seconds(), float64(m.counts.Tokens)/m.wall.Seconds(), m.cpu.Seconds())
	}
	line := func(label string, f func(measure) float64) {
		med, lo, hi := r.stat(f)
		fmt.Fprintf(w, "  %-32s %10.0f (%.0f–%.0f)\n", label, med, lo, hi)
	}
	docsPerS := func(m measure) float64 { return float64(m.counts.Docs) / m.wall.Seconds() }
	line("docs/s", docsPerS)
	line("tokens/s", func(m measure) float64 { return float64(m.counts.Tokens) / m.wall.Seconds() })
	line(fmt.Sprintf("docs/s per core (÷ %d)", procs), func(m measure) float64 { return docsPerS(m) / float64(procs) })
	line("docs per CPU-second", func(m measure) float64 { return float64(m.counts.Docs) / max(m.cpu.Seconds(), 1e-9) })
	line("docs/s, stream alone", func(m measure) float64 { return float64(m.counts.Docs) / m.stream.Seconds() })
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuModel is the model name /proc/cpuinfo gives ("" elsewhere).
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
