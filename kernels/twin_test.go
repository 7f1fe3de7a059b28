package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
)

// poolCase is one randomized pooling input.
type poolCase struct {
	name    string
	b, t, v int
	logits  []float32
	mask    []int64
}

// randomPoolCase fills logits with values that exercise the edges: ties
// (values from a small set), negative-only columns, documents whose mask is
// all zero, and padding positions holding huge values that must not count.
func randomPoolCase(rng *rand.Rand, name string, b, t, v int) poolCase {
	c := poolCase{name: name, b: b, t: t, v: v, logits: make([]float32, b*t*v), mask: make([]int64, b*t)}
	for i := 0; i < b; i++ {
		// Document kinds: 0 normal, 1 all padding, 2 negative only, 3 ties.
		kind := rng.IntN(4)
		if i == 0 {
			kind = 0
		}
		n := 1 + rng.IntN(t) // unmasked prefix length
		for p := 0; p < t; p++ {
			if kind != 1 && p < n {
				c.mask[i*t+p] = 1 + rng.Int64N(3) // any non-zero value means "token"
			}
			for j := 0; j < v; j++ {
				var x float32
				switch {
				case c.mask[i*t+p] == 0:
					x = 1e6 // padding: must never contribute
				case kind == 2:
					x = -rng.Float32()*5 - 1e-3
				case kind == 3:
					x = float32(rng.IntN(5)-2) * 0.5
				default:
					x = float32(rng.NormFloat64() * 3)
				}
				c.logits[(i*t+p)*v+j] = x
			}
		}
	}
	return c
}

func poolCases() []poolCase {
	rng := rand.New(rand.NewPCG(1, 2))
	return []poolCase{
		randomPoolCase(rng, "B1_T1_V1", 1, 1, 1),
		randomPoolCase(rng, "B1_T7_V300", 1, 7, 300),
		randomPoolCase(rng, "B5_T13_V257", 5, 13, 257),
		randomPoolCase(rng, "B8_T33_V1031", 8, 33, 1031),
		randomPoolCase(rng, "B16_T4_V30522", 16, 4, 30522),
	}
}

// poolReference64 is the definition written directly from the papers, in
// float64, applying the activation before reducing.
func poolReference64(c poolCase, sum bool) []float64 {
	out := make([]float64, c.b*c.v)
	for i := 0; i < c.b; i++ {
		for p := 0; p < c.t; p++ {
			if c.mask[i*c.t+p] == 0 {
				continue
			}
			for j := 0; j < c.v; j++ {
				a := math.Log1p(math.Max(float64(c.logits[(i*c.t+p)*c.v+j]), 0))
				if sum {
					out[i*c.v+j] += a
				} else if a > out[i*c.v+j] {
					out[i*c.v+j] = a
				}
			}
		}
	}
	return out
}

func TestPoolMaxTwinMatchesReference(t *testing.T) {
	for _, c := range poolCases() {
		t.Run(c.name, func(t *testing.T) {
			out := make([]float32, c.b*c.v)
			for i := range out {
				out[i] = -7 // must be overwritten
			}
			if err := PoolMaxTwin(c.logits, c.mask, c.b, c.t, c.v, out); err != nil {
				t.Fatal(err)
			}
			ref := poolReference64(c, false)
			for i, want := range ref {
				// Reduce-then-activate equals activate-then-reduce exactly;
				// both round log1p once to float32.
				if out[i] != float32(want) {
					t.Fatalf("out[%d][%d] = %v, want %v", i/c.v, i%c.v, out[i], float32(want))
				}
			}
		})
	}
}

func TestPoolSumTwinMatchesReference(t *testing.T) {
	for _, c := range poolCases() {
		t.Run(c.name, func(t *testing.T) {
			out := make([]float32, c.b*c.v)
			if err := PoolSumTwin(c.logits, c.mask, c.b, c.t, c.v, out); err != nil {
				t.Fatal(err)
			}
			ref := poolReference64(c, true)
			// float32 accumulation of t positive terms: relative error below t*2^-24.
			tol := float64(c.t+1) * 0x1p-24
			for i, want := range ref {
				got := float64(out[i])
				if math.Abs(got-want) > tol*want {
					t.Fatalf("out[%d][%d] = %v, want %v (rel tol %g)", i/c.v, i%c.v, got, want, tol)
				}
			}
		})
	}
}

func TestPoolTwinsEdgeRows(t *testing.T) {
	// Row 0: all padding. Row 1: negative only. Row 2: NaN and a maximum at
	// the last position. Row 3: +Inf.
	const b, tt, v = 4, 3, 2
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	logits := []float32{
		5, 5, 6, 6, 7, 7,
		-1, -2, -3, -4, -0.5, -0.25,
		nan, 1, 2, nan, 3, 0.5,
		inf, 1, 2, 2, 0, 0,
	}
	mask := []int64{0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1}
	out := make([]float32, b*v)
	if err := PoolMaxTwin(logits, mask, b, tt, v, out); err != nil {
		t.Fatal(err)
	}
	want := []float32{0, 0, 0, 0, log1p32(3), log1p32(1), inf, log1p32(1)}
	for i := range want {
		if out[i] != want[i] {
			t.Errorf("max out[%d] = %v, want %v", i, out[i], want[i])
		}
	}
	if err := PoolSumTwin(logits, mask, b, tt, v, out); err != nil {
		t.Fatal(err)
	}
	want = []float32{0, 0, 0, 0, log1p32(2) + log1p32(3), log1p32(1) + log1p32(0.5), inf, log1p32(1)}
	for i := range want {
		if out[i] != want[i] {
			t.Errorf("sum out[%d] = %v, want %v", i, out[i], want[i])
		}
	}
}

func TestPoolTwinsRejectBadShapes(t *testing.T) {
	for _, tc := range []struct {
		name          string
		nl, nm, no    int
		b, t, v       int
		wantSubstring string
	}{
		{"zero b", 0, 0, 0, 0, 1, 1, "> 0"},
		{"short logits", 5, 2, 2, 1, 2, 3, "logits has 5"},
		{"short mask", 6, 1, 3, 1, 2, 3, "mask has 1"},
		{"short out", 6, 2, 2, 1, 2, 3, "out has 2"},
	} {
		err := PoolMaxTwin(make([]float32, tc.nl), make([]int64, tc.nm), tc.b, tc.t, tc.v, make([]float32, tc.no))
		if err == nil || !strings.Contains(err.Error(), tc.wantSubstring) {
			t.Errorf("%s: err = %v, want one containing %q", tc.name, err, tc.wantSubstring)
		}
	}
	if _, _, _, err := SparsifyTwin(make([]float32, 4), 2, 2, float32(math.NaN()), 0); err == nil {
		t.Error("SparsifyTwin accepted a NaN min-weight")
	}
	if _, _, _, err := SparsifyTwin(make([]float32, 4), 2, 2, 0, -1); err == nil {
		t.Error("SparsifyTwin accepted top-k -1")
	}
	if _, _, _, err := SparsifyTwin(make([]float32, 3), 2, 2, 0, 0); err == nil {
		t.Error("SparsifyTwin accepted 3 values for 2x2")
	}
}

// sparsifyReference is the sort-based definition (as encode.Sparsify): keep
// w > minWeight && w > 0, then the topK largest (ties: lower term id), in
// ascending term order.
func sparsifyReference(pooled []float32, b, v int, minWeight float32, topK int) (offsets, terms []uint32, weights []float32) {
	offsets = make([]uint32, b+1)
	for i := 0; i < b; i++ {
		var idx []int
		for j := 0; j < v; j++ {
			if w := pooled[i*v+j]; w > minWeight && w > 0 {
				idx = append(idx, j)
			}
		}
		if topK > 0 && len(idx) > topK {
			row := pooled[i*v : (i+1)*v]
			sort.SliceStable(idx, func(a, c int) bool { return row[idx[a]] > row[idx[c]] })
			idx = idx[:topK]
			sort.Ints(idx)
		}
		for _, j := range idx {
			terms = append(terms, uint32(j))
			weights = append(weights, pooled[i*v+j])
		}
		offsets[i+1] = uint32(len(terms))
	}
	return offsets, terms, weights
}

// randomPooled makes pooled rows with many ties, zeros, negatives, NaN, +Inf,
// empty rows and tiny denormal weights.
func randomPooled(rng *rand.Rand, b, v int) []float32 {
	p := make([]float32, b*v)
	for i := 0; i < b; i++ {
		kind := rng.IntN(5)
		density := rng.Float64()
		for j := 0; j < v; j++ {
			var w float32
			if rng.Float64() < density {
				switch kind {
				case 0: // continuous
					w = rng.Float32() * 3
				case 1: // heavy ties
					w = float32(rng.IntN(4)) * 0.25
				case 2: // empty row
					w = 0
				case 3: // odd values
					switch rng.IntN(6) {
					case 0:
						w = float32(math.NaN())
					case 1:
						w = float32(math.Inf(1))
					case 2:
						w = -rng.Float32()
					case 3:
						w = math.Float32frombits(1 + rng.Uint32N(100)) // denormal
					case 4:
						w = float32(math.Copysign(0, -1))
					default:
						w = rng.Float32()
					}
				default: // few distinct values
					w = []float32{0.1, 0.7, 0.7, 2}[rng.IntN(4)]
				}
			}
			p[i*v+j] = w
		}
	}
	return p
}

func sameCSR(t *testing.T, label string, gotO, gotT []uint32, gotW []float32, wantO, wantT []uint32, wantW []float32) {
	t.Helper()
	if len(gotO) != len(wantO) || len(gotT) != len(wantT) || len(gotW) != len(wantW) {
		t.Fatalf("%s: lengths offsets/terms/weights = %d/%d/%d, want %d/%d/%d",
			label, len(gotO), len(gotT), len(gotW), len(wantO), len(wantT), len(wantW))
	}
	for i := range wantO {
		if gotO[i] != wantO[i] {
			t.Fatalf("%s: offsets[%d] = %d, want %d", label, i, gotO[i], wantO[i])
		}
	}
	for i := range wantT {
		if gotT[i] != wantT[i] || math.Float32bits(gotW[i]) != math.Float32bits(wantW[i]) {
			t.Fatalf("%s: entry %d = (%d, %v), want (%d, %v)", label, i, gotT[i], gotW[i], wantT[i], wantW[i])
		}
	}
}

func TestSparsifyTwinMatchesSortReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	shapes := []struct{ b, v int }{{1, 1}, {1, 5}, {3, 31}, {7, 257}, {4, 1000}, {2, 30522}}
	for _, sh := range shapes {
		pooled := randomPooled(rng, sh.b, sh.v)
		for _, minW := range []float32{0, 0.1, 0.7, 5} {
			for _, k := range []int{0, 1, 2, 3, 10, 100, sh.v, sh.v + 1} {
				o, tm, w, err := SparsifyTwin(pooled, sh.b, sh.v, minW, k)
				if err != nil {
					t.Fatal(err)
				}
				ro, rt, rw := sparsifyReference(pooled, sh.b, sh.v, minW, k)
				label := fmt.Sprintf("b=%d v=%d minWeight=%v k=%d", sh.b, sh.v, minW, k)
				sameCSR(t, label, o, tm, w, ro, rt, rw)
				for i := 0; i < sh.b; i++ {
					for n := o[i] + 1; n < o[i+1]; n++ {
						if tm[n] <= tm[n-1] {
							t.Fatalf("%s: document %d terms not ascending", label, i)
						}
					}
				}
			}
		}
	}
}

func TestSparsifyTwinTies(t *testing.T) {
	// Five equal weights and k=3: the three lowest term ids win.
	pooled := []float32{0, 1, 0, 1, 1, 2, 1, 1}
	o, tm, w, err := SparsifyTwin(pooled, 1, len(pooled), 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	sameCSR(t, "ties", o, tm, w, []uint32{0, 3}, []uint32{1, 3, 5}, []float32{1, 1, 2})
}

func TestEmbeddedPTX(t *testing.T) {
	for _, m := range []struct {
		name, ptx string
		entries   []string
	}{
		{"pool.ptx", PoolPTX, []string{EntryPoolMax, EntryPoolSum}},
		{"sparsify.ptx", SparsifyPTX, []string{EntrySparsifySelect, EntrySparsifyWrite}},
	} {
		if !strings.Contains(m.ptx, ".target sm_80") {
			t.Errorf("%s does not target sm_80 (%s)", m.name, PTXArch)
		}
		for _, e := range m.entries {
			if !strings.Contains(m.ptx, ".entry "+e+"(") {
				t.Errorf("%s has no .entry %s", m.name, e)
			}
		}
	}
}
