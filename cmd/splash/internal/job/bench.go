package job

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/shards"
)

// BenchConfig configures Bench.
type BenchConfig struct {
	Inputs  []string
	Columns shards.Columns
	Encode  encode.EncodeOptions
	// Window groups documents for length sorting as encode does (0:
	// encode.DefaultWindow).
	Window int
	// Workers is the number of goroutines calling the backend concurrently
	// (encode's --sessions); 0 means 1.
	Workers int
	// Repeats and Cold: see encode.BenchConfig.
	Repeats int
	Cold    bool
}

// Bench measures the limit that the encode pipeline runs against, the
// backend alone (encode.Bench): it reads and tokenizes every input
// document once, in the reader's chunks, before any clock starts.
func Bench(ctx context.Context, m *Model, cfg BenchConfig) ([]encode.BenchRun, error) {
	cfg.Encode.BatchTokens = m.BatchTokens(cfg.Encode.BatchTokens)
	if err := cfg.Encode.Check(m.MaxLength); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSettings, err)
	}
	sources, err := shards.DiscoverSources(ctx, cfg.Inputs, shards.SourceOptions{})
	if err != nil {
		return nil, err
	}
	defer sources.Close()
	var src encode.MemorySource
	for shard, in := range sources.Names {
		if err := readPrepared(ctx, m, &src, shard, sources, in, cfg.Columns); err != nil {
			return nil, err
		}
	}
	return encode.Bench(ctx, m.Model, src, encode.BenchConfig{
		Options: cfg.Encode, Window: cfg.Window, Workers: m.Workers(cfg.Workers), Repeats: cfg.Repeats, Cold: cfg.Cold,
	})
}

// readPrepared reads and tokenizes every document of one input into src,
// in the reader's chunks (the batcher's windows fill chunk by chunk, as in
// encode).
func readPrepared(ctx context.Context, m *Model, src *encode.MemorySource, shard int, inputs *shards.Inputs, name string, cols shards.Columns) error {
	r, err := inputs.Open(ctx, name, cols)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	defer r.Close()
	for {
		docs, err := r.Next(ctx, encode.ReadChunk)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadInput, err)
		}
		chunk := make([]encode.Tokenized, len(docs))
		for i, d := range docs {
			parts, truncated := m.Prepare(d.Doc.Text, encode.LongDocs{})
			chunk[i] = encode.Tokenized{ID: d.Doc.ID, Parts: parts, Truncated: truncated}
		}
		src.Chunks = append(src.Chunks, encode.TokenizedChunk{Shard: shard, Docs: chunk})
	}
}
