package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/splash-encode/splash/shards"
	"github.com/splash-encode/splash/shards/ciff"
)

// exportCIFF writes the shards as one CIFF file (or to standard output for
// "-"): to a temp file beside output, synced and renamed into place once
// complete. memMiB bounds the postings held in memory before a sorted run
// is spilled next to the output.
func exportCIFF(ctx context.Context, cmd *cobra.Command, shardPaths, vocab []string, output string, memMiB int64, verified bool) error {
	opts := ciff.Options{MemoryBytes: memMiB << 20, Description: "splash " + version + " impact shards"}
	write := func(w io.Writer) (ciff.Stats, error) { return ciff.Write(ctx, w, shardPaths, vocab, opts) }
	var stats ciff.Stats
	var err error
	if output == "-" {
		opts.TempDir = os.TempDir()
		stats, err = write(cmd.OutOrStdout())
	} else {
		err = shards.WriteFileAtomic(output, func(w io.Writer) error {
			stats, err = write(w)
			return err
		})
	}
	if err != nil {
		return exportError(ctx, err)
	}
	text := fmt.Sprintf("exported %d documents, %d terms, %d postings (%d sorted runs) from %d shard(s) as ciff to %s",
		stats.Docs, stats.Terms, stats.Postings, stats.Runs, len(shardPaths), output)
	return printRunSummary(cmd, cmd.ErrOrStderr(), text, exportSummary{
		Summary: "export", Format: "ciff", Output: output, Shards: len(shardPaths), Verified: verified,
		Documents: stats.Docs, Terms: stats.Terms, Postings: stats.Postings, SortedRuns: &stats.Runs,
	})
}
