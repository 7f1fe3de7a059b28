// Package trec reads and writes the plain-text files of TREC-style
// evaluation, relevance judgements (qrels) and runs, and computes the
// ranking metrics that splash eval reports, following trec_eval's
// conventions where it has one.
//
// # Files
//
// A qrels file has one judgement per line, four fields separated by
// spaces or tabs:
//
//	qid iter docid rel
//
// iter is ignored; rel is an integer. A document is relevant when rel >= 1
// (trec_eval's default relevance level); rel <= 0 counts as not relevant.
// A (qid, docid) pair judged twice is an error, as in trec_eval.
//
// A run file has one retrieved document per line, six fields:
//
//	qid Q0 docid rank score tag
//
// The rank column is read but not used: like trec_eval, Evaluate orders
// each query's documents by score, descending, and breaks ties by docid in
// descending byte order (trec_eval's comp_sim_docno compares
// strcmp(docno2, docno1)). trec_eval stores scores as C floats, so scores
// are compared after rounding to float32 here too: two scores that differ
// only beyond float32 precision tie. A docid listed twice for one query is an
// error, as in trec_eval. Blank lines are skipped in both files. Every
// malformed line is reported with the file name and line number and wraps
// ErrFormat.
//
// # Metrics
//
// Each metric has a cutoff k (Measure, written "name@k"):
//
//   - ndcg@k: DCG@k / IDCG@k with linear gain rel (trec_eval's default; the
//     gain is the qrels value itself, not 2^rel - 1) and discount log2(r+1)
//     at rank r (1-based): DCG@k = sum over r <= k of rel_r / log2(r+1),
//     counting only rel_r > 0. The ideal ranking sorts the query's judged
//     relevance values (rel > 0) in descending order. trec_eval's
//     ndcg_cut.k.
//   - mrr@k: 1/r for the rank r of the first relevant document (rel >= 1)
//     at rank r <= k, 0 when there is none (the MS MARCO MRR@10).
//   - recall@k: relevant documents retrieved at ranks <= k divided by the
//     query's relevant documents in the qrels. trec_eval's recall.k.
//
// Averages are arithmetic means over the evaluated queries. By default these
// are the queries that are in the run and have at least one relevant
// document in the qrels (trec_eval averages over the queries in both files;
// it also counts queries whose judgements are all non-relevant, with
// zeros, which are skipped here since their metrics are undefined). With
// EvalOptions.Complete (trec_eval -c) every qrels query with a relevant
// document counts, and one missing from the run scores 0 on every metric.
// Run queries absent from the qrels are never evaluated.
package trec

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// ErrFormat marks a malformed qrels or run file (or a value that cannot be
// written to one).
var ErrFormat = errors.New("malformed TREC file")

// Result is one retrieved document of a run.
type Result struct {
	DocID string
	Score float64
}

// Run holds a run's retrieved documents per query id, in file order.
type Run map[string][]Result

// Qrels holds relevance judgements: query id -> document id -> relevance.
type Qrels map[string]map[string]int

// Relevant returns the number of documents judged relevant (rel >= 1) for qid.
func (q Qrels) Relevant(qid string) int {
	n := 0
	for _, rel := range q[qid] {
		if rel >= 1 {
			n++
		}
	}
	return n
}

// checkField reports why s cannot be one field of a TREC line (empty or
// containing white space), or nil.
func checkField(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty %s", ErrFormat, what)
	}
	if strings.IndexFunc(s, unicode.IsSpace) >= 0 {
		return fmt.Errorf("%w: %s %q contains white space", ErrFormat, what, s)
	}
	return nil
}
