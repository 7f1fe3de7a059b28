package encode

import (
	"context"
	"fmt"
)

// Bag is a Backend without a model: the "pooled" row of a text is its bag of
// tokens, each distinct token id of the text with a fixed weight (1, or the
// token's IDF). It encodes queries for SPLADE-doc and inference-free SPLADE
// models, whose queries are not run through a network. Ids listed as
// excluded (the tokenizer's [CLS]/[SEP]-style specials, padding) are left
// out, and so are ids whose weight is 0.
type Bag struct {
	weights []float32
}

// NewBag returns a Bag over a vocabulary of vocab ids. weights, when not
// nil, holds each id's weight (len vocab, each >= 0; 0 drops the id);
// nil gives every id weight 1. exclude lists ids that never enter a bag.
func NewBag(vocab int, weights []float32, exclude []int32) (*Bag, error) {
	if vocab <= 0 {
		return nil, fmt.Errorf("bag: vocabulary of %d ids", vocab)
	}
	w := make([]float32, vocab)
	switch {
	case weights == nil:
		for i := range w {
			w[i] = 1
		}
	case len(weights) != vocab:
		return nil, fmt.Errorf("bag: %d weights for a vocabulary of %d ids", len(weights), vocab)
	default:
		for i, x := range weights {
			if !(x >= 0) || x > 1e30 {
				return nil, fmt.Errorf("bag: id %d has weight %v, want a finite number >= 0", i, x)
			}
		}
		copy(w, weights)
	}
	for _, id := range exclude {
		if id >= 0 && int(id) < vocab {
			w[id] = 0
		}
	}
	return &Bag{weights: w}, nil
}

// VocabSize is the width of a bag's row.
func (b *Bag) VocabSize() int { return len(b.weights) }

// Encode writes each row's bag into out: the weight of every id at an
// unmasked position (PoolMask, when set, says which), 0 elsewhere.
func (b *Bag) Encode(ctx context.Context, batch *Batch, out []float32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v := len(b.weights)
	if len(out) < batch.Size*v {
		return fmt.Errorf("bag: output holds %d floats, want %d rows × %d", len(out), batch.Size, v)
	}
	mask := batch.AttentionMask
	if batch.PoolMask != nil {
		mask = batch.PoolMask
	}
	clear(out[:batch.Size*v])
	for r := 0; r < batch.Size; r++ {
		row := out[r*v : (r+1)*v]
		for i := r * batch.SeqLen; i < (r+1)*batch.SeqLen; i++ {
			if mask[i] == 0 {
				continue
			}
			id := batch.InputIDs[i]
			if id < 0 || id >= int64(v) {
				return fmt.Errorf("bag: token id %d outside the vocabulary of %d ids", id, v)
			}
			row[id] = b.weights[id]
		}
	}
	return nil
}

// Close releases nothing.
func (b *Bag) Close() error { return nil }
