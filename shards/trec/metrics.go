package trec

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Metric names a measure's family.
type Metric string

// The metrics Evaluate computes (see the package documentation).
const (
	NDCG   Metric = "ndcg"
	MRR    Metric = "mrr"
	Recall Metric = "recall"
)

// Measure is a metric at a cutoff, written "name@k" (e.g. "ndcg@10").
type Measure struct {
	Metric Metric
	K      int
}

func (m Measure) String() string { return fmt.Sprintf("%s@%d", m.Metric, m.K) }

// DefaultMeasures returns the measures splash eval reports by default:
// ndcg@10, mrr@10, recall@100 and recall@1000.
func DefaultMeasures() []Measure {
	return []Measure{{NDCG, 10}, {MRR, 10}, {Recall, 100}, {Recall, 1000}}
}

// ParseMeasure parses "name@k": name ndcg, mrr or recall (any case), k a
// positive integer.
func ParseMeasure(s string) (Measure, error) {
	name, k, ok := strings.Cut(strings.TrimSpace(s), "@")
	if !ok {
		return Measure{}, fmt.Errorf("measure %q: want NAME@K, e.g. ndcg@10", s)
	}
	m := Measure{Metric: Metric(strings.ToLower(name))}
	switch m.Metric {
	case NDCG, MRR, Recall:
	default:
		return Measure{}, fmt.Errorf("measure %q: unknown metric %q (want ndcg, mrr or recall)", s, name)
	}
	n, err := strconv.Atoi(k)
	if err != nil || n < 1 {
		return Measure{}, fmt.Errorf("measure %q: cutoff %q is not a positive integer", s, k)
	}
	m.K = n
	return m, nil
}

// ErrNoQueries is returned by Evaluate when no query can be evaluated.
var ErrNoQueries = errors.New("no query is both in the run and judged with a relevant document in the qrels")

// EvalOptions changes which queries Evaluate averages over.
type EvalOptions struct {
	// Complete averages over every qrels query with a relevant document;
	// a query missing from the run scores 0 (trec_eval -c).
	Complete bool
}

// Evaluation is what Evaluate returns.
type Evaluation struct {
	Measures []Measure
	// Means holds the average of each measure, aligned with Measures.
	Means []float64
	// Queries is the number of queries averaged over.
	Queries int
	// PerQuery holds each evaluated query's values, aligned with Measures.
	PerQuery map[string][]float64
}

// Evaluate computes the measures of run against qrels, averaged over the
// queries chosen by opts (see the package documentation).
func Evaluate(qrels Qrels, run Run, measures []Measure, opts EvalOptions) (Evaluation, error) {
	ev := Evaluation{Measures: measures, Means: make([]float64, len(measures)), PerQuery: map[string][]float64{}}
	for qid, judged := range qrels {
		if qrels.Relevant(qid) == 0 {
			continue
		}
		results, inRun := run[qid]
		if !inRun && !opts.Complete {
			continue
		}
		ranked := rankedRelevance(results, judged)
		ideal := idealRelevance(judged)
		vals := make([]float64, len(measures))
		for i, m := range measures {
			vals[i] = compute(m, ranked, ideal)
		}
		ev.PerQuery[qid] = vals
	}
	ev.Queries = len(ev.PerQuery)
	if ev.Queries == 0 {
		return ev, ErrNoQueries
	}
	// Sum in query id order: the means do not depend on map order.
	qids := make([]string, 0, len(ev.PerQuery))
	for qid := range ev.PerQuery {
		qids = append(qids, qid)
	}
	sort.Strings(qids)
	for _, qid := range qids {
		for i, v := range ev.PerQuery[qid] {
			ev.Means[i] += v
		}
	}
	for i := range ev.Means {
		ev.Means[i] /= float64(ev.Queries)
	}
	return ev, nil
}

// Order sorts results as trec_eval does before evaluating them: by score
// rounded to float32, descending, ties by docid in descending byte order.
func Order(results []Result) {
	slices.SortStableFunc(results, func(a, b Result) int {
		sa, sb := float32(a.Score), float32(b.Score)
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return strings.Compare(b.DocID, a.DocID)
	})
}

// rankedRelevance returns the relevance of each result in trec_eval order
// (0 for unjudged documents).
func rankedRelevance(results []Result, judged map[string]int) []int {
	sorted := slices.Clone(results)
	Order(sorted)
	rels := make([]int, len(sorted))
	for i, r := range sorted {
		rels[i] = judged[r.DocID]
	}
	return rels
}

// idealRelevance returns the positive relevance values of judged, descending.
func idealRelevance(judged map[string]int) []int {
	var rels []int
	for _, rel := range judged {
		if rel > 0 {
			rels = append(rels, rel)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(rels)))
	return rels
}

func compute(m Measure, ranked, ideal []int) float64 {
	top := ranked[:min(m.K, len(ranked))]
	switch m.Metric {
	case NDCG:
		idcg := dcg(ideal[:min(m.K, len(ideal))])
		if idcg == 0 {
			return 0
		}
		return dcg(top) / idcg
	case MRR:
		for i, rel := range top {
			if rel >= 1 {
				return 1 / float64(i+1)
			}
		}
		return 0
	case Recall:
		if len(ideal) == 0 {
			return 0
		}
		found := 0
		for _, rel := range top {
			if rel >= 1 {
				found++
			}
		}
		return float64(found) / float64(len(ideal))
	}
	return math.NaN()
}

// dcg is the discounted cumulative gain of rels with linear gain and a
// log2(rank+1) discount.
func dcg(rels []int) float64 {
	sum := 0.0
	for i, rel := range rels {
		if rel > 0 {
			sum += float64(rel) / math.Log2(float64(i+2))
		}
	}
	return sum
}
