package main

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/shards"
	"github.com/splash-encode/splash/shards/search"
	"github.com/splash-encode/splash/shards/trec"
)

func newSearchCommand() *cobra.Command {
	var (
		index, queries, output, score, tag string
		k, workers                         int
	)
	cmd := &cobra.Command{
		Use:   "search --index SHARDS --queries QUERY_SHARDS --k N --output RUN",
		Short: "Rank encoded documents for encoded queries by exact sparse dot product and write a TREC run",
		Long: `search builds an in-memory inverted index of the impact shards of --index
and scores every query of --queries against it exactly, writing the k best
documents of each query as a TREC run file: "qid Q0 docid rank score tag",
ranks from 1. Both are impact shard files or splash encode output
directories (every shard with a manifest, each verified against it), and
both must use the same vocabulary (vocabulary size and _vocabulary.parquet).
Queries are encoded like documents (splash encode on a query shard); a
query's id is its doc_id.

--score impacts (default) sums q_impact × d_impact over the shared terms in
integers; --score weights sums q_weight × d_weight in float64. Documents with
a score of 0 are not hits; ties are ranked by document id, ascending (byte
order), so the run is deterministic. A query without hits writes no line.
Queries are searched in parallel (--workers) and written in the order of the
query shards. The run is written to a temporary file beside --output and
renamed when complete; --output - writes to stdout.`,
		Example: `  # Top 1000 documents per query, as a TREC run
  splash search --index out/ --queries out-queries/ --k 1000 --output run.trec

  # Float weights instead of integer impacts, to standard output
  splash search --index out/ --queries out-queries/ --k 10 --score weights --output -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case index == "":
				return usageErrorf("--index is required")
			case queries == "":
				return usageErrorf("--queries is required")
			case output == "":
				return usageErrorf("--output is required")
			case k < 1:
				return usageErrorf("--k %d: want at least 1", k)
			case workers < 0:
				return usageErrorf("--workers %d: want 0 (one per CPU) or more", workers)
			}
			scoring, err := search.ParseScoring(score)
			if err != nil {
				return usageErrorf("--score: %v", err)
			}
			if _, err := trec.NewRunWriter(io.Discard, tag); err != nil {
				return usageErrorf("--tag: %v", err)
			}
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			start := time.Now()
			docs, err := search.OpenCollection(index)
			if err != nil {
				return asBadInput(err)
			}
			qs, err := search.OpenCollection(queries)
			if err != nil {
				return asBadInput(err)
			}
			if err := search.SameVocabulary(docs, qs); err != nil {
				return asBadInput(err)
			}
			ix, err := search.BuildIndex(ctx, docs, scoring)
			if err != nil {
				return asBadInput(err)
			}
			log.Info("indexed", "documents", ix.Docs(), "non_zeros", ix.NonZeros(), "shards", len(docs.Files), "scoring", scoring.String(), "took", time.Since(start).Round(time.Millisecond))
			searchStart := time.Now()
			var stats search.RunStats
			err = writeOutput(cmd.OutOrStdout(), output, func(w io.Writer) error {
				rw, err := trec.NewRunWriter(w, tag)
				if err != nil {
					return err
				}
				stats, err = search.SearchAll(ctx, ix, qs.Queries, search.RunOptions{K: k, Workers: workers}, rw)
				if err != nil {
					return err
				}
				return rw.Flush()
			})
			if err != nil {
				return asBadInput(err)
			}
			took := time.Since(searchStart)
			log.Info("searched", "queries", stats.Queries, "without_hits", stats.NoHits, "lines", stats.Lines, "k", k,
				"took", took.Round(time.Millisecond), "queries_per_s", float64(stats.Queries)/max(took.Seconds(), 1e-9), "output", output)
			if stats.NoHits > 0 {
				log.Warn("queries without any hit write no line to the run", "queries", stats.NoHits)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&index, "index", "", "document impact shards: a shard file or a splash encode output directory")
	f.StringVar(&queries, "queries", "", "query impact shards: a shard file or a splash encode output directory")
	f.IntVar(&k, "k", 1000, "documents kept per query")
	f.StringVar(&output, "output", "", "TREC run file to write (- for stdout)")
	f.StringVar(&score, "score", "impacts", "scoring: impacts (integer q_impact × d_impact) or weights (float q_weight × d_weight)")
	f.StringVar(&tag, "tag", "splash", "run name written in the last column")
	f.IntVar(&workers, "workers", runtime.GOMAXPROCS(0), "queries searched concurrently (0: one per CPU)")
	markRequired(cmd, "index", "queries", "output")
	return cmd
}

// asBadInput marks problems with the given shards, queries, qrels
// or runs as bad input data (exit code 3).
func asBadInput(err error) error {
	if errors.Is(err, search.ErrBadInput) || errors.Is(err, trec.ErrFormat) {
		return fmt.Errorf("%w: %w", encode.ErrBadInput, err)
	}
	return err
}

// writeOutput calls write with stdout for "-", or with a temporary file in
// path's directory that is synced and renamed to path once write succeeds
// (removed otherwise), so that path never holds a partial run.
func writeOutput(stdout io.Writer, path string, write func(io.Writer) error) error {
	if path == "-" {
		return write(stdout)
	}
	return shards.WriteFileAtomic(path, write)
}
