package encode

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/splash-encode/splash/pipeline"
)

// The encoding pipeline of design.md §2, built from package pipeline's
// stages and joined by bounded channels; every send also watches ctx:
//
//	source ─chunks→ tokenizers ─tokenized→ batcher ─batches→ encoders ─pooled→ sparsifier ─results→ writer → sink
//	   └──────────────────────────── shard ends ────────────────────────────────────────────────────→┘
//
// Documents carry their shard and position; the writer restores each
// shard's input order, combines the windows of long documents and hands the
// sink each document in order, then tells it to commit a shard once its
// last document is written. Memory is bounded by the window and channel
// sizes, not by the corpus or shard size. `splash encode` (shards as source
// and sink), `splash model bench` (documents in memory, a discarding sink)
// and `splash selftest` (a generated corpus, a collecting sink) all run
// this one pipeline.

// DefaultWindow is how many tokenized documents the batcher sorts by length
// together unless StreamConfig.Window says otherwise.
const DefaultWindow = 4096

// ReadChunk is how many documents a source hands on at a time.
const ReadChunk = 256

// Source feeds a stream with documents, shard by shard. Read is called
// once, from one goroutine; it returns when every shard was fed (or on the
// first error, which stops the stream).
type Source interface {
	Read(ctx context.Context, feed *Feed) error
}

// Sink receives a stream's output, from one goroutine.
type Sink interface {
	// Write takes the next document of a shard, in the shard's input order.
	Write(ctx context.Context, shard int, d Document) error
	// Commit is called once every document of a shard that the source
	// read to its end (Feed.Done) was written; also for a shard without
	// documents.
	Commit(ctx context.Context, shard int) error
	// Skip is called for a shard the source found done by another run.
	Skip(ctx context.Context, shard int) error
	// Fail is called for a shard the source failed on: what the sink wrote
	// of it must go; the stream goes on with the other shards.
	Fail(ctx context.Context, shard int, err error) error
}

// Document is one encoded document as the sink receives it.
type Document struct {
	// Seq is the document's position among its shard's documents, from 0.
	Seq int64
	ID  string
	// Results holds the document's row or, with passages (--emit
	// passages), one row per window, whose ids are ID#K (K from 0).
	Results   []Result
	Passages  bool
	Truncated bool
	// PaddedTokens is the positions the document's batch rows ran,
	// padding included; Batches counts the batches in which it was the
	// first document of its shard.
	PaddedTokens int64
	Batches      int64
}

// Worker is the backend of one encoder goroutine and the device it runs
// on, as metrics name it ("cpu", "cuda:0").
type Worker struct {
	Backend Backend
	Device  string
}

// CPUWorkers returns n workers sharing backend on the CPU (ONNX Runtime
// sessions run concurrent calls); n below 1 means 1.
func CPUWorkers(backend Backend, n int) []Worker {
	workers := make([]Worker, max(n, 1))
	for i := range workers {
		workers[i] = Worker{Backend: backend, Device: "cpu"}
	}
	return workers
}

// Progress receives the writer's progress (pipeline.Progress implements it).
type Progress interface {
	AddDocs(docs, tokens int64)
	ShardDone()
}

// StreamConfig configures Stream.
type StreamConfig struct {
	Options  EncodeOptions
	LongDocs LongDocs
	// Shards is how many shards the source feeds (shard numbers are
	// 0..Shards-1).
	Shards int
	// Window is how many tokenized documents the batcher sorts by length
	// together; 0 means DefaultWindow.
	Window int
	// TokenizeWorkers defaults to GOMAXPROCS.
	TokenizeWorkers int
	// Workers run the batches (see CPUWorkers); nil means one worker on
	// the model's Backend.
	Workers []Worker
	// Metrics, when set, records batches, documents and empty vectors.
	Metrics *pipeline.Metrics
	// Progress, when set, is told about written documents and finished
	// shards.
	Progress Progress
	// OnBatch, when set, is called after each backend call with the
	// worker's device and the call's start and duration.
	OnBatch func(device string, start time.Time, d time.Duration)
}

// item is one document, or one window of it, on its way through the stages.
type item struct {
	shard     int
	seq       int64 // position within the shard, from 0
	id        string
	text      string // cleared once tokenized
	ids       []int32
	truncated bool
	tokenized bool // ids are set: the tokenizers pass it on
	// A document cut into windows (LongDocs) travels as parts items with
	// the same seq, part 0..parts-1; otherwise part 0 of 1.
	part, parts int
	poolFrom    int // echo: first pooled position
}

// shardEnd tells the writer that the source is done with a shard: it fed
// docs documents, or found the shard done by another run (skipped), or
// failed on it (err).
type shardEnd struct {
	shard   int
	docs    int64
	skipped bool
	err     error
}

// Feed is how a Source hands documents to the stream. Its methods are
// called from the source's goroutine only.
type Feed struct {
	chunks chan<- pipeline.Chunk[item]
	ends   chan<- shardEnd
	index  int64
	docs   map[int]int64 // documents fed per shard
}

// Docs feeds a shard's next documents (one chunk; the batcher restores the
// chunks' order).
func (f *Feed) Docs(ctx context.Context, shard int, docs []Doc) error {
	if len(docs) == 0 {
		return nil
	}
	items := make([]item, len(docs))
	seq := f.docs[shard]
	for i, d := range docs {
		items[i] = item{shard: shard, seq: seq, id: d.ID, text: d.Text}
		seq++
	}
	f.docs[shard] = seq
	return f.send(ctx, pipeline.Chunk[item]{Items: items})
}

// Tokenized is a document whose parts were already prepared (Model.Prepare):
// the stream runs them without tokenizing again.
type Tokenized struct {
	ID        string
	Parts     []Part
	Truncated bool
}

// TokenizedDocs feeds documents prepared before (benchmarks prepare them
// once, outside the timed passes).
func (f *Feed) TokenizedDocs(ctx context.Context, shard int, docs []Tokenized) error {
	if len(docs) == 0 {
		return nil
	}
	var items []item
	seq := f.docs[shard]
	for _, d := range docs {
		for k, p := range d.Parts {
			items = append(items, item{shard: shard, seq: seq, id: d.ID, ids: p.IDs, poolFrom: p.PoolFrom,
				truncated: d.Truncated, tokenized: true, part: k, parts: len(d.Parts)})
		}
		seq++
	}
	f.docs[shard] = seq
	return f.send(ctx, pipeline.Chunk[item]{Items: items})
}

// Flush asks the batcher to send out every document it holds: a source
// calls it before it waits (for a shard locked by another run, say), so
// that nothing it fed stays held back meanwhile.
func (f *Feed) Flush(ctx context.Context) error {
	return f.send(ctx, pipeline.Chunk[item]{Flush: true})
}

func (f *Feed) send(ctx context.Context, c pipeline.Chunk[item]) error {
	c.Index = f.index
	if err := pipeline.Send(ctx, f.chunks, c); err != nil {
		return err
	}
	f.index++
	return nil
}

// Done says that every document of shard was fed.
func (f *Feed) Done(ctx context.Context, shard int) error {
	return pipeline.Send(ctx, f.ends, shardEnd{shard: shard, docs: f.docs[shard]})
}

// Skip says that shard was found done by another run: nothing of it is fed.
func (f *Feed) Skip(ctx context.Context, shard int) error {
	return pipeline.Send(ctx, f.ends, shardEnd{shard: shard, skipped: true})
}

// Fail says that the source failed on shard; the stream drops what it
// holds of it and the sink's Fail is called.
func (f *Feed) Fail(ctx context.Context, shard int, err error) error {
	return pipeline.Send(ctx, f.ends, shardEnd{shard: shard, err: err})
}

// Stream encodes what src feeds with m and hands the documents to sink,
// shard by shard in input order. It returns what it counted; on error the
// sink may hold uncommitted shards, which it must abort.
func Stream(ctx context.Context, m *Model, cfg StreamConfig, src Source, sink Sink) (Counts, error) {
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.TokenizeWorkers <= 0 {
		cfg.TokenizeWorkers = runtime.GOMAXPROCS(0)
	}
	if len(cfg.Workers) == 0 {
		cfg.Workers = CPUWorkers(m.Backend, 1)
	}
	g, ctx := pipeline.NewGroup(ctx)
	chunks := make(chan pipeline.Chunk[item], 4)
	ends := make(chan shardEnd, max(cfg.Shards, 1))

	g.Go(func(ctx context.Context) error {
		err := src.Read(ctx, &Feed{chunks: chunks, ends: ends, docs: map[int]int64{}})
		if err == nil {
			close(chunks)
			close(ends)
			return nil
		}
		// Close only once the group has cancelled ctx: a stage that sees
		// its input end while ctx is live takes it for the end of the
		// corpus (the batcher would send out a partial window).
		go func() {
			<-ctx.Done()
			close(chunks)
			close(ends)
		}()
		return err
	})

	tokenized := pipeline.Stage(g, chunks, cfg.TokenizeWorkers, 4,
		func(ctx context.Context, in <-chan pipeline.Chunk[item], emit func(pipeline.Chunk[item]) error) error {
			for c := range in {
				c.Items = prepareItems(m, c.Items, cfg.LongDocs)
				if err := emit(c); err != nil {
					return err
				}
			}
			return nil
		})

	specials := m.Tokenizer.NumSpecialTokens()
	batchOpts := pipeline.BatchOptions{Window: cfg.Window, Budget: cfg.Options.BatchTokens, MaxItems: cfg.Options.MaxBatch, Skip: specials}
	batches := pipeline.Stage(g, tokenized, 1, 2,
		func(ctx context.Context, in <-chan pipeline.Chunk[item], emit func([]item) error) error {
			return pipeline.BatchByLength(ctx, in, emit, batchOpts, func(it item) int { return len(it.ids) })
		})

	vocab := m.Backend.VocabSize()
	free := make(chan []float32, len(cfg.Workers)+2) // pooled buffers back from the sparsifier
	pooled := make(chan encodedBatch, 2)
	var sc stageCounts
	var encWG sync.WaitGroup
	for _, w := range cfg.Workers {
		encWG.Add(1)
		g.Go(func(ctx context.Context) error {
			defer encWG.Done()
			return encodeBatches(ctx, m, w, cfg, batches, pooled, free, vocab, &sc)
		})
	}
	g.Go(func(context.Context) error { encWG.Wait(); close(pooled); return nil })

	results := pipeline.Stage(g, pooled, 1, 4,
		func(ctx context.Context, in <-chan encodedBatch, emit func([]itemResult) error) error {
			return sparsifyBatches(in, emit, free, vocab, cfg.Options.Sparsify, cfg.LongDocs)
		})

	w := &writer{cfg: cfg, sink: sink, shards: map[int]*shardOrder{}}
	g.Go(func(ctx context.Context) error { return w.run(ctx, results, ends) })
	err := g.Wait()
	w.counts.Batches = sc.batches.Load()
	w.counts.PaddedTokens = sc.padded.Load()
	return w.counts, err
}

// prepareItems tokenizes the documents of a chunk into the items the model
// runs: one per document, or one per window of it. Items tokenized before
// pass as they are.
func prepareItems(m *Model, items []item, l LongDocs) []item {
	out := items[:0:0]
	if !l.Windowed() {
		out = items[:0] // one item per document: tokenize in place
	}
	for _, it := range items {
		if it.tokenized {
			out = append(out, it)
			continue
		}
		parts, truncated := m.Prepare(it.text, l)
		it.text, it.truncated, it.parts = "", truncated, len(parts)
		for k, p := range parts {
			it.part, it.ids, it.poolFrom = k, p.IDs, p.PoolFrom
			out = append(out, it)
		}
	}
	return out
}

// stageCounts are the counters the encoder stage keeps (atomics: several
// encoder workers add to them).
type stageCounts struct {
	batches, padded atomic.Int64
}

type encodedBatch struct {
	items  []item
	pooled []float32 // [len(items), vocab]; nil for documents the model does not see
	csr    *CSR      // the positive pooled weights instead, from a SparseBackend
}

// encodeBatches runs the worker's backend on each batch. Pooled buffers
// come back from the sparsifier through free, so the steady state allocates
// nothing. Several workers take batches from in: whichever is free first.
// A batch of documents without content tokens passes without running.
func encodeBatches(ctx context.Context, m *Model, w Worker, cfg StreamConfig, in <-chan []item, out chan<- encodedBatch,
	free chan []float32, vocab int, sc *stageCounts) error {
	var batch Batch
	seqs := make([][]int32, 0, 128)
	sparse := AsSparse(w.Backend)
	for items := range in {
		if len(items[0].ids) <= m.Tokenizer.NumSpecialTokens() {
			if err := pipeline.Send(ctx, out, encodedBatch{items: items}); err != nil {
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
		var csr *CSR
		start := time.Now()
		if sparse != nil {
			csr = &CSR{}
			if err := sparse.EncodeSparse(ctx, &batch, csr); err != nil {
				return fmt.Errorf("encode a batch of %d documents × %d tokens: %w", batch.Size, batch.SeqLen, err)
			}
			if err := csr.Check(batch.Size, vocab); err != nil {
				return fmt.Errorf("encode a batch of %d documents × %d tokens: %w", batch.Size, batch.SeqLen, err)
			}
		} else {
			select {
			case buf = <-free:
			default:
			}
			need := batch.Size * vocab
			if cap(buf) < need {
				buf = make([]float32, need)
			}
			buf = buf[:need]
			start = time.Now()
			if err := w.Backend.Encode(ctx, &batch, buf); err != nil {
				return fmt.Errorf("encode a batch of %d documents × %d tokens: %w", batch.Size, batch.SeqLen, err)
			}
		}
		took := time.Since(start)
		if cfg.OnBatch != nil {
			cfg.OnBatch(w.Device, start, took)
		}
		cfg.Metrics.ObserveBatch(w.Device, took)
		cfg.Metrics.AddDocs(0, 0, int64(batch.Size*batch.SeqLen))
		sc.batches.Add(1)
		sc.padded.Add(int64(batch.Size * batch.SeqLen))
		if err := pipeline.Send(ctx, out, encodedBatch{items: items, pooled: buf, csr: csr}); err != nil {
			return err
		}
	}
	return nil
}

// itemResult is one encoded document, or one window of it, for the writer.
type itemResult struct {
	shard       int
	seq         int64
	id          string
	res         Result
	part, parts int
	// passages holds the rows of a document emitted per window, in window
	// order (set once the writer has all of them).
	passages []Result
	// padded is the positions the item's batch row ran, padding included
	// (summed over windows once combined); batches counts the batches in
	// which it was its shard's first item.
	padded  int64
	batches int64
}

// sparsifyBatches turns pooled rows into sparse vectors. The windows of a
// document that the writer will combine keep every positive weight: the
// pruning settings apply to the combined vector.
func sparsifyBatches(in <-chan encodedBatch, emit func([]itemResult) error, free chan<- []float32, vocab int, opts SparsifyOptions, l LongDocs) error {
	raw := SparsifyOptions{Scale: opts.Scale}
	for b := range in {
		rs := make([]itemResult, len(b.items))
		seqLen := 0
		for _, it := range b.items {
			seqLen = max(seqLen, len(it.ids))
		}
		seen := map[int]bool{}
		ran := b.pooled != nil || b.csr != nil
		for r, it := range b.items {
			rs[r] = itemResult{shard: it.shard, seq: it.seq, id: it.id, part: it.part, parts: it.parts}
			if ran {
				rs[r].padded = int64(seqLen)
				if !seen[it.shard] {
					rs[r].batches = 1
				}
				seen[it.shard] = true
			}
			rs[r].res = Result{Truncated: it.truncated}
			if ran { // else no text: the model saw nothing, no window
				o := opts
				if it.parts > 1 && !l.Passages {
					o = raw
				}
				if b.csr != nil {
					terms, weights := b.csr.Row(r)
					rs[r].res.Vec = SparsifyRow(terms, weights, o, SparseVec{})
				} else {
					rs[r].res.Vec = Sparsify(b.pooled[r*vocab:(r+1)*vocab], o, SparseVec{})
				}
				rs[r].res.NumTokens = int32(len(it.ids))
				if l.Windowed() {
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
		if err := emit(rs); err != nil {
			return err
		}
	}
	return nil
}
