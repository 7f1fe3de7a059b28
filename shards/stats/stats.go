// Package stats computes what `splash inspect` and `splash report` say
// about impact shards: row, token, empty and truncated counts, the
// distribution of non-zeros per row, the distribution of weights, and the
// document frequency of every term.
//
// A Stats streams rows in memory bounded by the vocabulary, never by the
// number of rows: it keeps a count per distinct non-zero count, per term and
// per weight bucket, and its percentiles are exact, read off those counts.
// Weights are bucketed by their float32 value truncated to its 8 leading
// significant bits (the bfloat16 of the value, rounded toward zero), so the
// weight histogram places a weight at most 1/128 of its value too low.
package stats

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/shards"
)

// Stats accumulates statistics of impact shard rows. The zero value is not
// usable; call New. A Stats is not safe for concurrent use.
type Stats struct {
	Rows      int64 // rows added
	Tokens    int64 // sum of num_tokens
	Empty     int64 // rows with no non-zero term
	Truncated int64 // rows marked truncated

	nnzTotal int64
	nnz      map[int]int64    // rows per non-zero count
	df       map[uint32]int64 // rows containing each term
	weights  map[uint16]int64 // non-zeros per truncated weight (bfloat16 bits)
	maxW     float32
}

// New returns an empty Stats.
func New() *Stats {
	return &Stats{nnz: map[int]int64{}, df: map[uint32]int64{}, weights: map[uint16]int64{}}
}

// Add counts one row.
func (s *Stats) Add(r shards.Row) {
	s.Rows++
	s.Tokens += int64(r.NumTokens)
	n := r.Vec.Len()
	s.nnz[n]++
	s.nnzTotal += int64(n)
	if n == 0 {
		s.Empty++
	}
	if r.Truncated {
		s.Truncated++
	}
	for _, t := range r.Vec.Terms {
		s.df[t]++
	}
	for _, w := range r.Vec.Weights {
		if !(w > 0) || math.IsInf(float64(w), 0) {
			continue // not a valid impact shard weight; the shard reader refuses those
		}
		s.weights[weightKey(w)]++
		s.maxW = max(s.maxW, w)
	}
}

// Merge adds the counts of o to s.
func (s *Stats) Merge(o *Stats) {
	s.Rows += o.Rows
	s.Tokens += o.Tokens
	s.Empty += o.Empty
	s.Truncated += o.Truncated
	s.nnzTotal += o.nnzTotal
	for k, v := range o.nnz {
		s.nnz[k] += v
	}
	for k, v := range o.df {
		s.df[k] += v
	}
	for k, v := range o.weights {
		s.weights[k] += v
	}
	s.maxW = max(s.maxW, o.maxW)
}

// weightKey is the bfloat16 of w, rounded toward zero: the float32's sign,
// exponent and 7 leading mantissa bits.
func weightKey(w float32) uint16 { return uint16(math.Float32bits(w) >> 16) }

func keyWeight(k uint16) float64 { return float64(math.Float32frombits(uint32(k) << 16)) }

// NNZTotal is the number of non-zeros of all rows.
func (s *Stats) NNZTotal() int64 { return s.nnzTotal }

// NNZMean is the mean number of non-zeros per row (0 without rows).
func (s *Stats) NNZMean() float64 {
	if s.Rows == 0 {
		return 0
	}
	return float64(s.nnzTotal) / float64(s.Rows)
}

// NNZPercentile returns the non-zero count at rank min(n-1, floor(p*n)) of
// the n rows sorted by non-zero count (0 without rows): p 0.5 is the median,
// p 1 the maximum.
func (s *Stats) NNZPercentile(p float64) int {
	if s.Rows == 0 {
		return 0
	}
	rank := min(s.Rows-1, int64(p*float64(s.Rows)))
	values := s.nnzValues()
	var seen int64
	for _, v := range values {
		seen += s.nnz[v]
		if seen > rank {
			return v
		}
	}
	return values[len(values)-1]
}

// NNZMax is the largest number of non-zeros of a row.
func (s *Stats) NNZMax() int {
	m := 0
	for v := range s.nnz {
		m = max(m, v)
	}
	return m
}

func (s *Stats) nnzValues() []int {
	values := make([]int, 0, len(s.nnz))
	for v := range s.nnz {
		values = append(values, v)
	}
	slices.Sort(values)
	return values
}

// DF returns the number of rows that contain term.
func (s *Stats) DF(term uint32) int64 { return s.df[term] }

// Terms is the number of distinct terms seen.
func (s *Stats) Terms() int { return len(s.df) }

// NonZeroWeights is the number of weights counted in the weight histogram.
func (s *Stats) NonZeroWeights() int64 {
	var n int64
	for _, c := range s.weights {
		n += c
	}
	return n
}

// MaxWeight is the largest weight seen (0 without any).
func (s *Stats) MaxWeight() float32 { return s.maxW }

// TermDF is a term with its document frequency.
type TermDF struct {
	ID    uint32 `json:"id"`
	Token string `json:"token"`
	DF    int64  `json:"df"`
}

// TopTerms returns the k terms found in most rows, most frequent first, ties
// by ascending id, with their tokens from vocab (see TokenName).
func (s *Stats) TopTerms(k int, vocab []string) []TermDF {
	if k <= 0 {
		return nil
	}
	terms := make([]TermDF, 0, len(s.df))
	for t, n := range s.df {
		terms = append(terms, TermDF{ID: t, DF: n})
	}
	slices.SortFunc(terms, func(a, b TermDF) int {
		if c := cmp.Compare(b.DF, a.DF); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	terms = terms[:min(k, len(terms))]
	for i := range terms {
		terms[i].Token = TokenName(vocab, terms[i].ID)
	}
	return terms
}

// TokenName is the token of id in vocab, or "#id" when vocab has no such
// entry (no vocabulary file, or an id beyond it).
func TokenName(vocab []string, id uint32) string {
	if int64(id) < int64(len(vocab)) {
		return vocab[id]
	}
	return fmt.Sprintf("#%d", id)
}

// Bin is one bar of a histogram: Count values in [Lo, Hi).
type Bin struct {
	Lo, Hi float64
	Count  int64
}

// NNZHistogram returns at most bins bins of equal integer width covering
// 0..NNZMax: the number of rows per range of non-zero counts. Exact. Nil
// without rows.
func (s *Stats) NNZHistogram(bins int) []Bin {
	if s.Rows == 0 || bins <= 0 {
		return nil
	}
	top := s.NNZMax() + 1
	width := (top + bins - 1) / bins
	out := make([]Bin, (top+width-1)/width)
	for i := range out {
		out[i] = Bin{Lo: float64(i * width), Hi: float64((i + 1) * width)}
	}
	for v, c := range s.nnz {
		out[v/width].Count += c
	}
	return out
}

// WeightHistogram returns bins bins of equal width covering [0, MaxWeight]:
// the number of non-zeros per range of weights, each weight placed by its
// truncated value (see the package documentation). Nil without weights.
func (s *Stats) WeightHistogram(bins int) []Bin {
	if len(s.weights) == 0 || bins <= 0 {
		return nil
	}
	top := float64(s.maxW)
	width := top / float64(bins)
	out := make([]Bin, bins)
	for i := range out {
		out[i] = Bin{Lo: float64(i) * width, Hi: float64(i+1) * width}
	}
	out[bins-1].Hi = top
	for k, c := range s.weights {
		i := 0
		if width > 0 {
			i = min(bins-1, int(keyWeight(k)/width))
		}
		out[i].Count += c
	}
	return out
}

// NNZSummary describes the non-zeros per row.
type NNZSummary struct {
	Mean  float64 `json:"mean"`
	P50   int     `json:"p50"`
	P99   int     `json:"p99"`
	Max   int     `json:"max"`
	Total int64   `json:"total"`
}

// Summary is what inspect prints about a set of rows.
type Summary struct {
	Rows      int64      `json:"rows"`
	Tokens    int64      `json:"tokens"`
	Empty     int64      `json:"empty"`
	Truncated int64      `json:"truncated"`
	NNZ       NNZSummary `json:"nnz"`
	TopTerms  []TermDF   `json:"top_terms"`
}

// Summary returns the counts, the non-zero statistics and the topTerms terms
// in most rows.
func (s *Stats) Summary(vocab []string, topTerms int) Summary {
	top := s.TopTerms(topTerms, vocab)
	if top == nil {
		top = []TermDF{}
	}
	return Summary{
		Rows: s.Rows, Tokens: s.Tokens, Empty: s.Empty, Truncated: s.Truncated,
		NNZ: NNZSummary{
			Mean: s.NNZMean(), P50: s.NNZPercentile(0.5), P99: s.NNZPercentile(0.99),
			Max: s.NNZMax(), Total: s.nnzTotal,
		},
		TopTerms: top,
	}
}

// Heaviest returns the positions in v of its k heaviest terms, heaviest
// first, ties in term order.
func Heaviest(v encode.SparseVec, k int) []int {
	order := make([]int, v.Len())
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(v.Weights[b], v.Weights[a]) })
	return order[:max(0, min(k, len(order)))]
}

// Read streams the impact shard at path into s, calling each (when not nil)
// with every row's index and the row after counting it. It stops at the
// first error, the context's included.
func (s *Stats) Read(ctx context.Context, path string, each func(i int64, r shards.Row) error) error {
	var i int64
	err := shards.ReadShard(path, func(r shards.Row) error {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("read %s: row %d: %w", path, i, err)
			}
		}
		s.Add(r)
		if each != nil {
			if err := each(i, r); err != nil {
				return err
			}
		}
		i++
		return nil
	})
	return err
}

// ListShards returns the impact shards of an output directory, sorted:
// *.parquet and *.arrow files whose names start with neither "_" (sidecar
// files) nor "." (hidden files).
func ListShards(dir string) ([]string, error) {
	var files []string
	for _, pattern := range []string{"*.parquet", "*.arrow"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", dir, err)
		}
		for _, f := range m {
			if b := filepath.Base(f); !strings.HasPrefix(b, "_") && !strings.HasPrefix(b, ".") {
				files = append(files, f)
			}
		}
	}
	sort.Strings(files)
	return files, nil
}

// Vocabulary reads dir/_vocabulary.parquet; a missing file gives a nil
// vocabulary and no error (tokens are then shown as "#id").
func Vocabulary(dir string) ([]string, error) {
	vocab, err := shards.ReadVocabulary(filepath.Join(dir, shards.VocabularyFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return vocab, nil
}
