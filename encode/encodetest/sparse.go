package encodetest

import (
	"cmp"
	"context"
	"slices"

	"github.com/splash-encode/splash/encode"
)

// SpladeLike is a backend that does no arithmetic but gives each
// document a pooled row shaped like a trained SPLADE model's: between
// MinTerms and MaxTerms positive weights, in (0, 3], at pseudo-random term
// ids, every other weight 0. The row is a function of the document's
// tokens alone (not of its batch or padding), as a model's would be. It is
// for measuring the CPU side of the pipeline (scripts/cpubench): the
// sparsifier and the shard writer get realistic work, and the backend
// itself costs what a device's copy of the pooled rows to the host costs,
// writing every float of out.
type SpladeLike struct {
	Vocab              int
	MinTerms, MaxTerms int
}

// Default term counts of SpladeLike: trained SPLADE models give
// documents about 100–200 non-zero weights.
const (
	DefaultMinTerms = 100
	DefaultMaxTerms = 200
)

// VocabSize implements encode.Backend.
func (b *SpladeLike) VocabSize() int { return b.Vocab }

// Close implements encode.Backend.
func (b *SpladeLike) Close() error { return nil }

// Encode implements encode.Backend.
func (b *SpladeLike) Encode(ctx context.Context, batch *encode.Batch, out []float32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for r := 0; r < batch.Size; r++ {
		row := out[r*b.Vocab : (r+1)*b.Vocab]
		clear(row)
		b.row(batch, r, func(term int, w float32) { row[term] = w })
	}
	return nil
}

// row generates the weights of batch row r in order; a term drawn twice
// keeps its last weight.
func (b *SpladeLike) row(batch *encode.Batch, r int, set func(term int, w float32)) {
	lo, hi := b.MinTerms, b.MaxTerms
	if lo <= 0 && hi <= 0 {
		lo, hi = DefaultMinTerms, DefaultMaxTerms
	}
	hi = max(hi, lo)
	// FNV-1a over the row's unmasked token ids: the document's seed.
	h := uint64(14695981039346656037)
	for i := r * batch.SeqLen; i < (r+1)*batch.SeqLen; i++ {
		if batch.AttentionMask[i] == 1 {
			h = (h ^ uint64(batch.InputIDs[i])) * 1099511628211
		}
	}
	state := h
	n := lo + int(splitmix64(&state)%uint64(hi-lo+1))
	for range n {
		x := splitmix64(&state)
		// 24 high bits: a weight in (0, 3].
		set(int(x%uint64(b.Vocab)), 3*float32((x>>40)+1)/(1<<24))
	}
}

// SpladeLikeCSR is SpladeLike as an encode.SparseBackend: it hands the
// stream each row's non-zeros as CSR, as splash's CUDA engine does, so
// no dense row is written or scanned on the host.
type SpladeLikeCSR struct{ SpladeLike }

var _ encode.SparseBackend = (*SpladeLikeCSR)(nil)

// EncodeSparse implements encode.SparseBackend: the positive weights of
// the rows Encode writes.
func (b *SpladeLikeCSR) EncodeSparse(ctx context.Context, batch *encode.Batch, dst *encode.CSR) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dst.Reset()
	type entry struct {
		term int
		w    float32
	}
	var row []entry
	for r := 0; r < batch.Size; r++ {
		row = row[:0]
		b.row(batch, r, func(term int, w float32) { row = append(row, entry{term, w}) })
		slices.SortStableFunc(row, func(x, y entry) int { return cmp.Compare(x.term, y.term) })
		for i, e := range row {
			if i+1 < len(row) && row[i+1].term == e.term {
				continue // drawn again later: the later weight stands
			}
			dst.Terms = append(dst.Terms, uint32(e.term))
			dst.Weights = append(dst.Weights, e.w)
		}
		dst.Offsets = append(dst.Offsets, uint32(len(dst.Terms)))
	}
	return nil
}

// splitmix64 is Steele, Lea and Flood's generator (SplitMix64).
func splitmix64(s *uint64) uint64 {
	*s += 0x9e3779b97f4a7c15
	z := *s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
