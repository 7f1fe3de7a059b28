package ciff

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/shards"
)

// benchCorpus writes a shard of n documents of nnz random terms each over a
// BERT-sized vocabulary (about what SPLADE++ gives MS MARCO passages) and
// returns its path and the vocabulary.
func benchCorpus(b *testing.B, n, nnz int) (string, []string) {
	b.Helper()
	const vocabSize = 30522
	vocab := make([]string, vocabSize)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("t%05d", i)
	}
	r := rand.New(rand.NewPCG(1, 2))
	dir := b.TempDir()
	w, err := shards.NewWriter(dir, "bench", shards.FormatParquet, shards.Metadata{VocabSize: vocabSize, Scale: 100}, shards.WriterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for d := 0; d < n; d++ {
		seen := map[uint32]bool{}
		var terms []uint32
		for len(terms) < nnz {
			t := uint32(r.IntN(vocabSize))
			if !seen[t] {
				seen[t] = true
				terms = append(terms, t)
			}
		}
		slices.Sort(terms)
		v := encode.SparseVec{Terms: terms}
		for range terms {
			wt := r.Float32()*2 + 0.01
			v.Weights = append(v.Weights, wt)
			v.Impacts = append(v.Impacts, encode.Quantize(wt, 100))
		}
		if err := w.Write(shards.Row{DocID: fmt.Sprint(d), Vec: v}); err != nil {
			b.Fatal(err)
		}
	}
	out, err := w.Commit()
	if err != nil {
		b.Fatal(err)
	}
	return out.Path, vocab
}

// BenchmarkWrite inverts 20,000 documents of 120 terms (2.4 M postings)
// in memory and under a 4 MiB bound (sorted runs spilled and merged).
func BenchmarkWrite(b *testing.B) {
	path, vocab := benchCorpus(b, 20000, 120)
	for _, mem := range []int64{DefaultMemoryBytes, 4 << 20} {
		b.Run(fmt.Sprintf("memory=%dMiB", mem>>20), func(b *testing.B) {
			var st Stats
			for b.Loop() {
				var err error
				st, err = Write(context.Background(), io.Discard, []string{path}, vocab, Options{MemoryBytes: mem, TempDir: filepath.Dir(path)})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(st.Postings)*float64(b.N)/b.Elapsed().Seconds(), "postings/s")
			b.ReportMetric(float64(st.Runs), "runs")
		})
	}
}
