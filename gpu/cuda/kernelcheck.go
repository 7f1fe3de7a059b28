package cuda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"unsafe"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/encode/weights"
	"github.com/splash-encode/splash/gpu"
	"github.com/splash-encode/splash/gpu/cuda/sys"
	"github.com/splash-encode/splash/kernels"
)

// This file holds the checks `splash selftest` runs on each GPU for the
// engine: every kernel and GEMM of an Ops against the twins (CompareOps,
// CheckKernels), and the whole forward pass against the float64 oracle of
// generated models (CompareEngine, CheckEngine). The comparisons are pure
// functions of Ops, so CI runs them with TwinOps on both sides.

// KernelParity is one kernel or GEMM against its twin (gpu.KernelParity).
type KernelParity = gpu.KernelParity

// EngineParity is the forward pass in one precision against the oracle
// (gpu.EngineParity).
type EngineParity = gpu.EngineParity

// Tolerances of the kernel checks, on KernelParity.MaxRel.
const (
	// kernelTolF32 holds fp32 kernels, and kernels whose output is float32
	// whatever the storage type (pooling, activation): the same float32
	// arithmetic up to an ulp or two of expf, erff, tanhf and log1pf.
	kernelTolF32 = 1e-5
	// gemmTolF32 holds fp32 GEMMs: cuBLAS adds the products in another
	// order than the twin's ascending loop.
	gemmTolF32 = 1e-4
	// kernelTolBF16 and kernelTolF16 are two units of the storage's
	// rounding (unit roundoff 2^-8 and 2^-11): results one rounding step
	// apart, after float32 values that differ in their last bits rounded
	// to different sides.
	kernelTolBF16 = 0x1p-7
	kernelTolF16  = 0x1p-10
	// gemmTolBF16 and gemmTolF16 allow GEMMs two rounding steps: unless
	// told CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION, cuBLAS may
	// add split-K partial sums in the output type.
	gemmTolBF16 = 0x1p-6
	gemmTolF16  = 0x1p-9
)

// parityTolerance is the tolerance of a check of storage type dt: gemm for
// the cuBLAS GEMMs, f32Out for kernels whose output is float32.
func parityTolerance(dt kernels.DType, gemm, f32Out bool) float64 {
	switch {
	case f32Out:
		return kernelTolF32
	case dt == kernels.BF16 && gemm:
		return gemmTolBF16
	case dt == kernels.BF16:
		return kernelTolBF16
	case dt == kernels.F16 && gemm:
		return gemmTolF16
	case dt == kernels.F16:
		return kernelTolF16
	case gemm:
		return gemmTolF32
	}
	return kernelTolF32
}

// Thresholds of the engine check.
const (
	// EngineFP32Tolerance bounds the largest weight difference between the
	// fp32 engine and the float64 oracle.
	EngineFP32Tolerance = 1e-4
	// EngineMinTopOverlap is the least mean top-20 overlap with the oracle
	// that bf16 and fp16 must reach.
	EngineMinTopOverlap = 0.95
	// engineTopK is the k of the top-k overlap.
	engineTopK = 20
)

// kernelShape is the batch the kernel checks run: documents of different
// lengths (one of a single token) in a model whose hidden size heads·d,
// feed-forward size and vocabulary are not multiples of 32, so that no
// kernel gets away with assuming a full warp or block.
type kernelShape struct {
	lengths                []int
	heads, d, inter, vocab int
}

var defaultKernelShape = kernelShape{lengths: []int{37, 300, 1, 129, 64, 2, 211}, heads: 3, d: 20, inter: 170, vocab: 1003}

// kernelData holds the random inputs of the kernel checks, generated once
// and uploaded to each Ops.
type kernelData struct {
	b, l, t, heads, d, h, inter, v int
	offsets                        []int32   // [B+1]
	ids, pos, types, tokenDoc      []int32   // [T]; tokenDoc -1 for some first tokens
	word                           []float32 // [V][H]
	posEmb                         []float32 // [L+2][H] (positions start at 2, as RoBERTa's)
	typeEmb                        []float32 // [2][H]
	gamma, beta, biasH             []float32 // [H]
	x, y                           []float32 // [T][H]: hidden states, a sublayer's output
	ffn                            []float32 // [T][I]
	biasI                          []float32 // [I]
	qkv                            []float32 // [T][3H]
	biasQKV                        []float32 // [3H]
	wQKV                           []float32 // [3H][H]
	wOut                           []float32 // [H][I]
	wDec                           []float32 // [V][H]
	scores, probs                  []float32 // [B·heads][L][L]
	q, k, vals, ctx                []float32 // [B·heads][L][d]
	z                              []float32 // [T][V]
	biasV                          []float32 // [V]
	pooled                         []float32 // [B][V], with -Inf, NaN and negatives
	chunk                          int       // rows of the first PoolChunk call
}

func newKernelData(shape kernelShape, seed uint64) *kernelData {
	rng := rand.New(rand.NewPCG(seed, 0x6b65726e656c73))
	normal := func(n int, mean, std float64) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(mean + std*rng.NormFloat64())
		}
		return x
	}
	k := &kernelData{b: len(shape.lengths), heads: shape.heads, d: shape.d, inter: shape.inter, v: shape.vocab}
	k.h = k.heads * k.d
	k.offsets = make([]int32, k.b+1)
	for i, n := range shape.lengths {
		k.offsets[i+1] = k.offsets[i] + int32(n)
		k.l = max(k.l, n)
	}
	k.t = int(k.offsets[k.b])
	k.chunk = k.t / 3
	for doc, n := range shape.lengths {
		for p := 0; p < n; p++ {
			k.ids = append(k.ids, int32(rng.IntN(k.v)))
			k.pos = append(k.pos, int32(p+2))
			k.types = append(k.types, int32(rng.IntN(2)))
			td := int32(doc)
			if p == 0 && n > 1 && doc%2 == 1 {
				td = -1 // pooling starts after the first token
			}
			k.tokenDoc = append(k.tokenDoc, td)
		}
	}
	h, t, bh := k.h, k.t, k.b*k.heads
	k.word = normal(k.v*h, 0, 0.05)
	k.posEmb = normal((k.l+2)*h, 0, 0.05)
	k.typeEmb = normal(2*h, 0, 0.05)
	k.gamma, k.beta, k.biasH = normal(h, 1, 0.1), normal(h, 0, 0.1), normal(h, 0, 0.5)
	k.x, k.y = normal(t*h, 0, 1), normal(t*h, 0, 1)
	k.ffn, k.biasI = normal(t*k.inter, 0, 1.5), normal(k.inter, 0, 0.5)
	k.qkv, k.biasQKV = normal(t*3*h, 0, 1), normal(3*h, 0, 0.5)
	k.wQKV = normal(3*h*h, 0, 0.1)
	k.wOut = normal(h*k.inter, 0, 0.1)
	k.wDec = normal(k.v*h, 0, 0.1)
	k.scores = normal(bh*k.l*k.l, 0, 2)
	k.probs = make([]float32, bh*k.l*k.l)
	for i := range k.probs {
		k.probs[i] = float32(rng.Float64() * 2 / float64(k.l))
	}
	k.q, k.k, k.vals, k.ctx = normal(bh*k.l*k.d, 0, 1), normal(bh*k.l*k.d, 0, 1), normal(bh*k.l*k.d, 0, 1), normal(bh*k.l*k.d, 0, 1)
	k.z = normal(t*k.v, -3, 2)
	for i := range k.z {
		if rng.IntN(16) == 0 {
			k.z[i] = float32(rng.IntN(4)) * 0.5 // ties
		}
	}
	k.biasV = normal(k.v, 0, 0.5)
	k.pooled = normal(k.b*k.v, 0, 3)
	for i := range k.pooled {
		switch rng.IntN(32) {
		case 0:
			k.pooled[i] = float32(math.Inf(-1))
		case 1:
			k.pooled[i] = float32(math.NaN())
		}
	}
	return k
}

// opsSide holds what one Ops of a check allocated, and its first error.
type opsSide struct {
	ops  Ops
	bufs []Buf
	err  error
}

func (s *opsSide) keep(b Buf, err error) Buf {
	if err != nil {
		s.fail(err)
		return nil
	}
	s.bufs = append(s.bufs, b)
	return b
}

func (s *opsSide) fail(err error) {
	if s.err == nil && err != nil {
		s.err = err
	}
}

// matrix uploads data as the Ops' storage type; vector as float32.
func (s *opsSide) matrix(data []float32) Buf {
	if s.err != nil {
		return nil
	}
	return s.keep(s.ops.Matrix(data))
}

func (s *opsSide) vector(data []float32) Buf {
	if s.err != nil {
		return nil
	}
	return s.keep(s.ops.Vector(data))
}

func (s *opsSide) activations(n int) Buf {
	if s.err != nil {
		return nil
	}
	return s.keep(s.ops.Activations(n))
}

// floats allocates n float32 values set to v.
func (s *opsSide) floats(n int, v float32) Buf {
	if s.err != nil {
		return nil
	}
	b := s.keep(s.ops.Floats(n))
	s.call(func() error { return s.ops.Fill(b, n, v) })
	return b
}

func (s *opsSide) ints(data []int32) Buf {
	if s.err != nil {
		return nil
	}
	b := s.keep(s.ops.Ints(max(len(data), 1)))
	s.call(func() error { return s.ops.SetInts(b, data) })
	return b
}

// call runs f unless an allocation or an earlier call failed.
func (s *opsSide) call(f func() error) {
	if s.err == nil {
		s.fail(f())
	}
}

func (s *opsSide) free() error {
	var errs []error
	for _, b := range s.bufs {
		errs = append(errs, s.ops.Free(b))
	}
	s.bufs = nil
	return errors.Join(errs...)
}

// checkOutput is one output buffer of a check: n values, stored as the
// Ops' storage type (act) or as float32.
type checkOutput struct {
	b   Buf
	n   int
	act bool
}

// kernelCase is one check: run queues the kernel (or GEMM) on one Ops,
// with inputs uploaded from the shared data, and returns its outputs.
type kernelCase struct {
	name   string
	gemm   bool // a cuBLAS GEMM
	f32Out bool // the output is float32 whatever the storage type
	run    func(s *opsSide) []checkOutput
}

// kernelCases lists the checks over k.
func kernelCases(k *kernelData) []kernelCase {
	const eps = 1e-12
	t, h, b, l, d, heads, v, inter := k.t, k.h, k.b, k.l, k.d, k.heads, k.v, k.inter
	bh := b * heads
	act := func(bufs ...Buf) []checkOutput {
		var out []checkOutput
		for _, x := range bufs {
			if x == nil { // a failed allocation: runCase reports it
				return nil
			}
			out = append(out, checkOutput{b: x, n: x.Len(), act: true})
		}
		return out
	}
	embed := func(types bool) func(s *opsSide) []checkOutput {
		return func(s *opsSide) []checkOutput {
			ids, pos, word, posEmb := s.ints(k.ids), s.ints(k.pos), s.matrix(k.word), s.matrix(k.posEmb)
			var ty, typeEmb Buf
			if types {
				ty, typeEmb = s.ints(k.types), s.matrix(k.typeEmb)
			}
			gamma, beta, out := s.vector(k.gamma), s.vector(k.beta), s.activations(t*h)
			s.call(func() error { return s.ops.EmbedLN(t, h, ids, pos, ty, word, posEmb, typeEmb, gamma, beta, eps, out) })
			return []checkOutput{{b: out, n: t * h, act: true}}
		}
	}
	gelu := func(a kernels.Activation) func(s *opsSide) []checkOutput {
		return func(s *opsSide) []checkOutput {
			x, bias := s.matrix(k.ffn), s.vector(k.biasI)
			s.call(func() error { return s.ops.BiasGELU(t, inter, x, bias, a) })
			return []checkOutput{{b: x, n: t * inter, act: true}}
		}
	}
	pool := func(sum bool) func(s *opsSide) []checkOutput {
		return func(s *opsSide) []checkOutput {
			init := float32(math.Inf(-1))
			if sum {
				init = 0
			}
			z, bias, tokenDoc, pooled := s.matrix(k.z), s.vector(k.biasV), s.ints(k.tokenDoc), s.floats(b*v, init)
			// Two calls, the first ending inside a document, as the head's
			// chunks do.
			for _, c := range [][2]int{{0, k.chunk}, {k.chunk, t - k.chunk}} {
				s.call(func() error {
					return s.ops.PoolChunk(c[1], v, sum, s.ops.Slice(z, c[0]*v, c[1]*v), bias, s.ops.Slice(tokenDoc, c[0], c[1]), pooled)
				})
			}
			return []checkOutput{{b: pooled, n: b * v}}
		}
	}
	linear := func(x, w []float32, n, kk int) func(s *opsSide) []checkOutput {
		return func(s *opsSide) []checkOutput {
			xb, wb, y := s.matrix(x), s.matrix(w), s.activations(t*n)
			s.call(func() error { return s.ops.LinearT(t, n, kk, xb, wb, y) })
			return []checkOutput{{b: y, n: t * n, act: true}}
		}
	}
	cases := []kernelCase{
		{name: "embed-ln", run: embed(true)},
		{name: "embed-ln without token types", run: embed(false)},
		{name: "bias-gelu exact", run: gelu(kernels.GELUExact)},
		{name: "bias-gelu tanh", run: gelu(kernels.GELUTanh)},
		{name: "bias-residual-ln", run: func(s *opsSide) []checkOutput {
			// In place on the residual, as after attention and the
			// feed-forward layer.
			y, bias, x, gamma, beta := s.matrix(k.y), s.vector(k.biasH), s.matrix(k.x), s.vector(k.gamma), s.vector(k.beta)
			s.call(func() error { return s.ops.BiasResidualLN(t, h, y, bias, x, gamma, beta, eps, x) })
			return act(x)
		}},
		{name: "bias-residual-ln without bias and residual", run: func(s *opsSide) []checkOutput {
			// In place on y, as the head's LayerNorm.
			y, gamma, beta := s.matrix(k.y), s.vector(k.gamma), s.vector(k.beta)
			s.call(func() error { return s.ops.BiasResidualLN(t, h, y, nil, nil, gamma, beta, eps, y) })
			return act(y)
		}},
		{name: "qkv-scatter", run: func(s *opsSide) []checkOutput {
			qkv, bias, offsets := s.matrix(k.qkv), s.vector(k.biasQKV), s.ints(k.offsets)
			q, kb, vb := s.activations(bh*l*d), s.activations(bh*l*d), s.activations(bh*l*d)
			s.call(func() error { return s.ops.QKVScatter(b, heads, d, l, qkv, bias, offsets, q, kb, vb) })
			return act(q, kb, vb)
		}},
		{name: "masked-softmax", run: func(s *opsSide) []checkOutput {
			sc, offsets := s.matrix(k.scores), s.ints(k.offsets)
			s.call(func() error { return s.ops.MaskedSoftmax(b, heads, l, sc, offsets) })
			return []checkOutput{{b: sc, n: bh * l * l, act: true}}
		}},
		{name: "attn-gather", run: func(s *opsSide) []checkOutput {
			c, offsets, out := s.matrix(k.ctx), s.ints(k.offsets), s.activations(t*h)
			s.call(func() error { return s.ops.AttnGather(b, heads, d, l, c, offsets, out) })
			return []checkOutput{{b: out, n: t * h, act: true}}
		}},
		{name: "pool-chunk max", f32Out: true, run: pool(false)},
		{name: "pool-chunk sum", f32Out: true, run: pool(true)},
		{name: "activate-max", f32Out: true, run: func(s *opsSide) []checkOutput {
			pooled := s.vector(k.pooled)
			s.call(func() error { return s.ops.ActivateMax(b*v, pooled) })
			return []checkOutput{{b: pooled, n: b * v}}
		}},
		{name: "linear-t qkv", gemm: true, run: linear(k.x, k.wQKV, 3*h, h)},
		{name: "linear-t feed-forward output", gemm: true, run: linear(k.ffn, k.wOut, h, inter)},
		{name: "linear-t decoder", gemm: true, run: linear(k.x, k.wDec, v, h)},
		{name: "scores", gemm: true, run: func(s *opsSide) []checkOutput {
			q, kb, sc := s.matrix(k.q), s.matrix(k.k), s.activations(bh*l*l)
			alpha := float32(1 / math.Sqrt(float64(d)))
			s.call(func() error { return s.ops.Scores(bh, l, d, alpha, q, kb, sc) })
			return []checkOutput{{b: sc, n: bh * l * l, act: true}}
		}},
		{name: "context", gemm: true, run: func(s *opsSide) []checkOutput {
			p, vb, c := s.matrix(k.probs), s.matrix(k.vals), s.activations(bh*l*d)
			s.call(func() error { return s.ops.Context(bh, l, d, p, vb, c) })
			return []checkOutput{{b: c, n: bh * l * d, act: true}}
		}},
	}
	return append(cases, llamaKernelCases(k)...)
}

// CompareOps runs every kernel and GEMM of the engine on ref (the
// reference: TwinOps) and on dut (the Ops under test, of the same storage
// type) over the same random inputs, drawn from seed: several documents of
// different lengths, up to 300 tokens, with a hidden size of 3 heads of 20
// and a vocabulary of 1003. It returns one KernelParity per check, in a
// fixed order. Differences are reported in the entries (OK false); an
// error is a call that failed (an allocation, a launch, a download).
func CompareOps(ctx context.Context, ref, dut Ops, seed uint64) ([]KernelParity, error) {
	return compareOps(ctx, ref, dut, defaultKernelShape, seed)
}

func compareOps(ctx context.Context, ref, dut Ops, shape kernelShape, seed uint64) ([]KernelParity, error) {
	dt := ref.DType()
	if dut.DType() != dt {
		return nil, fmt.Errorf("kernel check: the reference stores %v, the Ops under test %v", dt, dut.DType())
	}
	data := newKernelData(shape, seed)
	var res []KernelParity
	for _, c := range kernelCases(data) {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		var vals [2][]float32
		for i, o := range []Ops{ref, dut} {
			v, err := runCase(o, c)
			if err != nil {
				return res, fmt.Errorf("kernel check %s (%v) on %T: %w", c.name, dt, o, err)
			}
			vals[i] = v
		}
		p := KernelParity{Name: c.name, DType: dt.String(), Values: len(vals[0]), Tolerance: parityTolerance(dt, c.gemm, c.f32Out)}
		p.MaxAbs, p.MaxRel = compareValues(vals[0], vals[1])
		p.OK = p.MaxRel <= p.Tolerance
		res = append(res, p)
	}
	return res, nil
}

// runCase runs one check on o and returns its outputs, concatenated.
func runCase(o Ops, c kernelCase) (vals []float32, err error) {
	s := &opsSide{ops: o}
	defer func() { err = errors.Join(err, s.free()) }()
	outs := c.run(s)
	if s.err != nil {
		return nil, s.err
	}
	for _, out := range outs {
		v, err := readBack(o, out.b, out.n, out.act)
		if err != nil {
			return nil, err
		}
		vals = append(vals, v...)
	}
	return vals, nil
}

// compareValues returns the largest |got - ref| and the largest
// |got - ref| / max(|ref|, floor), floor being the RMS of ref's finite
// values. Equal values (infinities and NaNs included) differ by 0; a value
// that is NaN or infinite on one side only counts as math.MaxFloat64 (which
// JSON, unlike +Inf, can carry).
func compareValues(ref, got []float32) (maxAbs, maxRel float64) {
	if len(ref) != len(got) {
		return math.MaxFloat64, math.MaxFloat64
	}
	var ss float64
	n := 0
	for _, x := range ref {
		if f := float64(x); !math.IsInf(f, 0) && !math.IsNaN(f) {
			ss += f * f
			n++
		}
	}
	floor := math.Max(math.Sqrt(ss/float64(max(n, 1))), 1e-30)
	for i := range ref {
		w, g := float64(ref[i]), float64(got[i])
		if w == g || (math.IsNaN(w) && math.IsNaN(g)) {
			continue
		}
		if math.IsInf(w, 0) || math.IsNaN(w) || math.IsInf(g, 0) || math.IsNaN(g) {
			return math.MaxFloat64, math.MaxFloat64
		}
		diff := math.Abs(w - g)
		maxAbs = math.Max(maxAbs, diff)
		maxRel = math.Max(maxRel, diff/math.Max(math.Abs(w), floor))
	}
	return maxAbs, maxRel
}

// readBack returns the first n values of b: float32 values, or (act)
// values of ops' storage type widened to float32.
func readBack(ops Ops, b Buf, n int, act bool) ([]float32, error) {
	dst := make([]float32, n)
	if !act || ops.DType() == kernels.F32 {
		return dst, ops.Download(dst, b)
	}
	return dst, readActivations(ops, dst, b)
}

// readActivations reads back a bf16 or fp16 buffer, which Ops.Download
// (float32 only) does not: TwinOps hold them as float32 already, DeviceOps
// copy the 16-bit values and widen them. An Ops that wraps another (a
// test's) says so with an Unwrap method.
func readActivations(ops Ops, dst []float32, b Buf) error {
	switch o := ops.(type) {
	case *TwinOps:
		src := floats(b)
		if len(dst) > len(src) {
			return fmt.Errorf("twin: read %d values of %d", len(dst), len(src))
		}
		copy(dst, src)
		return nil
	case *DeviceOps:
		return readDeviceActivations(o, dst, b)
	case interface{ Unwrap() Ops }:
		return readActivations(o.Unwrap(), dst, b)
	}
	return fmt.Errorf("kernel check: cannot read back the activations of %T", ops)
}

// readDeviceActivations copies the first len(dst) values of a buffer of
// o's 16-bit storage type to the host and widens them to float32, waiting
// for the work before it.
func readDeviceActivations(o *DeviceOps, dst []float32, b Buf) error {
	d := b.(*devBuf)
	size := o.dt.Size()
	if len(dst) > d.n || d.size != size || size != 2 {
		return fmt.Errorf("cuda: read %d %v values of a buffer of %d values of %d bytes", len(dst), o.dt, d.n, d.size)
	}
	st, err := o.download(d, 2*len(dst))
	if err != nil || len(dst) == 0 {
		return err
	}
	widen := kernels.FromF16Bits
	if o.dt == kernels.BF16 {
		widen = kernels.FromBF16Bits
	}
	for i, h := range unsafe.Slice((*uint16)(st), len(dst)) {
		dst[i] = widen(h)
	}
	return nil
}

// OpsFactory makes the Ops a check runs on, with activations stored as dt;
// release frees them.
type OpsFactory func(dt kernels.DType) (ops Ops, release func() error, err error)

// errOldGPU marks a GPU older than the engine's kernels (PTX for
// kernels.PTXArch) run on.
var errOldGPU = errors.New("splash's CUDA engine needs a GPU of compute capability 8.0 or newer")

// deviceFactory retains device deviceIndex's primary context and returns
// a factory of DeviceOps on it (GEMMs with Compute32F: no TF32) and the
// release of the context. Where the driver or cuBLAS do not load, the
// error matches gpu.ErrUnavailable (and gpu.ErrNoDriver for the driver);
// a GPU older than compute capability 8.0 gives errOldGPU.
func deviceFactory(deviceIndex int) (OpsFactory, func() error, error) {
	d, lib, err := loadLibraries()
	if err != nil {
		return nil, nil, err
	}
	n, err := d.DeviceCount()
	if err != nil {
		return nil, nil, err
	}
	if deviceIndex < 0 || deviceIndex >= n {
		return nil, nil, fmt.Errorf("cuda: device %d: no such device (%d present)", deviceIndex, n)
	}
	info, err := d.Device(deviceIndex)
	if err != nil {
		return nil, nil, err
	}
	if info.ComputeMajor < 8 {
		return nil, nil, fmt.Errorf("%w (its kernels are PTX for %s); cuda:%d (%s) is %d.%d", errOldGPU, kernels.PTXArch,
			deviceIndex, info.Name, info.ComputeMajor, info.ComputeMinor)
	}
	c, err := d.Retain(deviceIndex)
	if err != nil {
		return nil, nil, err
	}
	factory := func(dt kernels.DType) (Ops, func() error, error) {
		o, err := NewDeviceOps(c, lib, dt, sys.Compute32F)
		if err != nil {
			return nil, nil, err
		}
		return o, o.Close, nil
	}
	return factory, c.Release, nil
}

// storageTypes are the storage types the checks cover, with the engine's
// precision of each.
var storageTypes = []struct {
	dt        kernels.DType
	precision Precision
}{{kernels.F32, FP32}, {kernels.BF16, BF16}, {kernels.F16, FP16}}

// CompareKernels runs CompareOps for each storage type (f32, bf16, f16)
// with TwinOps as the reference and the Ops newOps makes under test, then
// the fp8 cases (compareKernelsFP8: skipped, with an entry saying why,
// below compute capability 9.0).
func CompareKernels(ctx context.Context, newOps OpsFactory, seed uint64) ([]KernelParity, error) {
	return compareKernels(ctx, newOps, defaultKernelShape, seed)
}

func compareKernels(ctx context.Context, newOps OpsFactory, shape kernelShape, seed uint64) (res []KernelParity, err error) {
	for _, st := range storageTypes {
		dut, release, err := newOps(st.dt)
		if err != nil {
			return res, fmt.Errorf("kernel check (%v): %w", st.dt, err)
		}
		r, err := compareOps(ctx, NewTwinOps(st.dt), dut, shape, seed)
		res = append(res, r...)
		if err = errors.Join(err, release()); err != nil {
			return res, err
		}
	}
	// --precision fp8 (kernelcheck_fp8.go): measured on compute
	// capability 9.0 and later, one entry saying why elsewhere.
	r, err := compareKernelsFP8(ctx, newOps, shape, seed)
	return append(res, r...), err
}

// reuseOps wraps newOps so that each storage type's Ops is made once, on
// first use, and released by the returned function: the checks then load
// the kernels' module and make a cuBLAS handle once per storage type.
func reuseOps(newOps OpsFactory) (OpsFactory, func() error) {
	type made struct {
		ops     Ops
		release func() error
	}
	cache := map[kernels.DType]made{}
	factory := func(dt kernels.DType) (Ops, func() error, error) {
		if m, ok := cache[dt]; ok {
			return m.ops, func() error { return nil }, nil
		}
		ops, release, err := newOps(dt)
		if err != nil {
			return nil, nil, err
		}
		cache[dt] = made{ops, release}
		return ops, func() error { return nil }, nil
	}
	release := func() error {
		var errs []error
		for _, m := range cache {
			errs = append(errs, m.release())
		}
		clear(cache)
		return errors.Join(errs...)
	}
	return factory, release
}

// CheckKernels runs the engine's kernels and GEMMs on device deviceIndex
// against their twins (CompareKernels over DeviceOps) for f32, bf16 and
// f16. Without a usable driver or cuBLAS the error matches
// gpu.ErrUnavailable (and gpu.ErrNoDriver when the driver is missing).
func CheckKernels(ctx context.Context, deviceIndex int, seed uint64) ([]KernelParity, error) {
	factory, release, err := deviceFactory(deviceIndex)
	if err != nil {
		return nil, err
	}
	res, err := CompareKernels(ctx, factory, seed)
	return res, errors.Join(err, release())
}

// engineModel is one generated model of the engine check.
type engineModel struct {
	arch testmodel.Arch
	// first and last are the ids that open and close every document
	// ([CLS] and [SEP], <s> and </s>); body ids are drawn from [lo, vocab),
	// which leaves out the padding id (RoBERTa's positions skip it).
	first, last, lo int32
}

// engineConfig is what the engine check generates and encodes.
type engineConfig struct {
	models  []engineModel
	model   testmodel.Config // Arch set per model
	lengths []int            // document lengths, in tokens
	chunk   int              // the head's token chunk
}

var defaultEngineConfig = engineConfig{
	models: []engineModel{
		{arch: testmodel.ArchBERT, first: 2, last: 3, lo: 5},
		{arch: testmodel.ArchDistilBERT, first: 2, last: 3, lo: 5},
		{arch: testmodel.ArchRoBERTa, first: 0, last: 2, lo: 4},
	},
	model:   testmodel.Config{Layers: 2, Hidden: 60, Heads: 3, Seed: 11},
	lengths: []int{2, 9, 33, 64, 127, 255, 17, 90, 5, 48, 12, 77, 30, 3, 60, 25, 40, 8, 20, 70, 14, 36, 50, 6},
	chunk:   256,
}

// robertaVocab is the size of the made-up vocabulary under
// robertaCheckTokenizer.
const robertaVocab = 3000

// robertaCheckTokenizer is a RoBERTa tokenizer.json
// (testmodel.RobertaTokenizerJSON) over a made-up byte-level BPE
// vocabulary of n tokens and no merges. The engine check feeds token ids,
// so only the vocabulary's size and the <pad> at id 1 that a RoBERTa model
// needs (its positions start after the padding id) matter; testmodel's
// synthetic tokenizer, which BERT and DistilBERT use, has [PAD] at id 0.
// Both keep the check free of data files.
func robertaCheckTokenizer(n int) ([]byte, error) {
	vocab := make(map[string]int, n)
	for i := 0; i < n; i++ {
		vocab[fmt.Sprintf("t%d", i)] = i
	}
	src, err := json.Marshal(map[string]any{"model": map[string]any{"type": "BPE", "vocab": vocab, "merges": []string{}}})
	if err != nil {
		return nil, err
	}
	return testmodel.RobertaTokenizerJSON(src)
}

// generateCheckModel writes the check's model of m.arch into dir.
func generateCheckModel(dir string, cfg testmodel.Config, m engineModel) error {
	tok := testmodel.SyntheticTokenizerJSON()
	if m.arch == testmodel.ArchRoBERTa {
		var err error
		if tok, err = robertaCheckTokenizer(robertaVocab); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, testmodel.TokenizerFile)
	if err := os.WriteFile(path, tok, 0o644); err != nil {
		return err
	}
	cfg.Arch = m.arch
	return testmodel.Generate(dir, cfg, path)
}

// CompareEngine generates a small masked LM of each architecture (BERT,
// DistilBERT, RoBERTa: 2 layers, hidden size 60 in 3 heads of 20) into a
// temporary directory, encodes 24 random documents of 2 to 255 tokens in
// one batch with Net.Forward (max pooling, the head in chunks of 256
// tokens) on the Ops newOps makes for fp32, bf16 and fp16, and compares
// the vectors with the model's float64 oracle (testmodel.Oracle): fp32
// must be within EngineFP32Tolerance, bf16 and fp16 must keep a mean
// top-20 overlap of EngineMinTopOverlap. It returns one EngineParity per
// architecture and precision.
//
// On these random models the twins (which round as the GPU does) reach a
// top-20 overlap of 0.97 to 0.99 in bf16 and 0.99 to 1 in fp16 over
// several seeds; 24 documents (480 top terms) keep the mean's spread well
// below that margin.
func CompareEngine(ctx context.Context, newOps OpsFactory, seed uint64) ([]EngineParity, error) {
	return compareEngine(ctx, newOps, defaultEngineConfig, seed)
}

func compareEngine(ctx context.Context, newOps OpsFactory, cfg engineConfig, seed uint64) (res []EngineParity, err error) {
	work, err := os.MkdirTemp("", "splash-engine-check-")
	if err != nil {
		return nil, fmt.Errorf("engine check: %w", err)
	}
	defer func() { err = errors.Join(err, os.RemoveAll(work)) }()
	for _, m := range cfg.models {
		r, err := compareEngineModel(ctx, newOps, cfg, m, filepath.Join(work, string(m.arch)), seed)
		res = append(res, r...)
		if err != nil {
			return res, fmt.Errorf("engine check (%s): %w", m.arch, err)
		}
	}
	return res, nil
}

func compareEngineModel(ctx context.Context, newOps OpsFactory, cfg engineConfig, m engineModel, dir string, seed uint64) ([]EngineParity, error) {
	if err := generateCheckModel(dir, cfg.model, m); err != nil {
		return nil, err
	}
	arch, err := ReadArch(dir)
	if err != nil {
		return nil, err
	}
	oracle, err := testmodel.LoadOracle(dir)
	if err != nil {
		return nil, err
	}
	w, err := bindCheckWeights(dir, arch)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, uint64(len(m.arch))))
	docs := make([][]int32, len(cfg.lengths))
	tokens := 0
	want := make([][]float64, len(docs))
	for i, n := range cfg.lengths {
		n = max(min(n, arch.MaxTokens()), 2)
		doc := make([]int32, n)
		doc[0], doc[n-1] = m.first, m.last
		for p := 1; p < n-1; p++ {
			doc[p] = m.lo + int32(rng.IntN(arch.Vocab-int(m.lo)))
		}
		docs[i], tokens = doc, tokens+n
		if want[i] = oracle.Pooled(doc, "max"); want[i] == nil {
			return nil, fmt.Errorf("the oracle refuses document %d", i)
		}
	}
	var res []EngineParity
	for _, st := range storageTypes {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		got, err := forwardOn(newOps, st.dt, w, docs, cfg.chunk)
		if err != nil {
			return res, fmt.Errorf("%s: %w", st.precision, err)
		}
		p := EngineParity{Arch: string(m.arch), Precision: string(st.precision), Docs: len(docs), Tokens: tokens}
		scoreParity(&p, want[:len(docs)], got, arch.Vocab, st.dt == kernels.F32)
		res = append(res, p)
	}
	return res, nil
}

// bindCheckWeights reads a generated model's weights.
func bindCheckWeights(dir string, arch Arch) (*Weights, error) {
	ckpt, err := weights.Open(dir)
	if err != nil {
		return nil, err
	}
	defer ckpt.Close()
	return BindWeights(arch, ckpt)
}

// forwardOn runs docs through a Net of w on Ops of dt and returns the
// pooled rows.
func forwardOn(newOps OpsFactory, dt kernels.DType, w *Weights, docs [][]int32, chunk int) (out []float32, err error) {
	ops, release, err := newOps(dt)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, release()) }()
	net, err := NewNet(ops, w, chunk)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, net.Close()) }()
	out = make([]float32, len(docs)*w.Arch.Vocab)
	if err := net.Forward(Input{Docs: docs}, encode.PoolMax, out); err != nil {
		return nil, err
	}
	return out, nil
}

// CheckEngine runs CompareEngine on device deviceIndex (DeviceOps with
// fp32 GEMMs, no TF32). Without a usable driver or cuBLAS the error
// matches gpu.ErrUnavailable (and gpu.ErrNoDriver when the driver is
// missing).
func CheckEngine(ctx context.Context, deviceIndex int, seed uint64) ([]EngineParity, error) {
	factory, release, err := deviceFactory(deviceIndex)
	if err != nil {
		return nil, err
	}
	factory, releaseOps := reuseOps(factory)
	res, err := CompareEngine(ctx, factory, seed)
	return res, errors.Join(err, releaseOps(), release())
}

// scoreParity fills p's differences from the oracle's rows want and the
// engine's pooled rows got ([len(want)][v]): the mean top-20 overlap, the
// largest absolute and relative (weights above 0.1) differences, a NaN or
// infinite difference counting as math.MaxFloat64 (JSON carries neither),
// and OK: within EngineFP32Tolerance when fp32, else an overlap of at least
// EngineMinTopOverlap.
func scoreParity(p *EngineParity, want [][]float64, got []float32, v int, fp32 bool) {
	for i := range want {
		g := make([]float64, v)
		for j := range g {
			g[j] = float64(got[i*v+j])
		}
		p.TopOverlap += TopOverlap(want[i], g, engineTopK)
		for j, x := range want[i] {
			diff, rel := math.Abs(g[j]-x), 0.0
			if x > 0.1 {
				rel = diff / x
			}
			if math.IsNaN(diff) || math.IsInf(diff, 0) {
				diff, rel = math.MaxFloat64, math.MaxFloat64
			}
			p.MaxAbs, p.MaxRel = math.Max(p.MaxAbs, diff), math.Max(p.MaxRel, rel)
		}
	}
	p.TopOverlap /= float64(len(want))
	if fp32 {
		p.OK = p.MaxAbs <= EngineFP32Tolerance
	} else {
		p.OK = p.TopOverlap >= EngineMinTopOverlap
	}
}
