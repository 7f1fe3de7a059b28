package encode

import "fmt"

// WindowAgg says how the vectors of a long document's windows combine into
// the document's vector.
type WindowAgg int

const (
	// AggMax takes each term's largest weight over the windows: the same as
	// max pooling over all windows' positions.
	AggMax WindowAgg = iota
	// AggSum adds each term's weights over the windows.
	AggSum
)

// String returns the flag spelling of a.
func (a WindowAgg) String() string {
	switch a {
	case AggMax:
		return "max"
	case AggSum:
		return "sum"
	default:
		return fmt.Sprintf("WindowAgg(%d)", int(a))
	}
}

// ParseWindowAgg parses "max" or "sum".
func ParseWindowAgg(s string) (WindowAgg, error) {
	switch s {
	case "max":
		return AggMax, nil
	case "sum":
		return AggSum, nil
	default:
		return 0, fmt.Errorf("unknown window aggregation %q: want max or sum", s)
	}
}

// Windows cuts n content tokens into windows of at most size tokens whose
// starts are stride apart, the last one ending at n, and returns their
// [start, end) bounds. At most maxWindows are returned (0: no bound); then
// the content past the last window is not covered. No content gives one
// empty window. size and stride must be > 0.
func Windows(n, size, stride, maxWindows int) [][2]int {
	if n <= size {
		return [][2]int{{0, n}}
	}
	var w [][2]int
	for start := 0; ; start += stride {
		if maxWindows > 0 && len(w) == maxWindows {
			return w
		}
		end := min(start+size, n)
		w = append(w, [2]int{start, end})
		if end == n {
			return w
		}
	}
}

// WindowsSpan is how many content tokens maxWindows windows of size tokens,
// stride apart, can cover (0 when maxWindows is 0: unbounded).
func WindowsSpan(size, stride, maxWindows int) int {
	if maxWindows <= 0 {
		return 0
	}
	return size + (maxWindows-1)*stride
}

// MergeWindow combines a window's vector v into the document's vector acc
// (both with ascending terms; weights only, impacts are left empty) and
// returns the result, which may reuse neither input's storage.
func MergeWindow(acc, v SparseVec, agg WindowAgg) SparseVec {
	out := SparseVec{Terms: make([]uint32, 0, max(len(acc.Terms), len(v.Terms))), Weights: make([]float32, 0, max(len(acc.Terms), len(v.Terms)))}
	i, j := 0, 0
	for i < len(acc.Terms) || j < len(v.Terms) {
		switch {
		case j == len(v.Terms) || (i < len(acc.Terms) && acc.Terms[i] < v.Terms[j]):
			out.Terms = append(out.Terms, acc.Terms[i])
			out.Weights = append(out.Weights, acc.Weights[i])
			i++
		case i == len(acc.Terms) || v.Terms[j] < acc.Terms[i]:
			out.Terms = append(out.Terms, v.Terms[j])
			out.Weights = append(out.Weights, v.Weights[j])
			j++
		default:
			w := max(acc.Weights[i], v.Weights[j])
			if agg == AggSum {
				w = acc.Weights[i] + v.Weights[j]
			}
			out.Terms = append(out.Terms, acc.Terms[i])
			out.Weights = append(out.Weights, w)
			i++
			j++
		}
	}
	return out
}

// SparsifySparse applies o (min weight, top-k, quantization) to a vector
// whose terms are ascending and weights > 0, as Sparsify does to a dense
// row with the same non-zero entries.
func SparsifySparse(v SparseVec, o SparsifyOptions) SparseVec {
	out := SparseVec{Terms: make([]uint32, 0, len(v.Terms)), Weights: make([]float32, 0, len(v.Terms)), Impacts: make([]uint16, 0, len(v.Terms))}
	for k, w := range v.Weights {
		if w > o.MinWeight && w > 0 {
			out.Terms = append(out.Terms, v.Terms[k])
			out.Weights = append(out.Weights, w)
		}
	}
	return pruneAndQuantize(out, o)
}
