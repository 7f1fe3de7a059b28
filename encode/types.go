package encode

import (
	"context"
	"fmt"
)

// Doc is one input document.
type Doc struct {
	ID   string
	Text string
}

// Pooling selects how per-position activations are reduced to a document vector.
type Pooling int

const (
	// PoolMax is SPLADE v2 and later: w_j = max_i log(1 + relu(z_ij)) over unmasked i.
	PoolMax Pooling = iota
	// PoolSum is SPLADE v1: w_j = sum_i log(1 + relu(z_ij)) over unmasked i.
	PoolSum
)

// String returns the flag spelling of p.
func (p Pooling) String() string {
	switch p {
	case PoolMax:
		return "max"
	case PoolSum:
		return "sum"
	default:
		return fmt.Sprintf("Pooling(%d)", int(p))
	}
}

// ParsePooling parses "max" or "sum".
func ParsePooling(s string) (Pooling, error) {
	switch s {
	case "max":
		return PoolMax, nil
	case "sum":
		return PoolSum, nil
	default:
		return 0, fmt.Errorf("unknown pooling %q: want max or sum", s)
	}
}

// Batch is a padded batch ready for a backend: Size rows of SeqLen positions,
// row-major. Padding positions have id PadID and mask 0. A backend feeds the
// arrays its model declares as inputs.
type Batch struct {
	Size          int
	SeqLen        int
	InputIDs      []int64
	AttentionMask []int64
	TokenTypeIDs  []int64 // all 0: one segment
	// PositionIDs are 0..n-1 along each row's n tokens and 1 at padding, as
	// Hugging Face fills position_ids for right-padded causal models.
	PositionIDs []int64
	// PoolMask says which positions the pooling reads (1) when it is not
	// every unmasked position: the echo variant of causal encoders pools
	// only the second copy of the text. Nil when pooling reads the
	// attention mask; SetPoolFrom fills it.
	PoolMask []int64
}

// NewBatch pads token id sequences to the longest one with padID.
func NewBatch(seqs [][]int32, padID int32) *Batch {
	b := &Batch{}
	b.Reset(seqs, padID)
	return b
}

// Reset refills b from seqs, reusing its buffers when they are large enough.
// It clears PoolMask: pooling reads the attention mask.
func (b *Batch) Reset(seqs [][]int32, padID int32) {
	seqLen := 0
	for _, s := range seqs {
		seqLen = max(seqLen, len(s))
	}
	n := len(seqs) * seqLen
	b.Size, b.SeqLen = len(seqs), seqLen
	b.InputIDs = resize(b.InputIDs, n)
	b.AttentionMask = resize(b.AttentionMask, n)
	b.TokenTypeIDs = resize(b.TokenTypeIDs, n)
	b.PositionIDs = resize(b.PositionIDs, n)
	b.PoolMask = nil
	for r, s := range seqs {
		row := r * seqLen
		for i := 0; i < seqLen; i++ {
			if i < len(s) {
				b.InputIDs[row+i] = int64(s[i])
				b.AttentionMask[row+i] = 1
				b.PositionIDs[row+i] = int64(i)
			} else {
				b.InputIDs[row+i] = int64(padID)
				b.AttentionMask[row+i] = 0
				b.PositionIDs[row+i] = 1
			}
			b.TokenTypeIDs[row+i] = 0
		}
	}
}

// SetPoolFrom makes pooling read only positions from[r] onwards of each row
// r (and only unmasked ones); len(from) must be b.Size.
func (b *Batch) SetPoolFrom(from []int) {
	b.PoolMask = make([]int64, len(b.AttentionMask))
	for r := 0; r < b.Size; r++ {
		row := r * b.SeqLen
		for i := from[r]; i < b.SeqLen; i++ {
			b.PoolMask[row+i] = b.AttentionMask[row+i]
		}
	}
}

// Tokens returns the number of real (unpadded) tokens in b.
func (b *Batch) Tokens() int {
	n := 0
	for _, m := range b.AttentionMask {
		n += int(m)
	}
	return n
}

func resize(s []int64, n int) []int64 {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]int64, n)
}

// Backend runs a SPLADE model with pooling on its device.
type Backend interface {
	// Encode runs the forward pass and pooling for b and writes the pooled
	// [b.Size, VocabSize()] activations (after relu and log1p) into out,
	// row-major. len(out) must be at least b.Size*VocabSize().
	// Cancelling ctx stops the run cooperatively; Encode returns only after
	// the native call has returned.
	Encode(ctx context.Context, b *Batch, out []float32) error
	// VocabSize is the width of a pooled row.
	VocabSize() int
	// Close releases native resources.
	Close() error
}
