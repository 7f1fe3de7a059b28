package testmodel

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode/tokenizer"
)

// The repository's test data (testdata/README.md).
var (
	testdataDir   = filepath.Join("..", "..", "testdata")
	bertTokenizer = filepath.Join(testdataDir, "tokenizers", "bert-base-uncased", "tokenizer.json")
	cranfieldPath = filepath.Join(testdataDir, "cranfield", "cran.all.1400")
)

// requireFile fails the test when a file of the repository's test data is
// missing.
func requireFile(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("test data missing (see testdata/README.md): %v", err)
	}
}

// cranfieldTexts returns the .W sections of the first n Cranfield documents
// (all of them when n <= 0).
func cranfieldTexts(t testing.TB, n int) []string {
	t.Helper()
	requireFile(t, cranfieldPath)
	f, err := os.Open(cranfieldPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var docs []string
	var cur strings.Builder
	inW, started := false, false
	flush := func() {
		if started {
			docs = append(docs, strings.TrimSpace(cur.String()))
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ".I "):
			flush()
			started, inW = true, false
		case line == ".W":
			inW = true
		case len(line) == 2 && line[0] == '.' && strings.ContainsRune("TABW", rune(line[1])):
			inW = false
		case inW:
			cur.WriteString(line)
			cur.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	flush()
	if n > 0 && n < len(docs) {
		docs = docs[:n]
	}
	return docs
}

// cranfieldSample tokenizes n Cranfield documents spread evenly over the
// collection with the project's tokenizer (max_length 512).
func cranfieldSample(t testing.TB, n int) [][]int32 {
	t.Helper()
	texts := cranfieldTexts(t, 0)
	tk, err := tokenizer.Load(bertTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	step := max(1, len(texts)/n)
	var docs [][]int32
	for i := 0; i < len(texts) && len(docs) < n; i += step {
		docs = append(docs, tk.Encode(texts[i], 512).IDs)
	}
	return docs
}

// docStats summarises the SPLADE max-pooled vectors of a document sample.
type docStats struct {
	nnz       []int   // sorted non-zero counts
	maxAbs    float64 // largest |logit| seen
	ownShare  float64 // mean share of non-zero terms that are tokens of the document
	ownRecall float64 // mean share of the document's distinct tokens that are non-zero
}

// sparsityStats pools every document with the oracle ("max" pooling of the
// raw logits, then relu and log1p, which is exact since both are monotone).
func sparsityStats(t testing.TB, o *Oracle, docs [][]int32) docStats {
	t.Helper()
	nnz := make([]int, len(docs))
	shares := make([]float64, len(docs))
	recalls := make([]float64, len(docs))
	absMax := make([]float64, len(docs))
	for d, ids := range docs {
		logits := o.Logits(ids)
		if logits == nil {
			t.Fatalf("document %d rejected by the oracle: %v", d, o.Validate(ids))
		}
		pooled := make([]float64, o.VocabSize())
		copy(pooled, logits[0])
		for _, row := range logits {
			for j, z := range row {
				pooled[j] = max(pooled[j], z)
				absMax[d] = max(absMax[d], z, -z)
			}
		}
		own := map[int]bool{}
		for _, id := range ids {
			own[int(id)] = true
		}
		var n, in int
		for j, z := range pooled {
			if z > 0 {
				n++
				if own[j] {
					in++
				}
			}
		}
		nnz[d] = n
		if n > 0 {
			shares[d] = float64(in) / float64(n)
		}
		recalls[d] = float64(in) / float64(len(own))
	}
	var st docStats
	for d := range docs {
		st.maxAbs = max(st.maxAbs, absMax[d])
		st.ownShare += shares[d] / float64(len(docs))
		st.ownRecall += recalls[d] / float64(len(docs))
	}
	sort.Ints(nnz)
	st.nnz = nnz
	return st
}
