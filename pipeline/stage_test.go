package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

var errBoom = errors.New("boom")

func TestSend(t *testing.T) {
	for _, tc := range []struct {
		name      string
		buf       int
		cancel    string // "", "before" the Send, "during" it (the receiver never reads)
		want      error
		delivered bool
	}{
		{name: "room", buf: 1, delivered: true},
		{name: "receiver never reads, cancelled while blocked", cancel: "during", want: context.Canceled},
		{name: "receiver never reads, cancelled before", cancel: "before", want: context.Canceled},
		{name: "room but cancelled before", buf: 1, cancel: "before", want: context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				ch := make(chan int, tc.buf)
				if tc.cancel == "before" {
					cancel()
				}
				res := make(chan error, 1)
				go func() { res <- Send(ctx, ch, 7) }()
				synctest.Wait() // Send has returned or is blocked for good
				if tc.cancel == "during" {
					select {
					case err := <-res:
						t.Fatalf("Send returned %v before the cancellation", err)
					default:
					}
					cancel()
				}
				if err := <-res; !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
					t.Fatalf("Send = %v, want %v", err, tc.want)
				}
				if got := len(ch) == 1; got != tc.delivered {
					t.Fatalf("delivered %v, want %v", got, tc.delivered)
				}
			})
		})
	}
}

func TestRecv(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		ch := make(chan int, 2)
		ch <- 1
		if v, ok, err := Recv(ctx, ch); v != 1 || !ok || err != nil {
			t.Fatalf("Recv = %v, %v, %v; want 1, true, nil", v, ok, err)
		}
		res := make(chan error, 1)
		go func() { _, _, err := Recv(ctx, ch); res <- err }()
		synctest.Wait()
		cancel()
		if err := <-res; err != context.Canceled {
			t.Fatalf("Recv blocked then cancelled = %v, want context.Canceled", err)
		}
		ch <- 2
		if _, ok, err := Recv(ctx, ch); ok || err != context.Canceled {
			t.Fatalf("Recv with a value ready after cancel = %v, %v; want false, context.Canceled", ok, err)
		}
		close(ch)
		if _, ok, err := Recv(context.Background(), ch); !ok {
			t.Fatalf("Recv of a buffered value on a closed channel: ok false, %v", err)
		}
		if _, ok, err := Recv(context.Background(), ch); ok || err != nil {
			t.Fatalf("Recv on a closed, drained channel = %v, %v; want false, nil", ok, err)
		}
	})
}

// TestPipelineDeliversEveryValue runs Source → Map → Stage (two outputs
// per input) → Sink and checks that every value arrives once.
func TestPipelineDeliversEveryValue(t *testing.T) {
	for _, tc := range []struct {
		name            string
		n, workers, buf int
		stageWorkers    int
	}{
		{name: "unbuffered, one worker", n: 1000, workers: 1, buf: 0, stageWorkers: 1},
		{name: "buffered, many workers", n: 5000, workers: 8, buf: 4, stageWorkers: 3},
		{name: "workers and buf below range", n: 100, workers: 0, buf: -1, stageWorkers: -2},
		{name: "empty stream", n: 0, workers: 3, buf: 2, stageWorkers: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, _ := NewGroup(context.Background())
			src := Source(g, tc.buf, func(ctx context.Context, emit func(int) error) error {
				for i := range tc.n {
					if err := emit(i); err != nil {
						return err
					}
				}
				return nil
			})
			sq := Map(g, src, tc.workers, tc.buf, func(_ context.Context, v int) (int, error) { return 2 * v, nil })
			both := Stage(g, sq, tc.stageWorkers, tc.buf, func(ctx context.Context, in <-chan int, emit func(int) error) error {
				for v := range in {
					if err := emit(v); err != nil {
						return err
					}
					if err := emit(v + 1); err != nil {
						return err
					}
				}
				return nil
			})
			var got []int
			Sink(g, both, func(_ context.Context, v int) error { got = append(got, v); return nil })
			if err := g.Wait(); err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			for i, v := range got {
				if v != i {
					t.Fatalf("value %d is %d: lost or duplicated values", i, v)
				}
			}
			if len(got) != 2*tc.n {
				t.Fatalf("got %d values, want %d", len(got), 2*tc.n)
			}
		})
	}
}

// TestPipelineFirstErrorCancelsTheRest fails one stage of an endless
// pipeline: Wait returns that error, every other stage returns (an endless
// source can only stop by the cancellation) and the synctest bubble proves
// that no goroutine outlives Wait.
func TestPipelineFirstErrorCancelsTheRest(t *testing.T) {
	const failAt = 100
	for _, where := range []string{"source", "middle", "stage", "sink"} {
		t.Run(where, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var live atomic.Int64
				var sourceErr error
				g, ctx := NewGroup(context.Background())
				src := Source(g, 2, func(ctx context.Context, emit func(int) error) error {
					live.Add(1)
					defer live.Add(-1)
					for i := 0; ; i++ {
						if where == "source" && i == failAt {
							return errBoom
						}
						if err := emit(i); err != nil {
							sourceErr = err
							return err
						}
					}
				})
				mapped := Map(g, src, 4, 2, func(_ context.Context, v int) (int, error) {
					if where == "middle" && v == failAt {
						return 0, errBoom
					}
					return v, nil
				})
				staged := Stage(g, mapped, 3, 1, func(ctx context.Context, in <-chan int, emit func(int) error) error {
					live.Add(1)
					defer live.Add(-1)
					for v := range in {
						if where == "stage" && v == failAt {
							return errBoom
						}
						if err := emit(v); err != nil {
							return err
						}
					}
					return nil
				})
				Sink(g, staged, func(_ context.Context, v int) error {
					if where == "sink" && v == failAt {
						return errBoom
					}
					return nil
				})
				err := g.Wait()
				if err != errBoom {
					t.Fatalf("Wait = %v, want %v", err, errBoom)
				}
				if context.Cause(ctx) != errBoom {
					t.Fatalf("context cause %v, want %v", context.Cause(ctx), errBoom)
				}
				if where != "source" && sourceErr != context.Canceled {
					t.Fatalf("endless source returned %v, want context.Canceled", sourceErr)
				}
				if n := live.Load(); n != 0 {
					t.Fatalf("%d stage functions still running after Wait", n)
				}
				for _, ch := range []<-chan int{src, mapped, staged} {
					for range ch { // closed by now, or the bubble deadlocks
					}
				}
			})
		})
	}
}

// TestStageClosesAfterCancel checks the guarantee that lets a consumer
// trust a closed input: when a stage fails, the group's context is done
// before its output channel closes, even for a consumer racing to see it
// (closing first, as a defer inside the worker would, fails it in nearly
// every -race run and about one plain run in three).
func TestStageClosesAfterCancel(t *testing.T) {
	trials := 1000
	if raceEnabled {
		trials = 150
	}
	for trial := range trials {
		emitFirst := trial % 4
		g, _ := NewGroup(context.Background())
		src := Source(g, trial%3, func(ctx context.Context, emit func(int) error) error {
			for i := range emitFirst {
				if err := emit(i); err != nil {
					return err
				}
			}
			return errBoom
		})
		var atClose error
		Stage(g, src, 1, 0, func(ctx context.Context, in <-chan int, _ func(int) error) error {
			for { // polls, so as to see the close as soon as it happens
				select {
				case _, ok := <-in:
					if !ok {
						atClose = ctx.Err()
						return nil
					}
				default:
				}
			}
		})
		if err := g.Wait(); err != errBoom {
			t.Fatalf("trial %d: Wait = %v, want %v", trial, err, errBoom)
		}
		if atClose == nil {
			t.Fatalf("trial %d: the consumer saw its input closed before the context was cancelled", trial)
		}
	}
}

// chain is the pipeline of the bound tests: Source (buf b[0]) → Map (w[0]
// workers, buf b[1]) → Map (w[1] workers, buf b[2]).
type chain struct {
	b [3]int
	w [2]int
}

func (c chain) String() string {
	return fmt.Sprintf("bufs=%d,%d,%d/workers=%d,%d", c.b[0], c.b[1], c.b[2], c.w[0], c.w[1])
}

// bound is the most values that can have left the source (emit returned)
// while no sink reads: a value sits in a channel buffer or is held by a
// Map worker, which holds one from Recv until its emit returns.
func (c chain) bound() int64 { return int64(c.b[0] + c.b[1] + c.b[2] + c.w[0] + c.w[1]) }

// build starts the chain; count runs on each value the source emitted
// (after emit returned) and Map workers pass values through.
func (c chain) build(g *Group, emitted *atomic.Int64) <-chan int {
	src := Source(g, c.b[0], func(ctx context.Context, emit func(int) error) error {
		for i := 0; ; i++ {
			if err := emit(i); err != nil {
				return err
			}
			emitted.Add(1)
		}
	})
	id := func(_ context.Context, v int) (int, error) { return v, nil }
	return Map(g, Map(g, src, c.w[0], c.b[1], id), c.w[1], c.b[2], id)
}

var chains = []chain{
	{b: [3]int{0, 0, 0}, w: [2]int{1, 1}},
	{b: [3]int{1, 2, 3}, w: [2]int{1, 1}},
	{b: [3]int{4, 0, 2}, w: [2]int{3, 5}},
	{b: [3]int{16, 16, 16}, w: [2]int{8, 2}},
}

// TestPipelineBackPressure: with nothing reading the end of the chain, or a
// sink stuck on its first value, the source gets exactly bound() values
// (+1 held by the sink) ahead, and blocks there; cancelling the parent
// context then stops the whole blocked pipeline. synctest.Wait returns only
// once every goroutine is blocked for good, so the counts are exact.
func TestPipelineBackPressure(t *testing.T) {
	for _, c := range chains {
		for _, sink := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/stuck_sink=%v", c, sink), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					parent, cancel := context.WithCancel(context.Background())
					defer cancel()
					g, _ := NewGroup(parent)
					var emitted atomic.Int64
					out := c.build(g, &emitted)
					want := c.bound()
					if sink {
						Sink(g, out, func(ctx context.Context, _ int) error {
							<-ctx.Done()
							return ctx.Err()
						})
						want++
					}
					synctest.Wait()
					if got := emitted.Load(); got != want {
						t.Fatalf("source got %d values ahead, want exactly %d", got, want)
					}
					cancel()
					if err := g.Wait(); err != context.Canceled {
						t.Fatalf("Wait after the parent's cancellation = %v, want context.Canceled", err)
					}
					if got := emitted.Load(); got != want {
						t.Fatalf("source emitted %d values after the cancellation, had %d", got, want)
					}
				})
			})
		}
	}
}

// TestPipelineBoundedInFlight streams a million values through Source →
// Map → Map → Sink and counts the values alive (created by the source,
// not yet finished by the sink) with atomics: never more than the chain's
// bound, plus one held by the source in its emit and one by the sink.
func TestPipelineBoundedInFlight(t *testing.T) {
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 100_000 // the race detector slows channel operations tenfold
	}
	c := chain{b: [3]int{8, 4, 8}, w: [2]int{3, 2}}
	limit := c.bound() + 2
	var alive, peak atomic.Int64
	var done int64
	g, _ := NewGroup(context.Background())
	src := Source(g, c.b[0], func(ctx context.Context, emit func(int) error) error {
		for i := range n {
			if a := alive.Add(1); a > peak.Load() {
				peak.Store(a) // only the source raises alive: no lost update
			}
			if err := emit(i); err != nil {
				return err
			}
		}
		return nil
	})
	id := func(_ context.Context, v int) (int, error) { return v, nil }
	out := Map(g, Map(g, src, c.w[0], c.b[1], id), c.w[1], c.b[2], id)
	Sink(g, out, func(_ context.Context, _ int) error {
		alive.Add(-1)
		done++
		return nil
	})
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if done != int64(n) || alive.Load() != 0 {
		t.Fatalf("sink got %d of %d values, %d alive at the end", done, n, alive.Load())
	}
	if p := peak.Load(); p > limit {
		t.Fatalf("%d values in flight, bound %d", p, limit)
	}
	t.Logf("%d values, peak in flight %d (bound %d)", n, peak.Load(), limit)
}

func BenchmarkPipeline(b *testing.B) {
	c := chain{b: [3]int{64, 64, 64}, w: [2]int{4, 4}}
	b.ReportAllocs()
	g, _ := NewGroup(context.Background())
	src := Source(g, c.b[0], func(ctx context.Context, emit func(int) error) error {
		for i := range b.N {
			if err := emit(i); err != nil {
				return err
			}
		}
		return nil
	})
	id := func(_ context.Context, v int) (int, error) { return v, nil }
	Sink(g, Map(g, Map(g, src, c.w[0], c.b[1], id), c.w[1], c.b[2], id), func(context.Context, int) error { return nil })
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}
