package cuda

import (
	"cmp"
	"slices"
)

// TopOverlap is the share of the k largest entries of want (the reference)
// that are also among the k largest entries of got, counting only entries
// of want above zero (a document may have fewer than k terms). Ties are
// broken by the lower index. It is 1 when want has no positive entry.
func TopOverlap(want, got []float64, k int) float64 {
	top := func(x []float64) []int {
		idx := make([]int, 0, len(x))
		for j, v := range x {
			if v > 0 {
				idx = append(idx, j)
			}
		}
		slices.SortFunc(idx, func(a, b int) int {
			if c := cmp.Compare(x[b], x[a]); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
		return idx[:min(k, len(idx))]
	}
	w, g := top(want), top(got)
	if len(w) == 0 {
		return 1
	}
	in := make(map[int]bool, len(g))
	for _, j := range g {
		in[j] = true
	}
	hit := 0
	for _, j := range w {
		if in[j] {
			hit++
		}
	}
	return float64(hit) / float64(len(w))
}
