package encode

import (
	"context"
	"math/rand/v2"
	"reflect"
	"testing"
)

// randomRow is a dense pooled row with about a third of its entries > 0.
func randomRow(r *rand.Rand, n int) []float32 {
	row := make([]float32, n)
	for j := range row {
		if r.IntN(3) == 0 {
			row[j] = r.Float32() * 3
		}
	}
	return row
}

// TestMergeWindowEqualsDenseAggregation: merging the sparse vectors of
// windows gives, after SparsifySparse, what Sparsify gives on the dense
// element-wise max (or sum) of the windows' rows, for random rows and
// pruning settings.
func TestMergeWindowEqualsDenseAggregation(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for trial := 0; trial < 200; trial++ {
		n := 1 + r.IntN(60)
		windows := 1 + r.IntN(5)
		opts := SparsifyOptions{MinWeight: []float32{0, 0.5, 1.5}[r.IntN(3)], TopK: r.IntN(8), Scale: 100}
		for _, agg := range []WindowAgg{AggMax, AggSum} {
			dense := make([]float32, n)
			var acc SparseVec
			for w := 0; w < windows; w++ {
				row := randomRow(r, n)
				for j, x := range row {
					if agg == AggSum {
						dense[j] += x
					} else {
						dense[j] = max(dense[j], x)
					}
				}
				acc = MergeWindow(acc, Sparsify(row, SparsifyOptions{Scale: 100}, SparseVec{}), agg)
			}
			got := SparsifySparse(acc, opts)
			want := Sparsify(dense, opts, SparseVec{})
			if len(got.Terms)+len(want.Terms) == 0 {
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("trial %d, %v, %+v:\n got %+v\nwant %+v", trial, agg, opts, got, want)
			}
		}
	}
}

// TestWindowsCoverTheText: windows start stride apart, are at most size
// long, the last one ends at the text's end unless maxWindows cuts it, and
// WindowsSpan is what maxWindows windows cover.
func TestWindowsCoverTheText(t *testing.T) {
	cases := []struct {
		n, size, stride, max int
		want                 [][2]int
	}{
		{0, 4, 2, 0, [][2]int{{0, 0}}},
		{4, 4, 2, 0, [][2]int{{0, 4}}},
		{5, 4, 2, 0, [][2]int{{0, 4}, {2, 5}}},
		{10, 4, 3, 0, [][2]int{{0, 4}, {3, 7}, {6, 10}}},
		{11, 4, 4, 0, [][2]int{{0, 4}, {4, 8}, {8, 11}}},
		{100, 4, 2, 3, [][2]int{{0, 4}, {2, 6}, {4, 8}}},
	}
	for _, c := range cases {
		if got := Windows(c.n, c.size, c.stride, c.max); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Windows(%d, %d, %d, %d) = %v, want %v", c.n, c.size, c.stride, c.max, got, c.want)
		}
	}
	if got := WindowsSpan(4, 2, 3); got != 8 {
		t.Errorf("WindowsSpan(4, 2, 3) = %d, want 8 (the end of the third window)", got)
	}
	if got := WindowsSpan(4, 2, 0); got != 0 {
		t.Errorf("WindowsSpan(4, 2, 0) = %d, want 0 (unbounded)", got)
	}
}

// TestBagRows: a bag row holds the weight of each distinct id at an
// unmasked (or, with a pool mask, pooled) position, nothing for excluded
// ids, padding or ids of weight 0.
func TestBagRows(t *testing.T) {
	weights := []float32{0, 1.5, 2, 0, 4, 5}
	bag, err := NewBag(6, weights, []int32{5})
	if err != nil {
		t.Fatal(err)
	}
	b := NewBatch([][]int32{{5, 1, 2, 1, 3, 5}, {4, 4}}, 0)
	out := make([]float32, 2*6)
	for i := range out {
		out[i] = -1 // stale values must be cleared
	}
	if err := bag.Encode(context.Background(), b, out); err != nil {
		t.Fatal(err)
	}
	want := []float32{0, 1.5, 2, 0, 0, 0, 0, 0, 0, 0, 4, 0}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("got %v, want %v", out, want)
	}
	b.SetPoolFrom([]int{3, 0})
	if err := bag.Encode(context.Background(), b, out); err != nil {
		t.Fatal(err)
	}
	want = []float32{0, 1.5, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("pooled from 3: got %v, want %v", out, want)
	}
	ones, err := NewBag(3, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out = make([]float32, 3)
	if err := ones.Encode(context.Background(), NewBatch([][]int32{{2, 2, 0}}, 0), out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, []float32{1, 0, 1}) {
		t.Fatalf("unweighted bag %v", out)
	}
	if _, err := NewBag(3, []float32{1, -1, 0}, nil); err == nil {
		t.Fatal("a negative weight was accepted")
	}
	if err := ones.Encode(context.Background(), NewBatch([][]int32{{7}}, 0), out); err == nil {
		t.Fatal("an id outside the vocabulary was accepted")
	}
}
