package cuda

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/encode/weights"
	"github.com/splash-encode/splash/gpu/cuda/sys"
	"github.com/splash-encode/splash/kernels"
)

// TestLinearFP8Twin checks TwinOps' FP8 GEMM against a float64 product of
// the unquantized operands: within the error of two E4M3 roundings (each
// value within 2^-4 relative, so a dot product within about 2·2^-4 of
// Σ|x·w|), far from exact (it is quantized), and equal to the bf16 GEMM for
// shapes that FP8Eligible refuses.
func TestLinearFP8Twin(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	for _, c := range []struct{ rows, n, k int }{{1, 16, 16}, {7, 48, 64}, {33, 160, 96}, {5, 30, 64}, {5, 32, 40}} {
		t.Run(fmt.Sprintf("rows=%d,n=%d,k=%d", c.rows, c.n, c.k), func(t *testing.T) {
			x := make([]float32, c.rows*c.k)
			w := make([]float32, c.n*c.k)
			for i := range x {
				x[i] = kernels.BF16.Round(float32(rng.NormFloat64()))
			}
			for i := range w {
				w[i] = float32(rng.NormFloat64() * 0.05)
			}
			run := func(o *TwinOps) []float32 {
				xb, _ := o.Activations(len(x))
				copy(floats(xb), x)
				wb, err := o.Matrix(w)
				if err != nil {
					t.Fatal(err)
				}
				y, _ := o.Activations(c.rows * c.n)
				if err := o.LinearT(c.rows, c.n, c.k, xb, wb, y); err != nil {
					t.Fatal(err)
				}
				return floats(y)
			}
			got, bf16 := run(NewTwinFP8Ops()), run(NewTwinOps(kernels.BF16))
			if !FP8Eligible(c.n, c.k) {
				for i := range got {
					if got[i] != bf16[i] {
						t.Fatalf("y[%d] = %g, want the bf16 GEMM's %g for a shape FP8 does not take", i, got[i], bf16[i])
					}
				}
				return
			}
			worst, differs := 0.0, 0
			for r := 0; r < c.rows; r++ {
				for j := 0; j < c.n; j++ {
					var exact, mag float64
					for p := 0; p < c.k; p++ {
						exact += float64(x[r*c.k+p]) * float64(w[j*c.k+p])
						mag += math.Abs(float64(x[r*c.k+p]) * float64(w[j*c.k+p]))
					}
					g := float64(got[r*c.n+j])
					// Two E4M3 roundings (2^-4 each, relative, in the normal
					// range; scaled so that the largest value is 448, the
					// subnormals are far below these normal draws), the bf16
					// output rounding (2^-8).
					bound := mag*(2.0/16+1.0/256) + math.Abs(exact)/256
					if e := math.Abs(g - exact); e > bound {
						t.Fatalf("y[%d][%d] = %g, exact %g: error %g above %g", r, j, g, exact, e, bound)
					}
					worst = math.Max(worst, math.Abs(g-exact)/mag)
					if got[r*c.n+j] != bf16[r*c.n+j] {
						differs++
					}
				}
			}
			if differs == 0 {
				t.Fatal("the fp8 GEMM equals the bf16 GEMM everywhere: nothing was quantized")
			}
			t.Logf("largest error / Σ|x·w| %.3g; %d of %d outputs differ from bf16", worst, differs, c.rows*c.n)
		})
	}
}

// TestLinearFP8ActivationScale checks that the activation's scale follows
// its own amax at each call: scaling x by 2^10 scales y by 2^10 exactly
// (power-of-two scales commute with E4M3 and bf16 rounding), where one
// fixed scale would saturate at 448.
func TestLinearFP8ActivationScale(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	const rows, n, k = 4, 32, 32
	x := make([]float32, rows*k)
	w := make([]float32, n*k)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	o := NewTwinFP8Ops()
	wb, _ := o.Matrix(w)
	y := func(s float32) []float32 {
		xb, _ := o.Activations(len(x))
		for i, v := range x {
			floats(xb)[i] = v * s
		}
		yb, _ := o.Activations(rows * n)
		if err := o.LinearT(rows, n, k, xb, wb, yb); err != nil {
			t.Fatal(err)
		}
		return floats(yb)
	}
	a, b := y(1), y(1024)
	for i := range a {
		if b[i] != 1024*a[i] {
			t.Fatalf("y[%d]: %g with x, %g with 1024·x, want %g", i, a[i], b[i], 1024*a[i])
		}
	}
}

// fp8Metrics are the mean top-20 overlap with the oracle and the largest
// relative error of the weights above 0.1.
type fp8Metrics struct{ share, worstRel float64 }

// decoderFP8Metrics runs a generated decoder through ops (all documents in
// one batch) and measures it against the float64 oracle.
func decoderFP8Metrics(t *testing.T, g generatedLlama, ops Ops, att Attention, echo, headFP8 bool) fp8Metrics {
	t.Helper()
	arch, err := ReadArch(g.dir)
	if err != nil {
		t.Fatal(err)
	}
	ckpt, err := OpenCheckpoint(g.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ckpt.Close()
	w, err := BindWeights(arch, ckpt)
	if err != nil {
		t.Fatal(err)
	}
	net, err := NewNet(ops, w, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	if !headFP8 {
		if err := net.KeepHeadBF16(); err != nil {
			t.Fatal(err)
		}
	}
	if err := net.SetAttention(att); err != nil {
		t.Fatal(err)
	}
	docs, from := llamaDocs(g.tok, cranfieldTexts(t, 10), 60, echo)
	v := arch.Vocab
	out := make([]float32, len(docs)*v)
	if err := net.Forward(Input{Docs: docs, PoolFrom: from}, encode.PoolMax, out); err != nil {
		t.Fatal(err)
	}
	var m fp8Metrics
	for i, ids := range docs {
		want := g.oracle.PooledFrom(ids, from[i], "max", att == AttentionBidirectional)
		if len(want) != v {
			t.Fatalf("document %d: the oracle refuses it", i)
		}
		got := make([]float64, v)
		for j := range got {
			got[j] = float64(out[i*v+j])
		}
		m.share += TopOverlap(want, got, 20)
		for j, wv := range want {
			if wv > 0.1 {
				m.worstRel = math.Max(m.worstRel, math.Abs(got[j]-wv)/wv)
			}
		}
	}
	m.share /= float64(len(docs))
	return m
}

// TestDecoderForwardFP8TopTerms runs the Llama and Mistral test decoders
// with --precision fp8's numerics (TwinOps: E4M3 weight GEMMs with
// per-tensor scales, the LM head and attention in bf16: Net.KeepHeadBF16)
// for causal and bidirectional attention and echo inputs: the mean top-20
// overlap with the float64 oracle must be at least 0.95. It logs the
// figures with an E4M3 head too (the reason for the policy) and bf16's. A
// quantization whose scales are not applied must fail the same check.
func TestDecoderForwardFP8TopTerms(t *testing.T) {
	if testing.Short() {
		t.Skip("generates two decoders")
	}
	for _, m := range []struct {
		name string
		cfg  testmodel.LlamaConfig
	}{{"llama", testLlama}, {"mistral", testMistral}} {
		g := generateLlama(t, m.cfg)
		for _, c := range []struct {
			att  Attention
			echo bool
		}{{AttentionCausal, false}, {AttentionBidirectional, false}, {AttentionCausal, true}} {
			fp8 := decoderFP8Metrics(t, g, NewTwinFP8Ops(), c.att, c.echo, false)
			head := decoderFP8Metrics(t, g, NewTwinFP8Ops(), c.att, c.echo, true)
			bf16 := decoderFP8Metrics(t, g, NewTwinOps(kernels.BF16), c.att, c.echo, false)
			t.Logf("%s %s echo=%v: mean top-20 overlap, largest relative error (weights > 0.1): fp8 %.3f, %.3g; fp8 with an E4M3 head %.3f, %.3g; bf16 %.3f, %.3g",
				m.name, c.att, c.echo, fp8.share, fp8.worstRel, head.share, head.worstRel, bf16.share, bf16.worstRel)
			if fp8.share < 0.95 {
				t.Errorf("%s %s echo=%v: fp8 mean top-20 overlap %.3f < 0.95", m.name, c.att, c.echo, fp8.share)
			}
		}
		broken := NewTwinFP8Ops()
		broken.fp8.unscaled = true
		b := decoderFP8Metrics(t, g, broken, AttentionCausal, false, false)
		t.Logf("%s with the scales not applied: overlap %.3f, largest relative error %.3g", m.name, b.share, b.worstRel)
		if b.share >= 0.95 {
			t.Errorf("%s: fp8 without its scales keeps a top-20 overlap of %.3f: the check cannot catch a broken quantization", m.name, b.share)
		}
	}
}

// TestForwardFP8TopTerms is TestDecoderForwardFP8TopTerms for the BERT
// family: every encoder GEMM and the head transform in FP8, the decoder
// in bf16 (KeepHeadBF16; its 30,522 ids are not a multiple of 16 anyway).
func TestForwardFP8TopTerms(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a model")
	}
	g := generateModel(t, testmodel.Config{Layers: 2, Hidden: 64, Heads: 4, Seed: 11})
	oracle, err := testmodel.LoadOracle(g.dir)
	if err != nil {
		t.Fatal(err)
	}
	run := func(ops Ops, headFP8 bool) fp8Metrics {
		arch, err := ReadArch(g.dir)
		if err != nil {
			t.Fatal(err)
		}
		ckpt, err := weights.Open(g.dir)
		if err != nil {
			t.Fatal(err)
		}
		defer ckpt.Close()
		w, err := BindWeights(arch, ckpt)
		if err != nil {
			t.Fatal(err)
		}
		net, err := NewNet(ops, w, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer net.Close()
		if !headFP8 {
			if err := net.KeepHeadBF16(); err != nil {
				t.Fatal(err)
			}
		}
		docs := tokenize(g.tok, cranfieldTexts(t, 16), oracle.MaxLength())
		v := arch.Vocab
		out := make([]float32, len(docs)*v)
		if err := net.Forward(Input{Docs: docs}, encode.PoolMax, out); err != nil {
			t.Fatal(err)
		}
		var m fp8Metrics
		m.share, m.worstRel = reducedPrecisionError(oracle, docs, out, v)
		return m
	}
	fp8, bf16 := run(NewTwinFP8Ops(), false), run(NewTwinOps(kernels.BF16), false)
	t.Logf("bert: mean top-20 overlap, largest relative error (weights > 0.1): fp8 %.3f, %.3g; bf16 %.3f, %.3g", fp8.share, fp8.worstRel, bf16.share, bf16.worstRel)
	if fp8.share < 0.95 {
		t.Errorf("fp8 mean top-20 overlap %.3f < 0.95", fp8.share)
	}
	broken := NewTwinFP8Ops()
	broken.fp8.unscaled = true
	b := run(broken, false)
	t.Logf("bert with the scales not applied: overlap %.3f, largest relative error %.3g", b.share, b.worstRel)
	if b.share >= 0.95 {
		t.Errorf("fp8 without its scales keeps a top-20 overlap of %.3f: the check cannot catch a broken quantization", b.share)
	}
}

// TestResolvePrecisionFP8: fp8 on compute capability 9.0 and later (bf16
// storage, fp32 accumulation); below, a settings error naming the card and
// its capability.
func TestResolvePrecisionFP8(t *testing.T) {
	for _, info := range []sys.DeviceInfo{{Name: "H100", ComputeMajor: 9}, {Name: "B200", ComputeMajor: 10}} {
		p, dt, compute, err := resolvePrecision("fp8", info)
		if err != nil || p != FP8 || dt != kernels.BF16 || compute != sys.Compute32F {
			t.Errorf("fp8 on %s: %v %v %v %v, want fp8, bf16 storage, Compute32F", info.Name, p, dt, compute, err)
		}
	}
	for _, info := range []sys.DeviceInfo{{Name: "NVIDIA L4", ComputeMajor: 8, ComputeMinor: 9}, {Name: "NVIDIA A100", ComputeMajor: 8}} {
		_, _, _, err := resolvePrecision("fp8", info)
		if !errors.Is(err, encode.ErrSettings) || !strings.Contains(err.Error(), info.Name) ||
			!strings.Contains(err.Error(), fmt.Sprintf("%d.%d", info.ComputeMajor, info.ComputeMinor)) || !strings.Contains(err.Error(), "9.0") {
			t.Errorf("fp8 on %s: %v, want a settings error naming the card, its capability and 9.0", info.Name, err)
		}
	}
	if _, _, _, err := resolvePrecision("int8", sys.DeviceInfo{Name: "H100", ComputeMajor: 9}); err == nil || !strings.Contains(err.Error(), "fp8") {
		t.Errorf("an unknown precision: %v, want an error listing fp8", err)
	}
}

// fp8TwinMaker is a TwinOps that makes fp8 Ops as DeviceOps does, so that
// CI runs the fp8 cases of the device checks: the twin fp8 Ops (broken
// with its scales dropped when unscaled), or errFP8Unsupported when skip.
type fp8TwinMaker struct {
	*TwinOps
	skip, unscaled bool
}

func (m fp8TwinMaker) newFP8Ops() (Ops, func() error, error) {
	if m.skip {
		return nil, nil, fmt.Errorf("%w; cuda:0 (NVIDIA A100) is 8.0", errFP8Unsupported)
	}
	o := NewTwinFP8Ops()
	o.fp8.unscaled = m.unscaled
	return o, func() error { return nil }, nil
}

func fp8TwinFactory(skip, unscaled bool) OpsFactory {
	return func(dt kernels.DType) (Ops, func() error, error) {
		return fp8TwinMaker{TwinOps: NewTwinOps(dt), skip: skip, unscaled: unscaled}, func() error { return nil }, nil
	}
}

// TestKernelCheckFP8 runs the kernel check's fp8 cases with fp8 twins on
// both sides (no difference at all), with a broken fp8 Ops (its GEMMs
// fail, the quantization passes), and on a GPU without FP8 (one entry
// saying so).
func TestKernelCheckFP8(t *testing.T) {
	ctx := context.Background()
	res, err := compareKernelsFP8(ctx, fp8TwinFactory(false, false), kcSmallShape, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1+len(fp8GEMMShapes) {
		t.Errorf("%d fp8 checks, want the quantization and %d GEMMs", len(res), len(fp8GEMMShapes))
	}
	for _, p := range res {
		if !p.OK || p.MaxRel != 0 || p.Values == 0 || p.DType != "fp8" {
			t.Errorf("%+v: want no difference", p)
		}
	}
	res, err = compareKernelsFP8(ctx, fp8TwinFactory(false, true), kcSmallShape, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res {
		if wantOK := strings.HasPrefix(p.Name, "fp8 quantize"); p.OK != wantOK {
			t.Errorf("fp8 without its scales: %+v: want OK %v", p, wantOK)
		}
	}
	res, err = compareKernelsFP8(ctx, fp8TwinFactory(true, false), kcSmallShape, 1)
	if err != nil || len(res) != 1 || !res[0].OK || res[0].DType != "fp8" || !strings.Contains(res[0].Skipped, "9.0") {
		t.Errorf("on a GPU without FP8: %+v, %v; want one entry saying fp8 was skipped and why", res, err)
	}
	// Ops that make no fp8 Ops (TwinOps in CI): no entries.
	if res, err := compareKernelsFP8(ctx, twinFactory("", 0), kcSmallShape, 1); len(res) != 0 || err != nil {
		t.Errorf("TwinOps: %+v, %v; want no fp8 entries", res, err)
	}
}

// TestDecoderEngineCheckFP8 runs the decoder engine check with fp8 twins:
// each model and variant gains an fp8 entry whose overlap with the oracle
// must reach EngineMinTopOverlap; a GPU without FP8 gets entries saying so.
func TestDecoderEngineCheckFP8(t *testing.T) {
	if testing.Short() {
		t.Skip("generates two decoders")
	}
	res, err := compareDecoderEngine(context.Background(), fp8TwinFactory(false, false), smallDecoderCheck, 1)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range res {
		if p.Precision != string(FP8) {
			continue
		}
		n++
		t.Logf("%s fp8: mean top-20 overlap %.3f, largest relative error (weights > 0.1) %.3g", p.Arch, p.TopOverlap, p.MaxRel)
		if !p.OK || p.Docs != len(smallDecoderCheck.lengths) || p.Tokens == 0 {
			t.Errorf("%+v: want OK", p)
		}
	}
	if n != 2*3 {
		t.Errorf("%d fp8 results, want 2 models × 3 variants", n)
	}
	cfg := smallDecoderCheck
	cfg.models = cfg.models[:1]
	res, err = compareDecoderEngine(context.Background(), fp8TwinFactory(true, false), cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	skipped := 0
	for _, p := range res {
		if p.Precision == "fp8" && strings.Contains(p.Skipped, "9.0") && p.OK {
			skipped++
		}
	}
	if skipped != 3 {
		t.Errorf("%d skipped fp8 entries, want one per variant", skipped)
	}
}
