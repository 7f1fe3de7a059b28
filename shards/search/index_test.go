package search

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/shards/trec"
)

// vec builds a vector from (term, weight, impact) triples.
func vec(triples ...float64) encode.SparseVec {
	var v encode.SparseVec
	for i := 0; i < len(triples); i += 3 {
		v.Terms = append(v.Terms, uint32(triples[i]))
		v.Weights = append(v.Weights, float32(triples[i+1]))
		v.Impacts = append(v.Impacts, uint16(triples[i+2]))
	}
	return v
}

type doc struct {
	id string
	v  encode.SparseVec
}

// handDocs and handQuery are the hand-computed case. Query terms 1 (weight
// 0.5, impact 3) and 4 (weight 1, impact 1).
//
//	doc  shared terms (w, imp)     impact score      weight score
//	d3   1 (1, 2), 4 (0.5, 3)      3*2 + 1*3 = 9     0.5*1 + 1*0.5 = 1
//	d10  4 (0.75, 3)               1*3 = 3           0.75
//	d1   1 (0.25, 1)               3*1 = 3           0.125
//	d2   4 (0.25, 2)               1*2 = 2           0.25
//	d5   1 (0.5, 1)                3*1 = 3           0.25
//	d0   1 (0.125, 0)              3*0 = 0: no hit   0.0625
//	d4   none                      no hit            no hit
//
// Impacts: d3 9, then d1 d10 d5 tie at 3 (ids ascending: "d1" < "d10" <
// "d5"), then d2 2. Weights: d3 1, d10 0.75, then d2 d5 tie at 0.25, d1
// 0.125, d0 0.0625. d10 is added before d1, so ordinal order differs from
// id order.
var handDocs = []doc{
	{"d3", vec(1, 1, 2, 4, 0.5, 3)},
	{"d10", vec(4, 0.75, 3, 7, 1, 1)},
	{"d1", vec(1, 0.25, 1, 2, 2, 5)},
	{"d2", vec(4, 0.25, 2, 5, 1, 1)},
	{"d5", vec(1, 0.5, 1)},
	{"d4", vec(6, 1, 7)},
	{"d0", vec(1, 0.125, 0, 3, 1, 4)},
}

var handQuery = vec(1, 0.5, 3, 4, 1, 1)

func handIndex(t *testing.T, scoring Scoring) *Index {
	t.Helper()
	b := NewBuilder(8, scoring)
	for _, d := range handDocs {
		if err := b.Add(d.id, d.v); err != nil {
			t.Fatal(err)
		}
	}
	return b.Index()
}

func hitString(hits []Hit) string {
	var parts []string
	for _, h := range hits {
		parts = append(parts, fmt.Sprintf("%s:%g", h.DocID, h.Score))
	}
	return strings.Join(parts, " ")
}

func TestSearchHandComputed(t *testing.T) {
	cases := []struct {
		scoring Scoring
		k       int
		want    string
	}{
		{ScoreImpacts, 10, "d3:9 d1:3 d10:3 d5:3 d2:2"},
		{ScoreImpacts, 3, "d3:9 d1:3 d10:3"},
		{ScoreImpacts, 1, "d3:9"},
		{ScoreWeights, 10, "d3:1 d10:0.75 d2:0.25 d5:0.25 d1:0.125 d0:0.0625"},
		{ScoreWeights, 4, "d3:1 d10:0.75 d2:0.25 d5:0.25"},
	}
	for _, c := range cases {
		ix := handIndex(t, c.scoring)
		s := ix.NewSearcher()
		for rep := 0; rep < 2; rep++ { // a second search reuses the scratch space
			hits, err := s.Search(handQuery, c.k)
			if err != nil {
				t.Fatal(err)
			}
			if got := hitString(hits); got != c.want {
				t.Errorf("%s k=%d: %s, want %s", c.scoring, c.k, got, c.want)
			}
		}
	}
	ix := handIndex(t, ScoreImpacts)
	if ix.Docs() != 7 || ix.NonZeros() != 12 || ix.VocabSize() != 8 {
		t.Errorf("index of %d docs, %d non-zeros, vocabulary %d", ix.Docs(), ix.NonZeros(), ix.VocabSize())
	}
	s := ix.NewSearcher()
	if hits, err := s.Search(vec(0, 1, 1), 10); err != nil || len(hits) != 0 {
		t.Errorf("query without shared terms: %v %v", hits, err)
	}
	if _, err := s.Search(vec(8, 1, 1), 10); !errors.Is(err, ErrBadInput) {
		t.Errorf("term outside the vocabulary: %v", err)
	}
	if _, err := s.Search(vec(4, 1, 1, 1, 1, 1), 10); !errors.Is(err, ErrBadInput) {
		t.Errorf("terms not ascending: %v", err)
	}
}

func TestBuilderRefuses(t *testing.T) {
	b := NewBuilder(8, ScoreImpacts)
	if err := b.Add("a", vec(1, 1, 1)); err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]doc{
		"duplicate id":      {"a", vec(2, 1, 1)},
		"outside the vocab": {"b", vec(9, 1, 1)},
		"not ascending":     {"c", vec(2, 1, 1, 2, 1, 1)},
		"not aligned":       {"d", encode.SparseVec{Terms: []uint32{1}, Weights: []float32{1}}},
	} {
		if err := b.Add(d.id, d.v); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), d.id) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// memSource emits queries from memory.
func memSource(qs []Query) func(context.Context, func(Query) error) error {
	return func(ctx context.Context, emit func(Query) error) error {
		for _, q := range qs {
			if err := emit(q); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestSearchAllOrderAndNoHits(t *testing.T) {
	ix := handIndex(t, ScoreImpacts)
	var qs []Query
	for i := 0; i < 40; i++ {
		v := handQuery
		switch i % 3 {
		case 1:
			v = vec(0, 1, 1) // no hits: no lines
		case 2:
			v = vec(6, 1, 2) // d4 only: 2*7
		}
		qs = append(qs, Query{ID: fmt.Sprintf("q%d", i), Vec: v})
	}
	var want string
	for i := 0; i < 40; i++ {
		switch i % 3 {
		case 0:
			want += fmt.Sprintf("q%d Q0 d3 1 9 t\nq%[1]d Q0 d1 2 3 t\n", i)
		case 2:
			want += fmt.Sprintf("q%d Q0 d4 1 14 t\n", i)
		}
	}
	for _, workers := range []int{1, 4} {
		var buf bytes.Buffer
		rw, err := trec.NewRunWriter(&buf, "t")
		if err != nil {
			t.Fatal(err)
		}
		stats, err := SearchAll(context.Background(), ix, memSource(qs), RunOptions{K: 2, Workers: workers}, rw)
		if err != nil {
			t.Fatal(err)
		}
		rw.Flush()
		if buf.String() != want {
			t.Errorf("workers=%d: run\n%s\nwant\n%s", workers, buf.String(), want)
		}
		if stats.Queries != 40 || stats.NoHits != 13 || stats.Lines != 14*2+13 {
			t.Errorf("workers=%d: stats %+v", workers, stats)
		}
	}
}

func TestSearchAllErrors(t *testing.T) {
	ix := handIndex(t, ScoreImpacts)
	rw, _ := trec.NewRunWriter(&bytes.Buffer{}, "t")
	dup := []Query{{"a", handQuery}, {"b", handQuery}, {"a", handQuery}}
	if _, err := SearchAll(context.Background(), ix, memSource(dup), RunOptions{K: 5}, rw); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "query id a occurs twice") {
		t.Errorf("duplicate query id: %v", err)
	}
	bad := []Query{{"a", handQuery}, {"b", vec(9, 1, 1)}}
	if _, err := SearchAll(context.Background(), ix, memSource(bad), RunOptions{K: 5}, rw); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "query b") {
		t.Errorf("query term outside the vocabulary: %v", err)
	}
	// A cancelled context stops an endless source.
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	endless := func(ctx context.Context, emit func(Query) error) error {
		for {
			if n++; n == 100 {
				cancel()
			}
			if err := emit(Query{ID: fmt.Sprint(n), Vec: handQuery}); err != nil {
				return err
			}
		}
	}
	if _, err := SearchAll(ctx, ix, endless, RunOptions{K: 5, Workers: 2}, rw); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
