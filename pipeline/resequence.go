package pipeline

import (
	"errors"
	"fmt"
)

// ErrResequence is wrapped by PutChecked's error for a number that was
// already delivered or is already pending: a bug of the caller.
var ErrResequence = errors.New("resequencer: number put twice")

// Resequencer restores the order of values numbered 0, 1, 2, ... that
// arrive out of order (workers finish out of order). The zero value is
// ready, expecting 0 first. It holds back the values that arrive before
// their turn, so a caller bounds its memory by bounding how far ahead the
// numbers it puts can get. A Resequencer is not safe for concurrent use.
type Resequencer[T any] struct {
	next    int64
	pending map[int64]T
}

// Put adds value number i and returns the values now due, in order: none
// when i is ahead of the next expected number, else v and the held-back
// values that follow it. The returned slice is the caller's.
//
// Putting a number already delivered (below Next) or already pending is a
// caller bug: Put ignores it (the value is dropped, the first one put
// stays) and returns nil. PutChecked reports it instead.
func (r *Resequencer[T]) Put(i int64, v T) []T {
	due, _ := r.PutChecked(i, v)
	return due
}

// PutChecked is Put with an error wrapping ErrResequence, and nothing else
// done, for a number already delivered or already pending.
func (r *Resequencer[T]) PutChecked(i int64, v T) ([]T, error) {
	if i < r.next {
		return nil, fmt.Errorf("%w: %d already delivered (next expected %d)", ErrResequence, i, r.next)
	}
	if _, ok := r.pending[i]; ok {
		return nil, fmt.Errorf("%w: %d already pending", ErrResequence, i)
	}
	if i > r.next {
		if r.pending == nil {
			r.pending = map[int64]T{}
		}
		r.pending[i] = v
		return nil, nil
	}
	due := []T{v}
	r.next++
	for len(r.pending) > 0 {
		w, ok := r.pending[r.next]
		if !ok {
			break
		}
		delete(r.pending, r.next)
		due = append(due, w)
		r.next++
	}
	return due, nil
}

// Pending returns the number of values held back, waiting for an earlier
// number.
func (r *Resequencer[T]) Pending() int { return len(r.pending) }

// Next returns the number expected next: the count of values delivered.
func (r *Resequencer[T]) Next() int64 { return r.next }
