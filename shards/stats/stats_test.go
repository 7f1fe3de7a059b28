package stats

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/shards"
)

// randomRows draws rows with a few empty ones and weights that are exact in
// 8 significant bits (k/16 for k in 1..63), so that the weight histogram can
// be checked exactly.
func randomRows(rng *rand.Rand, n, vocab int) []shards.Row {
	rows := make([]shards.Row, n)
	for i := range rows {
		nnz := 0
		if rng.IntN(10) > 0 {
			nnz = 1 + rng.IntN(40)
		}
		set := map[uint32]bool{}
		for len(set) < nnz {
			// Skewed: low ids are frequent.
			set[uint32(rng.IntN(1+rng.IntN(vocab)))] = true
		}
		terms := make([]uint32, 0, nnz)
		for t := range set {
			terms = append(terms, t)
		}
		slices.Sort(terms)
		weights := make([]float32, nnz)
		impacts := make([]uint16, nnz)
		for k := range weights {
			weights[k] = float32(1+rng.IntN(63)) / 16
			impacts[k] = uint16(math.Round(float64(weights[k]) * 100))
		}
		rows[i] = shards.Row{DocID: fmt.Sprint(i), NumTokens: int32(2 + rng.IntN(500)), Truncated: rng.IntN(7) == 0,
			Vec: encode.SparseVec{Terms: terms, Weights: weights, Impacts: impacts}}
	}
	return rows
}

// TestStatsAgainstBruteForce compares every statistic with a computation
// over all rows kept in memory: sorted non-zero counts for the percentiles
// (rank min(n-1, floor(p*n))), counting loops for df and the histograms.
func TestStatsAgainstBruteForce(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		n := 1 + rng.IntN(400)
		rows := randomRows(rng, n, 300)
		s := New()
		for _, r := range rows {
			s.Add(r)
		}
		var nnz []int
		var total, tokens, empty, truncated int64
		df := map[uint32]int64{}
		var weights []float32
		for _, r := range rows {
			nnz = append(nnz, len(r.Vec.Terms))
			total += int64(len(r.Vec.Terms))
			tokens += int64(r.NumTokens)
			if len(r.Vec.Terms) == 0 {
				empty++
			}
			if r.Truncated {
				truncated++
			}
			for _, t := range r.Vec.Terms {
				df[t]++
			}
			weights = append(weights, r.Vec.Weights...)
		}
		sort.Ints(nnz)
		if s.Rows != int64(n) || s.Tokens != tokens || s.Empty != empty || s.Truncated != truncated || s.NNZTotal() != total {
			t.Fatalf("seed %d: counts %+v, want rows %d tokens %d empty %d truncated %d nnz %d", seed, s, n, tokens, empty, truncated, total)
		}
		for _, p := range []float64{0, 0.1, 0.5, 0.9, 0.99, 1} {
			want := nnz[min(n-1, int(p*float64(n)))]
			if got := s.NNZPercentile(p); got != want {
				t.Errorf("seed %d: p%g = %d, want %d", seed, p*100, got, want)
			}
		}
		if s.NNZMax() != nnz[n-1] || math.Abs(s.NNZMean()-float64(total)/float64(n)) > 1e-12 {
			t.Errorf("seed %d: max %d mean %g", seed, s.NNZMax(), s.NNZMean())
		}
		// Top terms: df descending, ids ascending among ties.
		type tdf struct {
			id uint32
			df int64
		}
		var all []tdf
		for id, c := range df {
			all = append(all, tdf{id, c})
		}
		sort.Slice(all, func(i, j int) bool {
			if all[i].df != all[j].df {
				return all[i].df > all[j].df
			}
			return all[i].id < all[j].id
		})
		top := s.TopTerms(15, nil)
		for i := range top {
			if top[i].ID != all[i].id || top[i].DF != all[i].df || top[i].Token != fmt.Sprintf("#%d", all[i].id) {
				t.Errorf("seed %d: top term %d is %+v, want %+v", seed, i, top[i], all[i])
			}
		}
		if s.Terms() != len(df) {
			t.Errorf("seed %d: %d terms, want %d", seed, s.Terms(), len(df))
		}
		// Non-zero histogram: every row in the bin that holds its count.
		bins := s.NNZHistogram(7)
		if len(bins) > 7 {
			t.Errorf("seed %d: %d bins for 7 asked", seed, len(bins))
		}
		for _, b := range bins {
			var want int64
			for _, v := range nnz {
				if float64(v) >= b.Lo && float64(v) < b.Hi {
					want++
				}
			}
			if b.Count != want {
				t.Errorf("seed %d: nnz bin [%g,%g) holds %d, want %d", seed, b.Lo, b.Hi, b.Count, want)
			}
		}
		if len(bins) > 0 && bins[len(bins)-1].Hi <= float64(nnz[n-1]) {
			t.Errorf("seed %d: last bin ends at %g, max is %d", seed, bins[len(bins)-1].Hi, nnz[n-1])
		}
		// Weight histogram: exact for these weights (the last bin is closed).
		wb := s.WeightHistogram(9)
		var sum int64
		for i, b := range wb {
			var want int64
			for _, w := range weights {
				if float64(w) >= b.Lo && (float64(w) < b.Hi || i == len(wb)-1 && float64(w) <= b.Hi) {
					want++
				}
			}
			if b.Count != want {
				t.Errorf("seed %d: weight bin %d [%g,%g) holds %d, want %d", seed, i, b.Lo, b.Hi, b.Count, want)
			}
			sum += b.Count
		}
		if sum != int64(len(weights)) || s.NonZeroWeights() != int64(len(weights)) {
			t.Errorf("seed %d: weight histogram holds %d of %d weights", seed, sum, len(weights))
		}

		// Merging the stats of a split equals the stats of the whole.
		cut := rng.IntN(n + 1)
		a, b := New(), New()
		for _, r := range rows[:cut] {
			a.Add(r)
		}
		for _, r := range rows[cut:] {
			b.Add(r)
		}
		a.Merge(b)
		if fmt.Sprint(a.Summary(nil, 20)) != fmt.Sprint(s.Summary(nil, 20)) ||
			fmt.Sprint(a.WeightHistogram(9)) != fmt.Sprint(wb) || a.MaxWeight() != s.MaxWeight() {
			t.Errorf("seed %d: merged stats differ from the whole", seed)
		}
	}
}

// TestHandComputed: non-zero counts 0 1 2 3 10.
func TestHandComputed(t *testing.T) {
	s := New()
	for _, n := range []int{3, 0, 10, 1, 2} {
		v := encode.SparseVec{}
		for k := range n {
			v.Terms = append(v.Terms, uint32(k))
			v.Weights = append(v.Weights, 1)
			v.Impacts = append(v.Impacts, 100)
		}
		s.Add(shards.Row{Vec: v, NumTokens: 5})
	}
	got := s.Summary([]string{"zero", "one"}, 3)
	// sorted 0 1 2 3 10: p50 rank 2 -> 2; p99 rank min(4, 4) -> 10.
	want := Summary{Rows: 5, Tokens: 25, Empty: 1, NNZ: NNZSummary{Mean: 3.2, P50: 2, P99: 10, Max: 10, Total: 16},
		TopTerms: []TermDF{{0, "zero", 4}, {1, "one", 3}, {2, "#2", 2}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("summary\n%+v\nwant\n%+v", got, want)
	}
	empty := New().Summary(nil, 3)
	if empty.NNZ != (NNZSummary{}) || len(empty.TopTerms) != 0 || empty.TopTerms == nil {
		t.Errorf("empty summary %+v (top terms must be an empty list, not null)", empty)
	}
	if New().NNZHistogram(5) != nil || New().WeightHistogram(5) != nil {
		t.Error("histograms of nothing should be nil")
	}
}

func TestHeaviest(t *testing.T) {
	v := encode.SparseVec{Terms: []uint32{1, 2, 3, 4, 5}, Weights: []float32{0.5, 2, 1, 2, 0.1}, Impacts: []uint16{50, 200, 100, 200, 10}}
	for _, c := range []struct {
		k    int
		want []int
	}{{3, []int{1, 3, 2}}, {10, []int{1, 3, 2, 0, 4}}, {0, []int{}}, {-1, []int{}}} {
		if got := Heaviest(v, c.k); !slices.Equal(got, c.want) {
			t.Errorf("Heaviest(k=%d) = %v, want %v", c.k, got, c.want)
		}
	}
}

func TestReadShardAndListShards(t *testing.T) {
	dir := t.TempDir()
	rows := randomRows(rand.New(rand.NewPCG(3, 3)), 2500, 100)
	w, err := shards.NewWriter(dir, "docs", shards.FormatArrow, shards.Metadata{}, shards.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"_manifest.docs.json", ".hidden.parquet", "b.parquet", "notes.txt"} {
		os.WriteFile(filepath.Join(dir, name), nil, 0o644)
	}
	files, err := ListShards(dir)
	if err != nil || !slices.Equal(files, []string{filepath.Join(dir, "b.parquet"), filepath.Join(dir, "docs.arrow")}) {
		t.Fatalf("ListShards = %v, %v", files, err)
	}
	s, want := New(), New()
	for _, r := range rows {
		want.Add(r)
	}
	var seen int64
	err = s.Read(context.Background(), filepath.Join(dir, "docs.arrow"), func(i int64, r shards.Row) error {
		if i != seen || r.DocID != rows[i].DocID {
			return fmt.Errorf("row %d arrives as %d (%s)", seen, i, r.DocID)
		}
		seen++
		return nil
	})
	if err != nil || seen != 2500 || fmt.Sprint(s.Summary(nil, 10)) != fmt.Sprint(want.Summary(nil, 10)) {
		t.Fatalf("Read: %v, %d rows, summary %+v", err, seen, s.Summary(nil, 10))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := New().Read(ctx, filepath.Join(dir, "docs.arrow"), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled read: %v", err)
	}
	if err := New().Read(context.Background(), filepath.Join(dir, "b.parquet"), nil); err == nil || !errors.Is(err, shards.ErrInvalidShard) {
		t.Errorf("empty file: %v, want ErrInvalidShard", err)
	}
	if v, err := Vocabulary(dir); v != nil || err != nil {
		t.Errorf("Vocabulary without a file: %v, %v", v, err)
	}
}
