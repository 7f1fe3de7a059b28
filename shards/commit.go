package shards

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/splash-encode/splash/encode"
)

// ShardTask is one input shard to encode.
type ShardTask struct {
	Index int // in Plan.Tasks
	Input string
	Base  string
	Ident ManifestInput
	Meta  Metadata
	Rows  int64 // from the Parquet footer, for progress totals
}

// ShardFailure is an input shard that could not be encoded; the run goes on
// with the others and fails at its end.
type ShardFailure struct {
	Input string
	Err   error
}

// Plan is what Output.Plan found: the shards to encode and what earlier
// runs left.
type Plan struct {
	Tasks     []ShardTask
	Skipped   int            // done by an earlier run
	Failed    []ShardFailure // inputs that cannot be read at all
	TotalRows int64          // input rows of all shards that can be read
	Rejected  int64          // rows rejected by the earlier runs of skipped shards
	settings  map[string]string
	inputs    *Inputs
}

// Docs is the number of documents of the shards to encode.
func (p *Plan) Docs() int64 {
	var n int64
	for _, t := range p.Tasks {
		n += t.Rows
	}
	return n
}

// Plan decides, for every input of names, whether to encode it: it hashes
// the input and compares with the manifest of a previous run (settings are
// the manifest settings of this run; meta the shard metadata, to which each
// task adds its source's path, size and sha256). An input that cannot be
// opened (not Parquet, truncated, missing columns...) fails alone and the
// others are planned. Nothing is removed here: the reader clears a shard's
// leftovers once it holds the shard's lock.
func (o *Output) Plan(ctx context.Context, inputs *Inputs, names []string, settings map[string]string, meta Metadata) (*Plan, error) {
	p := &Plan{settings: settings, inputs: inputs}
	for _, in := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fail := func(err error) {
			if errors.Is(err, fs.ErrPermission) && !errors.Is(err, encode.ErrBadInput) {
				err = fmt.Errorf("%w: %w", encode.ErrBadInput, err) // fixing it takes a person
			}
			o.log.Error("input shard cannot be read", slog.String("input", in), slog.String("error", err.Error()))
			p.Failed = append(p.Failed, ShardFailure{Input: in, Err: err})
		}
		ident, err := inputs.Identity(ctx, in)
		if err != nil {
			fail(err)
			continue
		}
		base := InputBase(in)
		d, err := o.resume(ctx, base, ident, settings)
		if err != nil {
			return nil, err
		}
		switch d.State {
		case ResumeDone:
			o.log.Info("shard already done, skipping", slog.String("input", in))
			p.Skipped++
			p.TotalRows += d.Manifest.Input.Rows
			if d.Manifest.Rejected != nil {
				p.Rejected += d.Manifest.Rejected.Rows
			}
			continue
		case ResumeConflict:
			if !o.opts.Overwrite {
				return nil, fmt.Errorf("%w: %s was encoded before differently (%s): pass --overwrite to re-encode it, or choose another --output",
					encode.ErrSettings, in, d.Reason)
			}
			o.log.Warn("re-encoding shard (--overwrite)", slog.String("input", in), slog.String("reason", d.Reason))
		case ResumeBroken:
			o.log.Warn("re-encoding shard whose output does not verify", slog.String("input", in), slog.String("reason", d.Reason))
		}
		r, err := inputs.Open(ctx, in, o.opts.Columns)
		if err != nil {
			fail(markBadInput(err))
			continue
		}
		rows := r.NumRows()
		r.Close()
		ident.Rows = rows
		p.TotalRows += rows
		m := meta
		m.SourcePath, m.SourceSize, m.SourceSHA256 = ident.Path, ident.Size, ident.SHA256
		p.Tasks = append(p.Tasks, ShardTask{Index: len(p.Tasks), Input: in, Base: base, Ident: ident, Rows: rows, Meta: m})
	}
	return p, nil
}

// markBadInput marks errors caused by the input data as encode.ErrBadInput.
func markBadInput(err error) error {
	if errors.Is(err, ErrInvalidInput) && !errors.Is(err, encode.ErrBadInput) {
		return fmt.Errorf("%w: %w", encode.ErrBadInput, err)
	}
	return err
}

// EncodeResult is what an Encoding did.
type EncodeResult struct {
	Encoded  int // shards committed by this run
	ByOther  int // shards found done by another run once their lock was free
	Failed   []ShardFailure
	Rejected int64 // input rows rejected in the shards this run committed
}

// Encoding carries out a Plan as the encode stream's source and sink: Read
// streams each shard's documents under the shard's lock (encode.Source),
// and Write, Commit, Skip and Fail write and commit the shards
// (encode.Sink). Close aborts whatever is not committed.
type Encoding struct {
	o          *Output
	plan       *Plan
	numWindows bool
	bad        *BadBudget

	mu       sync.Mutex
	locks    map[int]*Lock
	rejected map[int]*RejectedWriter // read to the end, waiting for their commit

	open     map[int]*shardWriter // written by the sink (its goroutine only)
	finished int
	res      EncodeResult
}

// shardWriter is one shard being written.
type shardWriter struct {
	w       *Writer
	stats   ManifestStats
	started time.Time
}

// Encode returns the Encoding of p. numWindows adds the num_windows column
// (long documents cut into windows).
func (o *Output) Encode(p *Plan, numWindows bool) *Encoding {
	return &Encoding{
		o: o, plan: p, numWindows: numWindows,
		bad:   &BadBudget{MaxFraction: o.opts.MaxBadFraction, TotalRows: p.TotalRows, Rejected: p.Rejected, Dir: o.dir},
		locks: map[int]*Lock{}, rejected: map[int]*RejectedWriter{}, open: map[int]*shardWriter{},
	}
}

// Result reports what the encoding did.
func (e *Encoding) Result() EncodeResult { return e.res }

// Close aborts every shard not committed and releases the shard locks.
func (e *Encoding) Close() {
	for i, st := range e.open {
		_ = st.w.Abort()
		delete(e.open, i)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, rw := range e.rejected {
		_ = rw.Abort()
		delete(e.rejected, i)
	}
	for i, l := range e.locks {
		_ = l.Unlock()
		delete(e.locks, i)
	}
}

// lockPoll is how often a run polls for a shard locked by another run.
const lockPoll = 200 * time.Millisecond

// Read streams every shard's documents (encode.Source). It takes each
// shard's lock first: a shard locked by another run is put off until the
// others are read, then waited for. Under the lock it checks again what an
// earlier or concurrent run left (the shard may be done by now) and clears
// leftovers. Rows the input reader rejects (null or empty ids, null texts)
// and ids seen before in the shard go to the shard's dead-letter file. A
// shard that cannot be read fails alone: the stream is told and the reader
// goes on with the next shard.
func (e *Encoding) Read(ctx context.Context, feed *encode.Feed) error {
	pending := e.plan.Tasks
	for wait := false; len(pending) > 0; wait = true {
		if wait {
			// Let the pipeline drain what it holds before blocking.
			if err := feed.Flush(ctx); err != nil {
				return err
			}
		}
		var busy []ShardTask
		for _, t := range pending {
			var l *Lock
			if wait {
				e.o.log.Info("waiting for a shard another run is encoding", slog.String("input", t.Input))
				var err error
				if l, err = LockShard(ctx, e.o.dir, t.Base, lockPoll); err != nil {
					return err
				}
			} else {
				var ok bool
				var err error
				if l, ok, err = TryLockShard(e.o.dir, t.Base); err != nil {
					return err
				}
				if !ok {
					e.o.log.Info("shard locked by another run; coming back to it later", slog.String("input", t.Input))
					busy = append(busy, t)
					continue
				}
			}
			e.mu.Lock()
			e.locks[t.Index] = l
			e.mu.Unlock()
			if err := e.readShard(ctx, t, feed); err != nil {
				return err
			}
		}
		pending = busy
	}
	return nil
}

// readShard reads one locked shard and tells feed how it ended. The error
// is for failures of the run (cancellation, the output directory); a
// failure of the shard goes to feed.Fail.
func (e *Encoding) readShard(ctx context.Context, t ShardTask, feed *encode.Feed) error {
	log := e.o.log
	d, err := e.o.resume(ctx, t.Base, t.Ident, e.plan.settings)
	if err != nil {
		return err
	}
	switch d.State {
	case ResumeDone:
		log.Info("shard encoded by another run meanwhile, skipping", slog.String("input", t.Input))
		return feed.Skip(ctx, t.Index)
	case ResumeConflict:
		if !e.o.opts.Overwrite {
			return feed.Fail(ctx, t.Index, fmt.Errorf("%w: %s was encoded meanwhile by another run with other settings or input (%s)", encode.ErrSettings, t.Input, d.Reason))
		}
	}
	// Todo (maybe with leftovers), broken, or conflict with --overwrite.
	if err := RemoveShard(e.o.dir, t.Base); err != nil {
		return err
	}
	rw, err := NewRejectedWriter(e.o.dir, t.Base)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		_ = rw.Abort()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return feed.Fail(ctx, t.Index, markBadInput(err))
	}
	r, err := e.plan.inputs.Open(ctx, t.Input, e.o.opts.Columns)
	if err != nil {
		return fail(err)
	}
	defer r.Close()
	var rowErrs []*RowError
	r.OnRowError(func(e *RowError) error {
		rowErrs = append(rowErrs, e)
		return nil
	})
	reject := func(rec Rejected) error {
		if err := rw.Add(rec); err != nil {
			_ = rw.Abort()
			return err
		}
		return nil
	}
	seen := map[string]int64{} // id → row of its first occurrence
	log.Debug("reading shard", slog.String("input", t.Input), slog.Int64("rows", r.NumRows()))
	for {
		rows, err := r.Next(ctx, encode.ReadChunk)
		// The chunk's rejected rows, the reader's and repeated ids, in
		// input order.
		recs := make([]Rejected, 0, len(rowErrs))
		for _, e := range rowErrs {
			recs = append(recs, RejectedFromRowError(e))
		}
		rowErrs = rowErrs[:0]
		docs := make([]encode.Doc, 0, len(rows))
		for _, d := range rows {
			if first, dup := seen[d.Doc.ID]; dup {
				id := d.Doc.ID
				detail := fmt.Sprintf("id first seen at row %d", first)
				if d.Line > 0 {
					detail = fmt.Sprintf("id first seen at line %d", first+1)
				}
				recs = append(recs, Rejected{Input: t.Ident.Path, RowGroup: d.RowGroup, Row: d.Row, Line: d.Line, ID: &id,
					Reason: RejectDuplicateID, Detail: detail})
				continue
			}
			seen[d.Doc.ID] = d.Row
			docs = append(docs, d.Doc)
		}
		slices.SortStableFunc(recs, func(a, b Rejected) int { return cmp.Compare(a.Row, b.Row) })
		for _, rec := range recs {
			if err := reject(rec); err != nil {
				return err
			}
		}
		if len(docs) > 0 {
			if err := feed.Docs(ctx, t.Index, docs); err != nil {
				_ = rw.Abort()
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(err)
		}
	}
	if err := r.Close(); err != nil {
		return fail(err)
	}
	if rw.Rows() > 0 {
		log.Warn("rejected input rows", slog.String("input", t.Input), slog.Int64("rejected", rw.Rows()),
			slog.String("dead_letter", RejectedName(t.Base)))
	}
	e.mu.Lock()
	e.rejected[t.Index] = rw
	e.mu.Unlock()
	return feed.Done(ctx, t.Index)
}

// writer returns the open writer of shard i, creating it on first use.
func (e *Encoding) writer(i int) (*shardWriter, error) {
	if st, ok := e.open[i]; ok {
		return st, nil
	}
	t := e.plan.Tasks[i]
	w, err := NewWriter(e.o.dir, t.Base, e.o.opts.Format, t.Meta, WriterOptions{NumWindows: e.numWindows})
	if err != nil {
		return nil, err
	}
	st := &shardWriter{w: w, started: time.Now()}
	e.open[i] = st
	return st, nil
}

// Write writes a document's row, or its window rows (passages, ids
// DOCID#K), and counts it in the shard's statistics (encode.Sink).
func (e *Encoding) Write(ctx context.Context, shard int, d encode.Document) error {
	st, err := e.writer(shard)
	if err != nil {
		return err
	}
	st.stats.PaddedTokens += d.PaddedTokens
	st.stats.Batches += d.Batches
	for k, p := range d.Results {
		row := Row{DocID: d.ID, Vec: p.Vec, NumTokens: p.NumTokens, Truncated: p.Truncated, NumWindows: p.NumWindows}
		if d.Passages {
			row.DocID += "#" + strconv.Itoa(k)
		}
		if err := st.w.Write(row); err != nil {
			return fmt.Errorf("write %s row %d (id %q): %w", e.plan.Tasks[shard].Base, d.Seq, row.DocID, err)
		}
		e.o.failpoint(FailpointRowWritten)
		st.stats.Tokens += int64(p.NumTokens)
		if p.Vec.Len() == 0 {
			st.stats.Empty++
		}
	}
	if d.Truncated {
		st.stats.Truncated++
	}
	return nil
}

// Commit commits a shard whose every document is written: the output, the
// dead-letter file, then the manifest; in a bucket it then publishes them
// (encode.Sink).
func (e *Encoding) Commit(ctx context.Context, shard int) error {
	e.mu.Lock()
	rw := e.rejected[shard]
	delete(e.rejected, shard)
	e.mu.Unlock()
	st, err := e.writer(shard)
	if err != nil {
		_ = rw.Abort()
		return err
	}
	t := e.plan.Tasks[shard]
	out, err := st.w.Commit()
	if err != nil {
		_ = rw.Abort()
		return err
	}
	delete(e.open, shard)
	e.o.failpoint(FailpointShardCommitted)
	rejected, err := rw.Commit()
	if err != nil {
		return err
	}
	man := Manifest{
		SplashVersion: e.o.opts.Version,
		Input:         t.Ident,
		Settings:      e.plan.settings,
		Output:        NewManifestOutput(out, e.o.opts.Format),
		Rejected:      rejected,
		CreatedAt:     time.Now().UTC(),
	}
	st.stats.Documents = out.Rows
	st.stats.Seconds = time.Since(st.started).Seconds()
	man.Stats = &st.stats
	man.Input.Rows = out.Rows + rw.Rows()
	if err := WriteManifest(e.o.dir, man); err != nil {
		// Leave no final name without a manifest behind (it would not
		// count as done, but it would look like an output).
		if rerr := RemoveShard(e.o.dir, t.Base); rerr != nil {
			e.o.log.Error("could not remove the uncommitted shard", slog.String("error", rerr.Error()))
		}
		return err
	}
	e.o.failpoint(FailpointManifestWritten)
	if e.o.store != nil {
		won, err := e.o.publish(ctx, man, t.Base)
		if err != nil {
			return err
		}
		if !won {
			e.res.ByOther++
			return e.shardFinished(shard)
		}
	}
	if obs := e.o.opts.Observer; obs != nil {
		obs.ShardDone()
		obs.AddBad(rw.Rows())
	}
	e.res.Encoded++
	e.res.Rejected += rw.Rows()
	if err := e.shardFinished(shard); err != nil {
		return err
	}
	// Checked once the shard is committed, so that its dead-letter file is
	// there to read when the run stops.
	if err := e.bad.Add(rw.Rows()); err != nil {
		return err
	}
	e.o.log.Info("shard done", slog.String("output", out.Path), slog.Int64("rows", out.Rows), slog.Int64("rejected", rw.Rows()),
		slog.Int("done", e.finished), slog.Int("shards", len(e.plan.Tasks)))
	return nil
}

// Skip releases a shard that another run encoded meanwhile (encode.Sink).
func (e *Encoding) Skip(ctx context.Context, shard int) error {
	e.res.ByOther++
	return e.shardFinished(shard)
}

// Fail aborts what was written of a shard the reader failed on and records
// the failure; the run goes on with the other shards (encode.Sink).
func (e *Encoding) Fail(ctx context.Context, shard int, err error) error {
	t := e.plan.Tasks[shard]
	e.o.log.Error("shard failed; going on with the others", slog.String("input", t.Input), slog.String("error", err.Error()))
	if st, ok := e.open[shard]; ok {
		delete(e.open, shard)
		if err := st.w.Abort(); err != nil {
			return err
		}
	}
	e.res.Failed = append(e.res.Failed, ShardFailure{Input: t.Input, Err: err})
	return e.shardFinished(shard)
}

// shardFinished counts a shard committed, skipped or failed and releases
// its lock.
func (e *Encoding) shardFinished(i int) error {
	e.finished++
	e.mu.Lock()
	l := e.locks[i]
	delete(e.locks, i)
	e.mu.Unlock()
	return l.Unlock()
}
