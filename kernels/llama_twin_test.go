package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// The references below are written in float64 from Hugging Face's
// modeling_llama.py definitions (LlamaRMSNorm, apply_rotary_pos_emb with
// rotate_half, LlamaMLP, repeat_kv and the causal mask), not from the
// twins.

func nanFilled(n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(math.NaN())
	}
	return x
}

func TestEmbedTwinMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	// Llama-3's vocabulary: ids above 65,535 (a 16-bit index would wrap)
	// and the last row.
	const vocab = 128256
	for _, dt := range dtypes {
		for _, h := range []int{1, 3, 64} {
			word := randVals(rng, dt, vocab*h, 1, 0)
			ids := []int32{0, 65535, 65536, 70000, vocab - 1, 1, 128000}
			for i := 0; i < 5; i++ {
				ids = append(ids, rng.Int32N(vocab))
			}
			out := nanFilled(len(ids) * h)
			if err := EmbedTwin(dt, ids, word, h, out); err != nil {
				t.Fatal(err)
			}
			for r, id := range ids {
				for j := 0; j < h; j++ {
					got, want := out[r*h+j], word[int(id)*h+j]
					if math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("%v h=%d: out[%d][%d] = %v, want word[%d][%d] = %v", dt, h, r, j, got, id, j, want)
					}
				}
			}
		}
	}
}

// rmsNorm64 is LlamaRMSNorm in float64: x / sqrt(mean(x^2) + eps) * gamma.
func rmsNorm64(x []float64, gamma []float32, eps float32) []float64 {
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	inv := 1 / math.Sqrt(ss/float64(len(x))+float64(eps))
	out := make([]float64, len(x))
	for j, v := range x {
		out[j] = v * inv * float64(gamma[j])
	}
	return out
}

func TestResidualRMSNormTwinMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	for _, dt := range dtypes {
		for _, h := range []int{1, 7, 96, 257, 4096} {
			for _, withY := range []bool{true, false} {
				t.Run(fmt.Sprintf("%v/h%d/y=%v", dt, h, withY), func(t *testing.T) {
					rows := 3
					// An offset makes a mean of squares taken as a variance
					// (around the mean) visibly wrong.
					residual := randVals(rng, dt, rows*h, 1, 0.7)
					var y []float32
					if withY {
						y = randVals(rng, dt, rows*h, 2, -0.3)
					}
					gamma := randVals(rng, F32, h, 0.3, 1)
					const eps = 1e-5
					out := nanFilled(rows * h)
					var sum []float32
					if withY {
						sum = nanFilled(rows * h)
					}
					if err := ResidualRMSNormTwin(dt, y, residual, gamma, h, eps, sum, out); err != nil {
						t.Fatal(err)
					}
					// s is rounded to dt (a tensor of dt in HF), then the
					// normalized value, then the product with the weight:
					// three roundings to dt and s's rounding felt through
					// the mean of squares, and float32 arithmetic.
					rel := 4*halfUlp(dt) + 1e-5
					for r := 0; r < rows; r++ {
						x := make([]float64, h)
						for j := range x {
							x[j] = float64(residual[r*h+j])
							if withY {
								x[j] += float64(y[r*h+j])
								if !closeTo(sum[r*h+j], x[j], halfUlp(dt)*1.0001, 0) || dt.Round(sum[r*h+j]) != sum[r*h+j] {
									t.Fatalf("row %d: sum[%d] = %v, want %v", r, j, sum[r*h+j], x[j])
								}
							}
						}
						want := rmsNorm64(x, gamma, eps)
						for j, w := range want {
							if !closeTo(out[r*h+j], w, rel, 1e-6) || dt.Round(out[r*h+j]) != out[r*h+j] {
								t.Fatalf("row %d: out[%d] = %v, want %v (rel %g)", r, j, out[r*h+j], w, rel)
							}
						}
					}
					// In place: sum over residual (the forward pass's
					// residual stream), out over y; and without sum.
					if withY {
						inR, inY := slices.Clone(residual), slices.Clone(y)
						if err := ResidualRMSNormTwin(dt, inY, inR, gamma, h, eps, inR, inY); err != nil {
							t.Fatal(err)
						}
						if !slices.Equal(inR, sum) || !slices.Equal(inY, out) {
							t.Fatal("sum aliasing residual and out aliasing y give other values")
						}
						noSum := make([]float32, rows*h)
						if err := ResidualRMSNormTwin(dt, y, residual, gamma, h, eps, nil, noSum); err != nil {
							t.Fatal(err)
						}
						if !slices.Equal(noSum, out) {
							t.Fatal("without sum, out differs")
						}
					} else {
						inR := slices.Clone(residual)
						if err := ResidualRMSNormTwin(dt, nil, inR, gamma, h, eps, nil, inR); err != nil {
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

// TestResidualRMSNormTwinRoundsLikeHF: in bf16, HF rounds the normalized
// value to bf16 before multiplying by the weight. With x = 1 everywhere
// (the normalized value is 1/sqrt(1+eps)), eps 0.05 and gamma 1.5,
// rounding once or twice differ; the twin must round twice.
func TestResidualRMSNormTwinRoundsLikeHF(t *testing.T) {
	const h = 4
	eps := float32(0.05) // n = 0.97590: bf16 0.9765625; 1.5*n rounds to 1.4609375, 1.5*bf16(n) to 1.46875
	gamma := []float32{1.5, 1.5, 1.5, 1.5}
	residual := []float32{1, 1, 1, 1}
	out := make([]float32, h)
	if err := ResidualRMSNormTwin(BF16, nil, residual, gamma, h, eps, nil, out); err != nil {
		t.Fatal(err)
	}
	n := 1 / math.Sqrt(1+float64(eps))
	hf := BF16.Round(float32(float64(gamma[0]) * float64(BF16.Round(float32(n)))))
	once := BF16.Round(float32(float64(gamma[0]) * n))
	if hf == once {
		t.Fatalf("the case does not separate the rounding orders (%v)", hf)
	}
	for j, x := range out {
		if x != hf {
			t.Errorf("out[%d] = %v, want HF's %v (rounding once gives %v)", j, x, hf, once)
		}
	}
}

// gqaCase is a packed batch for the grouped-query kernels.
type gqaCase struct {
	name            string
	lengths         []int
	heads, kv, d, l int
}

func gqaCases() []gqaCase {
	return []gqaCase{
		{"one token", []int{1}, 1, 1, 2, 1},
		{"kv=heads", []int{3, 1, 5}, 4, 4, 6, 5},
		{"kv=1", []int{2, 7}, 4, 1, 8, 9}, // l above every document
		{"g=4", []int{5, 0, 3}, 8, 2, 4, 6},
		{"d=2", []int{4, 2}, 2, 1, 2, 4},
		{"llama-like", []int{33, 17}, 32, 8, 16, 40},
	}
}

func TestGQAScatterTwinMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	for _, dt := range dtypes {
		for _, c := range gqaCases() {
			offsets := offsetsOf(c.lengths...)
			b, tokens := len(c.lengths), int(offsets[len(c.lengths)])
			w := (c.heads + 2*c.kv) * c.d
			qkv := randVals(rng, dt, tokens*w, 1, 0)
			q, k, v := nanFilled(b*c.heads*c.l*c.d), nanFilled(b*c.kv*c.l*c.d), nanFilled(b*c.kv*c.l*c.d)
			if err := GQAScatterTwin(dt, qkv, offsets, c.heads, c.kv, c.d, c.l, q, k, v); err != nil {
				t.Fatalf("%v %s: %v", dt, c.name, err)
			}
			// From the definition: q = x·Wqᵀ is the first heads*d columns,
			// viewed as [heads][d]; k and v the next kv*d each.
			check := func(name string, out []float32, nh, col0 int) {
				for bi, n := range c.lengths {
					for hh := 0; hh < nh; hh++ {
						for p := 0; p < c.l; p++ {
							for e := 0; e < c.d; e++ {
								got := out[((bi*nh+hh)*c.l+p)*c.d+e]
								want := float32(0)
								if p < n {
									want = qkv[(int(offsets[bi])+p)*w+col0+hh*c.d+e]
								}
								if math.Float32bits(got) != math.Float32bits(want) {
									t.Fatalf("%v %s: %s[%d][%d][%d][%d] = %v, want %v", dt, c.name, name, bi, hh, p, e, got, want)
								}
							}
						}
					}
				}
			}
			check("q", q, c.heads, 0)
			check("k", k, c.kv, c.heads*c.d)
			check("v", v, c.kv, (c.heads+c.kv)*c.d)
		}
	}
}

// ropeInvFreq is Llama's default inverse frequencies in float32:
// theta^(-2j/d).
func ropeInvFreq(d int, theta float64) []float32 {
	f := make([]float32, d/2)
	for j := range f {
		f[j] = float32(1 / math.Pow(theta, float64(2*j)/float64(d)))
	}
	return f
}

func TestRoPETwinMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(47, 48))
	for _, dt := range dtypes {
		for _, c := range gqaCases() {
			for _, off := range []int32{0, 3, 5000} {
				offsets := offsetsOf(c.lengths...)
				n := len(c.lengths) * c.heads * c.l * c.d
				x := randVals(rng, dt, n, 1, 0)
				invFreq := ropeInvFreq(c.d, 500000)
				if c.d == 2 {
					invFreq = []float32{0.7} // one pair, turned visibly at every position
				}
				x0 := slices.Clone(x)
				if err := RoPETwin(dt, x, offsets, c.heads, c.d, c.l, invFreq, off); err != nil {
					t.Fatalf("%v %s: %v", dt, c.name, err)
				}
				half := c.d / 2
				for bi, length := range c.lengths {
					for hh := 0; hh < c.heads; hh++ {
						for p := 0; p < c.l; p++ {
							at := ((bi*c.heads+hh)*c.l + p) * c.d
							if p >= length { // padded rows: untouched
								if !slices.Equal(x[at:at+c.d], x0[at:at+c.d]) {
									t.Fatalf("%v %s: padded row %d of document %d changed", dt, c.name, p, bi)
								}
								continue
							}
							// HF: freqs = inv_freq @ position_ids in float32,
							// emb = cat(freqs, freqs); q*cos + rotate_half(q)*sin
							// with rotate_half(q) = cat(-q2, q1).
							for j := 0; j < c.d; j++ {
								jj := j % half
								angle := float64(float32(float32(int32(p)+off) * invFreq[jj]))
								co, si := math.Cos(angle), math.Sin(angle)
								var rot float64
								if j < half {
									rot = -float64(x0[at+j+half])
								} else {
									rot = float64(x0[at+j-half])
								}
								want := float64(x0[at+j])*co + rot*si
								if !closeTo(x[at+j], want, relTol(dt), 2e-6) {
									t.Fatalf("%v %s off %d: doc %d head %d pos %d [%d] = %v, want %v", dt, c.name, off, bi, hh, p, j, x[at+j], want)
								}
							}
						}
					}
				}
			}
		}
	}
}

func TestCausalSoftmaxTwinMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(49, 50))
	cases := []struct {
		lengths  []int
		heads, l int
	}{
		{[]int{1}, 1, 1},
		{[]int{1, 5, 2}, 2, 5},
		{[]int{33, 0, 40}, 3, 45},      // l above every document
		{[]int{300, 257}, 2, 300},      // rows longer than a block
		{[]int{1100, 1, 700}, 1, 1100}, // rows of several strides
	}
	for _, dt := range dtypes {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%v/%v", dt, c.lengths), func(t *testing.T) {
				offsets := offsetsOf(c.lengths...)
				s := randVals(rng, dt, len(c.lengths)*c.heads*c.l*c.l, 3, 0)
				s0 := slices.Clone(s)
				if err := CausalSoftmaxTwin(dt, s, offsets, c.heads, c.l); err != nil {
					t.Fatal(err)
				}
				for b, n := range c.lengths {
					for hh := 0; hh < c.heads; hh++ {
						for p := 0; p < c.l; p++ {
							at := ((b*c.heads+hh)*c.l + p) * c.l
							// HF's causal mask: key j is seen by query p when
							// j <= p; keys of padding never.
							want := make([]float64, c.l)
							if p < n {
								copy(want, softmax64(s0[at:at+p+1]))
							}
							checkRow(t, fmt.Sprintf("doc %d head %d row %d", b, hh, p), dt, s[at:at+c.l], want, 1e-7)
						}
					}
				}
			})
		}
	}
}

func TestSwiGLUTwinMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	for _, dt := range dtypes {
		for _, inter := range []int{1, 37, 1000} {
			rows := 4
			gateUp := randVals(rng, dt, rows*2*inter, 3, 0)
			gateUp[0] = dt.Round(-30) // silu in its flat tail
			gateUp[1%inter] = dt.Round(30)
			out := nanFilled(rows * inter)
			if err := SwiGLUTwin(dt, gateUp, rows, inter, out); err != nil {
				t.Fatal(err)
			}
			for r := 0; r < rows; r++ {
				for j := 0; j < inter; j++ {
					g, u := float64(gateUp[r*2*inter+j]), float64(gateUp[r*2*inter+inter+j])
					want := g / (1 + math.Exp(-g)) * u
					// Two roundings to dt (the activation, the product);
					// float16 flushes |silu| below 2^-25 to 0 (silu(-30)).
					abs := 1e-30
					if dt == F16 {
						abs = 0x1p-24 * (1 + math.Abs(u))
					}
					if !closeTo(out[r*inter+j], want, 2*halfUlp(dt)+1e-5, abs) || dt.Round(out[r*inter+j]) != out[r*inter+j] {
						t.Fatalf("%v inter %d: out[%d][%d] = %v, want silu(%v)*%v = %v", dt, inter, r, j, out[r*inter+j], g, u, want)
					}
				}
			}
		}
	}
}

func TestLlamaTwinsRejectBadArguments(t *testing.T) {
	f := func(n int) []float32 { return make([]float32, n) }
	off := offsetsOf(2, 3) // B = 2, 5 tokens
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"embed bad dtype", EmbedTwin(DType(7), []int32{0}, f(4), 4, f(4)), "storage type"},
		{"embed id range", EmbedTwin(F32, []int32{0, 2}, f(8), 4, f(8)), "ids[1] = 2"},
		{"embed negative id", EmbedTwin(F32, []int32{-1}, f(8), 4, f(4)), "ids[0] = -1"},
		{"embed ragged word", EmbedTwin(F32, []int32{0}, f(6), 4, f(4)), "word has 6"},
		{"embed short out", EmbedTwin(F32, []int32{0}, f(4), 4, f(3)), "out has 3"},
		{"embed zero h", EmbedTwin(F32, nil, f(4), 0, nil), "h=0"},
		{"rmsnorm ragged residual", ResidualRMSNormTwin(F32, nil, f(6), f(4), 4, 1e-5, nil, f(6)), "residual has 6"},
		{"rmsnorm short y", ResidualRMSNormTwin(F32, f(4), f(8), f(4), 4, 1e-5, nil, f(8)), "y has 4"},
		{"rmsnorm short sum", ResidualRMSNormTwin(F32, f(8), f(8), f(4), 4, 1e-5, f(7), f(8)), "sum has 7"},
		{"rmsnorm short out", ResidualRMSNormTwin(F32, nil, f(8), f(4), 4, 1e-5, nil, f(4)), "out has 4"},
		{"rmsnorm gamma", ResidualRMSNormTwin(F32, nil, f(8), f(3), 4, 1e-5, nil, f(8)), "gamma has 3"},
		{"rmsnorm nan eps", ResidualRMSNormTwin(F32, nil, f(8), f(4), 4, float32(math.NaN()), nil, f(8)), "eps"},
		{"rmsnorm negative eps", ResidualRMSNormTwin(F32, nil, f(8), f(4), 4, -1, nil, f(8)), "eps"},
		{"scatter kv not dividing heads", GQAScatterTwin(F32, f(5*14), off, 3, 2, 2, 3, f(36), f(24), f(24)), "not a multiple of kv=2"},
		{"scatter short qkv", GQAScatterTwin(F32, f(5*12-1), off, 4, 1, 2, 3, f(48), f(12), f(12)), "qkv has 59"},
		{"scatter short q", GQAScatterTwin(F32, f(5*12), off, 4, 1, 2, 3, f(47), f(12), f(12)), "q has 47"},
		{"scatter k sized like q", GQAScatterTwin(F32, f(5*12), off, 4, 1, 2, 3, f(48), f(48), f(12)), "k and v have 48"},
		{"scatter doc longer than l", GQAScatterTwin(F32, f(5*12), off, 4, 1, 2, 2, f(32), f(8), f(8)), "document 1 has 3"},
		{"scatter zero kv", GQAScatterTwin(F32, f(5*8), off, 4, 0, 2, 3, f(48), nil, nil), "kv=0"},
		{"rope odd d", RoPETwin(F32, f(2*1*3*3), off, 1, 3, 3, f(1), 0), "must be even"},
		{"rope short invFreq", RoPETwin(F32, f(2*1*3*4), off, 1, 4, 3, f(1), 0), "invFreq has 1"},
		{"rope short x", RoPETwin(F32, f(23), off, 1, 4, 3, f(2), 0), "x has 23"},
		{"rope negative offset", RoPETwin(F32, f(24), off, 1, 4, 3, f(2), -1), "positionOffset -1"},
		{"rope bad offsets", RoPETwin(F32, f(24), []int32{1, 3}, 1, 4, 3, f(2), 0), "offsets[0] = 1"},
		{"causal short s", CausalSoftmaxTwin(F32, f(17), off, 1, 3), "s has 17"},
		{"causal zero l", CausalSoftmaxTwin(F32, nil, off, 1, 0), "l=0"},
		{"swiglu short gateUp", SwiGLUTwin(F32, f(7), 2, 2, f(4)), "gateUp has 7"},
		{"swiglu short out", SwiGLUTwin(F32, f(8), 2, 2, f(3)), "out has 3"},
		{"swiglu bad dtype", SwiGLUTwin(DType(-1), f(8), 2, 2, f(4)), "storage type"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one containing %q", c.name, c.err, c.want)
		}
	}
}

func TestLlamaPTX(t *testing.T) {
	if !strings.Contains(LlamaPTX, ".target sm_80") {
		t.Errorf("llama.ptx does not target sm_80 (%s)", PTXArch)
	}
	var names []string
	for _, dt := range dtypes {
		for _, e := range LlamaEntries() {
			names = append(names, Entry(e, dt))
		}
	}
	for _, e := range names {
		if !strings.Contains(LlamaPTX, ".entry "+e+"(") {
			t.Errorf("llama.ptx has no .entry %s", e)
		}
	}
	if got := strings.Count(LlamaPTX, ".entry "); got != len(names) {
		t.Errorf("llama.ptx has %d entries, want %d", got, len(names))
	}
}
