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
		Use:   "inspect SHARD|DIR",
		Short: "Describe impact shards: schema, metadata, rows, non-zero statistics, top expansion terms",
		Long: `inspect prints an impact shard's schema and metadata, its row count,
non-zero statistics (mean, p50, p99, max), empty and truncated documents,
the terms found in most documents (as tokens, from _vocabulary.tsv beside
the shard) and its first rows with their heaviest terms. Given a directory,
it does so for every shard in it and adds the totals.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return inspectPath(cmd.OutOrStdout(), args[0], rows, terms)
		},
	}
	cmd.Flags().IntVar(&rows, "rows", 3, "rows to print per shard")
	cmd.Flags().IntVar(&terms, "terms", 10, "top terms to print")
	return cmd
}

// shardStats accumulates what inspect reports about rows.
type shardStats struct {
	rows, empty, truncated, tokens int64
	nnz                            []int
	df                             map[uint32]int64 // documents containing each term
}

func (s *shardStats) add(r shards.Row) {
	s.rows++
	s.tokens += int64(r.NumTokens)
	s.nnz = append(s.nnz, r.Vec.Len())
	if r.Vec.Len() == 0 {
		s.empty++
	}
	if r.Truncated {
		s.truncated++
	}
	for _, t := range r.Vec.Terms {
		s.df[t]++
	}
}

func (s *shardStats) print(w io.Writer, vocab []string, topTerms int) {
	sorted := slices.Clone(s.nnz)
	slices.Sort(sorted)
	var total int64
	for _, n := range sorted {
		total += int64(n)
	}
	pct := func(p float64) int {
		if len(sorted) == 0 {
			return 0
		}
		return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
	}
	mean := 0.0
	if s.rows > 0 {
		mean = float64(total) / float64(s.rows)
	}
	fmt.Fprintf(w, "rows %d, tokens %d, empty %d, truncated %d\n", s.rows, s.tokens, s.empty, s.truncated)
	fmt.Fprintf(w, "non-zeros per row: mean %.1f, p50 %d, p99 %d, max %d (total %d)\n", mean, pct(0.5), pct(0.99), pct(1), total)
	terms := make([]uint32, 0, len(s.df))
	for t := range s.df {
		terms = append(terms, t)
	}
	slices.SortFunc(terms, func(a, b uint32) int {
		if s.df[a] != s.df[b] {
			return int(s.df[b] - s.df[a])
		}
		return int(a) - int(b)
	})
	var parts []string
	for _, t := range terms[:min(topTerms, len(terms))] {
		parts = append(parts, fmt.Sprintf("%s(%d)", tokenName(vocab, t), s.df[t]))
	}
	fmt.Fprintf(w, "terms in most rows: %s\n", strings.Join(parts, " "))
}

func tokenName(vocab []string, id uint32) string {
	if int(id) < len(vocab) {
		return vocab[id]
	}
	return fmt.Sprintf("#%d", id)
}

func inspectPath(w io.Writer, path string, maxRows, maxTerms int) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%w: %w", job.ErrBadInput, err)
	}
	if !st.IsDir() {
		vocab, err := readVocabBeside(filepath.Dir(path))
		if err != nil {
			return err
		}
		_, err = inspectShard(w, path, vocab, maxRows, maxTerms)
		return err
	}
	vocab, err := readVocabBeside(path)
	if err != nil {
		return err
	}
	var files []string
	for _, pattern := range []string{"*.parquet", "*.arrow"} {
		m, _ := filepath.Glob(filepath.Join(path, pattern))
		for _, f := range m {
			if b := filepath.Base(f); !strings.HasPrefix(b, "_") && !strings.HasPrefix(b, ".") {
				files = append(files, f)
			}
		}
	}
	sort.Strings(files)
	if len(files) == 0 {
		return fmt.Errorf("%w: %s holds no impact shard (*.parquet or *.arrow)", job.ErrBadInput, path)
	}
	all := &shardStats{df: map[uint32]int64{}}
	for _, f := range files {
		s, err := inspectShard(w, f, vocab, maxRows, maxTerms)
		if err != nil {
			return err
		}
		all.rows += s.rows
		all.empty += s.empty
		all.truncated += s.truncated
		all.tokens += s.tokens
		all.nnz = append(all.nnz, s.nnz...)
		for t, n := range s.df {
			all.df[t] += n
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "== %s: %d shards\n", path, len(files))
	all.print(w, vocab, maxTerms)
	return nil
}

func readVocabBeside(dir string) ([]string, error) {
	vocab, err := shards.ReadVocabulary(filepath.Join(dir, shards.VocabularyFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return vocab, nil
}

func inspectShard(w io.Writer, path string, vocab []string, maxRows, maxTerms int) (*shardStats, error) {
	schema, err := shards.ShardSchema(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", job.ErrBadInput, err)
	}
	meta, err := shards.ShardMetadata(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", job.ErrBadInput, err)
	}
	fmt.Fprintf(w, "== %s\nschema:\n", path)
	for _, f := range schema {
		fmt.Fprintf(w, "  %s\n", f)
	}
	fmt.Fprintln(w, "metadata:")
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s = %s\n", k, meta[k])
	}
	stats := &shardStats{df: map[uint32]int64{}}
	err = shards.ReadShard(path, func(r shards.Row) error {
		stats.add(r)
		if stats.rows > int64(maxRows) {
			return nil
		}
		fmt.Fprintf(w, "row %d: doc_id=%q num_tokens=%d truncated=%v terms=%d\n", stats.rows-1, r.DocID, r.NumTokens, r.Truncated, r.Vec.Len())
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
			parts = append(parts, fmt.Sprintf("%s:%d", tokenName(vocab, r.Vec.Terms[i]), r.Vec.Impacts[i]))
		}
		fmt.Fprintf(w, "  %s\n", strings.Join(parts, " "))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", job.ErrBadInput, err)
	}
	stats.print(w, vocab, maxTerms)
	return stats, nil
}

func newVerifyCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "verify DIR",
		Short: "Check every manifest in an output directory against its shard (exit 3 on any mismatch)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			manifests, err := shards.ListManifests(dir)
			if err != nil {
				return err
			}
			if len(manifests) == 0 {
				return fmt.Errorf("%w: %s holds no manifest (_manifest.*.json)", job.ErrBadInput, dir)
			}
			var bad []error
			for _, base := range manifests {
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
