package pipeline

import (
	"context"
	"fmt"
	"sort"
)

// PackByLength groups items into batches for a padded forward pass. Items are
// sorted by length (stable, so equal lengths keep their order) and packed
// greedily: a batch grows while its padded size, items × longest length,
// stays within budget and it holds at most maxItems items (0: no limit).
// An item longer than budget gets a batch of its own. It returns the item
// indices of each batch; every index appears exactly once.
func PackByLength(lengths []int, budget, maxItems int) [][]int {
	order := make([]int, len(lengths))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return lengths[order[a]] < lengths[order[b]] })
	var batches [][]int
	var cur []int
	for _, i := range order {
		n := len(cur) + 1
		longest := lengths[i] // ascending order: the newest item is the longest
		if len(cur) > 0 && (n*longest > budget || (maxItems > 0 && n > maxItems)) {
			batches = append(batches, cur)
			cur = nil
		}
		cur = append(cur, i)
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	return batches
}

// PaddedTokens returns the tokens a batch of these lengths occupies once
// padded to its longest item.
func PaddedTokens(lengths []int, batch []int) int {
	longest := 0
	for _, i := range batch {
		longest = max(longest, lengths[i])
	}
	return longest * len(batch)
}

// DefaultWindow is the number of items BatchByLength gathers before it
// sorts them by length, when BatchOptions.Window is 0.
const DefaultWindow = 4096

// Chunk is a run of consecutive items; Index numbers the chunks of a whole
// run in reading order 0, 1, 2, ... so that BatchByLength can restore that
// order when workers upstream finish out of order, and form the same
// batches on every run. Flush asks the batcher to send out every item it
// holds once this chunk is in order (a chunk may carry Flush and no items):
// a reader about to block on something the pipeline's output may be waiting
// for sends one, so that nothing stays held back.
type Chunk[T any] struct {
	Index int64
	Items []T
	Flush bool
}

// BatchOptions rule BatchByLength and PackWindow.
type BatchOptions struct {
	// Window is the number of items gathered before they are sorted by
	// length and packed (at least: whole chunks are gathered); <= 0 means
	// DefaultWindow. PackWindow does not use it.
	Window int
	// Budget bounds a batch's padded tokens: items × longest item. An item
	// longer than Budget gets a batch of its own.
	Budget int
	// MaxItems bounds a batch's items (0: no limit).
	MaxItems int
	// Skip: items of length <= Skip are not run (documents with special
	// tokens only, for instance). They go out first, in one batch of their
	// own per window. A negative Skip skips nothing.
	Skip int
}

// PackWindow splits one window of item lengths into the indices of the
// skipped items (length <= opts.Skip), in their order, and length-sorted
// batches of the others under opts.Budget and opts.MaxItems
// (PackByLength). Both index into lengths; every index appears once.
func PackWindow(lengths []int, opts BatchOptions) (skipped []int, batches [][]int) {
	var run, runLengths []int
	for i, n := range lengths {
		if n <= opts.Skip {
			skipped = append(skipped, i)
		} else {
			run = append(run, i)
			runLengths = append(runLengths, n)
		}
	}
	batches = PackByLength(runLengths, opts.Budget, opts.MaxItems)
	for _, group := range batches {
		for k, i := range group {
			group[k] = run[i]
		}
	}
	return skipped, batches
}

// BatchByLength reads chunks from in, puts them back in Index order (they
// may arrive out of order) and gathers their items in a pool. When the
// pool holds at least opts.Window items once a chunk comes due, or the
// chunk that came due has Flush set, it packs the pool with PackWindow and
// emits the skipped items' batch (if any), then each batch, in that order;
// the pool is then empty (a flush of an empty pool emits nothing). Once in
// is closed it packs what is left the same way, unless ctx is done. length
// gives an item's length. Each emitted slice is new: emit may keep it.
//
// It returns emit's first error as it is; ctx.Err() once ctx is done
// (emit should watch ctx: Stage's does); and, if in closes while chunks
// are held back behind a missing one and ctx is not done, the error
// "internal error: N document chunks never came in order". A chunk whose
// Index was already seen is an internal error too (wrapping
// ErrResequence).
func BatchByLength[T any](ctx context.Context, in <-chan Chunk[T], emit func([]T) error, opts BatchOptions, length func(T) int) error {
	window := opts.Window
	if window <= 0 {
		window = DefaultWindow
	}
	var (
		pool    []T
		lengths []int
		order   Resequencer[Chunk[T]]
	)
	flush := func() error {
		lengths = lengths[:0]
		for _, it := range pool {
			lengths = append(lengths, length(it))
		}
		skipped, batches := PackWindow(lengths, opts)
		pick := func(idx []int) []T {
			b := make([]T, len(idx))
			for k, i := range idx {
				b[k] = pool[i]
			}
			return b
		}
		defer func() { clear(pool); pool = pool[:0] }()
		if len(skipped) > 0 {
			if err := emit(pick(skipped)); err != nil {
				return err
			}
		}
		for _, b := range batches {
			if err := emit(pick(b)); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		c, ok, err := Recv(ctx, in)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		due, err := order.PutChecked(c.Index, c)
		if err != nil {
			return fmt.Errorf("internal error: document chunk: %w", err)
		}
		for _, d := range due {
			pool = append(pool, d.Items...)
			if len(pool) >= window || d.Flush {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	if n := order.Pending(); n > 0 && ctx.Err() == nil {
		return fmt.Errorf("internal error: %d document chunks never came in order", n)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return flush()
}
