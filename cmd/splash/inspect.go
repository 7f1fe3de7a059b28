package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/shards"
	"github.com/splash-encode/splash/shards/stats"
)

func newInspectCommand() *cobra.Command {
	var rows, terms int
	var format string
	cmd := &cobra.Command{
		Use:   "inspect SHARD|DIR",
		Short: "Describe impact shards: schema, metadata, rows, non-zero statistics, top expansion terms",
		Long: `inspect prints an impact shard's schema and metadata, its row count,
non-zero statistics (mean, p50, p99, max), empty and truncated documents,
the terms found in most documents (as tokens, from _vocabulary.parquet beside
the shard) and its first rows with their heaviest terms. Given a directory,
it does so for every shard in it and adds the totals.

With --format json it writes the same facts as one JSON object: for a shard
{"path", "schema", "metadata", "rows", "tokens", "empty", "truncated",
"nnz": {"mean", "p50", "p99", "max", "total"}, "top_terms": [{"id",
"token", "df"}], "first_rows": [{"row", "doc_id", "num_tokens",
"truncated", "terms", "heaviest_terms": [{"id", "token", "weight",
"impact"}]}]}; for a directory {"path", "shards": [one such object per
shard], "totals": {"shards", "rows", "tokens", "empty", "truncated", "nnz",
"top_terms"}}.`,
		Example: `  splash inspect out/part-0.parquet
  splash inspect --rows 5 --terms 20 out/
  splash inspect --format json out/ | jq .totals`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "text":
				return inspectPath(cmd.Context(), cmd.OutOrStdout(), args[0], rows, terms)
			case "json":
				return inspectJSON(cmd.Context(), cmd.OutOrStdout(), args[0], rows, terms)
			default:
				return usageErrorf("--format %q: want text or json", format)
			}
		},
	}
	cmd.Flags().IntVar(&rows, "rows", 3, "rows to print per shard")
	cmd.Flags().IntVar(&terms, "terms", 10, "top terms to print")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text, or json (one JSON object)")
	return cmd
}

// inspectedShard is what inspect reports about one shard (the JSON object
// of --format json).
type inspectedShard struct {
	Path     string            `json:"path"`
	Schema   []string          `json:"schema"`
	Metadata map[string]string `json:"metadata"`
	stats.Summary
	FirstRows []inspectedRow `json:"first_rows"`
}

type inspectedRow struct {
	Row       int64           `json:"row"`
	DocID     string          `json:"doc_id"`
	NumTokens int32           `json:"num_tokens"`
	Truncated bool            `json:"truncated"`
	Terms     int             `json:"terms"`
	Heaviest  []inspectedTerm `json:"heaviest_terms"`
}

type inspectedTerm struct {
	ID     uint32  `json:"id"`
	Token  string  `json:"token"`
	Weight float32 `json:"weight"`
	Impact uint16  `json:"impact"`
}

// inspectedDir is the JSON object of --format json for a directory.
type inspectedDir struct {
	Path   string            `json:"path"`
	Shards []*inspectedShard `json:"shards"`
	Totals inspectedTotals   `json:"totals"`
}

type inspectedTotals struct {
	Shards int `json:"shards"`
	stats.Summary
}

// inspectShard reads one shard: its schema, metadata, statistics and first
// maxRows rows with their maxTerms heaviest terms.
func inspectShard(ctx context.Context, path string, vocab []string, maxRows, maxTerms int) (*inspectedShard, *stats.Stats, error) {
	badInput := func(err error) error {
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("%w: %w", encode.ErrBadInput, err)
	}
	schema, err := shards.ShardSchema(path)
	if err != nil {
		return nil, nil, badInput(err)
	}
	meta, err := shards.ShardMetadata(path)
	if err != nil {
		return nil, nil, badInput(err)
	}
	sh := &inspectedShard{Path: path, Schema: schema, Metadata: meta, FirstRows: []inspectedRow{}}
	st := stats.New()
	err = st.Read(ctx, path, func(i int64, r shards.Row) error {
		if i >= int64(maxRows) {
			return nil
		}
		row := inspectedRow{Row: i, DocID: r.DocID, NumTokens: r.NumTokens, Truncated: r.Truncated, Terms: r.Vec.Len(), Heaviest: []inspectedTerm{}}
		for _, k := range stats.Heaviest(r.Vec, maxTerms) {
			row.Heaviest = append(row.Heaviest, inspectedTerm{
				ID: r.Vec.Terms[k], Token: stats.TokenName(vocab, r.Vec.Terms[k]),
				Weight: r.Vec.Weights[k], Impact: r.Vec.Impacts[k],
			})
		}
		sh.FirstRows = append(sh.FirstRows, row)
		return nil
	})
	if err != nil {
		return nil, nil, badInput(err)
	}
	sh.Summary = st.Summary(vocab, maxTerms)
	return sh, st, nil
}

// inspectTarget resolves inspect's argument: the shards to read (one, or a
// directory's), the vocabulary beside them, and whether it is a directory.
func inspectTarget(path string) (files, vocab []string, dir bool, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, false, fmt.Errorf("%w: %w", encode.ErrBadInput, err)
	}
	if !st.IsDir() {
		vocab, err := stats.Vocabulary(filepath.Dir(path))
		return []string{path}, vocab, false, err
	}
	if vocab, err = stats.Vocabulary(path); err != nil {
		return nil, nil, true, err
	}
	if files, err = stats.ListShards(path); err != nil {
		return nil, nil, true, err
	}
	if len(files) == 0 {
		return nil, nil, true, fmt.Errorf("%w: %s holds no impact shard (*.parquet or *.arrow)", encode.ErrBadInput, path)
	}
	return files, vocab, true, nil
}

func inspectPath(ctx context.Context, w io.Writer, path string, maxRows, maxTerms int) error {
	files, vocab, dir, err := inspectTarget(path)
	if err != nil {
		return err
	}
	all := stats.New()
	for _, f := range files {
		sh, s, err := inspectShard(ctx, f, vocab, maxRows, maxTerms)
		if err != nil {
			return err
		}
		printShard(w, sh)
		if !dir {
			return nil
		}
		all.Merge(s)
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "== %s: %d shards\n", path, len(files))
	printSummary(w, all.Summary(vocab, maxTerms))
	return nil
}

func inspectJSON(ctx context.Context, w io.Writer, path string, maxRows, maxTerms int) error {
	files, vocab, dir, err := inspectTarget(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if !dir {
		sh, _, err := inspectShard(ctx, files[0], vocab, maxRows, maxTerms)
		if err != nil {
			return err
		}
		return enc.Encode(sh)
	}
	out := inspectedDir{Path: path, Totals: inspectedTotals{Shards: len(files)}}
	all := stats.New()
	for _, f := range files {
		sh, s, err := inspectShard(ctx, f, vocab, maxRows, maxTerms)
		if err != nil {
			return err
		}
		out.Shards = append(out.Shards, sh)
		all.Merge(s)
	}
	out.Totals.Summary = all.Summary(vocab, maxTerms)
	return enc.Encode(out)
}

func printShard(w io.Writer, sh *inspectedShard) {
	fmt.Fprintf(w, "== %s\nschema:\n", sh.Path)
	for _, f := range sh.Schema {
		fmt.Fprintf(w, "  %s\n", f)
	}
	fmt.Fprintln(w, "metadata:")
	keys := make([]string, 0, len(sh.Metadata))
	for k := range sh.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s = %s\n", k, sh.Metadata[k])
	}
	for _, r := range sh.FirstRows {
		fmt.Fprintf(w, "row %d: doc_id=%q num_tokens=%d truncated=%v terms=%d\n", r.Row, r.DocID, r.NumTokens, r.Truncated, r.Terms)
		parts := make([]string, 0, len(r.Heaviest))
		for _, t := range r.Heaviest {
			parts = append(parts, fmt.Sprintf("%s:%d", t.Token, t.Impact))
		}
		fmt.Fprintf(w, "  %s\n", strings.Join(parts, " "))
	}
	printSummary(w, sh.Summary)
}

func printSummary(w io.Writer, s stats.Summary) {
	fmt.Fprintf(w, "rows %d, tokens %d, empty %d, truncated %d\n", s.Rows, s.Tokens, s.Empty, s.Truncated)
	fmt.Fprintf(w, "non-zeros per row: mean %.1f, p50 %d, p99 %d, max %d (total %d)\n", s.NNZ.Mean, s.NNZ.P50, s.NNZ.P99, s.NNZ.Max, s.NNZ.Total)
	parts := make([]string, 0, len(s.TopTerms))
	for _, t := range s.TopTerms {
		parts = append(parts, fmt.Sprintf("%s(%d)", t.Token, t.DF))
	}
	fmt.Fprintf(w, "terms in most rows: %s\n", strings.Join(parts, " "))
}

func newVerifyCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "verify DIR",
		Short:   "Check every manifest in an output directory against its shard (exit 3 on any mismatch)",
		Example: `  splash verify out/`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			manifests, err := shards.ListManifests(dir)
			if err != nil {
				return err
			}
			if len(manifests) == 0 {
				return fmt.Errorf("%w: %s holds no manifest (_manifest.*.json)", encode.ErrBadInput, dir)
			}
			var bad []error
			type shardResult struct {
				Manifest string `json:"manifest"`
				OK       bool   `json:"ok"`
				Shard    string `json:"shard,omitempty"`
				Rows     int64  `json:"rows"`
				SHA256   string `json:"sha256,omitempty"`
				Error    string `json:"error,omitempty"`
			}
			var results []shardResult
			jsonOut := summaryJSON(cmd)
			for _, base := range manifests {
				m, err := shards.VerifyShard(dir, base)
				if err != nil {
					if !jsonOut {
						fmt.Fprintf(cmd.OutOrStdout(), "FAIL %s: %v\n", base, err)
					}
					results = append(results, shardResult{Manifest: base, Error: err.Error()})
					bad = append(bad, err)
					continue
				}
				if !jsonOut {
					fmt.Fprintf(cmd.OutOrStdout(), "ok   %s: %d rows, sha256 %s\n", m.Output.Path, m.Output.Rows, m.Output.SHA256)
				}
				results = append(results, shardResult{Manifest: base, OK: true, Shard: m.Output.Path, Rows: m.Output.Rows, SHA256: m.Output.SHA256})
			}
			if jsonOut {
				// One object for the whole run, with a result per manifest.
				err := printRunSummary(cmd, cmd.OutOrStdout(), "", struct {
					Summary string        `json:"summary"` // "verify"
					Dir     string        `json:"dir"`
					Shards  int           `json:"shards"`
					Failed  int           `json:"failed"`
					Results []shardResult `json:"results"`
				}{"verify", dir, len(manifests), len(bad), results})
				if err != nil {
					return err
				}
			}
			if len(bad) > 0 {
				return fmt.Errorf("%w: %d of %d shards failed verification", encode.ErrBadInput, len(bad), len(manifests))
			}
			return nil
		},
	}
}
