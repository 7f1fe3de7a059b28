package search

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/splash-encode/splash/encode"
)

func randomVec(r *rand.Rand, vocab, nnz int) encode.SparseVec {
	seen := map[uint32]bool{}
	var v encode.SparseVec
	for len(v.Terms) < nnz {
		t := uint32(r.IntN(vocab))
		if !seen[t] {
			seen[t] = true
			v.Terms = append(v.Terms, t)
		}
	}
	slices.Sort(v.Terms)
	for range v.Terms {
		w := r.Float32()*2 + 0.01
		v.Weights = append(v.Weights, w)
		v.Impacts = append(v.Impacts, encode.Quantize(w, 100))
	}
	return v
}

// BenchmarkSearch scores 30-term queries exhaustively against 100,000
// documents of 120 terms over a BERT-sized vocabulary (12 M postings),
// top 1000, with integer impacts and with float weights.
func BenchmarkSearch(b *testing.B) {
	const vocab, docs = 30522, 100000
	r := rand.New(rand.NewPCG(3, 4))
	for _, scoring := range []Scoring{ScoreImpacts, ScoreWeights} {
		bld := NewBuilder(vocab, scoring)
		for d := 0; d < docs; d++ {
			if err := bld.Add(strconv.Itoa(d), randomVec(r, vocab, 120)); err != nil {
				b.Fatal(err)
			}
		}
		ix := bld.Index()
		queries := make([]encode.SparseVec, 64)
		for i := range queries {
			queries[i] = randomVec(r, vocab, 30)
		}
		b.Run(scoring.String(), func(b *testing.B) {
			s := ix.NewSearcher()
			i := 0
			for b.Loop() {
				if _, err := s.Search(queries[i%len(queries)], 1000); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
		})
	}
}
