package encode

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

const (
	fakeVocab = 7
	fakePad   = 0
)

type shape struct{ size, seqLen int }

// fakeOOMBackend pools each row from its own unmasked (position, id) pairs
// only, so a row's output does not depend on the other rows of the batch nor
// on its padding. It fails with ErrOutOfMemory when Size*SeqLen > limit
// (limit <= 0: never) and records the shape of every call.
type fakeOOMBackend struct {
	limit int
	// fail, if set, is consulted first on every call; a non-nil result is
	// returned as is.
	fail func(ctx context.Context, b *Batch) error

	mu    sync.Mutex
	calls []shape
	bad   []string // invariant violations seen in calls
}

func (f *fakeOOMBackend) VocabSize() int { return fakeVocab }
func (f *fakeOOMBackend) Close() error   { return nil }

func (f *fakeOOMBackend) Encode(ctx context.Context, b *Batch, out []float32) error {
	f.mu.Lock()
	f.calls = append(f.calls, shape{b.Size, b.SeqLen})
	n := b.Size * b.SeqLen
	if len(b.InputIDs) != n || len(b.AttentionMask) != n || len(b.TokenTypeIDs) != n || len(out) < b.Size*fakeVocab {
		f.bad = append(f.bad, fmt.Sprintf("call %dx%d: %d ids, %d mask, %d types, %d out",
			b.Size, b.SeqLen, len(b.InputIDs), len(b.AttentionMask), len(b.TokenTypeIDs), len(out)))
	}
	f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(ctx, b); err != nil {
			return err
		}
	}
	if f.limit > 0 && n > f.limit {
		return fmt.Errorf("fake alloc %dx%d: %w", b.Size, b.SeqLen, ErrOutOfMemory)
	}
	for r := 0; r < b.Size; r++ {
		row := out[r*fakeVocab : (r+1)*fakeVocab]
		clear(row)
		for i := 0; i < b.SeqLen; i++ {
			k := r*b.SeqLen + i
			if b.AttentionMask[k] == 0 {
				continue
			}
			id := b.InputIDs[k]
			for j := range row {
				// Small integers: float32 sums are exact, so results
				// compare with ==.
				row[j] += float32((id*31+int64(j)*7+int64(i)*3)%101 + 1)
			}
		}
	}
	return nil
}

func (f *fakeOOMBackend) shapes() []shape {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeOOMBackend) checkInvariants(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.bad {
		t.Error("inner backend got a malformed call:", s)
	}
}

func randomDocs(rng *rand.Rand, n, maxLen int) [][]int32 {
	docs := make([][]int32, n)
	for i := range docs {
		d := make([]int32, rng.IntN(maxLen+1))
		for k := range d {
			d[k] = 1 + rng.Int32N(30000)
		}
		docs[i] = d
	}
	return docs
}

// encodeAlone is the oracle: every document in a batch of its own, with an
// inner backend that never runs out of memory.
func encodeAlone(t *testing.T, docs [][]int32) []float32 {
	t.Helper()
	f := &fakeOOMBackend{}
	want := make([]float32, len(docs)*fakeVocab)
	for i, d := range docs {
		if err := f.Encode(context.Background(), NewBatch([][]int32{d}, fakePad), want[i*fakeVocab:(i+1)*fakeVocab]); err != nil {
			t.Fatal(err)
		}
	}
	return want
}

func maxLen(docs [][]int32) int {
	m := 0
	for _, d := range docs {
		m = max(m, len(d))
	}
	return m
}

// encodeWith runs s on docs and returns the pooled rows. out has a guard tail
// that must stay untouched.
func encodeWith(t *testing.T, s *SplitOnOOM, docs [][]int32) ([]float32, error) {
	t.Helper()
	const guard = -12345
	out := make([]float32, len(docs)*fakeVocab+3)
	for i := range out {
		out[i] = guard
	}
	err := s.Encode(context.Background(), NewBatch(docs, fakePad), out)
	for i, x := range out[len(docs)*fakeVocab:] {
		if x != guard {
			t.Errorf("wrote past the batch: out[%d] = %v", len(docs)*fakeVocab+i, x)
		}
	}
	return out[:len(docs)*fakeVocab], err
}

func TestSplitOnOOMMatchesOneByOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		docs := randomDocs(rng, 1+rng.IntN(24), 1+rng.IntN(40))
		longest := max(maxLen(docs), 1)
		full := len(docs) * longest
		limits := []int{
			0,                          // never fails
			full,                       // exactly fits
			max(full-1, longest),       // whole batch just too large
			longest + rng.IntN(full+1), // somewhere between
			longest,                    // forces single rows for the longest ones
		}
		want := encodeAlone(t, docs)
		for _, lim := range limits {
			f := &fakeOOMBackend{limit: lim}
			var splits []shape
			s := NewSplitOnOOM(f, func(docs, seqLen int) { splits = append(splits, shape{docs, seqLen}) })
			got, err := encodeWith(t, s, docs)
			if err != nil {
				t.Fatalf("trial %d, limit %d, %d docs of up to %d tokens: %v", trial, lim, len(docs), longest, err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("trial %d, limit %d: output differs from encoding each document alone\n got %v\nwant %v", trial, lim, got, want)
			}
			f.checkInvariants(t)
			calls := f.shapes()
			// The first call is the batch as given; every later one is a
			// part trimmed to its longest document, and each failure was
			// reported through onSplit.
			if calls[0] != (shape{len(docs), NewBatch(docs, fakePad).SeqLen}) {
				t.Fatalf("trial %d: first call %v, want the batch as given", trial, calls[0])
			}
			var failed []shape
			for _, c := range calls {
				if lim > 0 && c.size*c.seqLen > lim {
					failed = append(failed, c)
				}
			}
			if !slices.Equal(failed, splits) {
				t.Fatalf("trial %d, limit %d: onSplit got %v, failing calls were %v", trial, lim, splits, failed)
			}
			if lim > 0 && len(failed) > 0 && s.Limit() != slices.Min(failedSizes(failed)) {
				t.Fatalf("trial %d: learned limit %d, smallest failure %v", trial, s.Limit(), failed)
			}
			checkTrimmedParts(t, docs, calls)
		}
	}
}

func failedSizes(ss []shape) []int {
	var n []int
	for _, s := range ss {
		n = append(n, s.size*s.seqLen)
	}
	return n
}

// checkTrimmedParts replays the halving on docs and checks that every call
// after the first has the row count and trimmed length of some part.
func checkTrimmedParts(t *testing.T, docs [][]int32, calls []shape) {
	t.Helper()
	parts := map[shape]bool{}
	var walk func(lo, hi int)
	walk = func(lo, hi int) {
		l := 0
		for _, d := range docs[lo:hi] {
			l = max(l, len(d))
		}
		parts[shape{hi - lo, max(l, 1)}] = true
		if hi-lo > 1 {
			h := lo + (hi-lo+1)/2
			walk(lo, h)
			walk(h, hi)
		}
	}
	walk(0, len(docs))
	for _, c := range calls[1:] {
		if !parts[c] {
			t.Fatalf("inner call %dx%d is not a trimmed half of the batch (parts: %v)", c.size, c.seqLen, parts)
		}
	}
}

func TestSplitOnOOMDocumentTooLarge(t *testing.T) {
	docs := [][]int32{make([]int32, 3), make([]int32, 50), make([]int32, 4)}
	for i := range docs {
		for k := range docs[i] {
			docs[i][k] = int32(k + 1)
		}
	}
	f := &fakeOOMBackend{limit: 20}
	var splits []shape
	s := NewSplitOnOOM(f, func(docs, seqLen int) { splits = append(splits, shape{docs, seqLen}) })
	_, err := encodeWith(t, s, docs)
	if err == nil {
		t.Fatal("a 50-token document with a 20-position limit encoded without error")
	}
	if !errors.Is(err, ErrOutOfMemory) {
		t.Errorf("error %q does not wrap ErrOutOfMemory", err)
	}
	if !strings.Contains(err.Error(), "50 tokens") || !strings.Contains(err.Error(), "row 1 of 3") {
		t.Errorf("error %q does not name the document's 50 tokens and its row", err)
	}
	// 3x50 fails, 2x50 fails, then row 0 alone (1x3) is fine, row 1 alone
	// (1x50) fails and is final; row 2 is never tried.
	want := []shape{{3, 50}, {2, 50}, {1, 3}, {1, 50}}
	if got := f.shapes(); !slices.Equal(got, want) {
		t.Errorf("inner calls %v, want %v", got, want)
	}
	if want := []shape{{3, 50}, {2, 50}}; !slices.Equal(splits, want) {
		t.Errorf("onSplit got %v, want %v", splits, want)
	}
}

func TestSplitOnOOMSingleRowDropsPadding(t *testing.T) {
	// One document of 10 tokens padded to 40: the padding alone exceeds the
	// limit, so the wrapper retries the document without it.
	doc := []int32{5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
	b := NewBatch([][]int32{doc, make([]int32, 40)}, fakePad)
	one := &Batch{Size: 1, SeqLen: 40, InputIDs: b.InputIDs[:40], AttentionMask: b.AttentionMask[:40], TokenTypeIDs: b.TokenTypeIDs[:40]}
	f := &fakeOOMBackend{limit: 20}
	s := NewSplitOnOOM(f, nil)
	out := make([]float32, fakeVocab)
	if err := s.Encode(context.Background(), one, out); err != nil {
		t.Fatal(err)
	}
	if want := encodeAlone(t, [][]int32{doc}); !slices.Equal(out, want) {
		t.Errorf("got %v, want %v", out, want)
	}
	if got, want := f.shapes(), []shape{{1, 40}, {1, 10}}; !slices.Equal(got, want) {
		t.Errorf("inner calls %v, want %v", got, want)
	}
}

func TestSplitOnOOMLearnsLimit(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	docsOf := func(n int) [][]int32 {
		docs := randomDocs(rng, n, 8)
		for i := range docs {
			for len(docs[i]) < 8 {
				docs[i] = append(docs[i], 1+rng.Int32N(100))
			}
		}
		return docs
	}
	f := &fakeOOMBackend{limit: 32}
	splits := 0
	s := NewSplitOnOOM(f, func(int, int) { splits++ })

	check := func(docs [][]int32, wantCalls []shape) {
		t.Helper()
		before := len(f.shapes())
		got, err := encodeWith(t, s, docs)
		if err != nil {
			t.Fatal(err)
		}
		if want := encodeAlone(t, docs); !slices.Equal(got, want) {
			t.Fatalf("%d docs: output differs from encoding each alone", len(docs))
		}
		if calls := f.shapes()[before:]; !slices.Equal(calls, wantCalls) {
			t.Fatalf("%d docs: inner calls %v, want %v", len(docs), calls, wantCalls)
		}
	}

	check(docsOf(8), []shape{{8, 8}, {4, 8}, {4, 8}})
	if s.Limit() != 64 || splits != 1 {
		t.Fatalf("after the first OOM: limit %d, %d splits; want 64, 1", s.Limit(), splits)
	}
	// Same size again: split before the inner backend sees 8x8.
	check(docsOf(8), []shape{{4, 8}, {4, 8}})
	// Larger: split down to parts under the limit without trying 16x8 or 8x8.
	check(docsOf(16), []shape{{4, 8}, {4, 8}, {4, 8}, {4, 8}})
	if splits != 1 {
		t.Fatalf("pre-emptive splits called onSplit: %d calls", splits)
	}
	// Under the learned limit it still tries the whole batch, fails, and
	// learns the smaller size.
	check(docsOf(7), []shape{{7, 8}, {4, 8}, {3, 8}})
	if s.Limit() != 56 || splits != 2 {
		t.Fatalf("after 7x8 failed: limit %d, %d splits; want 56, 2", s.Limit(), splits)
	}
	// A batch that fits is passed through untouched.
	check(docsOf(3), []shape{{3, 8}})
}

func TestSplitOnOOMOtherErrorsNotRetried(t *testing.T) {
	boom := errors.New("kernel launch failed")
	t.Run("whole batch", func(t *testing.T) {
		f := &fakeOOMBackend{fail: func(context.Context, *Batch) error { return boom }}
		splits := 0
		s := NewSplitOnOOM(f, func(int, int) { splits++ })
		_, err := encodeWith(t, s, randomDocs(rand.New(rand.NewPCG(5, 6)), 6, 10))
		if err != boom {
			t.Errorf("error %v, want the inner error unchanged", err)
		}
		if n := len(f.shapes()); n != 1 || splits != 0 || s.Limit() != 0 {
			t.Errorf("%d inner calls, %d splits, limit %d; want 1, 0, 0", n, splits, s.Limit())
		}
	})
	t.Run("after a split", func(t *testing.T) {
		// 4 docs of 5 tokens, limit 10: 4x5 fails with OOM, 2x5 (rows 0-1)
		// fails with boom, and nothing more is tried.
		f := &fakeOOMBackend{limit: 10, fail: func(_ context.Context, b *Batch) error {
			if b.Size == 2 {
				return boom
			}
			return nil
		}}
		docs := [][]int32{{1, 2, 3, 4, 5}, {1, 2, 3, 4, 5}, {1, 2, 3, 4, 5}, {1, 2, 3, 4, 5}}
		_, err := encodeWith(t, NewSplitOnOOM(f, nil), docs)
		if !errors.Is(err, boom) || errors.Is(err, ErrOutOfMemory) {
			t.Errorf("error %v: want it to wrap only the inner error", err)
		}
		if !strings.Contains(fmt.Sprint(err), "rows 0-1 of 4") {
			t.Errorf("error %q does not say which rows failed", err)
		}
		if got, want := f.shapes(), []shape{{4, 5}, {2, 5}}; !slices.Equal(got, want) {
			t.Errorf("inner calls %v, want %v", got, want)
		}
	})
}

func TestSplitOnOOMConcurrent(t *testing.T) {
	f := &fakeOOMBackend{limit: 96}
	var mu sync.Mutex
	splits := 0
	s := NewSplitOnOOM(f, func(int, int) { mu.Lock(); splits++; mu.Unlock() })
	const workers, perWorker = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range perWorker {
				docs := randomDocs(rng, 1+rng.IntN(20), 1+rng.IntN(40))
				out := make([]float32, len(docs)*fakeVocab)
				if err := s.Encode(context.Background(), NewBatch(docs, fakePad), out); err != nil {
					errs <- err
					return
				}
				// The oracle inline: no t.Fatal off the test goroutine.
				for i, d := range docs {
					want := make([]float32, fakeVocab)
					if err := (&fakeOOMBackend{}).Encode(context.Background(), NewBatch([][]int32{d}, fakePad), want); err != nil {
						errs <- err
						return
					}
					if !slices.Equal(out[i*fakeVocab:(i+1)*fakeVocab], want) {
						errs <- fmt.Errorf("worker %d: row %d of %d differs from encoding it alone", w, i, len(docs))
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	f.checkInvariants(t)
	if s.Limit() == 0 || s.Limit() <= 96 {
		t.Errorf("learned limit %d, want a failed size above 96", s.Limit())
	}
	if splits == 0 {
		t.Error("no split happened: the test does not exercise the back-off")
	}
}

func TestSplitOnOOMCancel(t *testing.T) {
	docs := [][]int32{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {10, 11, 12}}
	t.Run("before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		f := &fakeOOMBackend{}
		err := NewSplitOnOOM(f, nil).Encode(ctx, NewBatch(docs, fakePad), make([]float32, len(docs)*fakeVocab))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
		if n := len(f.shapes()); n != 0 {
			t.Errorf("%d inner calls on a cancelled context", n)
		}
	})
	t.Run("during", func(t *testing.T) {
		// The first attempt runs out of memory while the context is
		// cancelled: no half is tried.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		f := &fakeOOMBackend{limit: 3, fail: func(context.Context, *Batch) error { cancel(); return nil }}
		splits := 0
		err := NewSplitOnOOM(f, func(int, int) { splits++ }).Encode(ctx, NewBatch(docs, fakePad), make([]float32, len(docs)*fakeVocab))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
		if n := len(f.shapes()); n != 1 || splits != 0 {
			t.Errorf("%d inner calls, %d splits after cancel; want 1, 0", n, splits)
		}
	})
	t.Run("between halves", func(t *testing.T) {
		// Cancelled while the first half runs: the second half is not tried.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		f := &fakeOOMBackend{limit: 6, fail: func(_ context.Context, b *Batch) error {
			if b.Size == 2 {
				cancel()
			}
			return nil
		}}
		err := NewSplitOnOOM(f, nil).Encode(ctx, NewBatch(docs, fakePad), make([]float32, len(docs)*fakeVocab))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
		if got, want := f.shapes(), []shape{{4, 3}, {2, 3}}; !slices.Equal(got, want) {
			t.Errorf("inner calls %v, want %v", got, want)
		}
	})
}

func TestSplitOnOOMBadArguments(t *testing.T) {
	s := NewSplitOnOOM(&fakeOOMBackend{}, nil)
	b := NewBatch([][]int32{{1, 2}, {3}}, fakePad)
	if err := s.Encode(context.Background(), b, make([]float32, fakeVocab)); err == nil {
		t.Error("an output shorter than Size*VocabSize was accepted")
	}
	short := *b
	short.AttentionMask = short.AttentionMask[:3]
	if err := s.Encode(context.Background(), &short, make([]float32, 2*fakeVocab)); err == nil {
		t.Error("a batch with a short attention mask was accepted")
	}
	if err := s.Encode(context.Background(), nil, nil); err == nil {
		t.Error("a nil batch was accepted")
	}
	if s.VocabSize() != fakeVocab || s.Inner() == nil || s.Close() != nil {
		t.Error("VocabSize, Inner or Close do not delegate")
	}
}
