package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

var dtypes = []DType{F32, BF16, F16}

// halfUlp is the largest relative error of one rounding to dt: half an ulp
// of a value whose mantissa is 1 (7, 10 and 23 fraction bits).
func halfUlp(dt DType) float64 {
	switch dt {
	case BF16:
		return 0x1p-8
	case F16:
		return 0x1p-11
	}
	return 0x1p-24
}

// relTol is the relative error allowed for a value computed in float32 and
// stored as dt: the final rounding for the half formats, the float32
// computation (1e-5) for F32. Tests add an absolute term for the float32
// rounding of intermediate values.
func relTol(dt DType) float64 { return max(halfUlp(dt), 1e-5) }

// randVals returns n values offset + scale*N(0,1), representable in dt.
func randVals(rng *rand.Rand, dt DType, n int, scale, offset float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = dt.Round(float32(offset + scale*rng.NormFloat64()))
	}
	return x
}

// offsetsOf returns the cumulative offsets of documents with the given
// lengths.
func offsetsOf(lengths ...int) []int32 {
	off := make([]int32, len(lengths)+1)
	for i, n := range lengths {
		off[i+1] = off[i] + int32(n)
	}
	return off
}

// closeTo reports got within abs + rel*|want| of want.
func closeTo(got float32, want, rel, abs float64) bool {
	return math.Abs(float64(got)-want) <= abs+rel*math.Abs(want)
}

// layerNorm64 is LayerNorm written from its definition in float64.
func layerNorm64(x []float64, gamma, beta []float32, eps float32) []float64 {
	var mean, variance float64
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	for _, v := range x {
		variance += (v - mean) * (v - mean)
	}
	variance /= float64(len(x))
	out := make([]float64, len(x))
	for j, v := range x {
		out[j] = (v-mean)/math.Sqrt(variance+float64(eps))*float64(gamma[j]) + float64(beta[j])
	}
	return out
}

// checkRow compares a row of twin output with its float64 reference,
// and checks that every value is representable in dt.
func checkRow(t *testing.T, label string, dt DType, got []float32, want []float64, abs float64) {
	t.Helper()
	for j, w := range want {
		if !closeTo(got[j], w, relTol(dt), abs) {
			t.Fatalf("%s: [%d] = %v, want %v (rel %g, abs %g)", label, j, got[j], w, relTol(dt), abs)
		}
		if dt.Round(got[j]) != got[j] {
			t.Fatalf("%s: [%d] = %v is not a %v value", label, j, got[j], dt)
		}
	}
}

func TestEmbedLNTwinMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, dt := range dtypes {
		for _, h := range []int{8, 96, 100, 768, 4096} {
			for _, withTypes := range []bool{true, false} {
				name := fmt.Sprintf("%v/h%d/types=%v", dt, h, withTypes)
				t.Run(name, func(t *testing.T) {
					const vocab, maxPos, nTypes = 50, 40, 2
					tokens := 7
					if h == 4096 {
						tokens = 3
					}
					// The offset of the embeddings makes a variance taken
					// around 0 instead of the mean visibly wrong.
					word := randVals(rng, dt, vocab*h, 1, 2)
					posEmb := randVals(rng, dt, maxPos*h, 0.5, 0)
					gamma := randVals(rng, F32, h, 0.2, 1)
					beta := randVals(rng, F32, h, 0.1, 0)
					ids, pos, types := make([]int32, tokens), make([]int32, tokens), make([]int32, tokens)
					for i := range ids {
						ids[i], pos[i], types[i] = rng.Int32N(vocab), rng.Int32N(maxPos), rng.Int32N(nTypes)
					}
					ids[0], pos[tokens-1] = vocab-1, maxPos-1 // the last rows of the tables
					var typeEmb []float32
					if withTypes {
						typeEmb = randVals(rng, dt, nTypes*h, 0.3, 0)
					} else {
						types = nil
					}
					const eps = 1e-12
					out := make([]float32, tokens*h)
					if err := EmbedLNTwin(dt, ids, pos, types, word, posEmb, typeEmb, gamma, beta, h, eps, out); err != nil {
						t.Fatal(err)
					}
					for i := 0; i < tokens; i++ {
						x := make([]float64, h)
						for j := range x {
							x[j] = float64(word[int(ids[i])*h+j]) + float64(posEmb[int(pos[i])*h+j])
							if withTypes {
								x[j] += float64(typeEmb[int(types[i])*h+j])
							}
						}
						checkRow(t, fmt.Sprintf("token %d", i), dt, out[i*h:(i+1)*h], layerNorm64(x, gamma, beta, eps), 1e-5)
					}
				})
			}
		}
	}
}

func TestEmbedLNTwinEps(t *testing.T) {
	// A constant row has variance 0: the output is beta, whatever gamma, as
	// long as eps > 0 keeps the division finite.
	h := 5
	word := []float32{3, 3, 3, 3, 3}
	pos := make([]float32, h)
	gamma := []float32{1, 2, 3, 4, 5}
	beta := []float32{0.5, -1, 0, 2, 0.25}
	out := make([]float32, h)
	if err := EmbedLNTwin(F32, []int32{0}, []int32{0}, nil, word, pos, nil, gamma, beta, h, 1e-5, out); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out, beta) {
		t.Errorf("constant row: out = %v, want beta %v", out, beta)
	}
}

func gelu64(x float64, act Activation) float64 {
	if act == GELUTanh {
		return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
	}
	return 0.5 * x * (1 + math.Erf(x/math.Sqrt2))
}

func TestBiasGELUTwinMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for _, dt := range dtypes {
		for _, act := range []Activation{GELUExact, GELUTanh} {
			for _, n := range []int{1, 37, 3072} {
				rows := 5
				x := randVals(rng, dt, rows*n, 2.5, 0)
				bias := randVals(rng, F32, n, 0.5, 0)
				x[0] = dt.Round(-12) // deep in the flat tail
				x0 := slices.Clone(x)
				if err := BiasGELUTwin(dt, x, bias, n, act); err != nil {
					t.Fatal(err)
				}
				for i, v := range x0 {
					in := float64(v) + float64(bias[i%n])
					want := gelu64(in, act)
					// Near 1+erf(x) = 0 float32 cancels: the absolute error
					// grows like 2^-24 * x^2.
					if !closeTo(x[i], want, relTol(dt), 3e-7*(1+in*in)) {
						t.Fatalf("%v act %d n %d: gelu(%v) = %v, want %v", dt, act, n, in, x[i], want)
					}
					if dt.Round(x[i]) != x[i] {
						t.Fatalf("%v: %v is not representable", dt, x[i])
					}
				}
			}
		}
	}
	// The two variants differ (by up to about 1e-3 near |x| = 2): a twin
	// that ignores act fails here.
	a, b := []float32{2}, []float32{2}
	if err := BiasGELUTwin(F32, a, []float32{0}, 1, GELUExact); err != nil {
		t.Fatal(err)
	}
	if err := BiasGELUTwin(F32, b, []float32{0}, 1, GELUTanh); err != nil {
		t.Fatal(err)
	}
	if a[0] == b[0] || !closeTo(a[0], gelu64(2, GELUExact), 1e-6, 0) || !closeTo(b[0], gelu64(2, GELUTanh), 1e-6, 0) {
		t.Errorf("gelu(2) = %v (exact), %v (tanh); want %v, %v", a[0], b[0], gelu64(2, GELUExact), gelu64(2, GELUTanh))
	}
}

func TestBiasResidualLNTwinMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for _, dt := range dtypes {
		for _, h := range []int{8, 96, 100, 768, 4096} {
			for _, mode := range []string{"bias+residual", "residual", "bias", "neither"} {
				t.Run(fmt.Sprintf("%v/h%d/%s", dt, h, mode), func(t *testing.T) {
					rows := 4
					y := randVals(rng, dt, rows*h, 1, 1.5)
					var bias, residual []float32
					if strings.Contains(mode, "bias") {
						bias = randVals(rng, F32, h, 0.3, 0.2)
					}
					if strings.Contains(mode, "residual") {
						residual = randVals(rng, dt, rows*h, 2, -1)
					}
					gamma := randVals(rng, F32, h, 0.2, 1)
					beta := randVals(rng, F32, h, 0.1, 0)
					const eps = 1e-5
					out := make([]float32, rows*h)
					if err := BiasResidualLNTwin(dt, y, bias, residual, gamma, beta, h, eps, out); err != nil {
						t.Fatal(err)
					}
					for r := 0; r < rows; r++ {
						x := make([]float64, h)
						for j := range x {
							x[j] = float64(y[r*h+j])
							if bias != nil {
								x[j] += float64(bias[j])
							}
							if residual != nil {
								x[j] += float64(residual[r*h+j])
							}
						}
						checkRow(t, fmt.Sprintf("row %d", r), dt, out[r*h:(r+1)*h], layerNorm64(x, gamma, beta, eps), 1e-5)
					}
					// In place over y, then over residual: the same values.
					inY := slices.Clone(y)
					if err := BiasResidualLNTwin(dt, inY, bias, residual, gamma, beta, h, eps, inY); err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(inY, out) {
						t.Fatal("out aliasing y gives other values")
					}
					if residual != nil {
						inR := slices.Clone(residual)
						if err := BiasResidualLNTwin(dt, y, bias, inR, gamma, beta, h, eps, inR); err != nil {
							t.Fatal(err)
						}
						if !slices.Equal(inR, out) {
							t.Fatal("out aliasing residual gives other values")
						}
					}
				})
			}
		}
	}
}

// attnCase is a packed batch for the attention kernels.
type attnCase struct {
	name       string
	lengths    []int
	heads, d   int
	l          int
	offsets    []int32
	tokens     int
	hiddenSize int
}

func attnCases() []attnCase {
	cs := []attnCase{
		{name: "one token", lengths: []int{1}, heads: 1, d: 8, l: 1},
		{name: "full and short", lengths: []int{7, 1, 3}, heads: 2, d: 8, l: 7},
		{name: "padded", lengths: []int{5, 2, 0, 9}, heads: 3, d: 12, l: 12},
		{name: "bert-like", lengths: []int{33, 64, 17}, heads: 12, d: 64, l: 64},
		{name: "d odd", lengths: []int{3, 4}, heads: 4, d: 5, l: 6},
	}
	for i := range cs {
		cs[i].offsets = offsetsOf(cs[i].lengths...)
		cs[i].tokens = int(cs[i].offsets[len(cs[i].lengths)])
		cs[i].hiddenSize = cs[i].heads * cs[i].d
	}
	return cs
}

func TestQKVScatterTwinMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	for _, dt := range dtypes {
		for _, c := range attnCases() {
			for _, withBias := range []bool{true, false} {
				t.Run(fmt.Sprintf("%v/%s/bias=%v", dt, c.name, withBias), func(t *testing.T) {
					h := c.hiddenSize
					qkv := randVals(rng, dt, c.tokens*3*h, 1, 0)
					var bias []float32
					if withBias {
						bias = randVals(rng, F32, 3*h, 0.5, 0)
					}
					n := len(c.lengths) * c.heads * c.l * c.d
					outs := [3][]float32{make([]float32, n), make([]float32, n), make([]float32, n)}
					for _, o := range outs {
						for i := range o {
							o[i] = float32(math.NaN()) // every value must be written
						}
					}
					if err := QKVScatterTwin(dt, qkv, bias, c.offsets, c.heads, c.d, c.l, outs[0], outs[1], outs[2]); err != nil {
						t.Fatal(err)
					}
					for s, o := range outs {
						for b, length := range c.lengths {
							for hh := 0; hh < c.heads; hh++ {
								for p := 0; p < c.l; p++ {
									for e := 0; e < c.d; e++ {
										got := o[((b*c.heads+hh)*c.l+p)*c.d+e]
										want := 0.0
										if p < length {
											tok := int(c.offsets[b]) + p
											col := s*h + hh*c.d + e
											want = float64(qkv[tok*3*h+col])
											if withBias {
												want += float64(bias[col])
											}
										}
										if !closeTo(got, want, halfUlp(dt), 0) {
											t.Fatalf("%c[%d][%d][%d][%d] = %v, want %v", "qkv"[s], b, hh, p, e, got, want)
										}
									}
								}
							}
						}
					}
				})
			}
		}
	}
}

func softmax64(x []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, float64(v))
	}
	out := make([]float64, len(x))
	var sum float64
	for j, v := range x {
		out[j] = math.Exp(float64(v) - m)
		sum += out[j]
	}
	for j := range out {
		out[j] /= sum
	}
	return out
}

func TestMaskedSoftmaxTwinMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(29, 30))
	cases := []struct {
		lengths  []int
		heads, l int
	}{
		{[]int{1}, 1, 1},
		{[]int{1, 5, 2}, 2, 5},
		{[]int{33, 0, 40}, 3, 40},
		{[]int{300, 257}, 2, 300},
		{[]int{1100, 1, 700}, 1, 1100}, // rows longer than a block
	}
	for _, dt := range dtypes {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%v/%v", dt, c.lengths), func(t *testing.T) {
				offsets := offsetsOf(c.lengths...)
				s := randVals(rng, dt, len(c.lengths)*c.heads*c.l*c.l, 3, 0)
				s0 := slices.Clone(s)
				if err := MaskedSoftmaxTwin(dt, s, offsets, c.heads, c.l); err != nil {
					t.Fatal(err)
				}
				for b, n := range c.lengths {
					for hh := 0; hh < c.heads; hh++ {
						for p := 0; p < c.l; p++ {
							at := ((b*c.heads+hh)*c.l + p) * c.l
							want := make([]float64, c.l)
							if p < n {
								copy(want, softmax64(s0[at:at+n]))
							}
							label := fmt.Sprintf("doc %d head %d row %d", b, hh, p)
							checkRow(t, label, dt, s[at:at+c.l], want, 1e-7)
						}
					}
				}
			})
		}
	}
}

func TestAttnGatherTwinMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for _, dt := range dtypes {
		for _, c := range attnCases() {
			h := c.hiddenSize
			cv := randVals(rng, dt, len(c.lengths)*c.heads*c.l*c.d, 1, 0)
			out := make([]float32, c.tokens*h)
			for i := range out {
				out[i] = float32(math.NaN())
			}
			if err := AttnGatherTwin(dt, cv, c.offsets, c.heads, c.d, c.l, out); err != nil {
				t.Fatal(err)
			}
			// The definition token by token: token i is position i-offsets[b]
			// of the document b whose range holds it.
			b := 0
			for i := 0; i < c.tokens; i++ {
				for int(c.offsets[b+1]) <= i {
					b++
				}
				p := i - int(c.offsets[b])
				for col := 0; col < h; col++ {
					want := cv[((b*c.heads+col/c.d)*c.l+p)*c.d+col%c.d]
					if got := out[i*h+col]; math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("%v %s: out[%d][%d] = %v, want %v", dt, c.name, i, col, got, want)
					}
				}
			}
		}
	}
}

func TestScatterGatherRoundTrip(t *testing.T) {
	// Scattering Q without bias and gathering it back is the identity on
	// the Q columns of the packed rows.
	rng := rand.New(rand.NewPCG(33, 34))
	for _, c := range attnCases() {
		h := c.hiddenSize
		qkv := randVals(rng, BF16, c.tokens*3*h, 1, 0)
		n := len(c.lengths) * c.heads * c.l * c.d
		q, k, v := make([]float32, n), make([]float32, n), make([]float32, n)
		if err := QKVScatterTwin(BF16, qkv, nil, c.offsets, c.heads, c.d, c.l, q, k, v); err != nil {
			t.Fatal(err)
		}
		out := make([]float32, c.tokens*h)
		if err := AttnGatherTwin(BF16, k, c.offsets, c.heads, c.d, c.l, out); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < c.tokens; i++ {
			if !slices.Equal(out[i*h:(i+1)*h], qkv[i*3*h+h:i*3*h+2*h]) {
				t.Fatalf("%s: token %d: gather(scatter(K)) differs from K", c.name, i)
			}
		}
	}
}

// poolChunkCase is a chunk of logits with its documents.
type poolChunkCase struct {
	rows, v, b int
	z, bias    []float32
	tokenDoc   []int32
}

// randomPoolChunk makes rows of random documents in ascending order with
// -1 rows between and inside them (holding huge values that must not
// count), documents of one row, and documents without rows.
func randomPoolChunk(rng *rand.Rand, dt DType, b, v int) poolChunkCase {
	var tokenDoc []int32
	for d := 0; d < b; d++ {
		n := []int{0, 1, 2, 5, 17}[rng.IntN(5)]
		for p := 0; p < n; p++ {
			if rng.IntN(4) == 0 {
				tokenDoc = append(tokenDoc, -1)
			}
			tokenDoc = append(tokenDoc, int32(d))
		}
	}
	tokenDoc = append(tokenDoc, -1)
	c := poolChunkCase{rows: len(tokenDoc), v: v, b: b, tokenDoc: tokenDoc}
	c.z = randVals(rng, dt, c.rows*v, 3, -2)
	for r, d := range tokenDoc {
		if d < 0 {
			for j := 0; j < v; j++ {
				c.z[r*v+j] = 1e4
			}
		}
	}
	c.bias = randVals(rng, F32, v, 1, 0)
	return c
}

// poolChunk64 is SPLADE pooling of the chunk from its definition, in
// float64, activation included: max or sum over each document's rows of
// log1p(relu(z+bias)), 0 for a document without rows.
func poolChunk64(c poolChunkCase, sum bool) []float64 {
	out := make([]float64, c.b*c.v)
	for r, d := range c.tokenDoc {
		if d < 0 {
			continue
		}
		for j := 0; j < c.v; j++ {
			a := math.Log1p(math.Max(float64(c.z[r*c.v+j])+float64(c.bias[j]), 0))
			if sum {
				out[int(d)*c.v+j] += a
			} else {
				out[int(d)*c.v+j] = math.Max(out[int(d)*c.v+j], a)
			}
		}
	}
	return out
}

func newPooled(n int, sum bool) []float32 {
	p := make([]float32, n)
	if !sum {
		for i := range p {
			p[i] = float32(math.Inf(-1))
		}
	}
	return p
}

func TestPoolChunkTwinMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(35, 36))
	for _, dt := range dtypes {
		for _, shape := range [][2]int{{1, 1}, {3, 31}, {6, 257}, {2, 3000}} {
			c := randomPoolChunk(rng, dt, shape[0], shape[1])
			for _, sum := range []bool{false, true} {
				pooled := newPooled(c.b*c.v, sum)
				if err := PoolChunkTwin(dt, sum, c.z, c.bias, c.tokenDoc, c.v, pooled); err != nil {
					t.Fatal(err)
				}
				if !sum {
					ActivateMaxTwin(pooled)
				}
				// float32 log1p and a float32 sum of up to 17 terms.
				for i, want := range poolChunk64(c, sum) {
					if !closeTo(pooled[i], want, 20*0x1p-24, 0) {
						t.Fatalf("%v sum=%v b=%d v=%d: pooled[%d][%d] = %v, want %v", dt, sum, c.b, c.v, i/c.v, i%c.v, pooled[i], want)
					}
				}
			}
		}
	}
}

func TestPoolChunkTwinSplitsAndSegments(t *testing.T) {
	rng := rand.New(rand.NewPCG(37, 38))
	for _, sum := range []bool{false, true} {
		for trial := 0; trial < 20; trial++ {
			c := randomPoolChunk(rng, BF16, 1+rng.IntN(8), 1+rng.IntN(40))
			whole := newPooled(c.b*c.v, sum)
			if err := PoolChunkTwin(BF16, sum, c.z, c.bias, c.tokenDoc, c.v, whole); err != nil {
				t.Fatal(err)
			}
			// The same rows in two or three chunks, cut anywhere (through
			// documents too), pool to the same bits.
			cuts := []int{0, rng.IntN(c.rows + 1), rng.IntN(c.rows + 1), c.rows}
			slices.Sort(cuts)
			split := newPooled(c.b*c.v, sum)
			for i := 0; i+1 < len(cuts); i++ {
				lo, hi := cuts[i], cuts[i+1]
				if err := PoolChunkTwin(BF16, sum, c.z[lo*c.v:hi*c.v], c.bias, c.tokenDoc[lo:hi], c.v, split); err != nil {
					t.Fatal(err)
				}
			}
			if !slices.Equal(split, whole) {
				t.Fatalf("sum=%v trial %d: chunks cut at %v pool differently from one call", sum, trial, cuts)
			}
			// The kernel's row segments (blockIdx.y), run last first: every
			// document is pooled by exactly one segment, and the result is
			// the same for any number of them.
			for _, segs := range []int{2, 3, 7, c.rows, c.rows + 5} {
				seg := (c.rows + segs - 1) / segs
				got := newPooled(c.b*c.v, sum)
				owners := make(map[int32]int)
				for s := segs - 1; s >= 0; s-- {
					lo := s * seg
					if lo >= c.rows {
						continue
					}
					hi := min(lo+seg, c.rows)
					poolChunkSegment(sum, c.z, c.bias, c.tokenDoc, c.v, got, lo, hi, func(doc int32) {
						if o, ok := owners[doc]; ok && o != s {
							t.Fatalf("segments %d and %d both pool document %d (tokenDoc %v)", o, s, doc, c.tokenDoc)
						}
						owners[doc] = s
					})
				}
				if !slices.Equal(got, whole) {
					t.Fatalf("sum=%v trial %d: %d segments pool differently (tokenDoc %v)", sum, trial, segs, c.tokenDoc)
				}
			}
		}
	}
}

func TestPoolChunkTwinEdges(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	// Document 0: NaN then 1; document 1: no rows; document 2: -3, +Inf.
	z := []float32{nan, 1, 5, -3, inf}
	tokenDoc := []int32{0, 0, -1, 2, 2}
	pooled := newPooled(3, false)
	if err := PoolChunkTwin(F32, false, z, nil, tokenDoc, 1, pooled); err != nil {
		t.Fatal(err)
	}
	if want := []float32{1, float32(math.Inf(-1)), inf}; !slices.Equal(pooled, want) {
		t.Errorf("max: pooled = %v, want %v", pooled, want)
	}
	ActivateMaxTwin(pooled)
	if want := []float32{log1p32(1), 0, inf}; !slices.Equal(pooled, want) {
		t.Errorf("activated: pooled = %v, want %v", pooled, want)
	}
	pooled = newPooled(3, true)
	if err := PoolChunkTwin(F16, true, z, nil, tokenDoc, 1, pooled); err != nil {
		t.Fatal(err)
	}
	if want := []float32{log1p32(1), 0, inf}; !slices.Equal(pooled, want) {
		t.Errorf("sum: pooled = %v, want %v", pooled, want)
	}
	act := []float32{float32(math.Inf(-1)), nan, -2, 0, 3}
	ActivateMaxTwin(act)
	if want := []float32{0, 0, 0, 0, log1p32(3)}; !slices.Equal(act, want) {
		t.Errorf("ActivateMaxTwin = %v, want %v", act, want)
	}
}

func TestTransformerTwinsRejectBadArguments(t *testing.T) {
	f := func(n int) []float32 { return make([]float32, n) }
	g, b := f(4), f(4) // gamma and beta for h = 4
	off := offsetsOf(2, 3)
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"embed bad dtype", EmbedLNTwin(DType(9), []int32{0}, []int32{0}, nil, f(4), f(4), nil, g, b, 4, 1e-5, f(4)), "storage type"},
		{"embed id range", EmbedLNTwin(F32, []int32{1}, []int32{0}, nil, f(4), f(4), nil, g, b, 4, 1e-5, f(4)), "ids[0] = 1"},
		{"embed negative pos", EmbedLNTwin(F32, []int32{0}, []int32{-1}, nil, f(4), f(4), nil, g, b, 4, 1e-5, f(4)), "pos[0] = -1"},
		{"embed type range", EmbedLNTwin(F32, []int32{0}, []int32{0}, []int32{2}, f(4), f(4), f(8), g, b, 4, 1e-5, f(4)), "types[0] = 2"},
		{"embed types without table", EmbedLNTwin(F32, []int32{0}, []int32{0}, []int32{0}, f(4), f(4), nil, g, b, 4, 1e-5, f(4)), "both nil"},
		{"embed short pos", EmbedLNTwin(F32, []int32{0, 0}, []int32{0}, nil, f(4), f(4), nil, g, b, 4, 1e-5, f(8)), "pos has 1"},
		{"embed ragged table", EmbedLNTwin(F32, []int32{0}, []int32{0}, nil, f(6), f(4), nil, g, b, 4, 1e-5, f(4)), "word has 6"},
		{"embed short out", EmbedLNTwin(F32, []int32{0}, []int32{0}, nil, f(4), f(4), nil, g, b, 4, 1e-5, f(3)), "out has 3"},
		{"embed short gamma", EmbedLNTwin(F32, []int32{0}, []int32{0}, nil, f(4), f(4), nil, f(3), b, 4, 1e-5, f(4)), "gamma"},
		{"embed nan eps", EmbedLNTwin(F32, []int32{0}, []int32{0}, nil, f(4), f(4), nil, g, b, 4, float32(math.NaN()), f(4)), "eps"},
		{"embed zero h", EmbedLNTwin(F32, nil, nil, nil, f(4), f(4), nil, g, b, 0, 1e-5, nil), "h=0"},
		{"gelu ragged x", BiasGELUTwin(F32, f(7), f(4), 4, GELUExact), "x has 7"},
		{"gelu short bias", BiasGELUTwin(F32, f(8), f(3), 4, GELUExact), "bias has 3"},
		{"gelu act", BiasGELUTwin(F32, f(8), f(4), 4, Activation(2)), "activation 2"},
		{"residual-ln ragged y", BiasResidualLNTwin(F32, f(6), nil, nil, g, b, 4, 1e-5, f(6)), "y has 6"},
		{"residual-ln short residual", BiasResidualLNTwin(F32, f(8), nil, f(4), g, b, 4, 1e-5, f(8)), "residual has 4"},
		{"residual-ln short bias", BiasResidualLNTwin(F32, f(8), f(3), nil, g, b, 4, 1e-5, f(8)), "bias has 3"},
		{"residual-ln short out", BiasResidualLNTwin(F32, f(8), nil, nil, g, b, 4, 1e-5, f(4)), "out has 4"},
		{"scatter short qkv", QKVScatterTwin(F32, f(5*3*4-1), nil, off, 2, 2, 3, f(24), f(24), f(24)), "qkv has 59"},
		{"scatter short v", QKVScatterTwin(F32, f(5*3*4), nil, off, 2, 2, 3, f(24), f(24), f(23)), "23"},
		{"scatter doc longer than l", QKVScatterTwin(F32, f(5*3*4), nil, off, 2, 2, 2, f(16), f(16), f(16)), "document 1 has 3"},
		{"scatter bias", QKVScatterTwin(F32, f(5*3*4), f(4), off, 2, 2, 3, f(24), f(24), f(24)), "bias has 4"},
		{"scatter offsets start", QKVScatterTwin(F32, f(5*3*4), nil, []int32{1, 6}, 2, 2, 5, f(20), f(20), f(20)), "offsets[0] = 1"},
		{"scatter decreasing offsets", QKVScatterTwin(F32, f(0), nil, []int32{0, 2, 1}, 2, 2, 3, f(24), f(24), f(24)), "document 1 has -1"},
		{"scatter no offsets", QKVScatterTwin(F32, nil, nil, []int32{0}, 2, 2, 3, nil, nil, nil), "offsets has 1"},
		{"softmax short s", MaskedSoftmaxTwin(F32, f(2*3*3-1), off, 1, 3), "s has 17"},
		{"softmax zero heads", MaskedSoftmaxTwin(F32, f(18), off, 0, 3), "heads=0"},
		{"gather short out", AttnGatherTwin(F32, f(24), off, 2, 2, 3, f(19)), "out has 19"},
		{"gather short c", AttnGatherTwin(F32, f(23), off, 2, 2, 3, f(20)), "c has 23"},
		{"pool ragged z", PoolChunkTwin(F32, true, f(5), nil, []int32{0, 0}, 3, f(3)), "z has 5"},
		{"pool doc range", PoolChunkTwin(F32, true, f(6), nil, []int32{0, 1}, 3, f(3)), "tokenDoc[1] = 1"},
		{"pool doc -2", PoolChunkTwin(F32, true, f(6), nil, []int32{0, -2}, 3, f(6)), "tokenDoc[1] = -2"},
		{"pool not contiguous", PoolChunkTwin(F32, false, f(9), nil, []int32{1, -1, 0}, 3, f(6)), "contiguous"},
		{"pool bias", PoolChunkTwin(F32, false, f(6), f(2), []int32{0, 0}, 3, f(3)), "bias has 2"},
		{"pool ragged pooled", PoolChunkTwin(F32, false, f(6), nil, []int32{0, 0}, 3, f(4)), "pooled has 4"},
		{"pool bad dtype", PoolChunkTwin(DType(-1), false, f(6), nil, []int32{0, 0}, 3, f(3)), "storage type"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one containing %q", c.name, c.err, c.want)
		}
	}
}

func TestTransformerPTX(t *testing.T) {
	if !strings.Contains(TransformerPTX, ".target sm_80") {
		t.Errorf("transformer.ptx does not target sm_80 (%s)", PTXArch)
	}
	names := []string{EntryActivateMax}
	for _, dt := range dtypes {
		for _, e := range TransformerEntries() {
			names = append(names, Entry(e, dt))
		}
	}
	for _, e := range names {
		if !strings.Contains(TransformerPTX, ".entry "+e+"(") {
			t.Errorf("transformer.ptx has no .entry %s", e)
		}
	}
	if got := strings.Count(TransformerPTX, ".entry "); got != len(names) {
		t.Errorf("transformer.ptx has %d entries, want %d", got, len(names))
	}
}
