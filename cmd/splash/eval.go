package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/shards/trec"
)

func newEvalCommand() *cobra.Command {
	var (
		runPath, qrelsPath, format string
		metrics                    []string
		complete                   bool
	)
	defaults := []string{}
	for _, m := range trec.DefaultMeasures() {
		defaults = append(defaults, m.String())
	}
	cmd := &cobra.Command{
		Use:   "eval --run RUN --qrels QRELS [--format text|json] [--metrics ndcg@10,mrr@10,...]",
		Short: "Score a TREC run against relevance judgements (nDCG, MRR, recall)",
		Long: `eval reads a TREC run ("qid Q0 docid rank score tag") and TREC qrels
("qid iter docid rel"; fields separated by spaces or tabs) and prints the
mean of each metric and the number of queries averaged over.

Metrics are NAME@K with NAME one of:
  ndcg    nDCG with linear gain rel and discount log2(rank+1), the ideal
          ranking from the qrels (trec_eval ndcg_cut.K)
  mrr     reciprocal rank of the first document with rel >= 1 within K
  recall  documents with rel >= 1 in the top K / those in the qrels
          (trec_eval recall.K)

As trec_eval does, each query's documents are ordered by score (compared as
32-bit floats), descending, ties by document id descending; the rank column
is ignored. Averages are over the queries that are in the run and have a
relevant document in the qrels; with --complete (trec_eval -c) over every
qrels query with a relevant document, those missing from the run counting 0
(splash search writes no line for a query without hits).`,
		Example: `  # nDCG@10, MRR@10 and recall of a run
  splash eval --run run.trec --qrels qrels.txt

  # Chosen metrics as one JSON object, queries missing from the run counting 0
  splash eval --run run.trec --qrels qrels.txt --metrics ndcg@10,recall@1000 --format json --complete`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runPath == "" {
				return usageErrorf("--run is required")
			}
			if qrelsPath == "" {
				return usageErrorf("--qrels is required")
			}
			if format != "text" && format != "json" {
				return usageErrorf("--format %q: want text or json", format)
			}
			var measures []trec.Measure
			seen := map[trec.Measure]bool{}
			for _, s := range metrics {
				m, err := trec.ParseMeasure(s)
				if err != nil {
					return usageErrorf("--metrics: %v", err)
				}
				if seen[m] {
					return usageErrorf("--metrics: %s given twice", m)
				}
				seen[m] = true
				measures = append(measures, m)
			}
			if len(measures) == 0 {
				return usageErrorf("--metrics: no metric given")
			}
			qrels, err := trec.ReadQrels(qrelsPath)
			if err != nil {
				return asBadInput(err)
			}
			run, err := trec.ReadRun(runPath)
			if err != nil {
				return asBadInput(err)
			}
			ev, err := trec.Evaluate(qrels, run, measures, trec.EvalOptions{Complete: complete})
			if errors.Is(err, trec.ErrNoQueries) {
				return fmt.Errorf("%w: %s and %s: %w", encode.ErrBadInput, runPath, qrelsPath, err)
			}
			if err != nil {
				return err
			}
			return printEvaluation(cmd.OutOrStdout(), ev, format)
		},
	}
	f := cmd.Flags()
	f.StringVar(&runPath, "run", "", "TREC run file")
	f.StringVar(&qrelsPath, "qrels", "", "TREC qrels file")
	f.StringVar(&format, "format", "text", "output: text (one metric per line) or json (one object)")
	f.StringSliceVar(&metrics, "metrics", defaults, "metrics to report, NAME@K with NAME ndcg, mrr or recall")
	f.BoolVar(&complete, "complete", false, "average over every qrels query with a relevant document, a query missing from the run counting 0 (trec_eval -c)")
	markRequired(cmd, "run", "qrels")
	return cmd
}

// printEvaluation writes the means and the query count: "name value" lines
// (values with 4 decimals, as trec_eval prints them), or one JSON object
// with the metrics in the order asked and "queries" last.
func printEvaluation(w io.Writer, ev trec.Evaluation, format string) error {
	var buf bytes.Buffer
	if format == "json" {
		buf.WriteByte('{')
		for i, m := range ev.Measures {
			name, _ := json.Marshal(m.String())
			val, err := json.Marshal(ev.Means[i])
			if err != nil {
				return fmt.Errorf("%s: %w", m, err)
			}
			fmt.Fprintf(&buf, "%s:%s,", name, val)
		}
		fmt.Fprintf(&buf, "\"queries\":%d}\n", ev.Queries)
	} else {
		for i, m := range ev.Measures {
			fmt.Fprintf(&buf, "%-12s %.4f\n", m, ev.Means[i])
		}
		fmt.Fprintf(&buf, "%-12s %d\n", "queries", ev.Queries)
	}
	_, err := w.Write(buf.Bytes())
	return err
}
