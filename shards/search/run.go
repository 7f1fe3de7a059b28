package search

import (
	"context"
	"fmt"
	"runtime"

	"golang.org/x/sync/errgroup"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/shards"
	"github.com/splash-encode/splash/shards/trec"
)

// BuildIndex reads every document of c into an index scored with scoring.
// Errors name the shard file and row.
func BuildIndex(ctx context.Context, c *Collection, scoring Scoring) (*Index, error) {
	b := NewBuilder(c.VocabSize, scoring)
	err := c.Each(ctx, func(file string, row int64, r shards.Row) error {
		if err := b.Add(r.DocID, r.Vec); err != nil {
			return fmt.Errorf("%s row %d: %w", file, row, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", c.Path, err)
	}
	return b.Index(), nil
}

// Query is one query vector and its id.
type Query struct {
	ID  string
	Vec encode.SparseVec
}

// RunOptions configures SearchAll.
type RunOptions struct {
	// K is the number of hits kept per query (> 0).
	K int
	// Workers is the number of queries searched concurrently; 0 means
	// GOMAXPROCS.
	Workers int
}

// RunStats counts what SearchAll did.
type RunStats struct {
	Queries int   // queries searched
	NoHits  int   // queries without any hit (no lines in the run)
	Lines   int64 // run lines written
}

// SearchAll searches every query that source emits and writes the hits to
// out, query after query in the order source emitted them, whatever order
// the workers finish in. Query ids must be unique. It returns at the first
// error or when ctx is done; out is not flushed.
func SearchAll(ctx context.Context, ix *Index, source func(ctx context.Context, emit func(Query) error) error, opts RunOptions, out *trec.RunWriter) (RunStats, error) {
	var stats RunStats
	if opts.K <= 0 {
		return stats, fmt.Errorf("search: k = %d, want > 0", opts.K)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	type result struct {
		hits []Hit
	}
	type task struct {
		q   Query
		res chan result // buffered: the worker never waits on the writer
	}
	g, gctx := errgroup.WithContext(ctx)
	tasks := make(chan task)
	// order carries the tasks to the writer in query order; its buffer
	// bounds how far the workers run ahead of the writer.
	order := make(chan task, 4*workers)

	g.Go(func() error {
		defer close(tasks)
		defer close(order)
		seen := map[string]struct{}{}
		return source(gctx, func(q Query) error {
			if _, dup := seen[q.ID]; dup {
				return fmt.Errorf("%w: query id %s occurs twice", ErrBadInput, q.ID)
			}
			seen[q.ID] = struct{}{}
			t := task{q: q, res: make(chan result, 1)}
			select {
			case order <- t:
			case <-gctx.Done():
				return gctx.Err()
			}
			select {
			case tasks <- t:
			case <-gctx.Done():
				return gctx.Err()
			}
			return nil
		})
	})
	for range workers {
		g.Go(func() error {
			s := ix.NewSearcher()
			for t := range tasks {
				if err := gctx.Err(); err != nil {
					return err
				}
				hits, err := s.Search(t.q.Vec, opts.K)
				if err != nil {
					return fmt.Errorf("query %s: %w", t.q.ID, err)
				}
				t.res <- result{hits}
			}
			return nil
		})
	}
	g.Go(func() error {
		var buf []trec.Result
		for t := range order {
			var r result
			select {
			case r = <-t.res:
			case <-gctx.Done():
				return gctx.Err()
			}
			stats.Queries++
			if len(r.hits) == 0 {
				stats.NoHits++
				continue
			}
			buf = buf[:0]
			for _, h := range r.hits {
				buf = append(buf, trec.Result{DocID: h.DocID, Score: h.Score})
			}
			if err := out.WriteQuery(t.q.ID, buf); err != nil {
				return err
			}
			stats.Lines += int64(len(buf))
		}
		return nil
	})
	err := g.Wait()
	return stats, err
}
