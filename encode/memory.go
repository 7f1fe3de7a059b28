package encode

import (
	"context"
	"fmt"
)

// MemorySource feeds documents held in memory: Docs, one slice per shard,
// in chunks of ReadChunk documents as a file source would; then Chunks,
// documents prepared once by Model.Prepare (fed without tokenizing again),
// chunk by chunk as given, for the shards after those of Docs.
type MemorySource struct {
	Docs   [][]Doc
	Chunks []TokenizedChunk
}

// TokenizedChunk is a chunk of prepared documents of one shard, numbered
// after the shards of MemorySource.Docs.
type TokenizedChunk struct {
	Shard int
	Docs  []Tokenized
}

// Read implements Source.
func (s MemorySource) Read(ctx context.Context, f *Feed) error {
	for shard, docs := range s.Docs {
		for lo := 0; lo < len(docs); lo += ReadChunk {
			if err := f.Docs(ctx, shard, docs[lo:min(lo+ReadChunk, len(docs))]); err != nil {
				return err
			}
		}
		if err := f.Done(ctx, shard); err != nil {
			return err
		}
	}
	for _, c := range s.Chunks {
		if err := f.TokenizedDocs(ctx, c.Shard, c.Docs); err != nil {
			return err
		}
	}
	for shard := len(s.Docs); shard < s.Shards(); shard++ {
		if err := f.Done(ctx, shard); err != nil {
			return err
		}
	}
	return nil
}

// Shards is the number of shards the source feeds.
func (s MemorySource) Shards() int {
	n := len(s.Docs)
	for _, c := range s.Chunks {
		n = max(n, c.Shard+1)
	}
	return n
}

// CollectSink keeps every document it is given, by shard, in order.
type CollectSink struct {
	Shards    [][]Document
	Committed []bool
}

// NewCollectSink returns a sink for n shards.
func NewCollectSink(n int) *CollectSink {
	return &CollectSink{Shards: make([][]Document, n), Committed: make([]bool, n)}
}

// Write implements Sink.
func (s *CollectSink) Write(ctx context.Context, shard int, d Document) error {
	if int64(len(s.Shards[shard])) != d.Seq {
		return fmt.Errorf("collect: shard %d got document %d after %d documents", shard, d.Seq, len(s.Shards[shard]))
	}
	s.Shards[shard] = append(s.Shards[shard], d)
	return nil
}

// Commit implements Sink.
func (s *CollectSink) Commit(ctx context.Context, shard int) error {
	s.Committed[shard] = true
	return nil
}

// Skip implements Sink.
func (s *CollectSink) Skip(ctx context.Context, shard int) error { return nil }

// Fail implements Sink: a failed shard's documents are dropped and the
// error stops the stream (an in-memory source does not fail alone).
func (s *CollectSink) Fail(ctx context.Context, shard int, err error) error {
	s.Shards[shard] = nil
	return err
}

// DiscardSink drops every document (benchmarks).
type DiscardSink struct{}

// Write implements Sink.
func (DiscardSink) Write(context.Context, int, Document) error { return nil }

// Commit implements Sink.
func (DiscardSink) Commit(context.Context, int) error { return nil }

// Skip implements Sink.
func (DiscardSink) Skip(context.Context, int) error { return nil }

// Fail implements Sink.
func (DiscardSink) Fail(_ context.Context, _ int, err error) error { return err }

// EncodeTexts runs texts through the stream as one shard and returns one
// result per text, in order (windows combined; cfg.LongDocs must not emit
// passages).
func EncodeTexts(ctx context.Context, m *Model, texts []string, cfg StreamConfig) ([]Result, Counts, error) {
	if cfg.LongDocs.Passages {
		return nil, Counts{}, fmt.Errorf("%w: EncodeTexts returns one result per text: passages do not apply", ErrSettings)
	}
	docs := make([]Doc, len(texts))
	for i, t := range texts {
		docs[i] = Doc{ID: fmt.Sprint(i), Text: t}
	}
	cfg.Shards = 1
	sink := NewCollectSink(1)
	counts, err := Stream(ctx, m, cfg, MemorySource{Docs: [][]Doc{docs}}, sink)
	if err != nil {
		return nil, counts, err
	}
	out := make([]Result, len(texts))
	for i, d := range sink.Shards[0] {
		out[i] = d.Results[0]
	}
	return out, counts, nil
}
