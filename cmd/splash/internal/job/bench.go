package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/shards"
)

// BenchConfig configures Bench.
type BenchConfig struct {
	Inputs  []string
	Columns shards.Columns
	Encode  encode.EncodeOptions
	// Window groups documents for length sorting as encode does (0:
	// encode.DefaultWindow).
	Window int
	// Workers is the number of goroutines calling the backend concurrently
	// (encode's --sessions); 0 means 1.
	Workers int
	// Repeats is the number of timed passes over all batches, after one
	// untimed warm-up pass; 0 means 1.
	Repeats int
	// Cold skips the warm-up pass: the first timed pass then pays ONNX
	// Runtime's first use (growing its memory arena, touching fresh pages),
	// as an encode run does.
	Cold bool
}

// BenchRun is one timed pass over every batch.
type BenchRun struct {
	Docs         int64
	Tokens       int64 // real tokens, specials included
	PaddedTokens int64
	Batches      int
	Wall         time.Duration
}

// DocsPerS is the documents encoded per second of wall time.
func (r BenchRun) DocsPerS() float64 { return float64(r.Docs) / max(r.Wall.Seconds(), 1e-9) }

// TokensPerS is the real tokens encoded per second of wall time.
func (r BenchRun) TokensPerS() float64 { return float64(r.Tokens) / max(r.Wall.Seconds(), 1e-9) }

// PaddingWaste is the fraction of padding among the positions run.
func (r BenchRun) PaddingWaste() float64 {
	if r.PaddedTokens == 0 {
		return 0
	}
	return float64(r.PaddedTokens-r.Tokens) / float64(r.PaddedTokens)
}

// Bench measures the limit that the encode pipeline runs against: the
// backend alone (the ONNX Runtime session with its pooled graph). It reads
// and tokenizes every input document once, before any clock starts, then
// runs encode's one stream over them from memory (the documents already
// tokenized, so the same batches as encode forms) into a sink that
// discards the vectors. A pass's wall time is the span of its backend
// calls, from the start of the first to the end of the last: reading,
// tokenizing and writing are not timed. Documents without content tokens
// are counted but not run, as in encode.
func Bench(ctx context.Context, m *Model, cfg BenchConfig) ([]BenchRun, error) {
	cfg.Workers = max(cfg.Workers, 1)
	cfg.Repeats = max(cfg.Repeats, 1)
	cfg.Encode.BatchTokens = m.BatchTokens(cfg.Encode.BatchTokens)
	if err := cfg.Encode.Check(m.MaxLength); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSettings, err)
	}
	inputs, err := shards.DiscoverInputs(cfg.Inputs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	src := benchSource{shards: len(inputs)}
	for shard, in := range inputs {
		if err := src.read(ctx, m, shard, in, cfg.Columns); err != nil {
			return nil, err
		}
	}
	runs := make([]BenchRun, 0, cfg.Repeats)
	first := 0
	if cfg.Cold {
		first = 1
	}
	for r := first; r <= cfg.Repeats; r++ {
		var span batchSpan
		counts, err := encode.Stream(ctx, m.Model, encode.StreamConfig{
			Options: cfg.Encode, Shards: src.shards, Window: cfg.Window, Workers: m.Workers(cfg.Workers), OnBatch: span.add,
		}, src, encode.DiscardSink{})
		if err != nil {
			return nil, err
		}
		if r == 0 {
			continue // warm-up
		}
		runs = append(runs, BenchRun{Docs: counts.Docs, Tokens: counts.Tokens, PaddedTokens: counts.PaddedTokens,
			Batches: int(counts.Batches), Wall: span.wall()})
	}
	return runs, nil
}

// benchSource holds a benchmark's documents in memory, tokenized, in the
// chunks the input reader gave them (the batcher's windows fill chunk by
// chunk, as in encode).
type benchSource struct {
	chunks  [][]encode.Tokenized
	shardOf []int
	shards  int
}

// read reads and tokenizes every document of one input.
func (s *benchSource) read(ctx context.Context, m *Model, shard int, path string, cols shards.Columns) error {
	r, err := shards.OpenInput(path, cols)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	defer r.Close()
	for {
		docs, err := r.Next(ctx, encode.ReadChunk)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadInput, err)
		}
		chunk := make([]encode.Tokenized, len(docs))
		for i, d := range docs {
			parts, truncated := m.Prepare(d.Doc.Text, encode.LongDocs{})
			chunk[i] = encode.Tokenized{ID: d.Doc.ID, Parts: parts, Truncated: truncated}
		}
		s.chunks = append(s.chunks, chunk)
		s.shardOf = append(s.shardOf, shard)
	}
}

// Read implements encode.Source.
func (s benchSource) Read(ctx context.Context, f *encode.Feed) error {
	for i, c := range s.chunks {
		if err := f.TokenizedDocs(ctx, s.shardOf[i], c); err != nil {
			return err
		}
	}
	for shard := range s.shards {
		if err := f.Done(ctx, shard); err != nil {
			return err
		}
	}
	return nil
}

// batchSpan is the span of a pass's backend calls.
type batchSpan struct {
	mu         sync.Mutex
	start, end time.Time
}

func (s *batchSpan) add(_ string, start time.Time, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.start.IsZero() || start.Before(s.start) {
		s.start = start
	}
	if end := start.Add(d); end.After(s.end) {
		s.end = end
	}
}

func (s *batchSpan) wall() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.end.Sub(s.start)
}
