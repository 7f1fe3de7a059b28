package job

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/pipeline"
)

// Result is one encoded document.
type Result struct {
	Vec       encode.SparseVec
	NumTokens int32 // tokens the model saw, over all windows
	Truncated bool
	// NumWindows is the number of windows the model ran for the document
	// (--long-docs window; 0 for an empty document); 0 otherwise.
	NumWindows int32
}

// Counts accumulates what an encoding run saw.
type Counts struct {
	Docs         int64
	Tokens       int64 // real tokens fed to the model, specials included
	PaddedTokens int64 // tokens including padding
	Batches      int64
	Truncated    int64
	Empty        int64 // documents whose vector has no term
	NonZeros     []int // per document, for percentiles
}

// Add merges o into c.
func (c *Counts) Add(o Counts) {
	c.Docs += o.Docs
	c.Tokens += o.Tokens
	c.PaddedTokens += o.PaddedTokens
	c.Batches += o.Batches
	c.Truncated += o.Truncated
	c.Empty += o.Empty
	c.NonZeros = append(c.NonZeros, o.NonZeros...)
}

// PaddingWaste is the fraction of padded positions among all positions run.
func (c *Counts) PaddingWaste() float64 {
	if c.PaddedTokens == 0 {
		return 0
	}
	return float64(c.PaddedTokens-c.Tokens) / float64(c.PaddedTokens)
}

// EncodeOptions are the per-run encoding settings.
type EncodeOptions struct {
	// BatchTokens bounds a batch's padded size (documents × longest length).
	BatchTokens int
	// MaxBatch bounds the documents in one batch (0: no limit).
	MaxBatch int
	Sparsify encode.SparsifyOptions
}

// Encoder turns texts into sparse vectors with one model. It keeps its
// buffers between calls; use one Encoder per goroutine.
type Encoder struct {
	model  *Model
	opts   EncodeOptions
	batch  encode.Batch
	pooled []float32
}

// Check reports settings that cannot encode documents of up to maxLength
// tokens.
func (o EncodeOptions) Check(maxLength int) error {
	if err := o.Sparsify.Validate(); err != nil {
		return err
	}
	if o.BatchTokens < maxLength {
		return fmt.Errorf("--batch-tokens %d is smaller than the max length %d: a longest document would not fit", o.BatchTokens, maxLength)
	}
	return nil
}

// NewEncoder checks opts and returns an Encoder.
func NewEncoder(m *Model, opts EncodeOptions) (*Encoder, error) {
	if err := opts.Check(m.MaxLength); err != nil {
		return nil, err
	}
	return &Encoder{model: m, opts: opts}, nil
}

// Encode tokenizes texts (in parallel), packs them into length-bucketed
// batches, runs the backend and sparsifies; results keep the order of texts.
func (e *Encoder) Encode(ctx context.Context, texts []string) ([]Result, Counts, error) {
	ids, poolFrom, truncated := e.tokenize(texts)
	results := make([]Result, len(texts))
	// A document with no content tokens (empty or whitespace-only text) is
	// not run through the model: its row has an empty vector and 0 tokens,
	// never the vector of a bare [CLS] [SEP].
	specials := e.model.Tokenizer.NumSpecialTokens()
	var run []int // indices of documents that go through the model
	var lengths []int
	for i, s := range ids {
		if len(s) > specials {
			run = append(run, i)
			lengths = append(lengths, len(s))
		}
	}
	var counts Counts
	vocab := e.model.Backend.VocabSize()
	seqs := make([][]int32, 0, 64)
	for _, packed := range pipeline.PackByLength(lengths, e.opts.BatchTokens, e.opts.MaxBatch) {
		group := make([]int, len(packed))
		for k, p := range packed {
			group[k] = run[p]
		}
		seqs = seqs[:0]
		for _, i := range group {
			seqs = append(seqs, ids[i])
		}
		e.batch.Reset(seqs, e.model.Tokenizer.PadID())
		if e.model.Echo {
			from := make([]int, len(group))
			for k, i := range group {
				from[k] = poolFrom[i]
			}
			e.batch.SetPoolFrom(from)
		}
		if need := e.batch.Size * vocab; cap(e.pooled) < need {
			e.pooled = make([]float32, need)
		}
		if err := e.model.Backend.Encode(ctx, &e.batch, e.pooled[:e.batch.Size*vocab]); err != nil {
			return nil, counts, fmt.Errorf("encode batch of %d documents × %d tokens: %w", e.batch.Size, e.batch.SeqLen, err)
		}
		counts.Batches++
		counts.PaddedTokens += int64(e.batch.Size * e.batch.SeqLen)
		for r, i := range group {
			row := e.pooled[r*vocab : (r+1)*vocab]
			results[i].Vec = encode.Sparsify(row, e.opts.Sparsify, encode.SparseVec{})
			results[i].NumTokens = int32(len(ids[i]))
			results[i].Truncated = truncated[i]
		}
	}
	for i := range results {
		counts.Docs++
		if results[i].Truncated {
			counts.Truncated++
		}
		counts.Tokens += int64(results[i].NumTokens)
		if results[i].Vec.Len() == 0 {
			counts.Empty++
		}
		counts.NonZeros = append(counts.NonZeros, results[i].Vec.Len())
	}
	return results, counts, nil
}

// tokenize runs the tokenizer over texts on every core (documents are
// truncated: the Encoder has no windows).
func (e *Encoder) tokenize(texts []string) (ids [][]int32, poolFrom []int, truncated []bool) {
	ids = make([][]int32, len(texts))
	poolFrom = make([]int, len(texts))
	truncated = make([]bool, len(texts))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(texts)/16))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(texts); i += workers {
				parts, trunc := e.model.prepare(texts[i], LongDocs{})
				ids[i], poolFrom[i], truncated[i] = parts[0].ids, parts[0].poolFrom, trunc
			}
		}(w)
	}
	wg.Wait()
	return ids, poolFrom, truncated
}
