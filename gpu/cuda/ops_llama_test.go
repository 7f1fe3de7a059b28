package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/splash-encode/splash/kernels"
)

func (o *kcBrokenOps) Embed(tokens, h int, ids, word, out Buf) error {
	err := o.Ops.Embed(tokens, h, ids, word, out)
	o.perturb("Embed", out, false)
	return err
}

func (o *kcBrokenOps) ResidualRMSNorm(tokens, h int, y, residual, gamma Buf, eps float32, sum, out Buf) error {
	err := o.Ops.ResidualRMSNorm(tokens, h, y, residual, gamma, eps, sum, out)
	o.perturb("ResidualRMSNorm", out, false)
	return err
}

func (o *kcBrokenOps) GQAScatter(b, heads, kv, d, l int, qkv, offsets, q, k, v Buf) error {
	err := o.Ops.GQAScatter(b, heads, kv, d, l, qkv, offsets, q, k, v)
	o.perturb("GQAScatter", k, false)
	return err
}

func (o *kcBrokenOps) RoPE(b, heads, d, l int, x, offsets, invFreq Buf, positionOffset int32) error {
	err := o.Ops.RoPE(b, heads, d, l, x, offsets, invFreq, positionOffset)
	o.perturb("RoPE", x, false)
	return err
}

func (o *kcBrokenOps) CausalSoftmax(b, heads, l int, s, offsets Buf) error {
	err := o.Ops.CausalSoftmax(b, heads, l, s, offsets)
	o.perturb("CausalSoftmax", s, false)
	return err
}

func (o *kcBrokenOps) SwiGLU(tokens, inter int, gateUp, out Buf) error {
	err := o.Ops.SwiGLU(tokens, inter, gateUp, out)
	o.perturb("SwiGLU", out, false)
	return err
}

func (o *kcBrokenOps) ScoresGrouped(batch, m, n, d int, alpha float32, q, k, s Buf) error {
	err := o.Ops.ScoresGrouped(batch, m, n, d, alpha, q, k, s)
	o.perturb("ScoresGrouped", s, false)
	return err
}

func (o *kcBrokenOps) ContextGrouped(batch, m, n, d int, p, v, c Buf) error {
	err := o.Ops.ContextGrouped(batch, m, n, d, p, v, c)
	o.perturb("ContextGrouped", c, false)
	return err
}

func llRand(rng *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(scale * rng.NormFloat64())
	}
	return x
}

func llOffsets(lengths ...int) []int32 {
	off := make([]int32, len(lengths)+1)
	for i, n := range lengths {
		off[i+1] = off[i] + int32(n)
	}
	return off
}

// mustBufs returns a function that fails t on an allocation error.
func mustBufs(t *testing.T) func(Buf, error) Buf {
	return func(b Buf, err error) Buf {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// TestTwinOpsLlamaMatchesTwins: each TwinOps method gives exactly what its
// twin gives on the same values, reading and writing only the prefixes
// its shape names (buffers are longer, as the forward pass's scratch is).
func TestTwinOpsLlamaMatchesTwins(t *testing.T) {
	mustBuf := mustBufs(t)
	rng := rand.New(rand.NewPCG(61, 62))
	const heads, kv, d, l, h, inter, vocab = 4, 2, 6, 7, 10, 9, 70000
	lengths := []int{7, 1, 4}
	off := llOffsets(lengths...)
	b, tokens := len(lengths), int(off[len(lengths)])
	const extra = 5 // values past every shape
	for _, dt := range []kernels.DType{kernels.F32, kernels.BF16, kernels.F16} {
		o := NewTwinOps(dt)
		round := func(x []float32) []float32 {
			y := make([]float32, len(x))
			for i, v := range x {
				y[i] = dt.Round(v)
			}
			return y
		}
		mat := func(x []float32) Buf { return mustBuf(o.Matrix(x)) }
		act := func(n int) Buf { return mustBuf(o.Activations(n + extra)) }
		offBuf := mustBuf(o.Ints(b + 1 + extra))
		if err := o.SetInts(offBuf, off); err != nil {
			t.Fatal(err)
		}
		same := func(name string, got Buf, want []float32) {
			t.Helper()
			g := floats(got)
			if !slices.Equal(g[:len(want)], want) {
				t.Errorf("%v %s: TwinOps differs from the twin", dt, name)
			}
			for _, x := range g[len(want):] {
				if x != 0 {
					t.Errorf("%v %s: wrote past its shape", dt, name)
					break
				}
			}
		}

		ids := []int32{69999, 65536, 3, 0, 12345, 7, 1, 2, 66000, 5, 9, 11}[:tokens]
		idsBuf := mustBuf(o.Ints(tokens + extra))
		if err := o.SetInts(idsBuf, ids); err != nil {
			t.Fatal(err)
		}
		word := round(llRand(rng, vocab*h, 1))
		out := act(tokens * h)
		if err := o.Embed(tokens, h, idsBuf, mat(word), out); err != nil {
			t.Fatal(err)
		}
		want := make([]float32, tokens*h)
		if err := kernels.EmbedTwin(dt, ids, word, h, want); err != nil {
			t.Fatal(err)
		}
		same("Embed", out, want)

		y, res := round(llRand(rng, tokens*h, 1)), round(llRand(rng, tokens*h, 1))
		gamma := llRand(rng, h, 1)
		sumB, outB := act(tokens*h), act(tokens*h)
		if err := o.ResidualRMSNorm(tokens, h, mat(y), mat(res), mustBuf(o.Vector(gamma)), 1e-6, sumB, outB); err != nil {
			t.Fatal(err)
		}
		wantSum, wantOut := make([]float32, tokens*h), make([]float32, tokens*h)
		if err := kernels.ResidualRMSNormTwin(dt, y, res, gamma, h, 1e-6, wantSum, wantOut); err != nil {
			t.Fatal(err)
		}
		same("ResidualRMSNorm sum", sumB, wantSum)
		same("ResidualRMSNorm out", outB, wantOut)

		w := (heads + 2*kv) * d
		qkv := round(llRand(rng, tokens*w, 1))
		qB, kB, vB := act(b*heads*l*d), act(b*kv*l*d), act(b*kv*l*d)
		if err := o.GQAScatter(b, heads, kv, d, l, mat(qkv), offBuf, qB, kB, vB); err != nil {
			t.Fatal(err)
		}
		wq, wk, wv := make([]float32, b*heads*l*d), make([]float32, b*kv*l*d), make([]float32, b*kv*l*d)
		if err := kernels.GQAScatterTwin(dt, qkv, off, heads, kv, d, l, wq, wk, wv); err != nil {
			t.Fatal(err)
		}
		same("GQAScatter q", qB, wq)
		same("GQAScatter k", kB, wk)
		same("GQAScatter v", vB, wv)

		invFreq := []float32{1, 0.1, 0.01}
		if err := o.RoPE(b, heads, d, l, qB, offBuf, mustBuf(o.Vector(invFreq)), 3); err != nil {
			t.Fatal(err)
		}
		if err := kernels.RoPETwin(dt, wq, off, heads, d, l, invFreq, 3); err != nil {
			t.Fatal(err)
		}
		same("RoPE", qB, wq)

		sc := round(llRand(rng, b*heads*l*l, 2))
		sB := mat(append(slices.Clone(sc), make([]float32, extra)...))
		if err := o.CausalSoftmax(b, heads, l, sB, offBuf); err != nil {
			t.Fatal(err)
		}
		if err := kernels.CausalSoftmaxTwin(dt, sc, off, heads, l); err != nil {
			t.Fatal(err)
		}
		same("CausalSoftmax", sB, sc)

		gu := round(llRand(rng, tokens*2*inter, 2))
		swB := act(tokens * inter)
		if err := o.SwiGLU(tokens, inter, mat(gu), swB); err != nil {
			t.Fatal(err)
		}
		wantSw := make([]float32, tokens*inter)
		if err := kernels.SwiGLUTwin(dt, gu, tokens, inter, wantSw); err != nil {
			t.Fatal(err)
		}
		same("SwiGLU", swB, wantSw)
	}
}

// TestTwinOpsGroupedGEMMs: ScoresGrouped and ContextGrouped against naive
// float64 loops over their definitions, blocks of m != n rows.
func TestTwinOpsGroupedGEMMs(t *testing.T) {
	mustBuf := mustBufs(t)
	rng := rand.New(rand.NewPCG(63, 64))
	o := NewTwinOps(kernels.F32)
	for _, c := range [][4]int{{1, 1, 1, 1}, {3, 8, 2, 5}, {2, 12, 4, 16}, {4, 5, 7, 3}} {
		batch, m, n, d := c[0], c[1], c[2], c[3]
		q, k := llRand(rng, batch*m*d, 1), llRand(rng, batch*n*d, 1)
		const alpha = 0.37
		s := mustBuf(o.Activations(batch * m * n))
		if err := o.ScoresGrouped(batch, m, n, d, alpha, mustBuf(o.Matrix(q)), mustBuf(o.Matrix(k)), s); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < batch; i++ {
			for r := 0; r < m; r++ {
				for j := 0; j < n; j++ {
					var want float64
					for e := 0; e < d; e++ {
						want += float64(q[(i*m+r)*d+e]) * float64(k[(i*n+j)*d+e])
					}
					want *= alpha
					if got := floats(s)[(i*m+r)*n+j]; math.Abs(float64(got)-want) > 1e-5*(1+math.Abs(want)) {
						t.Fatalf("scores %v: s[%d][%d][%d] = %v, want %v", c, i, r, j, got, want)
					}
				}
			}
		}
		p, v := llRand(rng, batch*m*n, 1), llRand(rng, batch*n*d, 1)
		cb := mustBuf(o.Activations(batch * m * d))
		if err := o.ContextGrouped(batch, m, n, d, mustBuf(o.Matrix(p)), mustBuf(o.Matrix(v)), cb); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < batch; i++ {
			for r := 0; r < m; r++ {
				for e := 0; e < d; e++ {
					var want float64
					for j := 0; j < n; j++ {
						want += float64(p[(i*m+r)*n+j]) * float64(v[(i*n+j)*d+e])
					}
					if got := floats(cb)[(i*m+r)*d+e]; math.Abs(float64(got)-want) > 1e-5*(1+math.Abs(want)) {
						t.Fatalf("context %v: c[%d][%d][%d] = %v, want %v", c, i, r, e, got, want)
					}
				}
			}
		}
	}
}

// TestTwinOpsLlamaRejectsBadShapes: short, missing and wrong-kind buffers
// are errors naming the operation and the buffer, never panics.
func TestTwinOpsLlamaRejectsBadShapes(t *testing.T) {
	mustBuf := mustBufs(t)
	o := NewTwinOps(kernels.F32)
	fl := func(n int) Buf { return mustBuf(o.Floats(n)) }
	in := func(v ...int32) Buf {
		b := mustBuf(o.Ints(len(v)))
		if err := o.SetInts(b, v); err != nil {
			t.Fatal(err)
		}
		return b
	}
	off := in(0, 2, 5)
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"embed short out", o.Embed(2, 4, in(0, 1), fl(8), fl(7)), "embed: out has 7"},
		{"embed short ids", o.Embed(2, 4, in(0), fl(8), fl(8)), "ids has 1"},
		{"embed float ids", o.Embed(1, 4, fl(1), fl(8), fl(4)), "not an int32 buffer"},
		{"embed id outside", o.Embed(1, 4, in(2), fl(8), fl(4)), "ids[0] = 2"},
		{"embed zero tokens", o.Embed(0, 4, in(0), fl(8), fl(4)), "tokens=0"},
		{"rmsnorm nil residual", o.ResidualRMSNorm(2, 4, nil, nil, fl(4), 1e-5, nil, fl(8)), "residual is nil"},
		{"rmsnorm short gamma", o.ResidualRMSNorm(2, 4, nil, fl(8), fl(3), 1e-5, nil, fl(8)), "gamma has 3"},
		{"rmsnorm short sum", o.ResidualRMSNorm(2, 4, fl(8), fl(8), fl(4), 1e-5, fl(5), fl(8)), "sum has 5"},
		{"rmsnorm int out", o.ResidualRMSNorm(1, 1, nil, fl(1), fl(1), 1e-5, nil, in(0)), "not a float buffer"},
		{"scatter heads", o.GQAScatter(2, 3, 2, 2, 3, fl(100), off, fl(36), fl(24), fl(24)), "not a multiple of kv=2"},
		{"scatter short offsets", o.GQAScatter(3, 2, 1, 2, 3, fl(100), off, fl(36), fl(18), fl(18)), "offsets has 3"},
		{"scatter short qkv", o.GQAScatter(2, 2, 1, 2, 3, fl(19), off, fl(24), fl(12), fl(12)), "qkv has 19"},
		{"scatter short v", o.GQAScatter(2, 2, 1, 2, 3, fl(40), off, fl(24), fl(12), fl(11)), "v has 11"},
		{"rope odd d", o.RoPE(2, 1, 3, 3, fl(18), off, fl(1), 0), "must be even"},
		{"rope short invFreq", o.RoPE(2, 1, 4, 3, fl(24), off, fl(1), 0), "invFreq has 1"},
		{"rope negative offset", o.RoPE(2, 1, 4, 3, fl(24), off, fl(2), -2), "positionOffset -2"},
		{"rope document past l", o.RoPE(2, 1, 4, 2, fl(16), off, fl(2), 0), "document 1 has 3"},
		{"causal short s", o.CausalSoftmax(2, 1, 3, fl(17), off), "s has 17"},
		{"swiglu short out", o.SwiGLU(2, 3, fl(12), fl(5)), "out has 5"},
		{"swiglu short gateUp", o.SwiGLU(2, 3, fl(11), fl(6)), "gateUp has 11"},
		{"scores short k", o.ScoresGrouped(2, 3, 4, 5, 1, fl(30), fl(39), fl(24)), "second operand has 39"},
		{"scores zero d", o.ScoresGrouped(2, 3, 4, 0, 1, fl(30), fl(40), fl(24)), "d=0"},
		{"context short c", o.ContextGrouped(2, 3, 4, 5, fl(24), fl(40), fl(29)), "output has 29"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one containing %q", c.name, c.err, c.want)
		}
	}
}

// llamaAttention64 is Hugging Face's LlamaAttention in float64 for one
// document x [n][hidden]: q, k, v projections (no bias), rotary embedding
// of q and k at positions positionOffset.. (angles float32 as HF's freqs),
// repeat_kv (query head h reads KV head h / (heads/kv)), scores / sqrt(d),
// the causal mask or none, softmax, and the heads' outputs concatenated
// [n][heads*d].
func llamaAttention64(x, wq, wk, wv []float32, n, hidden, heads, kv, d int, invFreq []float32, positionOffset int32, causal bool) []float64 {
	proj := func(w []float32, nh int) [][][]float64 { // [head][pos][e]
		out := make([][][]float64, nh)
		for hh := range out {
			out[hh] = make([][]float64, n)
			for p := 0; p < n; p++ {
				out[hh][p] = make([]float64, d)
				for e := 0; e < d; e++ {
					var acc float64
					for c := 0; c < hidden; c++ {
						acc += float64(x[p*hidden+c]) * float64(w[(hh*d+e)*hidden+c])
					}
					out[hh][p][e] = acc
				}
			}
		}
		return out
	}
	rope := func(t [][][]float64) {
		half := d / 2
		for _, head := range t {
			for p, row := range head {
				x0 := slices.Clone(row)
				for e := 0; e < d; e++ {
					angle := float64(float32(float32(int32(p)+positionOffset) * invFreq[e%half]))
					rot := x0[(e+half)%d]
					if e < half {
						rot = -rot
					}
					row[e] = x0[e]*math.Cos(angle) + rot*math.Sin(angle)
				}
			}
		}
	}
	q, k, v := proj(wq, heads), proj(wk, kv), proj(wv, kv)
	rope(q)
	rope(k)
	out := make([]float64, n*heads*d)
	g := heads / kv
	for hh := 0; hh < heads; hh++ {
		kh, vh := k[hh/g], v[hh/g]
		for i := 0; i < n; i++ {
			keys := n
			if causal {
				keys = i + 1
			}
			s := make([]float64, keys)
			m := math.Inf(-1)
			for j := range s {
				for e := 0; e < d; e++ {
					s[j] += q[hh][i][e] * kh[j][e]
				}
				s[j] /= math.Sqrt(float64(d))
				m = math.Max(m, s[j])
			}
			var sum float64
			for j := range s {
				s[j] = math.Exp(s[j] - m)
				sum += s[j]
			}
			for e := 0; e < d; e++ {
				var acc float64
				for j := range s {
					acc += s[j] / sum * vh[j][e]
				}
				out[i*heads*d+hh*d+e] = acc
			}
		}
	}
	return out
}

// TestGQAAttentionMatchesHFReference composes the Llama attention from
// the Ops (LinearT with one concatenated [q;k;v] weight, GQAScatter, RoPE
// of q and k, ScoresGrouped, CausalSoftmax or MaskedSoftmax,
// ContextGrouped, AttnGather) as the forward pass does, and compares it
// with HF's attention in float64 for several documents in one padded
// batch: fp32 within 1e-5 of the values' scale, bf16 within a few of its
// roundings.
func TestGQAAttentionMatchesHFReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(65, 66))
	const hidden = 24
	lengths := []int{5, 1, 9, 3}
	const l = 11 // above every document
	for _, c := range []struct{ heads, kv, d int }{{4, 1, 6}, {4, 2, 6}, {4, 4, 6}, {2, 1, 2}, {3, 3, 8}} {
		for _, causal := range []bool{true, false} {
			for _, dt := range []kernels.DType{kernels.F32, kernels.BF16} {
				for _, posOff := range []int32{0, 2} {
					name := fmt.Sprintf("heads%d/kv%d/d%d/causal=%v/%v/offset%d", c.heads, c.kv, c.d, causal, dt, posOff)
					t.Run(name, func(t *testing.T) {
						testGQAAttention(t, rng, dt, hidden, c.heads, c.kv, c.d, l, lengths, causal, posOff)
					})
				}
			}
		}
	}
}

func testGQAAttention(t *testing.T, rng *rand.Rand, dt kernels.DType, hidden, heads, kv, d, l int, lengths []int, causal bool, posOff int32) {
	mustBuf := mustBufs(t)
	o := NewTwinOps(dt)
	round := func(x []float32) []float32 {
		for i := range x {
			x[i] = dt.Round(x[i])
		}
		return x
	}
	off := llOffsets(lengths...)
	b, tokens := len(lengths), int(off[len(lengths)])
	x := round(llRand(rng, tokens*hidden, 1))
	scale := 1 / math.Sqrt(float64(hidden))
	wq := round(llRand(rng, heads*d*hidden, scale))
	wk := round(llRand(rng, kv*d*hidden, scale))
	wv := round(llRand(rng, kv*d*hidden, scale))
	invFreq := make([]float32, d/2)
	for j := range invFreq {
		invFreq[j] = float32(1 / math.Pow(10000, float64(2*j)/float64(d)))
	}
	w := (heads + 2*kv) * d
	wqkv := slices.Concat(wq, wk, wv) // [w][hidden]

	xb, wb := mustBuf(o.Matrix(x)), mustBuf(o.Matrix(wqkv))
	qkv := mustBuf(o.Activations(tokens * w))
	offB := mustBuf(o.Ints(b + 1))
	if err := o.SetInts(offB, off); err != nil {
		t.Fatal(err)
	}
	fB := mustBuf(o.Vector(invFreq))
	q, k, v := mustBuf(o.Activations(b*heads*l*d)), mustBuf(o.Activations(b*kv*l*d)), mustBuf(o.Activations(b*kv*l*d))
	s := mustBuf(o.Activations(b * heads * l * l))
	ctx := mustBuf(o.Activations(b * heads * l * d))
	out := mustBuf(o.Activations(tokens * heads * d))
	g := heads / kv
	steps := []struct {
		name string
		f    func() error
	}{
		{"qkv projection", func() error { return o.LinearT(tokens, w, hidden, xb, wb, qkv) }},
		{"scatter", func() error { return o.GQAScatter(b, heads, kv, d, l, qkv, offB, q, k, v) }},
		{"rope q", func() error { return o.RoPE(b, heads, d, l, q, offB, fB, posOff) }},
		{"rope k", func() error { return o.RoPE(b, kv, d, l, k, offB, fB, posOff) }},
		{"scores", func() error {
			return o.ScoresGrouped(b*kv, g*l, l, d, float32(1/math.Sqrt(float64(d))), q, k, s)
		}},
		{"softmax", func() error {
			if causal {
				return o.CausalSoftmax(b, heads, l, s, offB)
			}
			return o.MaskedSoftmax(b, heads, l, s, offB)
		}},
		{"context", func() error { return o.ContextGrouped(b*kv, g*l, l, d, s, v, ctx) }},
		{"gather", func() error { return o.AttnGather(b, heads, d, l, ctx, offB, out) }},
	}
	for _, st := range steps {
		if err := st.f(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
	}
	got := floats(out)
	var want []float64
	for bi, n := range lengths {
		lo := int(off[bi])
		want = append(want, llamaAttention64(x[lo*hidden:(lo+n)*hidden], wq, wk, wv, n, hidden, heads, kv, d, invFreq, posOff, causal)...)
	}
	var ss float64
	for _, y := range want {
		ss += y * y
	}
	rms := math.Sqrt(ss / float64(len(want)))
	tol := 1e-5 * rms
	if dt == kernels.BF16 {
		tol = 0.05 * rms // about ten roundings of bf16 (2^-8 each) through the chain
	}
	var worst float64
	for i, y := range want {
		worst = math.Max(worst, math.Abs(float64(got[i])-y))
	}
	if worst > tol || math.IsNaN(worst) {
		t.Fatalf("largest difference from HF's attention %.3g, want <= %.3g (RMS %.3g)", worst, tol, rms)
	}
}
