package encode

import (
	"context"
	"sync"
	"time"
)

// BenchConfig configures Bench.
type BenchConfig struct {
	Options EncodeOptions
	// Window groups documents for length sorting as the stream does (0:
	// DefaultWindow).
	Window  int
	Workers []Worker
	// Repeats is the number of timed passes, after one untimed warm-up
	// pass; 0 means 1.
	Repeats int
	// Cold skips the warm-up pass: the first timed pass then pays the
	// backend's first use, as an encode run does.
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

// Bench measures the backend alone inside the stream: it runs src (its
// documents prepared before, so that the passes form the batches an encode
// run forms without tokenizing) through the stream into DiscardSink,
// Repeats times after a warm-up pass. A pass's wall time is the span of its
// backend calls, from the start of the first to the end of the last:
// batching and sparsifying run in it, reading, tokenizing and writing do
// not. Documents without content tokens are counted but not run.
func Bench(ctx context.Context, m *Model, src MemorySource, cfg BenchConfig) ([]BenchRun, error) {
	repeats := max(cfg.Repeats, 1)
	runs := make([]BenchRun, 0, repeats)
	first := 0
	if cfg.Cold {
		first = 1
	}
	for r := first; r <= repeats; r++ {
		var span batchSpan
		counts, err := Stream(ctx, m, StreamConfig{
			Options: cfg.Options, Shards: src.Shards(), Window: cfg.Window, Workers: cfg.Workers, OnBatch: span.add,
		}, src, DiscardSink{})
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
