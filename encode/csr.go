package encode

import (
	"context"
	"fmt"
)

// CSR holds pooled rows in compressed sparse row form: row r has the terms
// Terms[Offsets[r]:Offsets[r+1]], in ascending order, with their weights.
// A SparseBackend fills it with every positive pooled weight of each row.
type CSR struct {
	Offsets []uint32 // len Rows()+1, Offsets[0] == 0
	Terms   []uint32
	Weights []float32
}

// Rows is the number of rows.
func (c *CSR) Rows() int { return max(len(c.Offsets)-1, 0) }

// Row returns row r's terms and weights (views into c).
func (c *CSR) Row(r int) ([]uint32, []float32) {
	lo, hi := c.Offsets[r], c.Offsets[r+1]
	return c.Terms[lo:hi], c.Weights[lo:hi]
}

// Reset empties c, keeping its buffers.
func (c *CSR) Reset() {
	c.Offsets = append(c.Offsets[:0], 0)
	c.Terms, c.Weights = c.Terms[:0], c.Weights[:0]
}

// Append adds the rows of o after c's.
func (c *CSR) Append(o *CSR) {
	if len(c.Offsets) == 0 {
		c.Offsets = append(c.Offsets, 0)
	}
	base := c.Offsets[len(c.Offsets)-1]
	for _, off := range o.Offsets[1:] {
		c.Offsets = append(c.Offsets, base+off)
	}
	c.Terms = append(c.Terms, o.Terms...)
	c.Weights = append(c.Weights, o.Weights...)
}

// Check reports whether c is well formed for rows rows over a vocabulary of
// v terms: offsets from 0, non-decreasing, ending at len(Terms) ==
// len(Weights); terms ascending within a row and below v; weights positive.
func (c *CSR) Check(rows, v int) error {
	if len(c.Offsets) != rows+1 || c.Offsets[0] != 0 || int(c.Offsets[rows]) != len(c.Terms) || len(c.Terms) != len(c.Weights) {
		return fmt.Errorf("csr: %d offsets (want %d from 0) ending at %d, %d terms, %d weights",
			len(c.Offsets), rows+1, c.Offsets[len(c.Offsets)-1], len(c.Terms), len(c.Weights))
	}
	for r := 0; r < rows; r++ {
		if c.Offsets[r] > c.Offsets[r+1] {
			return fmt.Errorf("csr: offsets decrease at row %d", r)
		}
		terms, weights := c.Row(r)
		for i, t := range terms {
			if int(t) >= v || i > 0 && t <= terms[i-1] || !(weights[i] > 0) {
				return fmt.Errorf("csr: row %d, entry %d: term %d weight %v (vocabulary %d; terms ascending, weights positive)", r, i, t, weights[i], v)
			}
		}
	}
	return nil
}

// SparseBackend is a Backend that can return each row's positive pooled
// weights as CSR instead of dense rows, so that only the non-zeros leave its
// device: splash's CUDA engine. The stream uses EncodeSparse when its
// workers' backends offer it (see AsSparse).
type SparseBackend interface {
	Backend
	// EncodeSparse runs the forward pass and pooling for b and fills dst
	// with every weight > 0 of each of the b.Size pooled rows (what Encode
	// would write, sparse), replacing what dst held.
	EncodeSparse(ctx context.Context, b *Batch, dst *CSR) error
}

// AsSparse returns b as a SparseBackend when it is one, or wraps one in
// SplitOnOOM (which then splits sparse batches that run out of memory the
// same way); nil otherwise.
func AsSparse(b Backend) SparseBackend {
	if s, ok := b.(*SplitOnOOM); ok {
		if _, ok := s.inner.(SparseBackend); ok {
			return sparseSplit{s}
		}
		return nil
	}
	sb, _ := b.(SparseBackend)
	return sb
}

// sparseSplit is a SplitOnOOM over a SparseBackend, as a SparseBackend.
type sparseSplit struct{ *SplitOnOOM }

func (s sparseSplit) EncodeSparse(ctx context.Context, b *Batch, dst *CSR) error {
	return s.SplitOnOOM.EncodeSparse(ctx, b, dst)
}

// SparsifyRow is Sparsify for a row given as its positive weights (terms
// ascending): the same vector as Sparsify of the dense row.
func SparsifyRow(terms []uint32, weights []float32, o SparsifyOptions, dst SparseVec) SparseVec {
	v := SparseVec{Terms: dst.Terms[:0], Weights: dst.Weights[:0], Impacts: dst.Impacts[:0]}
	for i, w := range weights {
		if w > o.MinWeight && w > 0 {
			v.Terms = append(v.Terms, terms[i])
			v.Weights = append(v.Weights, w)
		}
	}
	return pruneAndQuantize(v, o)
}
