package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"testing"
)

// item is a test document: its number in reading order and its length.
type item struct{ id, n int }

func itemLen(it item) int { return it.n }

// refPackWindow is the reference rule, written apart from PackWindow: the
// short items in reading order, then the others sorted by length (ties in
// reading order) cut greedily whenever one more item would break the
// budget or the item limit.
func refPackWindow(lengths []int, o BatchOptions) (skipped []int, batches [][]int) {
	var run []int
	for i, n := range lengths {
		if n <= o.Skip {
			skipped = append(skipped, i)
		} else {
			run = append(run, i)
		}
	}
	sort.Slice(run, func(a, b int) bool {
		la, lb := lengths[run[a]], lengths[run[b]]
		return la < lb || la == lb && run[a] < run[b]
	})
	var cur []int
	for _, i := range run {
		grown := len(cur) + 1
		if len(cur) > 0 && (grown*lengths[i] > o.Budget || o.MaxItems > 0 && grown > o.MaxItems) {
			batches = append(batches, cur)
			cur = nil
		}
		cur = append(cur, i)
	}
	if cur != nil {
		batches = append(batches, cur)
	}
	return skipped, batches
}

// refBatchByLength is the reference batcher: chunks in Index order, a pool
// packed whenever it reaches the window or a Flush chunk is added, and what
// is left at the end.
func refBatchByLength(chunks []Chunk[item], o BatchOptions) [][]item {
	window := o.Window
	if window <= 0 {
		window = 4096
	}
	chunks = slices.Clone(chunks)
	slices.SortFunc(chunks, func(a, b Chunk[item]) int { return int(a.Index - b.Index) })
	var out [][]item
	var pool []item
	pack := func() {
		lengths := make([]int, len(pool))
		for i, it := range pool {
			lengths[i] = it.n
		}
		skipped, batches := refPackWindow(lengths, o)
		for _, idx := range append([][]int{skipped}, batches...) {
			if len(idx) == 0 {
				continue
			}
			b := make([]item, len(idx))
			for k, i := range idx {
				b[k] = pool[i]
			}
			out = append(out, b)
		}
		pool = nil
	}
	for _, c := range chunks {
		pool = append(pool, c.Items...)
		if len(pool) >= window || c.Flush {
			pack()
		}
	}
	pack()
	return out
}

// genCase describes a random run: its documents, how they are cut into
// chunks and how the chunks arrive.
type genCase struct {
	name     string
	seed     uint64
	items    int
	maxLen   int
	maxChunk int     // chunk sizes 0..maxChunk (at least 1)
	flush    float64 // probability that a chunk carries Flush
	shuffle  int     // chunks arrive shuffled within blocks of this size (0: all, 1: in order)
	opts     BatchOptions
}

func (gc genCase) chunks() []Chunk[item] {
	rng := rand.New(rand.NewPCG(gc.seed, 7))
	var chunks []Chunk[item]
	for id := 0; id < gc.items || len(chunks) == 0; {
		size := min(rng.IntN(max(gc.maxChunk, 1)+1), gc.items-id)
		c := Chunk[item]{Index: int64(len(chunks)), Flush: rng.Float64() < gc.flush}
		for range size {
			// A tenth of the documents are "empty": at most Skip long.
			n := 1 + rng.IntN(gc.maxLen)
			if rng.IntN(10) == 0 {
				n = rng.IntN(max(gc.opts.Skip, 0) + 1)
			}
			c.Items = append(c.Items, item{id: id, n: n})
			id++
		}
		chunks = append(chunks, c)
		if gc.items == 0 {
			break
		}
	}
	block := gc.shuffle
	if block <= 0 {
		block = len(chunks)
	}
	for lo := 0; lo < len(chunks); lo += block {
		hi := min(lo+block, len(chunks))
		rng.Shuffle(hi-lo, func(a, b int) { chunks[lo+a], chunks[lo+b] = chunks[lo+b], chunks[lo+a] })
	}
	return chunks
}

var genCases = []genCase{
	{name: "empty input", seed: 1, items: 0, maxLen: 10, maxChunk: 3, opts: BatchOptions{Window: 10, Budget: 100}},
	{name: "window larger than input", seed: 2, items: 300, maxLen: 200, maxChunk: 17, shuffle: 0,
		opts: BatchOptions{Window: 1000, Budget: 2048, Skip: 2}},
	{name: "window smaller than input", seed: 3, items: 3000, maxLen: 512, maxChunk: 40, shuffle: 0,
		opts: BatchOptions{Window: 256, Budget: 8192, Skip: 2}},
	{name: "window smaller than a chunk", seed: 4, items: 1000, maxLen: 64, maxChunk: 50, shuffle: 5,
		opts: BatchOptions{Window: 7, Budget: 256, Skip: 1}},
	{name: "window 0 is 4096", seed: 5, items: 10000, maxLen: 128, maxChunk: 100, shuffle: 8,
		opts: BatchOptions{Budget: 4096, Skip: 2}},
	{name: "max items", seed: 6, items: 2000, maxLen: 300, maxChunk: 30, shuffle: 0,
		opts: BatchOptions{Window: 500, Budget: 100000, MaxItems: 8, Skip: 2}},
	{name: "budget below the longest items", seed: 7, items: 800, maxLen: 1000, maxChunk: 20, shuffle: 3,
		opts: BatchOptions{Window: 100, Budget: 300, Skip: 0}},
	{name: "skip none", seed: 8, items: 800, maxLen: 50, maxChunk: 20, shuffle: 0,
		opts: BatchOptions{Window: 100, Budget: 400, Skip: -1}},
	{name: "flush chunks, in order", seed: 9, items: 2000, maxLen: 200, maxChunk: 25, flush: 0.1, shuffle: 1,
		opts: BatchOptions{Window: 300, Budget: 2000, MaxItems: 16, Skip: 2}},
	{name: "flush chunks, shuffled", seed: 10, items: 2000, maxLen: 200, maxChunk: 25, flush: 0.2, shuffle: 0,
		opts: BatchOptions{Window: 300, Budget: 2000, Skip: 2}},
	{name: "flush chunks, many empty", seed: 11, items: 300, maxLen: 30, maxChunk: 2, flush: 0.5, shuffle: 4,
		opts: BatchOptions{Window: 50, Budget: 100, Skip: 3}},
}

func TestPackWindowMatchesReference(t *testing.T) {
	for _, gc := range genCases {
		t.Run(gc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(gc.seed, 11))
			for range 20 {
				lengths := make([]int, rng.IntN(min(gc.items, 1000)+1))
				for i := range lengths {
					lengths[i] = rng.IntN(gc.maxLen + 1)
				}
				skipped, batches := PackWindow(lengths, gc.opts)
				wantSkipped, wantBatches := refPackWindow(lengths, gc.opts)
				if !reflect.DeepEqual(skipped, wantSkipped) || !reflect.DeepEqual(batches, wantBatches) {
					t.Fatalf("lengths %v, %+v:\nPackWindow %v %v\nreference  %v %v", lengths, gc.opts, skipped, batches, wantSkipped, wantBatches)
				}
			}
		})
	}
}

// runBatch runs BatchByLength over chunks sent in the given order on a
// closed, buffered channel and returns what it emitted.
func runBatch(ctx context.Context, chunks []Chunk[item], opts BatchOptions, emitErr func(k int) error) ([][]item, error) {
	in := make(chan Chunk[item], len(chunks))
	for _, c := range chunks {
		in <- c
	}
	close(in)
	var out [][]item
	err := BatchByLength(ctx, in, func(b []item) error {
		if emitErr != nil {
			if err := emitErr(len(out)); err != nil {
				return err
			}
		}
		out = append(out, b)
		return nil
	}, opts, itemLen)
	return out, err
}

func TestBatchByLengthMatchesReference(t *testing.T) {
	for _, gc := range genCases {
		t.Run(gc.name, func(t *testing.T) {
			chunks := gc.chunks()
			got, err := runBatch(context.Background(), chunks, gc.opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := refBatchByLength(chunks, gc.opts)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%d batches, reference %d; first difference at %d", len(got), len(want), firstDiff(got, want))
			}
			checkBatches(t, got, gc)
		})
	}
}

// TestBatchByLengthInStage runs the batcher as a Stage behind a Map whose
// workers finish out of order, as in the encoder.
func TestBatchByLengthInStage(t *testing.T) {
	for _, gc := range genCases {
		t.Run(gc.name, func(t *testing.T) {
			chunks := gc.chunks()
			g, _ := NewGroup(context.Background())
			src := Source(g, 2, func(ctx context.Context, emit func(Chunk[item]) error) error {
				for _, c := range chunks {
					if err := emit(c); err != nil {
						return err
					}
				}
				return nil
			})
			tokenized := Map(g, src, 4, 4, func(_ context.Context, c Chunk[item]) (Chunk[item], error) { return c, nil })
			batches := Stage(g, tokenized, 1, 2, func(ctx context.Context, in <-chan Chunk[item], emit func([]item) error) error {
				return BatchByLength(ctx, in, emit, gc.opts, itemLen)
			})
			var got [][]item
			Sink(g, batches, func(_ context.Context, b []item) error { got = append(got, b); return nil })
			if err := g.Wait(); err != nil {
				t.Fatal(err)
			}
			if want := refBatchByLength(chunks, gc.opts); !reflect.DeepEqual(got, want) {
				t.Fatalf("%d batches, reference %d; first difference at %d", len(got), len(want), firstDiff(got, want))
			}
		})
	}
}

// checkBatches checks what the reference does not state: every document
// once, skipped documents alone, budget and item limits kept.
func checkBatches(t *testing.T, batches [][]item, gc genCase) {
	t.Helper()
	seen := make([]int, gc.items)
	for _, b := range batches {
		if len(b) == 0 {
			t.Fatal("empty batch")
		}
		skipped := b[0].n <= gc.opts.Skip
		longest := 0
		for _, it := range b {
			seen[it.id]++
			if (it.n <= gc.opts.Skip) != skipped {
				t.Fatalf("batch mixes skipped and run documents: %v", b)
			}
			longest = max(longest, it.n)
		}
		if skipped {
			continue
		}
		if len(b) > 1 && len(b)*longest > gc.opts.Budget {
			t.Fatalf("batch of %d × %d tokens over budget %d", len(b), longest, gc.opts.Budget)
		}
		if gc.opts.MaxItems > 0 && len(b) > gc.opts.MaxItems {
			t.Fatalf("batch of %d items, limit %d", len(b), gc.opts.MaxItems)
		}
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("document %d in %d batches", id, c)
		}
	}
}

func firstDiff(a, b [][]item) int {
	for i := range min(len(a), len(b)) {
		if !reflect.DeepEqual(a[i], b[i]) {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestBatchByLengthFlushBookkeeping spells out the flush cases on small
// inputs; lengths are ids here, so batches come out in id order.
func TestBatchByLengthFlushBookkeeping(t *testing.T) {
	it := func(ids ...int) []item {
		var s []item
		for _, id := range ids {
			s = append(s, item{id: id, n: id})
		}
		return s
	}
	opts := BatchOptions{Window: 4, Budget: 1 << 20, Skip: 0}
	for _, tc := range []struct {
		name   string
		chunks []Chunk[item]
		want   [][]item
	}{
		{name: "flush on an empty pool emits nothing",
			chunks: []Chunk[item]{{Index: 0, Flush: true}, {Index: 1, Items: it(1, 2)}},
			want:   [][]item{it(1, 2)}},
		{name: "flush takes effect when its chunk comes due",
			// Chunk 1 carries the flush and arrives first; chunk 0 arrives
			// later: 1 and 2 then 3 go out in two windows.
			chunks: []Chunk[item]{{Index: 1, Items: it(2), Flush: true}, {Index: 0, Items: it(1)}, {Index: 2, Items: it(3)}},
			want:   [][]item{it(1, 2), it(3)}},
		{name: "skipped documents first, once per window",
			chunks: []Chunk[item]{{Index: 0, Items: it(3, 0, 1)}, {Index: 1, Items: it(0, 2), Flush: true}, {Index: 2, Items: it(0)}},
			want:   [][]item{it(0, 0), it(1, 2, 3), it(0)}},
		{name: "a window fills once a whole chunk is in",
			chunks: []Chunk[item]{{Index: 0, Items: it(1, 2, 3)}, {Index: 1, Items: it(4, 5, 6)}, {Index: 2, Items: it(7)}},
			want:   [][]item{it(1, 2, 3, 4, 5, 6), it(7)}},
		{name: "the pool is empty after a flush",
			chunks: []Chunk[item]{{Index: 0, Items: it(1), Flush: true}, {Index: 1, Items: it(2), Flush: true}, {Index: 2, Flush: true}},
			want:   [][]item{it(1), it(2)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runBatch(context.Background(), tc.chunks, opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if ref := refBatchByLength(tc.chunks, opts); !reflect.DeepEqual(ref, tc.want) {
				t.Fatalf("reference %v, want %v", ref, tc.want)
			}
		})
	}
}

func TestBatchByLengthErrors(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	gc := genCases[2] // several windows
	all := gc.chunks()
	slices.SortFunc(all, func(a, b Chunk[item]) int { return int(a.Index - b.Index) })
	without := func(drop ...int64) []Chunk[item] {
		return slices.DeleteFunc(slices.Clone(all), func(c Chunk[item]) bool { return slices.Contains(drop, c.Index) })
	}
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		chunks  []Chunk[item]
		emitErr func(k int) error
		wantErr string
		is      error
		emitted int // -1: any
	}{
		{name: "emit error stops it", ctx: context.Background(), chunks: all,
			emitErr: func(k int) error {
				if k == 3 {
					return errBoom
				}
				return nil
			}, is: errBoom, emitted: 3},
		{name: "emit error on the final flush", ctx: context.Background(), chunks: all[:1],
			emitErr: func(int) error { return errBoom }, is: errBoom, emitted: 0},
		{name: "gap at close", ctx: context.Background(), chunks: without(0),
			wantErr: fmt.Sprintf("internal error: %d document chunks never came in order", len(all)-1), emitted: 0},
		{name: "gap in the middle", ctx: context.Background(), chunks: without(5, 9),
			wantErr: fmt.Sprintf("internal error: %d document chunks never came in order", len(all)-7), emitted: -1},
		{name: "gap but cancelled", ctx: cancelled, chunks: without(0), is: context.Canceled, emitted: 0},
		{name: "cancelled: no final flush", ctx: cancelled, chunks: all[:2], is: context.Canceled, emitted: 0},
		{name: "chunk index twice", ctx: context.Background(), chunks: append(slices.Clone(all[:3]), all[1]),
			is: ErrResequence, emitted: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runBatch(tc.ctx, tc.chunks, gc.opts, tc.emitErr)
			switch {
			case tc.is != nil && !errors.Is(err, tc.is):
				t.Fatalf("err %v, want %v", err, tc.is)
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
			if tc.emitted >= 0 && len(got) != tc.emitted {
				t.Fatalf("emitted %d batches, want %d", len(got), tc.emitted)
			}
		})
	}
}

func BenchmarkBatchByLength(b *testing.B) {
	gc := genCase{seed: 1, items: 100_000, maxLen: 512, maxChunk: 256, shuffle: 8,
		opts: BatchOptions{Window: 4096, Budget: 16384, MaxItems: 64, Skip: 2}}
	chunks := gc.chunks()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := runBatch(context.Background(), chunks, gc.opts, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(gc.items)*float64(b.N)/b.Elapsed().Seconds(), "docs/s")
}
