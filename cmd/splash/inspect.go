package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/splash-encode/splash/cmd/splash/internal/job"
	"github.com/splash-encode/splash/shards"
)

func newInspectCommand() *cobra.Command {
	var rows, terms int
	cmd := &cobra.Command{
		Use:   "inspect SHARD",
		Short: "Print an impact shard's metadata, row count and first rows with their top terms",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return inspectShard(cmd.OutOrStdout(), args[0], rows, terms)
		},
	}
	cmd.Flags().IntVar(&rows, "rows", 3, "rows to print")
	cmd.Flags().IntVar(&terms, "terms", 10, "top terms to print per row")
	return cmd
}

func inspectShard(w io.Writer, path string, maxRows, maxTerms int) error {
	meta, err := shards.ShardMetadata(path)
	if err != nil {
		return fmt.Errorf("%w: %w", job.ErrBadInput, err)
	}
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "%s\n", path)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s = %s\n", k, meta[k])
	}
	vocab, err := shards.ReadVocabulary(filepath.Join(filepath.Dir(path), shards.VocabularyFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var n, nnz int64
	err = shards.ReadShard(path, func(r shards.Row) error {
		n++
		nnz += int64(r.Vec.Len())
		if n > int64(maxRows) {
			return nil
		}
		fmt.Fprintf(w, "row %d: doc_id=%q num_tokens=%d truncated=%v terms=%d\n", n-1, r.DocID, r.NumTokens, r.Truncated, r.Vec.Len())
		order := make([]int, r.Vec.Len())
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int {
			switch wa, wb := r.Vec.Weights[a], r.Vec.Weights[b]; {
			case wa > wb:
				return -1
			case wa < wb:
				return 1
			}
			return 0
		})
		var parts []string
		for _, i := range order[:min(maxTerms, len(order))] {
			tok := fmt.Sprint(r.Vec.Terms[i])
			if int(r.Vec.Terms[i]) < len(vocab) {
				tok = vocab[r.Vec.Terms[i]]
			}
			parts = append(parts, fmt.Sprintf("%s:%d", tok, r.Vec.Impacts[i]))
		}
		fmt.Fprintf(w, "  %s\n", strings.Join(parts, " "))
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: %w", job.ErrBadInput, err)
	}
	mean := 0.0
	if n > 0 {
		mean = float64(nnz) / float64(n)
	}
	fmt.Fprintf(w, "rows %d, non-zeros %d (%.1f per row)\n", n, nnz, mean)
	return nil
}

func newVerifyCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "verify DIR",
		Short: "Check every manifest in an output directory against its shard (exit 3 on any mismatch)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			manifests, err := filepath.Glob(filepath.Join(dir, "_manifest.*.json"))
			if err != nil {
				return err
			}
			if len(manifests) == 0 {
				return fmt.Errorf("%w: %s holds no manifest (_manifest.*.json)", job.ErrBadInput, dir)
			}
			var bad []error
			for _, p := range manifests {
				base := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "_manifest."), ".json")
				m, err := shards.VerifyShard(dir, base)
				if err != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "FAIL %s: %v\n", base, err)
					bad = append(bad, err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "ok   %s: %d rows, sha256 %s\n", m.Output.Path, m.Output.Rows, m.Output.SHA256)
			}
			if len(bad) > 0 {
				return fmt.Errorf("%w: %d of %d shards failed verification", job.ErrBadInput, len(bad), len(manifests))
			}
			return nil
		},
	}
}
