package encode_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/encodetest"
	"github.com/splash-encode/splash/encode/testmodel"
)

// These tests run the encoding stream with a fake backend and documents
// and sinks in memory: they need neither ONNX Runtime nor data files.

// corpus returns shards of documents with varied lengths, empty texts
// among them.
func corpus(shards, docs int, seed uint64) [][]encode.Doc {
	texts := testmodel.SyntheticCorpus(shards*docs, seed)
	out := make([][]encode.Doc, shards)
	for s := range out {
		for d := 0; d < docs; d++ {
			text := texts[s*docs+d]
			if d%37 == 5 {
				text = "   " // no content tokens: not run through the model
			}
			out[s] = append(out[s], encode.Doc{ID: fmt.Sprintf("s%d-d%d", s, d), Text: text})
		}
	}
	return out
}

func streamConfig(shards int) encode.StreamConfig {
	return encode.StreamConfig{
		Options: encode.EncodeOptions{BatchTokens: 1024, MaxBatch: 16, Sparsify: encode.DefaultSparsifyOptions()},
		Shards:  shards, Window: 100, TokenizeWorkers: 3,
	}
}

func sameResult(a, b encode.Result) bool {
	return slices.Equal(a.Vec.Terms, b.Vec.Terms) && slices.Equal(a.Vec.Weights, b.Vec.Weights) && slices.Equal(a.Vec.Impacts, b.Vec.Impacts) &&
		a.NumTokens == b.NumTokens && a.Truncated == b.Truncated && a.NumWindows == b.NumWindows
}

// TestStreamKeepsEachShardsOrder runs several shards through tokenizers,
// the batcher (which sorts by length) and two encoder workers that finish
// out of order: every shard's documents reach the sink in input order,
// each with its own vector, and every shard is committed.
func TestStreamKeepsEachShardsOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var mu sync.Mutex
	b := &encodetest.Backend{Delay: func() time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return time.Duration(rng.IntN(300)) * time.Microsecond
	}}
	m := encodetest.Model(t, b, 64)
	docs := corpus(3, 300, 7)
	cfg := streamConfig(3)
	cfg.Workers = encode.CPUWorkers(b, 2)
	sink := encode.NewCollectSink(3)
	counts, err := encode.Stream(context.Background(), m, cfg, encode.MemorySource{Docs: docs}, sink)
	if err != nil {
		t.Fatal(err)
	}
	var empty, truncated int64
	for s := range docs {
		if !sink.Committed[s] || len(sink.Shards[s]) != len(docs[s]) {
			t.Fatalf("shard %d: committed %v, %d of %d documents", s, sink.Committed[s], len(sink.Shards[s]), len(docs[s]))
		}
		for i, d := range sink.Shards[s] {
			want := encodetest.Expected(m, docs[s][i].Text, cfg.Options.Sparsify)
			if d.ID != docs[s][i].ID || d.Seq != int64(i) || len(d.Results) != 1 || !sameResult(d.Results[0], want) {
				t.Fatalf("shard %d document %d: got %s (seq %d) %+v, want %s %+v", s, i, d.ID, d.Seq, d.Results, docs[s][i].ID, want)
			}
			if want.Vec.Len() == 0 {
				empty++
			}
			if want.Truncated {
				truncated++
			}
		}
	}
	if counts.Docs != 900 || counts.Empty != empty || counts.Truncated != truncated || counts.Batches != b.Calls.Load() || len(counts.NonZeros) != 900 {
		t.Errorf("counts %+v (batches %d); want 900 documents, %d empty, %d truncated, one batch per backend call (%d)",
			counts, counts.Batches, empty, truncated, b.Calls.Load())
	}
	if counts.Truncated == 0 || counts.Empty == 0 {
		t.Errorf("the corpus should have truncated (%d) and empty (%d) documents", counts.Truncated, counts.Empty)
	}
}

// TestStreamCombinesWindows checks long documents cut into windows: the
// combined vector is the max over the windows' vectors, and passages give
// one result per window.
func TestStreamCombinesWindows(t *testing.T) {
	b := &encodetest.Backend{}
	m := encodetest.Model(t, b, 32)
	text := strings.Repeat("alpha beta gamma delta epsilon zeta eta theta iota kappa ", 12)
	docs := [][]encode.Doc{{{ID: "long", Text: text}, {ID: "short", Text: "alpha beta"}, {ID: "empty", Text: ""}}}
	l, err := encode.LongDocs{Mode: encode.LongDocsWindow, Window: 16, MaxWindows: 0}.Resolve(m.MaxLength, m.Tokenizer.NumSpecialTokens(), false)
	if err != nil {
		t.Fatal(err)
	}
	// The reference: every window run alone as a document of its own.
	parts, truncated := m.Prepare(text, l)
	if len(parts) < 3 || truncated {
		t.Fatalf("%d windows, truncated %v: the test needs several windows and no truncation", len(parts), truncated)
	}
	var windows []encode.Result
	var merged encode.SparseVec
	var tokens int32
	raw := encode.SparsifyOptions{Scale: 100}
	for _, p := range parts {
		row := make([]float32, b.Vocab)
		for _, id := range p.IDs {
			row[id]++
		}
		for j, c := range row {
			if c > 0 {
				row[j] = float32(math.Log1p(float64(c)))
			}
		}
		v := encode.Sparsify(row, raw, encode.SparseVec{})
		windows = append(windows, encode.Result{Vec: v, NumTokens: int32(len(p.IDs)), NumWindows: int32(len(parts))})
		merged = encode.MergeWindow(merged, v, encode.AggMax)
		tokens += int32(len(p.IDs))
	}
	opts := encode.SparsifyOptions{Scale: 100, TopK: 5}

	cfg := streamConfig(1)
	cfg.Options.Sparsify = opts
	cfg.LongDocs = l
	sink := encode.NewCollectSink(1)
	if _, err := encode.Stream(context.Background(), m, cfg, encode.MemorySource{Docs: docs}, sink); err != nil {
		t.Fatal(err)
	}
	got := sink.Shards[0][0].Results[0]
	want := encode.Result{Vec: encode.SparsifySparse(merged, opts), NumTokens: tokens, NumWindows: int32(len(parts))}
	if !sameResult(got, want) {
		t.Errorf("combined windows: got %+v, want %+v", got, want)
	}
	if e := sink.Shards[0][2].Results[0]; e.Vec.Len() != 0 || e.NumWindows != 0 || e.NumTokens != 0 {
		t.Errorf("empty document: %+v, want no terms, no window, no token", e)
	}

	l.Passages = true
	cfg.LongDocs = l
	sink = encode.NewCollectSink(1)
	if _, err := encode.Stream(context.Background(), m, cfg, encode.MemorySource{Docs: docs}, sink); err != nil {
		t.Fatal(err)
	}
	d := sink.Shards[0][0]
	if !d.Passages || len(d.Results) != len(parts) {
		t.Fatalf("passages: %d results (passages %v), want %d", len(d.Results), d.Passages, len(parts))
	}
	for k, w := range windows {
		w.Vec = encode.SparsifySparse(w.Vec, opts)
		if !sameResult(d.Results[k], w) {
			t.Errorf("passage %d: got %+v, want %+v", k, d.Results[k], w)
		}
	}
}

// failingSource feeds shards and fails as asked.
type failingSource struct {
	docs [][]encode.Doc
	// failShard is fed half its documents, then reported failed; -1: none.
	failShard int
	// skipShard is reported done by another run; -1: none.
	skipShard int
	// err, when set, is returned after the first shard.
	err error
	fed atomic.Int64
}

var errShard = errors.New("shard unreadable")

func (s *failingSource) Read(ctx context.Context, f *encode.Feed) error {
	for shard, docs := range s.docs {
		if shard == s.skipShard {
			if err := f.Skip(ctx, shard); err != nil {
				return err
			}
			continue
		}
		n := len(docs)
		if shard == s.failShard {
			n /= 2
		}
		for lo := 0; lo < n; lo += 10 {
			chunk := docs[lo:min(lo+10, n)]
			if err := f.Docs(ctx, shard, chunk); err != nil {
				return err
			}
			s.fed.Add(int64(len(chunk)))
		}
		if shard == s.failShard {
			if err := f.Fail(ctx, shard, errShard); err != nil {
				return err
			}
		} else if err := f.Done(ctx, shard); err != nil {
			return err
		}
		if s.err != nil {
			return s.err
		}
	}
	return nil
}

// recordingSink collects documents and what happened to each shard; it
// fails as asked.
type recordingSink struct {
	*encode.CollectSink
	failed  map[int]error
	skipped map[int]bool
	// writeErr fails the n-th Write (from 1); commitErr every Commit.
	writeAt   int
	writes    int
	commitErr error
	// release, when set, blocks the first Write until it is closed.
	release chan struct{}
}

var errSink = errors.New("sink failed")

func newRecordingSink(n int) *recordingSink {
	return &recordingSink{CollectSink: encode.NewCollectSink(n), failed: map[int]error{}, skipped: map[int]bool{}}
}

func (s *recordingSink) Write(ctx context.Context, shard int, d encode.Document) error {
	s.writes++
	if s.release != nil && s.writes == 1 {
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.writes == s.writeAt {
		return errSink
	}
	return s.CollectSink.Write(ctx, shard, d)
}

func (s *recordingSink) Commit(ctx context.Context, shard int) error {
	if s.commitErr != nil {
		return s.commitErr
	}
	return s.CollectSink.Commit(ctx, shard)
}

func (s *recordingSink) Skip(ctx context.Context, shard int) error {
	s.skipped[shard] = true
	return nil
}

func (s *recordingSink) Fail(ctx context.Context, shard int, err error) error {
	s.failed[shard] = err
	s.Shards[shard] = nil
	return nil
}

// TestStreamFailedAndSkippedShards: a shard the source fails on is failed
// in the sink alone (what it wrote dropped, no commit), a skipped shard is
// skipped, and the other shards are committed whole.
func TestStreamFailedAndSkippedShards(t *testing.T) {
	b := &encodetest.Backend{}
	m := encodetest.Model(t, b, 64)
	docs := corpus(4, 120, 3)
	src := &failingSource{docs: docs, failShard: 1, skipShard: 2}
	sink := newRecordingSink(4)
	if _, err := encode.Stream(context.Background(), m, streamConfig(4), src, sink); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(sink.failed[1], errShard) || !sink.skipped[2] || len(sink.failed) != 1 || len(sink.skipped) != 1 {
		t.Errorf("failed %v, skipped %v; want shard 1 failed, shard 2 skipped", sink.failed, sink.skipped)
	}
	for _, s := range []int{0, 3} {
		if !sink.Committed[s] || len(sink.Shards[s]) != len(docs[s]) {
			t.Errorf("shard %d: committed %v with %d of %d documents", s, sink.Committed[s], len(sink.Shards[s]), len(docs[s]))
		}
	}
	if sink.Committed[1] || sink.Committed[2] {
		t.Error("a failed or skipped shard was committed")
	}
}

// TestStreamErrorsStopEveryStage: an error in the source, the backend or
// the sink stops the stream with that error, and every goroutine of the
// stream exits.
func TestStreamErrorsStopEveryStage(t *testing.T) {
	docs := corpus(3, 200, 5)
	errSource := errors.New("source failed")
	cases := []struct {
		name    string
		backend *encodetest.Backend
		source  *failingSource
		sink    func() *recordingSink
		want    error
	}{
		{"source", &encodetest.Backend{}, &failingSource{docs: docs, failShard: -1, skipShard: -1, err: errSource}, func() *recordingSink { return newRecordingSink(3) }, errSource},
		{"backend", &encodetest.Backend{FailAt: 3}, &failingSource{docs: docs, failShard: -1, skipShard: -1}, func() *recordingSink { return newRecordingSink(3) }, encodetest.ErrBackend},
		{"sink write", &encodetest.Backend{}, &failingSource{docs: docs, failShard: -1, skipShard: -1}, func() *recordingSink { s := newRecordingSink(3); s.writeAt = 50; return s }, errSink},
		{"sink commit", &encodetest.Backend{}, &failingSource{docs: docs, failShard: -1, skipShard: -1}, func() *recordingSink { s := newRecordingSink(3); s.commitErr = errSink; return s }, errSink},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			m := encodetest.Model(t, c.backend, 64)
			cfg := streamConfig(3)
			cfg.Workers = encode.CPUWorkers(c.backend, 2)
			_, err := encode.Stream(context.Background(), m, cfg, c.source, c.sink())
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			waitGoroutines(t, before)
		})
	}
}

// waitGoroutines fails unless the goroutine count falls back to n.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left running, want %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStreamCancellation: cancelling the context while the backend runs a
// batch stops the stream with context.Canceled, and nothing is left
// running.
func TestStreamCancellation(t *testing.T) {
	before := runtime.NumGoroutine()
	b := &encodetest.Backend{Block: true, Started: make(chan struct{})}
	m := encodetest.Model(t, b, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := encode.Stream(ctx, m, streamConfig(3), encode.MemorySource{Docs: corpus(3, 500, 9)}, newRecordingSink(3))
		done <- err
	}()
	<-b.Started
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not stop after cancellation")
	}
	waitGoroutines(t, before)
}

// TestStreamBackPressure: while the sink does not take its first document,
// the source can feed only what the stream's bounded channels and the
// batcher's window hold, whatever the corpus size; once released, every
// document arrives.
func TestStreamBackPressure(t *testing.T) {
	b := &encodetest.Backend{}
	m := encodetest.Model(t, b, 64)
	docs := corpus(1, 20000, 11)
	src := &failingSource{docs: docs, failShard: -1, skipShard: -1}
	sink := newRecordingSink(1)
	sink.release = make(chan struct{})
	cfg := streamConfig(1)
	cfg.TokenizeWorkers = 1 // chunks reach the batcher in order: none waits for its turn there
	done := make(chan error, 1)
	go func() {
		_, err := encode.Stream(context.Background(), m, cfg, src, sink)
		done <- err
	}()
	// Wait until the source stops advancing: it is blocked on a full channel.
	last := int64(-1)
	for src.fed.Load() != last {
		last = src.fed.Load()
		time.Sleep(100 * time.Millisecond)
	}
	// In flight at most: chunks of 10 documents between the source and the
	// batcher (4 in a channel, 1 in the tokenizer, 4 in a channel), the
	// batcher's window plus one chunk less a document, and batches of at
	// most 16 documents between the batcher and the sink (2 in a channel,
	// 1 in the encoder, 2, 1 in the sparsifier, 4, 1 at the sink).
	bound := int64((4+1+4)*10 + cfg.Window + 10 - 1 + (2+1+2+1+4+1)*cfg.Options.MaxBatch)
	if last > bound || last == 0 {
		t.Errorf("the source fed %d of %d documents while the sink was blocked; want at most %d", last, len(docs[0]), bound)
	}
	t.Logf("the source fed %d of %d documents while the sink was blocked (bound %d)", last, len(docs[0]), bound)
	close(sink.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(sink.Shards[0]) != len(docs[0]) {
		t.Errorf("%d of %d documents arrived", len(sink.Shards[0]), len(docs[0]))
	}
}

// TestEncodeTextsMatchesOneByOne: EncodeTexts (the stream from memory)
// gives each text the vector it gets alone.
func TestEncodeTextsMatchesOneByOne(t *testing.T) {
	b := &encodetest.Backend{}
	m := encodetest.Model(t, b, 48)
	texts := testmodel.SyntheticCorpus(200, 4)
	cfg := streamConfig(0)
	got, counts, err := encode.EncodeTexts(context.Background(), m, texts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range texts {
		if want := encodetest.Expected(m, text, cfg.Options.Sparsify); !sameResult(got[i], want) {
			t.Fatalf("text %d: got %+v, want %+v", i, got[i], want)
		}
	}
	if counts.Docs != 200 {
		t.Errorf("counted %d documents", counts.Docs)
	}
}

// TestMaxDiffMatchesDense checks the sparse difference against the dense
// definition on random vectors.
func TestMaxDiffMatchesDense(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	random := func() encode.SparseVec {
		var v encode.SparseVec
		for j := uint32(0); j < 64; j++ {
			if rng.IntN(3) == 0 {
				v.Terms = append(v.Terms, j)
				v.Weights = append(v.Weights, rng.Float32()*3)
			}
		}
		return v
	}
	for range 500 {
		a, b := random(), random()
		da, db := make([]float64, 64), make([]float64, 64)
		for k, j := range a.Terms {
			da[j] = float64(a.Weights[k])
		}
		for k, j := range b.Terms {
			db[j] = float64(b.Weights[k])
		}
		want := 0.0
		for j := range da {
			want = math.Max(want, math.Abs(da[j]-db[j]))
		}
		if got := encode.MaxDiff(a, b); got != want {
			t.Fatalf("MaxDiff(%v, %v) = %v, want %v", a, b, got, want)
		}
	}
}

// TestBenchRunsTheStreamsBatches: Bench's passes run exactly the batches
// of an encode of the same documents (the same stream), count every
// document, and time only the backend calls.
func TestBenchRunsTheStreamsBatches(t *testing.T) {
	b := &encodetest.Backend{}
	m := encodetest.Model(t, b, 64)
	docs := corpus(2, 300, 13)
	cfg := streamConfig(2)
	counts, err := encode.Stream(context.Background(), m, cfg, encode.MemorySource{Docs: docs}, encode.DiscardSink{})
	if err != nil {
		t.Fatal(err)
	}
	var src encode.MemorySource
	for shard, ds := range docs {
		for lo := 0; lo < len(ds); lo += encode.ReadChunk {
			var chunk []encode.Tokenized
			for _, d := range ds[lo:min(lo+encode.ReadChunk, len(ds))] {
				parts, truncated := m.Prepare(d.Text, encode.LongDocs{})
				chunk = append(chunk, encode.Tokenized{ID: d.ID, Parts: parts, Truncated: truncated})
			}
			src.Chunks = append(src.Chunks, encode.TokenizedChunk{Shard: shard, Docs: chunk})
		}
	}
	calls := b.Calls.Load()
	runs, err := encode.Bench(context.Background(), m, src, encode.BenchConfig{Options: cfg.Options, Window: cfg.Window, Workers: encode.CPUWorkers(b, 2), Repeats: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 || b.Calls.Load()-calls != 4*counts.Batches {
		t.Fatalf("%d runs, %d backend calls; want 3 timed passes and a warm-up of %d batches each", len(runs), b.Calls.Load()-calls, counts.Batches)
	}
	for _, r := range runs {
		if r.Docs != 600 || r.Tokens != counts.Tokens || r.PaddedTokens != counts.PaddedTokens || int64(r.Batches) != counts.Batches || r.Wall <= 0 {
			t.Errorf("run %+v; the stream counted %+v", r, counts)
		}
	}
}

// leakyBackend forgets the attention mask: padding positions count as
// tokens, as a backend with a masking bug would.
type leakyBackend struct{ *encodetest.Backend }

func (b leakyBackend) Encode(ctx context.Context, batch *encode.Batch, out []float32) error {
	leaked := *batch
	leaked.AttentionMask = make([]int64, len(batch.AttentionMask))
	for i := range leaked.AttentionMask {
		leaked.AttentionMask[i] = 1
	}
	return b.Backend.Encode(ctx, &leaked, out)
}

// TestCompareAloneCatchesPaddingLeaks: the check `selftest --model` runs
// without an oracle finds no difference for a correct backend and a large
// one for a backend whose batched vectors depend on their padding.
func TestCompareAloneCatchesPaddingLeaks(t *testing.T) {
	texts := testmodel.SyntheticCorpus(40, 6)
	for _, c := range []struct {
		name  string
		leaky bool
	}{{"correct", false}, {"leaky", true}} {
		b := &encodetest.Backend{}
		m := encodetest.Model(t, b, 512) // documents of many lengths: batches hold padding
		workers := encode.CPUWorkers(b, 1)
		if c.leaky {
			workers = encode.CPUWorkers(leakyBackend{b}, 1)
		}
		cfg := streamConfig(1)
		cfg.Options.BatchTokens = 8192
		cfg.Workers = workers
		got, _, err := encode.EncodeTexts(context.Background(), m, texts, cfg)
		if err != nil {
			t.Fatal(err)
		}
		n, worst, err := encode.CompareAlone(context.Background(), m, workers, 8192, texts, got, 16)
		if err != nil || n != 16 {
			t.Fatalf("%s: compared %d documents (%v)", c.name, n, err)
		}
		if (worst == 0) == c.leaky {
			t.Errorf("%s backend: largest difference %g", c.name, worst)
		}
	}
}
