package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/shards/report"
)

func newReportCommand() *cobra.Command {
	var input, output string
	var opts report.Options
	cmd := &cobra.Command{
		Use:   "report --input DIR --output FILE.html",
		Short: "Write an HTML report (summary and plots) of a splash encode output directory",
		Long: `report reads every impact shard of a splash encode output directory
once, with its manifest and the vocabulary, and writes one self-contained HTML
page (inline CSS and SVG, no script, nothing fetched): a summary table
(shards, documents, tokens, non-zeros per document, the encoding settings),
plots of the non-zeros per document, the weight distribution, the terms in
most documents, and per shard the throughput and padding waste (from the
manifests' run statistics, when they hold them) and the truncated and empty
documents. The file is written atomically (temp file, then rename).`,
		Example: `  splash report --input out/ --output report.html`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if input == "" {
				return usageErrorf("--input is required (a splash encode output directory)")
			}
			if output == "" {
				return usageErrorf("--output is required (the HTML file to write)")
			}
			r, err := report.Write(cmd.Context(), input, output, opts)
			if err != nil {
				if errors.Is(err, report.ErrInput) {
					return fmt.Errorf("%w: %w", encode.ErrBadInput, err)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d shards, %d documents\n", output, len(r.Shards), r.Total.Rows)
			return nil
		},
	}
	cmd.Flags().StringVar(&input, "input", "", "splash encode output directory")
	cmd.Flags().StringVar(&output, "output", "", "HTML file to write")
	cmd.Flags().IntVar(&opts.TopTerms, "terms", 20, "terms in the top-terms chart")
	cmd.Flags().IntVar(&opts.Bins, "bins", 40, "bins of the histograms")
	markRequired(cmd, "input", "output")
	return cmd
}
