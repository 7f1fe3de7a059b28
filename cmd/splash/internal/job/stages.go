package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/pipeline"
	"github.com/splash-encode/splash/shards"
)

// The encoding pipeline of design.md §2, one goroutine (or pool) per stage,
// joined by bounded channels; every send also watches ctx.Done():
//
//	reader ─chunks→ tokenizers ─tokenized→ batcher ─batches→ encoders ─pooled→ sparsifier ─results→ writer
//	   └───────────────────────── shard ends ─────────────────────────────────────────────────────→┘
//
// Documents carry their shard and position; the writer restores each shard's
// input order and commits a shard (output, then manifest) as soon as its
// last row is written. Memory is bounded by the window and channel sizes,
// not by the corpus or shard size.

// readChunk is how many documents the reader hands on at a time.
const readChunk = 256

// shardTask is one input shard to encode.
type shardTask struct {
	index int
	input string
	base  string
	ident shards.ManifestInput
	meta  shards.Metadata
	rows  int64 // from the Parquet footer, for progress totals
}

// shardFailure is an input shard that could not be encoded; the run goes on
// with the others and fails at its end.
type shardFailure struct {
	input string
	err   error
}

// docItem is one document on its way through the stages.
type docItem struct {
	shard     int
	seq       int64 // position within the shard, from 0
	id        string
	text      string // cleared once tokenized
	ids       []int32
	truncated bool
	// A document cut into windows (LongDocs) travels as parts items with
	// the same seq, part 0..parts-1; otherwise part 0 of 1.
	part, parts int
	poolFrom    int // echo: first pooled position
}

// docChunk is a run of consecutive documents; index numbers the chunks of
// the whole run in reading order so that the batcher can restore that order
// (tokenizer workers finish out of order) and form the same batches on
// every run: ONNX Runtime's results can differ in the last bit with the
// batch's shape, so deterministic batches make runs byte-identical.
type docChunk struct {
	index int64
	items []docItem
	// flush asks the batcher to send out every document it holds, before
	// the reader waits for a shard locked by another run: otherwise two
	// runs could each hold back the other's awaited shard.
	flush bool
}

type encodedBatch struct {
	items  []docItem
	pooled []float32 // [len(items), vocab]; nil for documents the model does not see
}

// shardEnd tells the writer that the reader is done with a shard: it read
// rows documents (rejected rows not included), or it skipped the shard
// because another run encoded it (byOther), or it failed (err).
type shardEnd struct {
	shard    int
	rows     int64
	rejected *shards.RejectedWriter // uncommitted; the writer commits it
	byOther  bool
	err      error
}

// lockSet holds the shard locks of a run: the reader takes a shard's lock
// before reading it, the writer releases it once the shard is committed or
// aborted, and whatever is left is released when the pipeline ends.
type lockSet struct {
	mu    sync.Mutex
	locks map[int]*shards.Lock
}

func (ls *lockSet) put(i int, l *shards.Lock) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.locks == nil {
		ls.locks = map[int]*shards.Lock{}
	}
	ls.locks[i] = l
}

func (ls *lockSet) release(i int) error {
	ls.mu.Lock()
	l := ls.locks[i]
	delete(ls.locks, i)
	ls.mu.Unlock()
	return l.Unlock()
}

func (ls *lockSet) releaseAll() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for i, l := range ls.locks {
		_ = l.Unlock()
		delete(ls.locks, i)
	}
}

// pipelineResult is what runPipeline reports besides counts.
type pipelineResult struct {
	encoded  int // shards committed by this run
	byOther  int // shards found done by another run once their lock was free
	failed   []shardFailure
	rejected int64 // input rows rejected in the shards this run committed
}

// Progress receives the writer's progress (pipeline.Progress implements it).
type Progress interface {
	Start(ctx context.Context)
	AddDocs(docs, tokens int64)
	ShardDone()
	Stop()
}

// stageCounts are the counters the encoder stage keeps (atomics: several
// encoder workers add to them).
type stageCounts struct {
	batches, padded atomic.Int64
}

// runPipeline encodes tasks and commits their outputs and manifests.
func runPipeline(ctx context.Context, m *Model, tasks []shardTask, cfg Config, settings map[string]string, bad *badBudget, progress Progress, log *slog.Logger) (Counts, pipelineResult, error) {
	var locks lockSet
	defer locks.releaseAll()
	g, ctx := errgroup.WithContext(ctx)
	chunks := make(chan docChunk, 4)
	tokenized := make(chan docChunk, 4)
	batches := make(chan []docItem, 2)
	pooled := make(chan encodedBatch, 2)
	results := make(chan []docItemResult, 4)
	ends := make(chan shardEnd, len(tasks))
	free := make(chan []float32, max(cfg.EncodeWorkers, len(m.Backends))+2)
	var sc stageCounts

	g.Go(func() error {
		defer close(chunks)
		defer close(ends)
		return readShards(ctx, tasks, cfg, settings, &locks, chunks, ends, log)
	})

	var tokWG sync.WaitGroup
	for w := 0; w < cfg.TokenizeWorkers; w++ {
		tokWG.Add(1)
		g.Go(func() error {
			defer tokWG.Done()
			for c := range chunks {
				c.items = prepareItems(m, c.items, cfg.LongDocs)
				if err := send(ctx, tokenized, c); err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error { tokWG.Wait(); close(tokenized); return nil })

	g.Go(func() error {
		defer close(batches)
		return batchByLength(ctx, tokenized, batches, cfg.Window, cfg.Encode, m.Tokenizer.NumSpecialTokens())
	})

	var encWG sync.WaitGroup
	vocab := m.Backend.VocabSize()
	for i, backend := range encoderWorkers(m, cfg.EncodeWorkers) {
		device := "cpu"
		if len(m.Devices) > 0 {
			device = m.Devices[i].ID()
		}
		encWG.Add(1)
		g.Go(func() error {
			defer encWG.Done()
			return encodeBatches(ctx, m, backend, device, batches, pooled, free, vocab, &sc, cfg.Metrics)
		})
	}
	g.Go(func() error { encWG.Wait(); close(pooled); return nil })

	g.Go(func() error {
		defer close(results)
		return sparsifyBatches(ctx, pooled, results, free, vocab, cfg.Encode.Sparsify, cfg.LongDocs)
	})

	var counts Counts
	var res pipelineResult
	g.Go(func() error {
		var err error
		counts, res, err = writeShards(ctx, tasks, cfg, settings, bad, &locks, results, ends, progress, log)
		return err
	})
	err := g.Wait()
	counts.Batches = sc.batches.Load()
	counts.PaddedTokens = sc.padded.Load()
	return counts, res, err
}

// prepareItems tokenizes the documents of a chunk into the items the model
// runs: one per document, or one per window of it.
func prepareItems(m *Model, items []docItem, l LongDocs) []docItem {
	out := items[:0:0]
	if !l.windowed() {
		out = items[:0] // one item per document: tokenize in place
	}
	for _, it := range items {
		parts, truncated := m.prepare(it.text, l)
		it.text, it.truncated, it.parts = "", truncated, len(parts)
		for k, p := range parts {
			it.part, it.ids, it.poolFrom = k, p.ids, p.poolFrom
			out = append(out, it)
		}
	}
	return out
}

// send delivers v on ch unless ctx is cancelled first.
func send[T any](ctx context.Context, ch chan<- T, v T) error {
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lockPoll is how often a run polls for a shard locked by another run.
const lockPoll = 200 * time.Millisecond

// readShards streams every shard's documents in chunks. It takes each
// shard's lock first: a shard locked by another run is put off until the
// others are read, then waited for. Under the lock it checks again what an
// earlier or concurrent run left (the shard may be done by now) and clears
// leftovers. Rows the input reader rejects (null or empty ids, null texts)
// and ids seen before in the shard go to the shard's dead-letter file. A
// shard that cannot be read fails alone: the writer is told and the reader
// goes on with the next shard.
func readShards(ctx context.Context, tasks []shardTask, cfg Config, settings map[string]string, locks *lockSet,
	chunks chan<- docChunk, ends chan<- shardEnd, log *slog.Logger) error {
	var index int64
	pending := tasks
	for wait := false; len(pending) > 0; wait = true {
		if wait {
			// Let the pipeline drain what it holds before blocking.
			if err := send(ctx, chunks, docChunk{index: index, flush: true}); err != nil {
				return err
			}
			index++
		}
		var busy []shardTask
		for _, t := range pending {
			var l *shards.Lock
			if wait {
				log.Info("waiting for a shard another run is encoding", slog.String("input", t.input))
				var err error
				if l, err = shards.LockShard(ctx, cfg.OutputDir, t.base, lockPoll); err != nil {
					return err
				}
			} else {
				var ok bool
				var err error
				if l, ok, err = shards.TryLockShard(cfg.OutputDir, t.base); err != nil {
					return err
				}
				if !ok {
					log.Info("shard locked by another run; coming back to it later", slog.String("input", t.input))
					busy = append(busy, t)
					continue
				}
			}
			locks.put(t.index, l)
			end, err := readShard(ctx, t, cfg, settings, &index, chunks, log)
			if err != nil {
				return err
			}
			if err := send(ctx, ends, end); err != nil {
				if end.rejected != nil {
					_ = end.rejected.Abort()
				}
				return err
			}
		}
		pending = busy
	}
	return nil
}

// readShard reads one locked shard. The error is for failures of the run
// (cancellation, the output directory); failures of the shard are in
// shardEnd.err.
func readShard(ctx context.Context, t shardTask, cfg Config, settings map[string]string, index *int64,
	chunks chan<- docChunk, log *slog.Logger) (shardEnd, error) {
	end := shardEnd{shard: t.index}
	d, err := checkResume(ctx, cfg, t.base, t.ident, settings)
	if err != nil {
		return end, err
	}
	switch d.State {
	case shards.ResumeDone:
		log.Info("shard encoded by another run meanwhile, skipping", slog.String("input", t.input))
		end.byOther = true
		return end, nil
	case shards.ResumeConflict:
		if !cfg.Overwrite {
			end.err = fmt.Errorf("%w: %s was encoded meanwhile by another run with other settings or input (%s)", ErrSettings, t.input, d.Reason)
			return end, nil
		}
	}
	// Todo (maybe with leftovers), broken, or conflict with --overwrite.
	if err := shards.RemoveShard(cfg.OutputDir, t.base); err != nil {
		return end, err
	}
	rw, err := shards.NewRejectedWriter(cfg.OutputDir, t.base)
	if err != nil {
		return end, err
	}
	fail := func(err error) (shardEnd, error) {
		_ = rw.Abort()
		if ctx.Err() != nil {
			return end, ctx.Err()
		}
		end.err = classify(err)
		return end, nil
	}
	r, err := cfg.sources.open(ctx, t.input, cfg.Columns)
	if err != nil {
		return fail(err)
	}
	defer r.Close()
	var rowErrs []*shards.RowError
	r.OnRowError(func(e *shards.RowError) error {
		rowErrs = append(rowErrs, e)
		return nil
	})
	reject := func(rec shards.Rejected) error {
		if err := rw.Add(rec); err != nil {
			_ = rw.Abort()
			return err
		}
		return nil
	}
	seen := map[string]int64{} // id → row of its first occurrence
	log.Debug("reading shard", slog.String("input", t.input), slog.Int64("rows", r.NumRows()))
	var seq int64
	for {
		docs, err := r.Next(ctx, readChunk)
		for _, e := range rowErrs {
			if err := reject(shards.RejectedFromRowError(e)); err != nil {
				return end, err
			}
		}
		rowErrs = rowErrs[:0]
		if len(docs) > 0 {
			items := make([]docItem, 0, len(docs))
			for _, d := range docs {
				if first, dup := seen[d.Doc.ID]; dup {
					id := d.Doc.ID
					if err := reject(shards.Rejected{Input: t.input, RowGroup: d.RowGroup, Row: d.Row, ID: &id,
						Reason: shards.RejectDuplicateID, Detail: fmt.Sprintf("id first seen at row %d", first)}); err != nil {
						return end, err
					}
					continue
				}
				seen[d.Doc.ID] = d.Row
				items = append(items, docItem{shard: t.index, seq: seq, id: d.Doc.ID, text: d.Doc.Text})
				seq++
			}
			if len(items) > 0 {
				if err := send(ctx, chunks, docChunk{index: *index, items: items}); err != nil {
					_ = rw.Abort()
					return end, err
				}
				*index++
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
	end.rows, end.rejected = seq, rw
	if rw.Rows() > 0 {
		log.Warn("rejected input rows", slog.String("input", t.input), slog.Int64("rejected", rw.Rows()),
			slog.String("dead_letter", shards.RejectedName(t.base)))
	}
	return end, nil
}

// classify marks errors caused by the input data as ErrBadInput.
func classify(err error) error {
	if errors.Is(err, shards.ErrInvalidInput) && !errors.Is(err, ErrBadInput) {
		return fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	return err
}

// packWindow is the batcher's rule for one window of tokenized documents,
// given their lengths in ids: the documents without content tokens (at most
// specials ids), which are not run through the model, and length-sorted
// batches of the others under the token budget (pipeline.PackByLength).
// Both are indices into lengths.
func packWindow(lengths []int, opts EncodeOptions, specials int) (empty []int, batches [][]int) {
	var run, runLengths []int
	for i, n := range lengths {
		if n <= specials {
			empty = append(empty, i)
		} else {
			run = append(run, i)
			runLengths = append(runLengths, n)
		}
	}
	batches = pipeline.PackByLength(runLengths, opts.BatchTokens, opts.MaxBatch)
	for _, group := range batches {
		for k, i := range group {
			group[k] = run[i]
		}
	}
	return empty, batches
}

// batchByLength collects tokenized documents into a window, sorts it by
// length and sends batches whose padded size stays within the token budget.
// Documents without content tokens go out in batches of their own, which
// the encoders pass through without running the model.
func batchByLength(ctx context.Context, in <-chan docChunk, out chan<- []docItem, window int, opts EncodeOptions, specials int) error {
	var pool []docItem
	pending := map[int64][]docItem{} // chunks that arrived before their turn
	var next int64
	flush := func() error {
		lengths := make([]int, len(pool))
		for i, it := range pool {
			lengths[i] = len(it.ids)
		}
		emptyIdx, groups := packWindow(lengths, opts, specials)
		pick := func(idx []int) []docItem {
			b := make([]docItem, len(idx))
			for k, i := range idx {
				b[k] = pool[i]
			}
			return b
		}
		defer func() { pool = nil }()
		if len(emptyIdx) > 0 {
			if err := send(ctx, out, pick(emptyIdx)); err != nil {
				return err
			}
		}
		for _, group := range groups {
			if err := send(ctx, out, pick(group)); err != nil {
				return err
			}
		}
		return nil
	}
	flushes := map[int64]bool{}
	for c := range in {
		pending[c.index] = c.items
		if c.flush {
			flushes[c.index] = true
		}
		for {
			items, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			pool = append(pool, items...)
			if len(pool) >= window || flushes[next-1] {
				delete(flushes, next-1)
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	if len(pending) > 0 && ctx.Err() == nil {
		return fmt.Errorf("internal error: %d document chunks never came in order", len(pending))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return flush()
}

// encoderWorkers lists the backend of each encoder goroutine: one per GPU
// (a GPU session runs one batch at a time), or sessions goroutines sharing
// the CPU session.
func encoderWorkers(m *Model, sessions int) []encode.Backend {
	if len(m.Devices) > 0 {
		return m.Backends
	}
	workers := make([]encode.Backend, max(sessions, 1))
	for i := range workers {
		workers[i] = m.Backend
	}
	return workers
}

// encodeBatches runs the backend on each batch. Pooled buffers come back
// from the sparsifier through free, so the steady state allocates nothing.
// Several workers take batches from in: whichever is free first.
func encodeBatches(ctx context.Context, m *Model, backend encode.Backend, device string, in <-chan []docItem, out chan<- encodedBatch,
	free chan []float32, vocab int, sc *stageCounts, metrics *pipeline.Metrics) error {
	var batch encode.Batch
	seqs := make([][]int32, 0, 128)
	for items := range in {
		if len(items[0].ids) <= m.Tokenizer.NumSpecialTokens() {
			if err := send(ctx, out, encodedBatch{items: items}); err != nil {
				return err
			}
			continue
		}
		seqs = seqs[:0]
		for _, it := range items {
			seqs = append(seqs, it.ids)
		}
		batch.Reset(seqs, m.Tokenizer.PadID())
		if m.Echo {
			from := make([]int, len(items))
			for r, it := range items {
				from[r] = it.poolFrom
			}
			batch.SetPoolFrom(from)
		}
		var buf []float32
		select {
		case buf = <-free:
		default:
		}
		need := batch.Size * vocab
		if cap(buf) < need {
			buf = make([]float32, need)
		}
		buf = buf[:need]
		start := time.Now()
		if err := backend.Encode(ctx, &batch, buf); err != nil {
			return fmt.Errorf("encode a batch of %d documents × %d tokens: %w", batch.Size, batch.SeqLen, err)
		}
		metrics.ObserveBatch(device, time.Since(start))
		metrics.AddDocs(0, 0, int64(batch.Size*batch.SeqLen))
		sc.batches.Add(1)
		sc.padded.Add(int64(batch.Size * batch.SeqLen))
		if err := send(ctx, out, encodedBatch{items: items, pooled: buf}); err != nil {
			return err
		}
	}
	return nil
}

// docItemResult is one encoded document, or one window of it, for the
// writer.
type docItemResult struct {
	shard       int
	seq         int64
	id          string
	res         Result
	part, parts int
	// passages holds the rows of a document emitted per window, in window
	// order (set once the writer has all of them).
	passages []Result
	// padded is the positions the item's batch row ran, padding included;
	// firstInBatch marks the first item of its shard in its batch.
	padded       int
	firstInBatch bool
}

// sparsifyBatches turns pooled rows into sparse vectors. The windows of a
// document that the writer will combine keep every positive weight: the
// pruning settings apply to the combined vector.
func sparsifyBatches(ctx context.Context, in <-chan encodedBatch, out chan<- []docItemResult, free chan<- []float32, vocab int, opts encode.SparsifyOptions, l LongDocs) error {
	raw := encode.SparsifyOptions{Scale: opts.Scale}
	for b := range in {
		rs := make([]docItemResult, len(b.items))
		seqLen := 0
		for _, it := range b.items {
			seqLen = max(seqLen, len(it.ids))
		}
		seen := map[int]bool{}
		for r, it := range b.items {
			rs[r] = docItemResult{shard: it.shard, seq: it.seq, id: it.id, part: it.part, parts: it.parts}
			if b.pooled != nil {
				rs[r].padded = seqLen
				rs[r].firstInBatch = !seen[it.shard]
				seen[it.shard] = true
			}
			rs[r].res = Result{Truncated: it.truncated}
			if b.pooled != nil { // else no text: the model saw nothing, no window
				o := opts
				if it.parts > 1 && !l.Passages {
					o = raw
				}
				rs[r].res.Vec = encode.Sparsify(b.pooled[r*vocab:(r+1)*vocab], o, encode.SparseVec{})
				rs[r].res.NumTokens = int32(len(it.ids))
				if l.windowed() {
					rs[r].res.NumWindows = 1 // assemble counts a document's windows
				}
			}
		}
		if b.pooled != nil {
			select {
			case free <- b.pooled:
			default:
			}
		}
		if err := send(ctx, out, rs); err != nil {
			return err
		}
	}
	return nil
}

// shardState is the writer's view of one shard being written.
type shardState struct {
	task     shardTask
	w        *shards.Writer
	rejected *shards.RejectedWriter
	next     int64                   // next seq to write
	waiting  map[int64]docItemResult // arrived out of order
	partial  map[int64]*windowSet    // documents with windows still to come
	total    int64                   // rows in the shard; -1 until the reader is done with it
	failed   bool                    // aborted: later results are dropped
	stats    shards.ManifestStats
	started  time.Time // when the writer saw the shard's first result
}

// writeShards restores each shard's input order, writes its rows and
// commits it (output, dead-letter file, then manifest) once complete. A
// shard the reader failed on is aborted alone; on any other error every
// uncommitted output is aborted: nothing half-written takes a final name.
func writeShards(ctx context.Context, tasks []shardTask, cfg Config, settings map[string]string, bad *badBudget, locks *lockSet,
	results <-chan []docItemResult, ends <-chan shardEnd, progress Progress, log *slog.Logger) (counts Counts, res pipelineResult, err error) {
	open := map[int]*shardState{}
	defer func() {
		for _, st := range open {
			if st.w != nil {
				_ = st.w.Abort()
			}
			if st.rejected != nil {
				_ = st.rejected.Abort()
			}
		}
	}()
	state := func(i int) (*shardState, error) {
		if st, ok := open[i]; ok {
			return st, nil
		}
		t := tasks[i]
		w, err := shards.NewWriter(cfg.OutputDir, t.base, cfg.Format, t.meta, shards.WriterOptions{NumWindows: cfg.LongDocs.windowed()})
		if err != nil {
			return nil, err
		}
		st := &shardState{task: t, w: w, waiting: map[int64]docItemResult{}, partial: map[int64]*windowSet{}, total: -1, started: time.Now()}
		open[i] = st
		return st, nil
	}
	finished := 0 // shards committed, done by another run, or failed
	shardFinished := func(i int) error {
		finished++
		if progress != nil {
			progress.ShardDone()
		}
		return locks.release(i)
	}
	maybeCommit := func(st *shardState) error {
		if st.failed || st.total < 0 || st.next < st.total {
			return nil
		}
		out, err := st.w.Commit()
		if err != nil {
			return err
		}
		cfg.failpoint(FailpointShardCommitted)
		rejected, err := st.rejected.Commit()
		if err != nil {
			return err
		}
		delete(open, st.task.index)
		man := shards.Manifest{
			SplashVersion: cfg.Version,
			Input:         st.task.ident,
			Settings:      settings,
			Output:        shards.NewManifestOutput(out, cfg.Format),
			Rejected:      rejected,
			CreatedAt:     time.Now().UTC(),
		}
		st.stats.Documents = out.Rows
		st.stats.Seconds = time.Since(st.started).Seconds()
		man.Stats = &st.stats
		man.Input.Rows = out.Rows + st.rejected.Rows()
		if err := shards.WriteManifest(cfg.OutputDir, man); err != nil {
			// Leave no final name without a manifest behind (it would not
			// count as done, but it would look like an output).
			if rerr := shards.RemoveShard(cfg.OutputDir, st.task.base); rerr != nil {
				log.Error("could not remove the uncommitted shard", slog.String("error", rerr.Error()))
			}
			return err
		}
		cfg.failpoint(FailpointManifestWritten)
		if cfg.remote != nil {
			won, err := cfg.remote.publish(ctx, man, st.task.base, log)
			if err != nil {
				return err
			}
			if !won {
				res.byOther++
				return shardFinished(st.task.index)
			}
		}
		cfg.Metrics.ShardDone()
		cfg.Metrics.AddBad(st.rejected.Rows())
		res.encoded++
		res.rejected += st.rejected.Rows()
		if err := shardFinished(st.task.index); err != nil {
			return err
		}
		// Checked once the shard is committed, so that its dead-letter
		// file is there to read when the run stops.
		if err := bad.add(st.rejected.Rows()); err != nil {
			return err
		}
		log.Info("shard done", slog.String("output", out.Path), slog.Int64("rows", out.Rows), slog.Int64("rejected", st.rejected.Rows()),
			slog.Int("done", finished), slog.Int("shards", len(tasks)))
		return nil
	}
	// write writes a document's row, or its window rows (--emit passages,
	// ids DOCID#K); a document counts once in the counts, the progress and
	// the metrics, however many rows it gave.
	write := func(st *shardState, r docItemResult) error {
		rows := r.passages
		if rows == nil {
			rows = []Result{r.res}
		}
		var tokens int64
		for k, p := range rows {
			row := shards.Row{DocID: r.id, Vec: p.Vec, NumTokens: p.NumTokens, Truncated: p.Truncated, NumWindows: p.NumWindows}
			if r.passages != nil {
				row.DocID += "#" + strconv.Itoa(k)
			}
			if err := st.w.Write(row); err != nil {
				return fmt.Errorf("write %s row %d (id %q): %w", st.task.base, r.seq, row.DocID, err)
			}
			cfg.failpoint(FailpointRowWritten)
			tokens += int64(p.NumTokens)
			counts.NonZeros = append(counts.NonZeros, p.Vec.Len())
			if p.Vec.Len() == 0 {
				st.stats.Empty++
				counts.Empty++
				cfg.Metrics.AddEmpty(1)
			}
		}
		st.next++
		counts.Docs++
		counts.Tokens += tokens
		st.stats.Tokens += tokens
		if r.res.Truncated {
			counts.Truncated++
			st.stats.Truncated++
		}
		cfg.Metrics.AddDocs(1, tokens, 0)
		if progress != nil {
			progress.AddDocs(1, tokens)
		}
		return nil
	}
	for results != nil || ends != nil {
		select {
		case <-ctx.Done():
			return counts, res, ctx.Err()
		case rs, ok := <-results:
			if !ok {
				results = nil
				continue
			}
			for _, r := range rs {
				st, err := state(r.shard)
				if err != nil {
					return counts, res, err
				}
				if st.failed {
					continue
				}
				st.stats.PaddedTokens += int64(r.padded)
				if r.firstInBatch {
					st.stats.Batches++
				}
				if r.parts > 1 || cfg.LongDocs.Passages {
					var complete bool
					if r, complete = st.assemble(r, cfg.LongDocs, cfg.Encode.Sparsify); !complete {
						continue
					}
				}
				st.waiting[r.seq] = r
				for {
					next, ok := st.waiting[st.next]
					if !ok {
						break
					}
					delete(st.waiting, st.next)
					if err := write(st, next); err != nil {
						return counts, res, err
					}
				}
				if err := maybeCommit(st); err != nil {
					return counts, res, err
				}
			}
		case e, ok := <-ends:
			if !ok {
				ends = nil
				continue
			}
			switch {
			case e.byOther:
				res.byOther++
				if err := shardFinished(e.shard); err != nil {
					return counts, res, err
				}
			case e.err != nil:
				t := tasks[e.shard]
				log.Error("shard failed; going on with the others", slog.String("input", t.input), slog.String("error", e.err.Error()))
				if st, ok := open[e.shard]; ok {
					st.failed = true
					st.waiting = nil
					if err := st.w.Abort(); err != nil {
						return counts, res, err
					}
				} else {
					open[e.shard] = &shardState{task: t, failed: true}
				}
				res.failed = append(res.failed, shardFailure{input: t.input, err: e.err})
				if err := shardFinished(e.shard); err != nil {
					return counts, res, err
				}
			default:
				st, err := state(e.shard)
				if err != nil {
					_ = e.rejected.Abort()
					return counts, res, err
				}
				st.total, st.rejected = e.rows, e.rejected
				if err := maybeCommit(st); err != nil {
					return counts, res, err
				}
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return counts, res, err
	}
	if finished != len(tasks) {
		return counts, res, fmt.Errorf("internal error: %d of %d shards finished when the pipeline ended", finished, len(tasks))
	}
	return counts, res, nil
}

// windowSet collects the windows of one document.
type windowSet struct {
	got      int
	acc      encode.SparseVec // combined weights (AggMax or AggSum)
	tokens   int32
	passages []Result // --emit passages: each window's row, by window index
}

// assemble adds a window's result to its document and, once the last
// window is in, returns the document's result: the windows' vectors
// combined and then pruned and quantized by opts, or (passages) every
// window's own row.
func (st *shardState) assemble(r docItemResult, l LongDocs, opts encode.SparsifyOptions) (docItemResult, bool) {
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
	if l.Passages {
		p := r.res
		if p.NumWindows > 0 { // 0: an empty document, no window run
			p.NumWindows = int32(r.parts)
		}
		ws.passages[r.part] = p
	} else {
		ws.acc = encode.MergeWindow(ws.acc, r.res.Vec, l.Agg)
	}
	if ws.got < r.parts {
		return r, false
	}
	delete(st.partial, r.seq)
	out := docItemResult{shard: r.shard, seq: r.seq, id: r.id, part: 0, parts: r.parts}
	out.res.Truncated = r.res.Truncated
	if l.Passages {
		out.passages = ws.passages
		return out, true
	}
	out.res.Vec = encode.SparsifySparse(ws.acc, opts)
	out.res.NumTokens = ws.tokens
	out.res.NumWindows = int32(r.parts)
	return out, true
}
