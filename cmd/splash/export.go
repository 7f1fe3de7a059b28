package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/shards"
	"github.com/splash-encode/splash/shards/ciff"
	"github.com/splash-encode/splash/shards/export"
)

// exportFormatCIFF is the CIFF format, written by package shards/ciff.
const exportFormatCIFF = "ciff"

// exportFormatNames lists every --format value, for the help and errors.
func exportFormatNames() []string {
	var names []string
	for _, f := range export.Formats() {
		names = append(names, string(f))
	}
	return append(names, exportFormatCIFF)
}

func newExportCommand() *cobra.Command {
	var (
		format, input, output, index, field string
		scale                               float32
		ciffMemMiB                          int64
	)
	cmd := &cobra.Command{
		Use:   "export --format F --input SHARDS --output PATH",
		Short: "Write impact shards in an index builder's input format (Anserini, Seismic, Elasticsearch/OpenSearch, Qdrant, CIFF)",
		Long: `export writes impact shards as the input of an offline index builder.
--input is an impact shard file or an output directory of splash encode: a
directory's shards are those of its manifests, in the sorted order of their
names, each verified against its manifest before anything is written (a
directory without manifests, or with a shard that has none, is refused).
The vocabulary comes from _vocabulary.parquet beside the shards. Documents keep
their order; memory does not grow with the corpus. The output is written to a
temp file beside PATH and renamed into place when complete; PATH "-" is
standard output. A one-line summary goes to standard error.

Formats:
  anserini       Anserini JsonVectorCollection JSON Lines,
                 {"id":DOC,"contents":"","vector":{TOKEN:IMPACT}}, for
                 IndexCollection -collection JsonVectorCollection -impact
                 -pretokenized. IMPACT = round(weight × scale), half away from
                 zero, an integer; scale: --scale, else the shards' splash.scale
                 (normally 100). Terms whose impact is 0 are left out.
  anserini-topics
                 encoded queries as Anserini TsvString topics, one line a
                 query: QID<TAB>TOKEN TOKEN ..., each token repeated IMPACT
                 times (IMPACT as for anserini), for SearchCollection
                 -topicReader TsvString -impact -pretokenized. A query left
                 without a token is skipped (counted); a QID with a tab, a
                 line break or white space at either end, or a repeated QID,
                 is an error.
  seismic        Seismic's binary format (u32 count; per document u32 n, n u32
                 term ids ascending, n f32 weights; little-endian), and the
                 doc ids, one a line in the same order, in PATH.ids.
  seismic-jsonl  Seismic's JSON Lines, {"id":DOC,"content":"","vector":{TOKEN:WEIGHT}}.
  esbulk         Elasticsearch/OpenSearch bulk NDJSON: {"index":{"_index":
                 INDEX,"_id":DOC}} then {FIELD:{TOKEN:WEIGHT}}, for a mapping
                 {"mappings":{"properties":{FIELD:{"type":"rank_features"}}}}
                 (sparse_vector on Elasticsearch 8.11+ works too). Weights
                 below 2^-126, which Lucene refuses, are left out.
  qdrant         Qdrant points, JSON Lines: {"id":ID,"vector":{FIELD:
                 {"indices":[TERM],"values":[WEIGHT]}},"payload":{"doc_id":DOC}}
                 for a collection with the sparse vector FIELD. ID is the
                 doc_id when it is a decimal integer without leading zeros
                 below 2^64, else uuid5(NAMESPACE_URL, doc_id): Qdrant takes
                 only integers and UUIDs.
  ciff           the Common Index File Format (PISA and others): a Header,
                 one PostingsList per term (terms in byte order, docids
                 gap-encoded, tf = the impact, impacts of 0 left out), then a
                 DocRecord per document (docids 0..N-1 in shard order;
                 doclength = the sum of its impacts). Postings are inverted by
                 an external sort: at most --memory MiB of them are held at
                 once, sorted runs are spilled beside the output and merged,
                 so corpora larger than memory export.

Weights are written in the shortest form that reads back as the same float32.
A document with an empty vector is kept (empty "vector", FIELD object,
indices, or length 0); Anserini counts it as empty and does not index it.

Tokens: a token is written as it is unless it holds bytes that are not UTF-8,
white space (anserini, anserini-topics: Anserini splits on it) or '.' (esbulk: rank_features
refuses it); those bytes are percent-encoded as %XX, and so is a '%' followed
by two hex digits (as %25), which keeps the rule reversible: decoding turns
every %XX back into its byte. Real vocabularies (BERT's included) pass
unchanged in anserini and seismic-jsonl. Encode query tokens the same way.`,
		Example: `  # Anserini JsonVectorCollection (integer impacts)
  splash export --format anserini --input out/ --output anserini/docs.jsonl

  # Encoded queries as Anserini topics, to search that index
  splash export --format anserini-topics --input queries-out/ --output anserini/topics.tsv

  # One CIFF file (e.g. for PISA)
  splash export --format ciff --input out/ --output splade.ciff

  # Elasticsearch bulk actions to standard output
  splash export --format esbulk --input out/part-0.parquet --output - | gzip > bulk.ndjson.gz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			if format == "" || input == "" || output == "" {
				return usageErrorf("--format, --input and --output are required")
			}
			opts := export.Options{Scale: scale, Index: index, Field: field}
			if format != exportFormatCIFF {
				f, err := export.ParseFormat(format)
				if err != nil {
					return usageErrorf("--format %q: want one of %s", format, strings.Join(exportFormatNames(), ", "))
				}
				opts.Format = f
				if output == "-" && f == export.FormatSeismic {
					return usageErrorf("--format seismic writes its doc ids to PATH.ids beside the output: give --output a file, not -")
				}
				if msg := checkExportFlags(cmd, f); msg != "" {
					return usageErrorf("%s", msg)
				}
			} else if cmd.Flags().Changed("scale") || cmd.Flags().Changed("index") || cmd.Flags().Changed("field") {
				return usageErrorf("--scale, --index and --field do not apply to --format ciff")
			}
			if format != exportFormatCIFF && cmd.Flags().Changed("memory") {
				return usageErrorf("--memory applies to --format ciff only")
			}
			if ciffMemMiB < 1 {
				return usageErrorf("--memory %d: want at least 1 MiB", ciffMemMiB)
			}
			if _, err := os.Stat(input); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return usageErrorf("--input %s: no such file or directory", input)
				}
				return err
			}
			in, err := export.ResolveInput(ctx, input)
			if err != nil {
				return exportError(ctx, err)
			}
			if format == exportFormatCIFF {
				return exportCIFF(ctx, cmd, in.Shards, in.Vocabulary, output, ciffMemMiB, in.Verified)
			}
			var stats export.Stats
			if output == "-" {
				stats, err = export.Write(ctx, cmd.OutOrStdout(), nil, in.Shards, in.Vocabulary, opts)
			} else {
				stats, err = export.WriteFile(ctx, output, in.Shards, in.Vocabulary, opts)
			}
			if err != nil {
				return exportError(ctx, err)
			}
			dest := output
			if output == "-" {
				dest = "standard output"
			} else if opts.Format == export.FormatSeismic {
				dest += " (doc ids: " + output + ".ids)"
			}
			if !in.Verified {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: no manifest names %s: exported without verification\n", input)
			}
			text := fmt.Sprintf("exported %s from %d shard(s) as %s to %s", stats, len(in.Shards), opts.Format, dest)
			return printRunSummary(cmd, cmd.ErrOrStderr(), text, exportSummary{
				Summary: "export", Format: string(opts.Format), Output: output, Shards: len(in.Shards), Verified: in.Verified,
				Documents: stats.Documents, Empty: stats.Empty, Postings: stats.Postings, Dropped: stats.Dropped, Skipped: stats.Skipped,
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", "", "output format: "+strings.Join(exportFormatNames(), ", "))
	f.StringVar(&input, "input", "", "an impact shard, or an output directory of splash encode")
	f.StringVar(&output, "output", "", `output file ("-": standard output)`)
	f.Float32Var(&scale, "scale", 0, "anserini, anserini-topics: impacts = round(weight × S) (default: the shards' splash.scale)")
	f.StringVar(&index, "index", "", `esbulk: the index of every action (default "`+export.DefaultIndex+`")`)
	f.Int64Var(&ciffMemMiB, "memory", ciff.DefaultMemoryBytes>>20, "ciff: MiB of postings held in memory before a sorted run is spilled to disk")
	f.StringVar(&field, "field", "", `esbulk: the rank_features field; qdrant: the sparse vector's name (default "`+export.DefaultField+`")`)
	markRequired(cmd, "format", "input", "output")
	return cmd
}

// checkExportFlags reports a flag given to a format it does not apply to, or
// a bad value, as the message of a usage error ("" when all is well).
func checkExportFlags(cmd *cobra.Command, f export.Format) string {
	changed := cmd.Flags().Changed
	switch {
	case changed("scale") && f != export.FormatAnserini && f != export.FormatAnseriniTopics:
		return fmt.Sprintf("--scale applies to --format anserini and anserini-topics only (%s writes weights)", f)
	case changed("index") && f != export.FormatESBulk:
		return "--index applies to --format esbulk only"
	case changed("field") && f != export.FormatESBulk && f != export.FormatQdrant:
		return "--field applies to --format esbulk and qdrant only"
	}
	var o export.Options
	o.Format = f
	o.Scale, _ = cmd.Flags().GetFloat32("scale")
	o.Index, _ = cmd.Flags().GetString("index")
	o.Field, _ = cmd.Flags().GetString("field")
	if changed("scale") && !(o.Scale > 0) {
		return fmt.Sprintf("--scale %v: must be a finite number > 0", o.Scale)
	}
	if err := o.Check(); err != nil {
		return err.Error()
	}
	return ""
}

// exportError marks the errors caused by the shards being exported as bad
// input (exit code 3).
func exportError(ctx context.Context, err error) error {
	if ctx.Err() == nil && (errors.Is(err, export.ErrInput) || errors.Is(err, shards.ErrInvalidShard)) {
		return fmt.Errorf("%w: %w", encode.ErrBadInput, err)
	}
	return err
}

// exportSummary is export's end-of-run summary with --log-format json (on
// standard error, as the text line). Terms and SortedRuns are CIFF's only.
type exportSummary struct {
	Summary    string `json:"summary"` // "export"
	Format     string `json:"format"`
	Output     string `json:"output"` // "-": standard output
	Shards     int    `json:"shards"`
	Verified   bool   `json:"verified"`
	Documents  int64  `json:"documents"`
	Empty      int64  `json:"empty"`
	Terms      int64  `json:"terms,omitempty"`
	Postings   int64  `json:"postings"`
	Dropped    int64  `json:"dropped"`
	Skipped    int64  `json:"skipped,omitempty"` // anserini-topics: queries left out
	SortedRuns *int   `json:"sorted_runs,omitempty"`
}
