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

// SessionBenchConfig configures BenchSession.
type SessionBenchConfig struct {
	Inputs  []string
	Columns shards.Columns
	Encode  EncodeOptions
	// Window groups documents for length sorting exactly as the encode
	// pipeline does (0: 4096), so both run the same batches.
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

// SessionBenchRun is one timed pass over every batch.
type SessionBenchRun struct {
	Docs         int64
	Tokens       int64 // real tokens, specials included
	PaddedTokens int64
	Batches      int
	Wall         time.Duration
}

// DocsPerS is the documents encoded per second of wall time.
func (r SessionBenchRun) DocsPerS() float64 { return float64(r.Docs) / max(r.Wall.Seconds(), 1e-9) }

// TokensPerS is the real tokens encoded per second of wall time.
func (r SessionBenchRun) TokensPerS() float64 { return float64(r.Tokens) / max(r.Wall.Seconds(), 1e-9) }

// PaddingWaste is the fraction of padding among the positions run.
func (r SessionBenchRun) PaddingWaste() float64 {
	if r.PaddedTokens == 0 {
		return 0
	}
	return float64(r.PaddedTokens-r.Tokens) / float64(r.PaddedTokens)
}

// BenchSession measures the limit that the encode pipeline runs against: the
// backend alone (the ONNX Runtime session with its pooled graph) on inputs
// that are read, tokenized and packed into the very batches the pipeline
// would form before the clock starts. Only Backend.Encode calls are timed;
// reading, tokenizing, batching, sparsifying and writing are not. Documents
// without content tokens are counted but not run, as in the pipeline.
func BenchSession(ctx context.Context, m *Model, cfg SessionBenchConfig) ([]SessionBenchRun, error) {
	if cfg.Window <= 0 {
		cfg.Window = 4096
	}
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
	var chunks [][][]int32
	for _, in := range inputs {
		got, err := tokenizeShard(ctx, m, in, cfg.Columns)
		if err != nil {
			return nil, err
		}
		chunks = append(chunks, got...)
	}
	batches, base := packLikePipeline(chunks, cfg.Window, cfg.Encode, m.Tokenizer.NumSpecialTokens(), m.Tokenizer.PadID())
	for _, b := range batches {
		base.Tokens += int64(b.Tokens())
		base.PaddedTokens += int64(b.Size * b.SeqLen)
	}
	base.Batches = len(batches)
	vocab := m.Backend.VocabSize()
	runs := make([]SessionBenchRun, 0, cfg.Repeats)
	first := 0
	if cfg.Cold {
		first = 1
	}
	for r := first; r <= cfg.Repeats; r++ {
		start := time.Now()
		if err := runBatches(ctx, encoderWorkers(m, cfg.Workers), batches, vocab); err != nil {
			return nil, err
		}
		if r == 0 {
			continue // warm-up
		}
		run := base
		run.Wall = time.Since(start)
		runs = append(runs, run)
	}
	return runs, nil
}

// tokenizeShard reads every document of one input in the reader's chunks
// of readChunk documents, as the pipeline does, and tokenizes them.
func tokenizeShard(ctx context.Context, m *Model, path string, cols shards.Columns) ([][][]int32, error) {
	r, err := shards.OpenInput(path, cols)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	defer r.Close()
	var chunks [][][]int32
	for {
		docs, err := r.Next(ctx, readChunk)
		if errors.Is(err, io.EOF) {
			return chunks, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
		}
		chunk := make([][]int32, len(docs))
		for i, d := range docs {
			chunk[i] = m.Tokenizer.Encode(d.Doc.Text, m.MaxLength).IDs
		}
		chunks = append(chunks, chunk)
	}
}

// packLikePipeline forms the batches batchByLength forms for chunks arriving
// in this order: chunks gather until at least window documents wait, which
// packWindow then packs, and so on to the end. The returned run counts every document, including those without
// content tokens, which get no batch.
func packLikePipeline(chunks [][][]int32, window int, opts EncodeOptions, specials int, padID int32) ([]*encode.Batch, SessionBenchRun) {
	var out []*encode.Batch
	var run SessionBenchRun
	var pool [][]int32
	flush := func() {
		lengths := make([]int, len(pool))
		for i, s := range pool {
			lengths[i] = len(s)
		}
		_, groups := packWindow(lengths, opts, specials)
		for _, group := range groups {
			picked := make([][]int32, len(group))
			for k, i := range group {
				picked[k] = pool[i]
			}
			out = append(out, encode.NewBatch(picked, padID))
		}
		pool = pool[:0]
	}
	for _, c := range chunks {
		run.Docs += int64(len(c))
		pool = append(pool, c...)
		if len(pool) >= window {
			flush()
		}
	}
	flush()
	return out, run
}

// runBatches encodes every batch with one goroutine per worker backend
// (encoderWorkers), each taking the next batch when it is free.
func runBatches(ctx context.Context, workers []encode.Backend, batches []*encode.Batch, vocab int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan *encode.Batch)
	errs := make(chan error, len(workers))
	var wg sync.WaitGroup
	for _, backend := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []float32
			for b := range next {
				if need := b.Size * vocab; cap(buf) < need {
					buf = make([]float32, need)
				}
				if err := backend.Encode(ctx, b, buf[:b.Size*vocab]); err != nil {
					errs <- fmt.Errorf("encode a batch of %d documents × %d tokens: %w", b.Size, b.SeqLen, err)
					cancel()
					return
				}
			}
		}()
	}
	func() {
		defer close(next)
		for _, b := range batches {
			select {
			case next <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}
