package encode

import "fmt"

// Result is one encoded document (or, before windows are combined, one
// window of it).
type Result struct {
	Vec       SparseVec
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
	Sparsify SparsifyOptions
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
