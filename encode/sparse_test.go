package encode

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// naiveSparsify is the plain definition: every (term, weight) with
// weight > max(minWeight, 0), the topK heaviest (ties to the lower id),
// in ascending term order, impacts round(w × scale).
func naiveSparsify(row []float32, o SparsifyOptions) SparseVec {
	type tw struct {
		t uint32
		w float32
	}
	var all []tw
	for j, w := range row {
		if w > o.MinWeight && w > 0 {
			all = append(all, tw{uint32(j), w})
		}
	}
	sort.Slice(all, func(a, b int) bool {
		if all[a].w != all[b].w {
			return all[a].w > all[b].w
		}
		return all[a].t < all[b].t
	})
	if o.TopK > 0 && len(all) > o.TopK {
		all = all[:o.TopK]
	}
	sort.Slice(all, func(a, b int) bool { return all[a].t < all[b].t })
	var v SparseVec
	for _, x := range all {
		v.Terms = append(v.Terms, x.t)
		v.Weights = append(v.Weights, x.w)
		q := math.Floor(float64(x.w)*float64(o.Scale) + 0.5)
		v.Impacts = append(v.Impacts, uint16(math.Min(q, 65535)))
	}
	return v
}

func TestSparsifyMatchesNaiveDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var reuse SparseVec
	for trial := 0; trial < 2000; trial++ {
		row := make([]float32, 1+rng.IntN(300))
		for j := range row {
			switch rng.IntN(4) {
			case 0:
				row[j] = 0
			case 1:
				row[j] = float32(rng.IntN(5)) / 4 // ties
			default:
				row[j] = float32(rng.ExpFloat64())
			}
		}
		o := SparsifyOptions{
			MinWeight: []float32{0, 0, 0.25, 1}[rng.IntN(4)],
			TopK:      []int{0, 0, 1, 5, 50}[rng.IntN(5)],
			Scale:     []float32{100, 1, 1000, 0.5}[rng.IntN(4)],
		}
		want := naiveSparsify(row, o)
		reuse = Sparsify(row, o, reuse)
		if !equalVec(reuse, want) {
			t.Fatalf("trial %d opts %+v:\n got %+v\nwant %+v", trial, o, reuse, want)
		}
	}
}

func equalVec(a, b SparseVec) bool {
	if a.Len() != b.Len() || len(a.Weights) != len(b.Weights) || len(a.Impacts) != len(b.Impacts) {
		return false
	}
	for i := range a.Terms {
		if a.Terms[i] != b.Terms[i] || a.Weights[i] != b.Weights[i] || a.Impacts[i] != b.Impacts[i] {
			return false
		}
	}
	return true
}

func TestQuantize(t *testing.T) {
	cases := []struct {
		w, scale float32
		want     uint16
	}{
		{0.004, 100, 0}, {0.005, 100, 0} /* float32(0.005) < 0.005 */, {0.0051, 100, 1}, {1.234, 100, 123}, {1.235, 100, 124}, {2.5, 1, 3},
		{655.35, 100, 65535}, {1e6, 100, 65535}, {float32(math.Inf(1)), 100, 65535}, {0, 100, 0},
	}
	for _, c := range cases {
		if got := Quantize(c.w, c.scale); got != c.want {
			t.Errorf("Quantize(%v, %v) = %d, want %d", c.w, c.scale, got, c.want)
		}
	}
}

func TestSparsifyOptionsValidate(t *testing.T) {
	bad := []SparsifyOptions{
		{MinWeight: -1, Scale: 100},
		{MinWeight: float32(math.NaN()), Scale: 100},
		{TopK: -1, Scale: 100},
		{Scale: 0},
		{Scale: float32(math.Inf(1))},
	}
	for _, o := range bad {
		if o.Validate() == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	if err := DefaultSparsifyOptions().Validate(); err != nil {
		t.Errorf("defaults rejected: %v", err)
	}
}

func TestNewBatchPadsAndMasks(t *testing.T) {
	b := NewBatch([][]int32{{101, 7, 102}, {101, 102}, {101, 5, 6, 7, 102}}, 0)
	if b.Size != 3 || b.SeqLen != 5 {
		t.Fatalf("shape %d×%d", b.Size, b.SeqLen)
	}
	wantIDs := []int64{101, 7, 102, 0, 0, 101, 102, 0, 0, 0, 101, 5, 6, 7, 102}
	wantMask := []int64{1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1}
	for i := range wantIDs {
		if b.InputIDs[i] != wantIDs[i] || b.AttentionMask[i] != wantMask[i] || b.TokenTypeIDs[i] != 0 {
			t.Fatalf("position %d: id %d mask %d type %d", i, b.InputIDs[i], b.AttentionMask[i], b.TokenTypeIDs[i])
		}
	}
	if b.Tokens() != 10 {
		t.Fatalf("Tokens() = %d, want 10", b.Tokens())
	}
	// Reset reuses the buffers for a smaller batch.
	b.Reset([][]int32{{101, 102}}, 0)
	if b.Size != 1 || b.SeqLen != 2 || len(b.InputIDs) != 2 {
		t.Fatalf("after Reset: %d×%d, %d ids", b.Size, b.SeqLen, len(b.InputIDs))
	}
}

func TestPoolReferenceIgnoresMaskedPositions(t *testing.T) {
	logits := [][]float64{{1, -2, 3}, {100, 100, 100}, {-1, 0.5, 2}}
	mask := []int64{1, 0, 1}
	maxed := PoolReference(logits, mask, PoolMax)
	want := []float64{math.Log1p(1), math.Log1p(0.5), math.Log1p(3)}
	for j := range want {
		if math.Abs(maxed[j]-want[j]) > 1e-15 {
			t.Fatalf("max: got %v want %v", maxed, want)
		}
	}
	summed := PoolReference(logits, mask, PoolSum)
	wantSum := []float64{math.Log1p(1), math.Log1p(0.5), math.Log1p(3) + math.Log1p(2)}
	for j := range wantSum {
		if math.Abs(summed[j]-wantSum[j]) > 1e-15 {
			t.Fatalf("sum: got %v want %v", summed, wantSum)
		}
	}
}
