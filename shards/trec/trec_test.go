package trec

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

// The judgements and run of the hand-computed cases below.
//
// q1 (graded): relevant d1=3, d2=2, d4=1, d5=1 (4 relevant), d3=0.
// The run ranks d3 d1 d6 d2 d4; d6 is unjudged. Relevance by rank:
// 0 3 0 2 1.
//
//	DCG@10  = 3/log2(3) + 2/log2(5) + 1/log2(6)
//	        = 1.892789 + 0.861353 + 0.386853 = 3.140995
//	IDCG@10 = 3/log2(2) + 2/log2(3) + 1/log2(4) + 1/log2(5)
//	        = 3 + 1.261860 + 0.5 + 0.430677 = 5.192536
//	nDCG@10 = 0.604906 (exponential gain 2^rel-1 would give 0.620493)
//	MRR@10  = 1/2 (d1 at rank 2); MRR@1 = 0
//	R@100   = 3/4 (d1, d2, d4); R@3 = 1/4 (d1)
//
// q2 (ties): relevant a=1. The run gives a, b and c the same score and
// ranks a first in its rank column; trec_eval ignores the rank column and
// orders ties by docid descending: c b a, so a is at rank 3.
//
//	nDCG@10 = (1/log2(4)) / 1 = 0.5, MRR@10 = 1/3, R@100 = 1
//
// q3: relevant x, missing from the run.  q4: judged, nothing relevant.
// q9: in the run, not in the qrels.
const qrelsText = "q1 0 d1 3\n" +
	"q1\t0\td2\t2\n" + // tabs are accepted
	"q1 0 d3 0\n" +
	"\n" + // blank lines are skipped
	"q1 0 d4 1\n" +
	"q1 0   d5  1\n" +
	"q2 0 a 1\n" +
	"q2 0 b 0\n" +
	"q3 0 x 2\n" +
	"q4 0 y 0\n"

const runText = "q1 Q0 d3 1 10 t\n" +
	"q1 Q0 d6 3 8 t\n" + // out of order in the file: ordered by score
	"q1 Q0 d1 2 9 t\n" +
	"q1 Q0 d2 4 7.5 t\n" +
	"q1 Q0 d4 5 6 t\n" +
	"q2 Q0 a 1 5 t\n" +
	"q2 Q0 b 2 5 t\n" +
	"q2 Q0 c 3 5.0000001 t\n" + // equal to 5 in float32, as trec_eval reads it
	"q4 Q0 y 1 3 t\n" +
	"q9 Q0 z 1 3 t\n"

const ndcgQ1 = 0.6049058002960359

func parseCase(t *testing.T) (Qrels, Run) {
	t.Helper()
	q, err := ParseQrels(strings.NewReader(qrelsText), "qrels")
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseRun(strings.NewReader(runText), "run")
	if err != nil {
		t.Fatal(err)
	}
	return q, r
}

func mustMeasures(t *testing.T, names ...string) []Measure {
	t.Helper()
	var ms []Measure
	for _, n := range names {
		m, err := ParseMeasure(n)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	return ms
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func TestPerQueryHandComputed(t *testing.T) {
	q, r := parseCase(t)
	ms := mustMeasures(t, "ndcg@10", "mrr@10", "mrr@1", "recall@100", "recall@3", "NDCG@2")
	ev, err := Evaluate(q, r, ms, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// q1 nDCG@2: DCG = 3/log2(3); IDCG = 3 + 2/log2(3).
	ndcg2 := (3 / math.Log2(3)) / (3 + 2/math.Log2(3))
	want := map[string][]float64{
		"q1": {ndcgQ1, 0.5, 0, 0.75, 0.25, ndcg2},
		"q2": {0.5, 1.0 / 3, 0, 1, 1, 0}, // c b a: a at rank 3, nothing relevant in the top 2
	}
	if len(ev.PerQuery) != len(want) {
		t.Fatalf("evaluated queries %v, want q1 and q2", keys(ev.PerQuery))
	}
	for qid, w := range want {
		got := ev.PerQuery[qid]
		for i := range w {
			if !near(got[i], w[i]) {
				t.Errorf("%s %s = %.12f, want %.12f", qid, ms[i], got[i], w[i])
			}
		}
	}
}

func keys(m map[string][]float64) []string {
	var k []string
	for q := range m {
		k = append(k, q)
	}
	return k
}

func TestAveragingMissingQueries(t *testing.T) {
	q, r := parseCase(t)
	ms := DefaultMeasures()
	// Default: q1 and q2 (q3 is not in the run, q4 has nothing relevant, q9
	// is not judged).
	ev, err := Evaluate(q, r, ms, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{(ndcgQ1 + 0.5) / 2, (0.5 + 1.0/3) / 2, (0.75 + 1) / 2, (0.75 + 1) / 2}
	if ev.Queries != 2 {
		t.Errorf("averaged over %d queries, want 2", ev.Queries)
	}
	for i, w := range want {
		if !near(ev.Means[i], w) {
			t.Errorf("%s = %.12f, want %.12f", ms[i], ev.Means[i], w)
		}
	}
	// Complete (trec_eval -c): q3 counts, with zeros.
	ev, err = Evaluate(q, r, ms, EvalOptions{Complete: true})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Queries != 3 {
		t.Errorf("complete: averaged over %d queries, want 3", ev.Queries)
	}
	for i, w := range want {
		if !near(ev.Means[i], w*2/3) {
			t.Errorf("complete: %s = %.12f, want %.12f", ms[i], ev.Means[i], w*2/3)
		}
	}
	for i, v := range ev.PerQuery["q3"] {
		if v != 0 {
			t.Errorf("complete: q3 %s = %g, want 0", ms[i], v)
		}
	}
	// Nothing to evaluate.
	_, err = Evaluate(Qrels{"q": {"d": 0}}, r, ms, EvalOptions{Complete: true})
	if !errors.Is(err, ErrNoQueries) {
		t.Errorf("no relevant judgement: got %v, want ErrNoQueries", err)
	}
}

func TestOrderFollowsTrecEval(t *testing.T) {
	rs := []Result{{"a", 1}, {"b", 2}, {"c", 1}, {"aa", 1}, {"d", 1 + 1e-9}}
	Order(rs)
	// b first; then the four that tie in float32, docid descending.
	var got []string
	for _, r := range rs {
		got = append(got, r.DocID)
	}
	if strings.Join(got, " ") != "b d c aa a" {
		t.Errorf("order %v, want b d c aa a", got)
	}
}

func TestMalformedFiles(t *testing.T) {
	cases := []struct {
		name, text, want string
		qrels            bool
	}{
		{"qrels fields", "q 0 d 1\nq 0 d2\n", "qrels.txt:2:", true},
		{"qrels rel", "\nq 0 d 1.5\n", "qrels.txt:2: malformed TREC file: relevance \"1.5\"", true},
		{"qrels duplicate", "q 0 d 1\nq 1 d 0\n", "qrels.txt:2: malformed TREC file: query q judges document d twice", true},
		{"run fields", "q Q0 d 1 2\n", "run.txt:1: malformed TREC file: 5 fields", false},
		{"run score", "q Q0 d 1 x t\n", "run.txt:1: malformed TREC file: score \"x\"", false},
		{"run nan", "q Q0 d 1 NaN t\n", "run.txt:1:", false},
		{"run rank", "q Q0 d one 1 t\n", "run.txt:1: malformed TREC file: rank \"one\"", false},
		{"run duplicate", "q Q0 d 1 2 t\nq Q0 e 2 1 t\nq Q0 d 3 0 t\n", "run.txt:3: malformed TREC file: query q retrieves document d again (first on line 1)", false},
		{"long line", "q Q0 " + strings.Repeat("d", maxLine) + " 1 1 t\n", "run.txt:1: malformed TREC file: line longer", false},
	}
	for _, c := range cases {
		var err error
		if c.qrels {
			_, err = ParseQrels(strings.NewReader(c.text), "qrels.txt")
		} else {
			_, err = ParseRun(strings.NewReader(c.text), "run.txt")
		}
		if err == nil || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want ErrFormat mentioning %q", c.name, err, c.want)
		}
	}
	if _, err := ReadQrels("/nonexistent/qrels"); err == nil || !strings.Contains(err.Error(), "/nonexistent/qrels") {
		t.Errorf("missing file: %v", err)
	}
}

func TestRunWriter(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewRunWriter(&buf, "splash")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteQuery("7", []Result{{"d2", 1234}, {"d1", 0.125}, {"d3", 1e-7}}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteQuery("8", nil); err != nil { // no hits: no lines
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "7 Q0 d2 1 1234 splash\n7 Q0 d1 2 0.125 splash\n7 Q0 d3 3 0.0000001 splash\n"
	if buf.String() != want {
		t.Errorf("run:\n%s\nwant:\n%s", buf.String(), want)
	}
	r, err := ParseRun(&buf, "written")
	if err != nil {
		t.Fatal(err)
	}
	if len(r) != 1 || len(r["7"]) != 3 || r["7"][2].Score != 1e-7 {
		t.Errorf("read back %v", r)
	}
	if err := w.WriteQuery("a b", []Result{{"d", 1}}); !errors.Is(err, ErrFormat) {
		t.Errorf("query id with a space: %v", err)
	}
	if err := w.WriteQuery("q", []Result{{"d\t1", 1}}); !errors.Is(err, ErrFormat) {
		t.Errorf("doc id with a tab: %v", err)
	}
	if _, err := NewRunWriter(&buf, ""); !errors.Is(err, ErrFormat) {
		t.Errorf("empty tag: %v", err)
	}
}

func TestParseMeasure(t *testing.T) {
	for _, bad := range []string{"ndcg", "ndcg@0", "ndcg@x", "map@10", "@10"} {
		if _, err := ParseMeasure(bad); err == nil {
			t.Errorf("ParseMeasure(%q) accepted", bad)
		}
	}
	m, err := ParseMeasure(" Recall@1000 ")
	if err != nil || m != (Measure{Recall, 1000}) || m.String() != "recall@1000" {
		t.Errorf("ParseMeasure: %v %v", m, err)
	}
}
