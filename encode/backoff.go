package encode

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
)

// ErrOutOfMemory is wrapped by backends when the device cannot allocate for a
// batch, e.g. fmt.Errorf("cuda alloc 64x512: %w", ErrOutOfMemory). SplitOnOOM
// reacts to it by halving the batch; any other error is final.
var ErrOutOfMemory = errors.New("device out of memory")

// SplitOnOOM is a Backend that retries batches the device cannot hold by
// splitting them in two by rows, recursively, until each part fits. Every
// document keeps its row: row i of the batch is always written to
// out[i*V:(i+1)*V]. Each part is re-trimmed to its own longest document, so
// splitting also drops padding that only the other part needed.
//
// It learns the smallest padded size (Size*SeqLen) that failed and splits
// later batches of that size or more before trying them, so a run pays for
// an out-of-memory failure once rather than on every large batch.
//
// A single document that does not fit even alone is an error that wraps
// ErrOutOfMemory and names its token count; it is never dropped.
//
// SplitOnOOM is safe for concurrent use when the inner Backend is.
type SplitOnOOM struct {
	inner   Backend
	onSplit func(docs, seqLen int)
	// limit is the smallest Size*SeqLen that failed with ErrOutOfMemory,
	// 0 while none has.
	limit atomic.Int64
}

// NewSplitOnOOM wraps b. onSplit, if non-nil, is called with the shape
// (rows, padded sequence length) of every batch that failed with
// ErrOutOfMemory and is about to be split; pre-emptive splits of batches at
// or above the learned limit do not call it. onSplit may be called from
// several goroutines at once.
func NewSplitOnOOM(b Backend, onSplit func(docs, seqLen int)) *SplitOnOOM {
	return &SplitOnOOM{inner: b, onSplit: onSplit}
}

// Inner returns the wrapped Backend.
func (s *SplitOnOOM) Inner() Backend { return s.inner }

// VocabSize returns the inner backend's vocabulary size.
func (s *SplitOnOOM) VocabSize() int { return s.inner.VocabSize() }

// Close closes the inner backend.
func (s *SplitOnOOM) Close() error { return s.inner.Close() }

// Limit returns the smallest padded batch size (Size*SeqLen) that has failed
// with ErrOutOfMemory so far, or 0 if none has. Batches with more than one
// row at or above it are split before the inner backend sees them.
func (s *SplitOnOOM) Limit() int { return int(s.limit.Load()) }

// Encode encodes b with the inner backend, splitting on ErrOutOfMemory as
// described on SplitOnOOM. Other errors are returned at once, without retry;
// a cancelled ctx stops further attempts.
func (s *SplitOnOOM) Encode(ctx context.Context, b *Batch, out []float32) error {
	if b == nil {
		return errors.New("oom back-off: nil batch")
	}
	n := b.Size * b.SeqLen
	if b.Size < 0 || b.SeqLen < 0 || len(b.InputIDs) < n || len(b.AttentionMask) < n || len(b.TokenTypeIDs) < n ||
		(b.PositionIDs != nil && len(b.PositionIDs) < n) || (b.PoolMask != nil && len(b.PoolMask) < n) {
		return fmt.Errorf("oom back-off: malformed batch: %d rows x %d positions but %d ids, %d mask, %d token types, %d positions, %d pool mask",
			b.Size, b.SeqLen, len(b.InputIDs), len(b.AttentionMask), len(b.TokenTypeIDs), len(b.PositionIDs), len(b.PoolMask))
	}
	v := s.inner.VocabSize()
	if len(out) < b.Size*v {
		return fmt.Errorf("oom back-off: output holds %d floats, want at least %d rows x %d vocab", len(out), b.Size, v)
	}
	return s.encode(ctx, b, 0, b.Size, func(sub *Batch, row0 int) error {
		return s.inner.Encode(ctx, sub, out[row0*v:(row0+sub.Size)*v])
	})
}

// EncodeSparse is Encode for an inner SparseBackend: dst receives the rows
// of b in order, whatever the splits. It fails when the inner backend is
// not a SparseBackend (AsSparse says whether it is).
func (s *SplitOnOOM) EncodeSparse(ctx context.Context, b *Batch, dst *CSR) error {
	sb, ok := s.inner.(SparseBackend)
	if !ok {
		return fmt.Errorf("oom back-off: %T returns no sparse rows", s.inner)
	}
	if b == nil {
		return errors.New("oom back-off: nil batch")
	}
	dst.Reset()
	var part CSR
	return s.encode(ctx, b, 0, b.Size, func(sub *Batch, row0 int) error {
		if err := sb.EncodeSparse(ctx, sub, &part); err != nil {
			return err
		}
		if part.Rows() != sub.Size {
			return fmt.Errorf("oom back-off: %d sparse rows for a batch of %d", part.Rows(), sub.Size)
		}
		dst.Append(&part) // parts run in row order: first half, then second
		return nil
	})
}

// encode runs b, whose rows are rows row0.. of a batch of total rows, with
// run, which writes the result of rows row0.. of the whole batch.
func (s *SplitOnOOM) encode(ctx context.Context, b *Batch, row0, total int, run func(sub *Batch, row0 int) error) error {
	if err := ctx.Err(); err != nil {
		if b.Size == total {
			return err
		}
		return fmt.Errorf("oom back-off stopped before rows %d-%d of %d: %w", row0, row0+b.Size-1, total, err)
	}
	padded := int64(b.Size) * int64(b.SeqLen)
	if b.Size > 1 {
		if lim := s.limit.Load(); lim > 0 && padded >= lim {
			return s.split(ctx, b, row0, total, run)
		}
	}
	err := run(b, row0)
	if err == nil || !errors.Is(err, ErrOutOfMemory) {
		if err != nil && b.Size != total {
			return fmt.Errorf("rows %d-%d of %d (after out-of-memory split): %w", row0, row0+b.Size-1, total, err)
		}
		return err
	}
	s.learn(padded)
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("oom back-off stopped at rows %d-%d of %d after %w: %w", row0, row0+b.Size-1, total, err, cerr)
	}
	if b.Size > 1 {
		if s.onSplit != nil {
			s.onSplit(b.Size, b.SeqLen)
		}
		return s.split(ctx, b, row0, total, run)
	}
	// One document: drop its padding, if it has any, and try once more.
	if t := min(max(rowLen(b, 0), 1), b.SeqLen); t < b.SeqLen {
		return s.encode(ctx, subBatch(b, 0, 1), row0, total, run)
	}
	tokens := 0
	for _, m := range b.AttentionMask[:b.SeqLen] {
		tokens += int(m)
	}
	return fmt.Errorf("one document of %d tokens (row %d of %d) does not fit the device memory even alone: %w",
		tokens, row0, total, err)
}

// split encodes the first ceil(n/2) rows of b, then the rest, each trimmed
// to its own longest row.
func (s *SplitOnOOM) split(ctx context.Context, b *Batch, row0, total int, run func(sub *Batch, row0 int) error) error {
	h := (b.Size + 1) / 2
	if err := s.encode(ctx, subBatch(b, 0, h), row0, total, run); err != nil {
		return err
	}
	return s.encode(ctx, subBatch(b, h, b.Size), row0+h, total, run)
}

// learn lowers the limit to padded if it is smaller.
func (s *SplitOnOOM) learn(padded int64) {
	for {
		cur := s.limit.Load()
		if cur > 0 && cur <= padded {
			return
		}
		if s.limit.CompareAndSwap(cur, padded) {
			return
		}
	}
}

// rowLen is the length of row r without its trailing padding: one past its
// last unmasked position. For right-padded rows (as NewBatch builds them)
// it is the row's mask sum; a masked hole inside a row is kept.
func rowLen(b *Batch, r int) int {
	mask := b.AttentionMask[r*b.SeqLen : (r+1)*b.SeqLen]
	for i := len(mask) - 1; i >= 0; i-- {
		if mask[i] != 0 {
			return i + 1
		}
	}
	return 0
}

// subBatch copies rows [lo, hi) of b into a new batch whose SeqLen is the
// longest of those rows (at least 1, at most b.SeqLen). Positions are copied
// as they are, so padding keeps b's pad id.
func subBatch(b *Batch, lo, hi int) *Batch {
	seqLen := 0
	for r := lo; r < hi; r++ {
		seqLen = max(seqLen, rowLen(b, r))
	}
	seqLen = min(max(seqLen, 1), b.SeqLen)
	n := (hi - lo) * seqLen
	sb := &Batch{
		Size:          hi - lo,
		SeqLen:        seqLen,
		InputIDs:      make([]int64, n),
		AttentionMask: make([]int64, n),
		TokenTypeIDs:  make([]int64, n),
	}
	if b.PositionIDs != nil {
		sb.PositionIDs = make([]int64, n)
	}
	if b.PoolMask != nil {
		sb.PoolMask = make([]int64, n)
	}
	for r := lo; r < hi; r++ {
		src, dst := r*b.SeqLen, (r-lo)*seqLen
		copy(sb.InputIDs[dst:dst+seqLen], b.InputIDs[src:src+seqLen])
		copy(sb.AttentionMask[dst:dst+seqLen], b.AttentionMask[src:src+seqLen])
		copy(sb.TokenTypeIDs[dst:dst+seqLen], b.TokenTypeIDs[src:src+seqLen])
		if b.PositionIDs != nil {
			copy(sb.PositionIDs[dst:dst+seqLen], b.PositionIDs[src:src+seqLen])
		}
		if b.PoolMask != nil {
			copy(sb.PoolMask[dst:dst+seqLen], b.PoolMask[src:src+seqLen])
		}
	}
	return sb
}
