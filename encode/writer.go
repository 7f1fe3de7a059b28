package encode

import (
	"context"
	"fmt"
)

// writer is the stream's last stage: it restores each shard's input order,
// combines the windows of long documents, hands the sink each document and
// tells it when a shard is complete, failed, or done by another run.
type writer struct {
	cfg      StreamConfig
	sink     Sink
	shards   map[int]*shardOrder
	finished int // shards committed, skipped or failed
	counts   Counts
}

// shardOrder is the writer's view of one shard.
type shardOrder struct {
	next    int64                // next seq to write
	waiting map[int64]itemResult // arrived out of order
	partial map[int64]*windowSet // documents with windows still to come
	total   int64                // documents in the shard; -1 until the source is done with it
	failed  bool                 // failed: later results are dropped
}

func (w *writer) shard(i int) *shardOrder {
	st, ok := w.shards[i]
	if !ok {
		st = &shardOrder{waiting: map[int64]itemResult{}, partial: map[int64]*windowSet{}, total: -1}
		w.shards[i] = st
	}
	return st
}

func (w *writer) run(ctx context.Context, results <-chan []itemResult, ends <-chan shardEnd) error {
	for results != nil || ends != nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case rs, ok := <-results:
			if !ok {
				results = nil
				continue
			}
			for _, r := range rs {
				if err := w.result(ctx, r); err != nil {
					return err
				}
			}
		case e, ok := <-ends:
			if !ok {
				ends = nil
				continue
			}
			if err := w.end(ctx, e); err != nil {
				return err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.finished != w.cfg.Shards {
		return fmt.Errorf("internal error: %d of %d shards finished when the pipeline ended", w.finished, w.cfg.Shards)
	}
	return nil
}

// result takes one item's result: once a document is whole (all its
// windows in), it waits for its turn and is written in order.
func (w *writer) result(ctx context.Context, r itemResult) error {
	st := w.shard(r.shard)
	if st.failed {
		return nil
	}
	l := w.cfg.LongDocs
	if r.parts > 1 || l.Passages {
		var complete bool
		if r, complete = st.assemble(r, l, w.cfg.Options.Sparsify); !complete {
			return nil
		}
	}
	st.waiting[r.seq] = r
	for {
		next, ok := st.waiting[st.next]
		if !ok {
			break
		}
		delete(st.waiting, st.next)
		if err := w.write(ctx, r.shard, st, next); err != nil {
			return err
		}
	}
	return w.maybeCommit(ctx, r.shard, st)
}

// write hands the sink a document's row, or its window rows (--emit
// passages); a document counts once in the counts, the progress and the
// metrics, however many rows it gave.
func (w *writer) write(ctx context.Context, shard int, st *shardOrder, r itemResult) error {
	d := Document{Seq: r.seq, ID: r.id, Results: r.passages, Passages: r.passages != nil, Truncated: r.res.Truncated,
		PaddedTokens: r.padded, Batches: r.batches}
	if d.Results == nil {
		d.Results = []Result{r.res}
	}
	if err := w.sink.Write(ctx, shard, d); err != nil {
		return err
	}
	var tokens int64
	for _, p := range d.Results {
		tokens += int64(p.NumTokens)
		w.counts.NonZeros = append(w.counts.NonZeros, p.Vec.Len())
		if p.Vec.Len() == 0 {
			w.counts.Empty++
			w.cfg.Metrics.AddEmpty(1)
		}
	}
	st.next++
	w.counts.Docs++
	w.counts.Tokens += tokens
	if d.Truncated {
		w.counts.Truncated++
	}
	w.cfg.Metrics.AddDocs(1, tokens, 0)
	if w.cfg.Progress != nil {
		w.cfg.Progress.AddDocs(1, tokens)
	}
	return nil
}

// maybeCommit commits a shard whose documents are all written.
func (w *writer) maybeCommit(ctx context.Context, shard int, st *shardOrder) error {
	if st.failed || st.total < 0 || st.next < st.total {
		return nil
	}
	delete(w.shards, shard)
	if err := w.sink.Commit(ctx, shard); err != nil {
		return err
	}
	w.shardFinished()
	return nil
}

func (w *writer) shardFinished() {
	w.finished++
	if w.cfg.Progress != nil {
		w.cfg.Progress.ShardDone()
	}
}

// end takes the source's word on a shard.
func (w *writer) end(ctx context.Context, e shardEnd) error {
	switch {
	case e.skipped:
		if err := w.sink.Skip(ctx, e.shard); err != nil {
			return err
		}
		w.shardFinished()
		return nil
	case e.err != nil:
		st := w.shard(e.shard)
		st.failed, st.waiting, st.partial = true, nil, nil
		if err := w.sink.Fail(ctx, e.shard, e.err); err != nil {
			return err
		}
		w.shardFinished()
		return nil
	default:
		st := w.shard(e.shard)
		st.total = e.docs
		return w.maybeCommit(ctx, e.shard, st)
	}
}

// windowSet collects the windows of one document.
type windowSet struct {
	got      int
	acc      SparseVec // combined weights (AggMax or AggSum)
	tokens   int32
	padded   int64
	batches  int64
	passages []Result // --emit passages: each window's row, by window index
}

// assemble adds a window's result to its document and, once the last
// window is in, returns the document's result: the windows' vectors
// combined and then pruned and quantized by opts, or (passages) every
// window's own row.
func (st *shardOrder) assemble(r itemResult, l LongDocs, opts SparsifyOptions) (itemResult, bool) {
	ws := st.partial[r.seq]
	if ws == nil {
		ws = &windowSet{}
		if l.Passages {
			ws.passages = make([]Result, r.parts)
		}
		st.partial[r.seq] = ws
	}
	ws.got++
	ws.tokens += r.res.NumTokens
	ws.padded += r.padded
	ws.batches += r.batches
	if l.Passages {
		p := r.res
		if p.NumWindows > 0 { // 0: an empty document, no window run
			p.NumWindows = int32(r.parts)
		}
		ws.passages[r.part] = p
	} else {
		ws.acc = MergeWindow(ws.acc, r.res.Vec, l.Agg)
	}
	if ws.got < r.parts {
		return r, false
	}
	delete(st.partial, r.seq)
	out := itemResult{shard: r.shard, seq: r.seq, id: r.id, part: 0, parts: r.parts, padded: ws.padded, batches: ws.batches}
	out.res.Truncated = r.res.Truncated
	if l.Passages {
		out.passages = ws.passages
		return out, true
	}
	out.res.Vec = SparsifySparse(ws.acc, opts)
	out.res.NumTokens = ws.tokens
	out.res.NumWindows = int32(r.parts)
	return out, true
}
