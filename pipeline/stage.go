package pipeline

import (
	"context"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// Send delivers v on ch unless ctx is done first (then it returns
// ctx.Err()). A ctx already done wins even when ch has room, so nothing is
// delivered after a cancellation has been seen.
func Send[T any](ctx context.Context, ch chan<- T, v T) error {
	done := ctx.Done()
	select {
	case <-done:
		return ctx.Err()
	default:
	}
	select {
	case ch <- v:
		return nil
	case <-done:
		return ctx.Err()
	}
}

// Recv receives the next value of ch unless ctx is done first. It returns
// ok false with a nil error once ch is closed and drained, and ctx.Err()
// (ok false) when ctx is done; a ctx already done wins over a ready value.
// A Stage function that ranges over an input channel the Group does not
// feed (one that may never close) should read it with Recv.
func Recv[T any](ctx context.Context, ch <-chan T) (v T, ok bool, err error) {
	done := ctx.Done()
	select {
	case <-done:
		return v, false, ctx.Err()
	default:
	}
	select {
	case v, ok = <-ch:
		return v, ok, nil
	case <-done:
		return v, false, ctx.Err()
	}
}

// Group runs the stages of one pipeline: one errgroup for the goroutines'
// lifetimes, one context cancelled on the first error (with that error as
// its cause) or when the parent context ends. Every goroutine the stage
// functions start runs in the Group, so Wait returning means that all of
// them have returned and every channel they own is closed. A Group is not
// reusable after Wait.
//
// A stage that fails cancels the context before its output channel is
// closed: a consumer that finds its input closed while ctx.Err() is nil
// knows that every stage upstream ended without error, so it may commit
// what it holds (BatchByLength's final flush relies on this).
type Group struct {
	eg     errgroup.Group
	ctx    context.Context
	cancel context.CancelCauseFunc
	once   sync.Once
	err    error
}

// NewGroup returns a Group and its context, derived from ctx and cancelled
// on the first error of any goroutine of the group, or once Wait returns.
func NewGroup(ctx context.Context) (*Group, context.Context) {
	ctx, cancel := context.WithCancelCause(ctx)
	return &Group{ctx: ctx, cancel: cancel}, ctx
}

// Context returns the Group's context (the one NewGroup returned).
func (g *Group) Context() context.Context { return g.ctx }

// Go runs fn(ctx) in a goroutine of the group, with the group's context. A
// non-nil error cancels that context; the first one is what Wait returns.
// A goroutine that closes a channel should do it after fn returns, as
// Stage does, not in a defer inside fn: see Group.
func (g *Group) Go(fn func(ctx context.Context) error) { g.run(fn, nil) }

// run runs fn in a goroutine of the group; then, if not nil, runs after the
// error (if any) has cancelled the context.
func (g *Group) run(fn func(ctx context.Context) error, then func()) {
	g.eg.Go(func() error {
		err := fn(g.ctx)
		if err != nil {
			g.once.Do(func() {
				g.err = err
				g.cancel(err)
			})
		}
		if then != nil {
			then()
		}
		return err
	})
}

// Wait waits for every goroutine of the group, cancels the context and
// returns the first non-nil error a goroutine returned (in time: the one
// that cancelled the context). If the parent context ended and no goroutine
// failed first, that is the context's error as the first goroutine to see
// it returned it.
func (g *Group) Wait() error {
	_ = g.eg.Wait() // its error is one of those run recorded; g.err is the first
	g.cancel(nil)
	return g.err
}

// Stage starts workers goroutines (at least one) that each run fn(ctx, in,
// emit); fn ranges over in itself, so a stage may keep state, batch, or
// emit several outputs per input. emit sends on the returned channel, of
// capacity buf (0: unbuffered), watching ctx (see Send); fn should return
// emit's error as it is. The returned channel is closed once every worker
// has returned, by the last one (after a failure has cancelled ctx: see
// Group); Stage starts no goroutine besides the workers.
//
// fn should return when in is closed, when emit fails, or on its own
// error. In a pipeline of stages fed by the Group, an upstream failure
// closes in; reading an input that may never close calls for Recv.
//
// Values in flight: besides the channel's buf, each worker holds what it
// has received and not yet emitted (Map: at most one value per worker).
func Stage[In, Out any](g *Group, in <-chan In, workers, buf int, fn func(ctx context.Context, in <-chan In, emit func(Out) error) error) <-chan Out {
	workers = max(workers, 1)
	out := make(chan Out, max(buf, 0))
	var left atomic.Int64
	left.Store(int64(workers))
	for range workers {
		g.run(func(ctx context.Context) error {
			return fn(ctx, in, func(v Out) error { return Send(ctx, out, v) })
		}, func() {
			if left.Add(-1) == 0 {
				close(out)
			}
		})
	}
	return out
}

// Map is Stage for one output per input: workers goroutines (at least one)
// each take the next value of in and emit fn(ctx, v); the order of the
// outputs is not kept. A worker returns fn's error as it is, or ctx.Err()
// when ctx is done.
func Map[In, Out any](g *Group, in <-chan In, workers, buf int, fn func(ctx context.Context, v In) (Out, error)) <-chan Out {
	return Stage(g, in, workers, buf, func(ctx context.Context, in <-chan In, emit func(Out) error) error {
		for {
			v, ok, err := Recv(ctx, in)
			if !ok {
				return err
			}
			o, err := fn(ctx, v)
			if err != nil {
				return err
			}
			if err := emit(o); err != nil {
				return err
			}
		}
	})
}

// Source starts fn in one goroutine of the group; emit sends on the
// returned channel (capacity buf) watching ctx, and the channel is closed
// when fn returns.
func Source[T any](g *Group, buf int, fn func(ctx context.Context, emit func(T) error) error) <-chan T {
	return Stage(g, nil, 1, buf, func(ctx context.Context, _ <-chan struct{}, emit func(T) error) error {
		return fn(ctx, emit)
	})
}

// Sink runs fn over every value of in, in one goroutine of the group, in
// the order they arrive. It stops at fn's first error (returned as it is),
// or with ctx.Err() once ctx is done.
func Sink[T any](g *Group, in <-chan T, fn func(ctx context.Context, v T) error) {
	g.Go(func(ctx context.Context) error {
		for {
			v, ok, err := Recv(ctx, in)
			if !ok {
				return err
			}
			if err := fn(ctx, v); err != nil {
				return err
			}
		}
	})
}
