package encodetest

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/splash-encode/splash/encode"
)

// TestSpladeLikeRows checks the fake's rows: 100–200 positive weights in
// (0, 3] by default (a term drawn twice counts once), the rest 0, and the
// same row for a document whatever its batch and padding.
func TestSpladeLikeRows(t *testing.T) {
	b := &SpladeLike{Vocab: 30522}
	docs := [][]int32{{101, 7, 102}, {101, 2000, 2001, 2002, 2003, 2004, 102}, {101, 5, 6, 102}, {101, 7, 102}}
	rows := func(seqs [][]int32) [][]float32 {
		batch := encode.NewBatch(seqs, 0)
		out := make([]float32, len(seqs)*b.Vocab)
		for i := range out {
			out[i] = -1 // every float must be written
		}
		if err := b.Encode(context.Background(), batch, out); err != nil {
			t.Fatal(err)
		}
		var rs [][]float32
		for r := range seqs {
			rs = append(rs, out[r*b.Vocab:(r+1)*b.Vocab])
		}
		return rs
	}
	batched := rows(docs)
	counts := map[int]bool{}
	for r, row := range batched {
		n := 0
		for j, w := range row {
			switch {
			case w == 0:
			case w > 0 && w <= 3 && !math.IsNaN(float64(w)):
				n++
			default:
				t.Fatalf("document %d, term %d: weight %v, want 0 or in (0, 3]", r, j, w)
			}
		}
		if n < DefaultMinTerms-2 || n > DefaultMaxTerms {
			t.Errorf("document %d: %d non-zero weights, want %d–%d", r, n, DefaultMinTerms, DefaultMaxTerms)
		}
		counts[n] = true
		alone := rows(docs[r : r+1])[0]
		if !slices.Equal(alone, row) {
			t.Errorf("document %d: its row depends on its batch", r)
		}
	}
	if !slices.Equal(batched[0], batched[3]) {
		t.Error("the same tokens gave two rows")
	}
	if slices.Equal(batched[0], batched[1]) || len(counts) < 2 {
		t.Error("different documents gave the same row or the same number of terms")
	}

	few := &SpladeLike{Vocab: 1000, MinTerms: 3, MaxTerms: 3}
	out := make([]float32, few.Vocab)
	if err := few.Encode(context.Background(), encode.NewBatch(docs[1:2], 0), out); err != nil {
		t.Fatal(err)
	}
	if n := len(out) - countZeros(out); n < 1 || n > 3 {
		t.Errorf("MinTerms = MaxTerms = 3: %d non-zero weights", n)
	}
}

func countZeros(row []float32) int {
	n := 0
	for _, w := range row {
		if w == 0 {
			n++
		}
	}
	return n
}

// TestSpladeLikeCSR: the CSR fake hands over exactly the positive weights
// of the rows the dense fake writes.
func TestSpladeLikeCSR(t *testing.T) {
	dense := &SpladeLike{Vocab: 500, MinTerms: 20, MaxTerms: 60}
	sparse := &SpladeLikeCSR{SpladeLike: *dense}
	batch := encode.NewBatch([][]int32{{101, 7, 8, 102}, {101, 9, 102}, {101, 3, 4, 5, 6, 102}}, 0)
	rows := make([]float32, batch.Size*dense.Vocab)
	if err := dense.Encode(context.Background(), batch, rows); err != nil {
		t.Fatal(err)
	}
	var csr encode.CSR
	if err := sparse.EncodeSparse(context.Background(), batch, &csr); err != nil {
		t.Fatal(err)
	}
	if err := csr.Check(batch.Size, dense.Vocab); err != nil {
		t.Fatal(err)
	}
	for r := 0; r < batch.Size; r++ {
		terms, weights := csr.Row(r)
		k := 0
		for j, w := range rows[r*dense.Vocab : (r+1)*dense.Vocab] {
			if w > 0 {
				if k >= len(terms) || terms[k] != uint32(j) || weights[k] != w {
					t.Fatalf("row %d: term %d (%g) missing or different in the CSR", r, j, w)
				}
				k++
			}
		}
		if k != len(terms) || k < 10 {
			t.Fatalf("row %d: %d CSR terms, %d positive weights", r, len(terms), k)
		}
	}
}
