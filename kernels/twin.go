package kernels

import (
	"fmt"
	"math"
)

// CheckPool reports whether the lengths of a pooling call's buffers match the
// shape [b][t][v]: logits b*t*v, mask b*t, out (when outLen >= 0) b*v.
func CheckPool(logitsLen, maskLen, outLen, b, t, v int) error {
	switch {
	case b <= 0 || t <= 0 || v <= 0:
		return fmt.Errorf("pool shape b=%d t=%d v=%d: every dimension must be > 0", b, t, v)
	case b > math.MaxInt32 || t > math.MaxInt32 || v > math.MaxInt32:
		return fmt.Errorf("pool shape b=%d t=%d v=%d: dimensions must fit in int32", b, t, v)
	case logitsLen != b*t*v:
		return fmt.Errorf("pool shape b=%d t=%d v=%d: logits has %d values, want %d", b, t, v, logitsLen, b*t*v)
	case maskLen != b*t:
		return fmt.Errorf("pool shape b=%d t=%d: mask has %d values, want %d", b, t, maskLen, b*t)
	case outLen >= 0 && outLen != b*v:
		return fmt.Errorf("pool shape b=%d v=%d: out has %d values, want %d", b, v, outLen, b*v)
	}
	return nil
}

// CheckSparsify reports bad arguments of a sparsify call: pooled must hold
// b*v values, b*v must fit in uint32 (CSR offsets are uint32), minWeight must
// be a number >= 0 and topK >= 0.
func CheckSparsify(pooledLen, b, v int, minWeight float32, topK int) error {
	switch {
	case b <= 0 || v <= 0:
		return fmt.Errorf("sparsify shape b=%d v=%d: every dimension must be > 0", b, v)
	case uint64(b)*uint64(v) > math.MaxUint32 || v > math.MaxInt32 || b > math.MaxInt32:
		return fmt.Errorf("sparsify shape b=%d v=%d: b*v must fit in uint32", b, v)
	case pooledLen != b*v:
		return fmt.Errorf("sparsify shape b=%d v=%d: pooled has %d values, want %d", b, v, pooledLen, b*v)
	case !(minWeight >= 0):
		return fmt.Errorf("sparsify min-weight %v: must be a number >= 0", minWeight)
	case topK < 0 || topK > math.MaxInt32:
		return fmt.Errorf("sparsify top-k %d: must be in [0, 2^31) (0 keeps all)", topK)
	}
	return nil
}

// log1p32 is the float32 activation of the twins: log1p computed in float64
// and rounded once to float32, so it is the correctly rounded value (up to a
// double-rounding tie). CUDA's log1pf is documented with at most 1 ulp of
// error, so a kernel's output may differ from the twin's by 1 ulp per
// activation; everything else (the max, the order of the sum) is identical.
func log1p32(x float32) float32 { return float32(math.Log1p(float64(x))) }

// PoolMaxTwin is the pure-Go twin of splash_pool_max. logits is [b][t][v]
// row-major, mask is [b][t] (0 = padding); it writes
// out[i][j] = log1p(relu(max over unmasked p of logits[i][p][j])) into out
// ([b][v]), 0 for a document without unmasked positions. The maximum is
// taken in float32 in ascending position order with x > m, so NaN logits
// never win it.
func PoolMaxTwin(logits []float32, mask []int64, b, t, v int, out []float32) error {
	if err := CheckPool(len(logits), len(mask), len(out), b, t, v); err != nil {
		return err
	}
	neg := float32(math.Inf(-1))
	for i := 0; i < b; i++ {
		acc := out[i*v : (i+1)*v]
		for j := range acc {
			acc[j] = neg
		}
		for p := 0; p < t; p++ {
			if mask[i*t+p] == 0 {
				continue
			}
			row := logits[(i*t+p)*v : (i*t+p+1)*v]
			for j, x := range row {
				if x > acc[j] {
					acc[j] = x
				}
			}
		}
		for j, m := range acc {
			if m > 0 {
				acc[j] = log1p32(m)
			} else {
				acc[j] = 0
			}
		}
	}
	return nil
}

// PoolSumTwin is the pure-Go twin of splash_pool_sum: out[i][j] = the float32
// sum, in ascending position order, of log1p(relu(logits[i][p][j])) over the
// unmasked positions p. NaN logits count as 0.
func PoolSumTwin(logits []float32, mask []int64, b, t, v int, out []float32) error {
	if err := CheckPool(len(logits), len(mask), len(out), b, t, v); err != nil {
		return err
	}
	for i := 0; i < b; i++ {
		acc := out[i*v : (i+1)*v]
		for j := range acc {
			acc[j] = 0
		}
		for p := 0; p < t; p++ {
			if mask[i*t+p] == 0 {
				continue
			}
			row := logits[(i*t+p)*v : (i*t+p+1)*v]
			for j, x := range row {
				if x > 0 {
					acc[j] += log1p32(x)
				}
			}
		}
	}
	return nil
}

// eligible is the keep condition before top-k: strictly above minWeight and
// above 0 (false for NaN).
func eligible(w, minWeight float32) bool { return w > minWeight && w > 0 }

// posInfBits is the bit pattern of +Inf, the largest eligible pattern.
const posInfBits = 0x7f800000

// SparsifyTwin is the pure-Go twin of splash_sparsify_select followed by
// splash_sparsify_write. pooled is [b][v]; document i of the result owns
// terms[offsets[i]:offsets[i+1]] and the aligned weights, in ascending term
// id. A weight is kept when it is > minWeight and > 0; with topK > 0 only
// the topK largest of those are kept, ties broken by the lower term id
// (encode.Sparsify without quantization). Like the kernel it finds the
// topK-th largest value by binary search over the float bit pattern.
func SparsifyTwin(pooled []float32, b, v int, minWeight float32, topK int) (offsets, terms []uint32, weights []float32, err error) {
	if err := CheckSparsify(len(pooled), b, v, minWeight, topK); err != nil {
		return nil, nil, nil, err
	}
	offsets = make([]uint32, b+1)
	var bits []uint32 // eligible bit patterns of one row, reused
	for i := 0; i < b; i++ {
		row := pooled[i*v : (i+1)*v]
		bits = bits[:0]
		for _, w := range row {
			if eligible(w, minWeight) {
				bits = append(bits, math.Float32bits(w))
			}
		}
		tau, tieKeep := uint32(0), uint32(0)
		if topK > 0 && len(bits) > topK {
			tau, tieKeep = selectThreshold(bits, uint32(topK))
		}
		var ties uint32
		for j, w := range row {
			if !eligible(w, minWeight) {
				continue
			}
			x := math.Float32bits(w)
			keep := x > tau
			if x == tau {
				keep = ties < tieKeep
				ties++
			}
			if keep {
				terms = append(terms, uint32(j))
				weights = append(weights, w)
			}
		}
		offsets[i+1] = uint32(len(terms))
	}
	return offsets, terms, weights, nil
}

// selectThreshold returns the bit pattern tau of the k-th largest of bits
// (all positive-float patterns, len(bits) > k > 0) and how many entries equal
// to tau are kept: k minus the number strictly above tau.
func selectThreshold(bits []uint32, k uint32) (tau, tieKeep uint32) {
	countGE := func(lo uint32) uint32 {
		var c uint32
		for _, x := range bits {
			if x >= lo {
				c++
			}
		}
		return c
	}
	lo, hi := uint32(1), uint32(posInfBits)
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if countGE(mid) >= k {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo, k - countGE(lo+1)
}
