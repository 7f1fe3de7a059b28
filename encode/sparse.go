package encode

import (
	"fmt"
	"math"
	"sort"
)

// SparseVec is a document's SPLADE vector: strictly ascending term ids with
// their weights (each > 0) and quantized impacts, all aligned.
type SparseVec struct {
	Terms   []uint32
	Weights []float32
	Impacts []uint16
}

// Len is the number of non-zero terms.
func (v SparseVec) Len() int { return len(v.Terms) }

// SparsifyOptions are the pruning and quantization settings.
type SparsifyOptions struct {
	// MinWeight keeps only weights strictly above it (default 0: every positive weight).
	MinWeight float32
	// TopK keeps the K largest weights (ties broken by lower term id); 0 keeps all.
	TopK int
	// Scale quantizes impacts as round(weight*Scale), saturating at 65535.
	Scale float32
}

// DefaultSparsifyOptions are the settings of the SPLADE papers' Anserini runs.
func DefaultSparsifyOptions() SparsifyOptions {
	return SparsifyOptions{MinWeight: 0, TopK: 0, Scale: 100}
}

// Validate reports bad settings.
func (o SparsifyOptions) Validate() error {
	switch {
	case o.MinWeight < 0 || math.IsNaN(float64(o.MinWeight)):
		return fmt.Errorf("min-weight %v: must be >= 0", o.MinWeight)
	case o.TopK < 0:
		return fmt.Errorf("top-k %d: must be >= 0 (0 keeps all)", o.TopK)
	case !(o.Scale > 0) || math.IsInf(float64(o.Scale), 0):
		return fmt.Errorf("scale %v: must be a finite number > 0", o.Scale)
	}
	return nil
}

// Sparsify turns one pooled row into a SparseVec, appending into dst's slices
// (which it truncates first) so callers can reuse buffers.
func Sparsify(row []float32, o SparsifyOptions, dst SparseVec) SparseVec {
	v := SparseVec{Terms: dst.Terms[:0], Weights: dst.Weights[:0], Impacts: dst.Impacts[:0]}
	for j, w := range row {
		if w > o.MinWeight && w > 0 {
			v.Terms = append(v.Terms, uint32(j))
			v.Weights = append(v.Weights, w)
		}
	}
	return pruneAndQuantize(v, o)
}

// pruneAndQuantize keeps the o.TopK largest weights of v (whose weights are
// already above o.MinWeight) and appends their impacts.
func pruneAndQuantize(v SparseVec, o SparsifyOptions) SparseVec {
	if o.TopK > 0 && len(v.Terms) > o.TopK {
		keepTopK(&v, o.TopK)
	}
	for _, w := range v.Weights {
		v.Impacts = append(v.Impacts, Quantize(w, o.Scale))
	}
	return v
}

// Quantize returns round(w*scale) (half away from zero), saturated to uint16.
func Quantize(w, scale float32) uint16 {
	q := math.Round(float64(w) * float64(scale))
	switch {
	case q <= 0:
		return 0
	case q >= math.MaxUint16:
		return math.MaxUint16
	default:
		return uint16(q)
	}
}

// keepTopK keeps the k largest weights of v (ties: lower term id wins) and
// restores ascending term order.
func keepTopK(v *SparseVec, k int) {
	idx := make([]int, len(v.Terms))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool {
		wa, wb := v.Weights[idx[a]], v.Weights[idx[b]]
		if wa != wb {
			return wa > wb
		}
		return v.Terms[idx[a]] < v.Terms[idx[b]]
	})
	idx = idx[:k]
	sort.Ints(idx)
	for n, i := range idx {
		v.Terms[n] = v.Terms[i]
		v.Weights[n] = v.Weights[i]
	}
	v.Terms = v.Terms[:k]
	v.Weights = v.Weights[:k]
}

// MaxDiff is the largest |a_j - b_j| over every term of either vector,
// absent terms counting as 0 (both vectors' terms ascending).
func MaxDiff(a, b SparseVec) float64 {
	worst := 0.0
	i, k := 0, 0
	for i < len(a.Terms) || k < len(b.Terms) {
		var x, y float64
		switch {
		case k == len(b.Terms) || (i < len(a.Terms) && a.Terms[i] < b.Terms[k]):
			x = float64(a.Weights[i])
			i++
		case i == len(a.Terms) || b.Terms[k] < a.Terms[i]:
			y = float64(b.Weights[k])
			k++
		default:
			x, y = float64(a.Weights[i]), float64(b.Weights[k])
			i++
			k++
		}
		worst = math.Max(worst, math.Abs(x-y))
	}
	return worst
}
