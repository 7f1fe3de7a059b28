package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/splash-encode/splash/shards/ciff"
)

// exportCIFF writes the shards as one CIFF file (or to standard output for
// "-"): to a temp file beside output, synced and renamed into place once
// complete. memMiB bounds the postings held in memory before a sorted run
// is spilled next to the output.
func exportCIFF(ctx context.Context, cmd *cobra.Command, shardPaths, vocab []string, output string, memMiB int64) error {
	opts := ciff.Options{MemoryBytes: memMiB << 20, Description: "splash " + version + " impact shards"}
	write := func(w io.Writer) (ciff.Stats, error) { return ciff.Write(ctx, w, shardPaths, vocab, opts) }
	var stats ciff.Stats
	var err error
	if output == "-" {
		opts.TempDir = os.TempDir()
		stats, err = write(cmd.OutOrStdout())
	} else {
		stats, err = writeFileAtomically(output, write)
	}
	if err != nil {
		return exportError(ctx, err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "exported %d documents, %d terms, %d postings (%d sorted runs) from %d shard(s) as ciff to %s\n",
		stats.Docs, stats.Terms, stats.Postings, stats.Runs, len(shardPaths), output)
	return nil
}

// writeFileAtomically runs write into a temp file beside path, then syncs
// it and renames it to path (and syncs the directory); on error the temp
// file is removed and path is left as it was.
func writeFileAtomically[T any](path string, write func(io.Writer) (T, error)) (T, error) {
	var zero T
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "_tmp."+filepath.Base(path)+".*")
	if err != nil {
		return zero, fmt.Errorf("create %s: %w", path, err)
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	res, err := write(f)
	if err != nil {
		return res, err
	}
	if err := f.Sync(); err != nil {
		return res, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return res, fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		done = true
		return res, fmt.Errorf("rename into %s: %w", path, err)
	}
	done = true
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return res, fmt.Errorf("sync %s: %w", dir, err)
		}
	}
	return res, nil
}
