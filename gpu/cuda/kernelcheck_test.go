package cuda

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/gpu"
	"github.com/splash-encode/splash/kernels"
)

// kcBrokenOps is TwinOps with one method broken: after op runs, the
// largest finite value of its output grows by rel (relative), or by one
// rounding step of the output's storage when rel is 0 (a difference the
// checks must accept).
type kcBrokenOps struct {
	Ops
	op  string
	rel float64
}

func (o *kcBrokenOps) Unwrap() Ops { return o.Ops }

// perturb breaks the output b of method name; f32Out says it is float32
// whatever the storage type.
func (o *kcBrokenOps) perturb(name string, b Buf, f32Out bool) {
	if name != o.op || b == nil {
		return
	}
	f := floats(b)
	at := -1
	for i, x := range f {
		if !math.IsInf(float64(x), 0) && !math.IsNaN(float64(x)) && (at < 0 || math.Abs(float64(x)) > math.Abs(float64(f[at]))) {
			at = i
		}
	}
	if at < 0 {
		return
	}
	x := f[at]
	dt := o.DType()
	if f32Out {
		dt = kernels.F32
	}
	switch {
	case o.rel != 0:
		f[at] = float32(float64(x) * (1 + o.rel))
	case dt == kernels.BF16:
		f[at] = kernels.FromBF16Bits(kernels.ToBF16Bits(x) + 1)
	case dt == kernels.F16:
		f[at] = kernels.FromF16Bits(kernels.ToF16Bits(x) + 1)
	default:
		f[at] = math.Nextafter32(x, float32(math.Copysign(math.Inf(1), float64(x))))
	}
}

func (o *kcBrokenOps) LinearT(rows, n, k int, x, w, y Buf) error {
	err := o.Ops.LinearT(rows, n, k, x, w, y)
	o.perturb("LinearT", y, false)
	return err
}

func (o *kcBrokenOps) Scores(batch, l, d int, alpha float32, q, k, s Buf) error {
	err := o.Ops.Scores(batch, l, d, alpha, q, k, s)
	o.perturb("Scores", s, false)
	return err
}

func (o *kcBrokenOps) Context(batch, l, d int, p, v, c Buf) error {
	err := o.Ops.Context(batch, l, d, p, v, c)
	o.perturb("Context", c, false)
	return err
}

func (o *kcBrokenOps) EmbedLN(tokens, h int, ids, pos, types Buf, word, posEmb, typeEmb, gamma, beta Buf, eps float32, out Buf) error {
	err := o.Ops.EmbedLN(tokens, h, ids, pos, types, word, posEmb, typeEmb, gamma, beta, eps, out)
	o.perturb("EmbedLN", out, false)
	return err
}

func (o *kcBrokenOps) BiasGELU(rows, n int, x, bias Buf, act kernels.Activation) error {
	err := o.Ops.BiasGELU(rows, n, x, bias, act)
	o.perturb("BiasGELU", x, false)
	return err
}

func (o *kcBrokenOps) BiasResidualLN(rows, h int, y, bias, residual, gamma, beta Buf, eps float32, out Buf) error {
	err := o.Ops.BiasResidualLN(rows, h, y, bias, residual, gamma, beta, eps, out)
	o.perturb("BiasResidualLN", out, false)
	return err
}

func (o *kcBrokenOps) QKVScatter(b, heads, d, l int, qkv, bias, offsets Buf, q, k, v Buf) error {
	err := o.Ops.QKVScatter(b, heads, d, l, qkv, bias, offsets, q, k, v)
	o.perturb("QKVScatter", v, false)
	return err
}

func (o *kcBrokenOps) MaskedSoftmax(b, heads, l int, s, offsets Buf) error {
	err := o.Ops.MaskedSoftmax(b, heads, l, s, offsets)
	o.perturb("MaskedSoftmax", s, false)
	return err
}

func (o *kcBrokenOps) AttnGather(b, heads, d, l int, c, offsets, out Buf) error {
	err := o.Ops.AttnGather(b, heads, d, l, c, offsets, out)
	o.perturb("AttnGather", out, false)
	return err
}

func (o *kcBrokenOps) PoolChunk(rows, v int, sum bool, z, bias, tokenDoc, pooled Buf) error {
	err := o.Ops.PoolChunk(rows, v, sum, z, bias, tokenDoc, pooled)
	o.perturb("PoolChunk", pooled, true)
	return err
}

func (o *kcBrokenOps) ActivateMax(n int, pooled Buf) error {
	err := o.Ops.ActivateMax(n, pooled)
	o.perturb("ActivateMax", pooled, true)
	return err
}

// kcChecksOf maps each Ops method to the checks that run it.
var kcChecksOf = map[string][]string{
	"EmbedLN":        {"embed-ln", "embed-ln without token types"},
	"BiasGELU":       {"bias-gelu exact", "bias-gelu tanh"},
	"BiasResidualLN": {"bias-residual-ln", "bias-residual-ln without bias and residual"},
	"QKVScatter":     {"qkv-scatter"},
	"MaskedSoftmax":  {"masked-softmax"},
	"AttnGather":     {"attn-gather"},
	"PoolChunk":      {"pool-chunk max", "pool-chunk sum"},
	"ActivateMax":    {"activate-max"},
	"LinearT":        {"linear-t qkv", "linear-t feed-forward output", "linear-t decoder"},
	"Scores":         {"scores"},
	"Context":        {"context"},
	// The Llama family (kernelcheck_llama.go).
	"Embed":           {"embed", "embed, ids above 65,535"},
	"ResidualRMSNorm": {"residual-rmsnorm", "rmsnorm without residual add"},
	"GQAScatter":      {"gqa-scatter"},
	"RoPE":            {"rope"},
	"CausalSoftmax":   {"causal-softmax"},
	"SwiGLU":          {"swiglu"},
	"ScoresGrouped":   {"scores-grouped"},
	"ContextGrouped":  {"context-grouped"},
}

// kcSmallShape is a smaller batch for the tests that run many checks.
var kcSmallShape = kernelShape{lengths: []int{5, 70, 1, 33}, heads: 3, d: 20, inter: 70, vocab: 203}

// twinFactory makes TwinOps, or with broken set, kcBrokenOps.
func twinFactory(broken string, rel float64) OpsFactory {
	return func(dt kernels.DType) (Ops, func() error, error) {
		var o Ops = NewTwinOps(dt)
		if broken != "" {
			o = &kcBrokenOps{Ops: o, op: broken, rel: rel}
		}
		return o, func() error { return nil }, nil
	}
}

// TestKernelCheckTwinAgainstTwin runs the checks of the device (the full
// batch) with TwinOps under test: every check, in every storage type,
// reports no difference at all.
func TestKernelCheckTwinAgainstTwin(t *testing.T) {
	res, err := CompareKernels(context.Background(), twinFactory("", 0), 1)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range res {
		if p.DType == "f32" {
			names = append(names, p.Name)
		}
		if !p.OK || p.MaxAbs != 0 || p.MaxRel != 0 || p.Values == 0 {
			t.Errorf("%+v: want no difference", p)
		}
	}
	var want []string
	for _, checks := range kcChecksOf {
		want = append(want, checks...)
	}
	slices.Sort(want)
	slices.Sort(names)
	if len(res) != 3*len(want) || !slices.Equal(names, want) {
		t.Errorf("%d checks %v, want %v for each of f32, bf16, f16", len(res), names, want)
	}
}

// TestKernelCheckDetectsBrokenOps breaks one Ops method at a time: its
// largest output value 5% off fails exactly the checks that run it, in
// every storage type; one rounding step off passes them all.
func TestKernelCheckDetectsBrokenOps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every kernel check once per broken op (pure Go: the full run covers it)")
	}
	ctx := context.Background()
	for op, checks := range kcChecksOf {
		for _, rel := range []float64{0.05, 0} {
			res, err := compareKernels(ctx, twinFactory(op, rel), kcSmallShape, 2)
			if err != nil {
				t.Fatalf("%s broken by %g: %v", op, rel, err)
			}
			for _, p := range res {
				if wantFail := rel != 0 && slices.Contains(checks, p.Name); p.OK == wantFail {
					t.Errorf("%s broken by %g: %+v: want OK %v", op, rel, p, !wantFail)
				}
				if rel == 0 && slices.Contains(checks, p.Name) && p.MaxAbs == 0 {
					t.Errorf("%s broken by one step: %+v shows no difference", op, p)
				}
			}
		}
	}
}

// TestKernelCheckCompareValues checks the metric: the floor (the RMS of
// the reference) for small values, and non-finite values.
func TestKernelCheckCompareValues(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	for _, c := range []struct {
		ref, got       []float32
		maxAbs, maxRel float64
	}{
		{[]float32{1, -2, inf, nan}, []float32{1, -2, inf, nan}, 0, 0},
		{[]float32{4, 0, 0, 0}, []float32{4, 0.02, 0, 0}, 0.02, 0.01}, // RMS 2
		{[]float32{4, 0, 0, 0}, []float32{4.04, 0, 0, 0}, 0.04, 0.01}, // relative to itself
		{[]float32{1, 2}, []float32{1, inf}, math.MaxFloat64, math.MaxFloat64},
		{[]float32{1, nan}, []float32{1, 2}, math.MaxFloat64, math.MaxFloat64},
		{[]float32{1}, []float32{1, 2}, math.MaxFloat64, math.MaxFloat64},
	} {
		a, r := compareValues(c.ref, c.got)
		if math.Abs(a-c.maxAbs) > 1e-6 || math.Abs(r-c.maxRel) > 1e-6 {
			t.Errorf("compareValues(%v, %v) = %g, %g; want %g, %g", c.ref, c.got, a, r, c.maxAbs, c.maxRel)
		}
	}
}

// TestKernelCheckRejectsMixedTypes: the two Ops must store the same type.
func TestKernelCheckRejectsMixedTypes(t *testing.T) {
	if _, err := CompareOps(context.Background(), NewTwinOps(kernels.F32), NewTwinOps(kernels.BF16), 1); err == nil {
		t.Error("an f32 reference against bf16 Ops was compared")
	}
}

// kcSmallEngine is a smaller engine check for the broken-Ops test.
var kcSmallEngine = engineConfig{
	models:  defaultEngineConfig.models[:1],
	model:   testmodel.Config{Layers: 1, Hidden: 48, Heads: 2, Seed: 3},
	lengths: []int{2, 40, 17},
	chunk:   16,
}

// TestEngineCheckTwins runs the engine check of the device with TwinOps:
// every architecture within 1e-4 of the oracle in fp32, and bf16 and fp16
// with a mean top-20 overlap of at least 0.95 (the twins round as the GPU
// does, so this is what the device must reach too).
func TestEngineCheckTwins(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the engine check on three generated models (pure Go: the full run covers it)")
	}
	res, err := CompareEngine(context.Background(), twinFactory("", 0), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 9 {
		t.Errorf("%d results, want 3 architectures × 3 precisions", len(res))
	}
	for _, p := range res {
		t.Logf("%+v", p)
		if !p.OK || p.Docs != len(defaultEngineConfig.lengths) || p.Tokens == 0 {
			t.Errorf("%+v: want OK", p)
		}
	}
}

// TestEngineCheckDetectsBrokenOps: GEMMs 5% off on one value fail the
// fp32 comparison with the oracle.
func TestEngineCheckDetectsBrokenOps(t *testing.T) {
	res, err := compareEngine(context.Background(), twinFactory("LinearT", 0.05), kcSmallEngine, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].Precision != "fp32" || res[0].OK || res[0].MaxAbs <= EngineFP32Tolerance {
		t.Errorf("%+v: want fp32 not OK", res)
	}
	res, err = compareEngine(context.Background(), twinFactory("", 0), kcSmallEngine, 1)
	if err != nil || !res[0].OK {
		t.Errorf("unbroken: %+v, %v", res, err)
	}
}

// TestKernelCheckReuseOps: reuseOps makes each storage type's Ops once
// and releases them all at the end, not before.
func TestKernelCheckReuseOps(t *testing.T) {
	made, released := map[kernels.DType]int{}, 0
	factory, release := reuseOps(func(dt kernels.DType) (Ops, func() error, error) {
		made[dt]++
		return NewTwinOps(dt), func() error { released++; return nil }, nil
	})
	for _, dt := range []kernels.DType{kernels.F32, kernels.BF16, kernels.F32, kernels.BF16, kernels.F16} {
		ops, rel, err := factory(dt)
		if err != nil || ops.DType() != dt {
			t.Fatalf("%v: %v, %v", dt, ops, err)
		}
		if err := rel(); err != nil {
			t.Fatal(err)
		}
	}
	if released != 0 || made[kernels.F32] != 1 || made[kernels.BF16] != 1 || made[kernels.F16] != 1 {
		t.Errorf("made %v, released %d before the end", made, released)
	}
	if err := release(); err != nil || released != 3 {
		t.Errorf("released %d of 3 (%v)", released, err)
	}
}

// TestEngineCheckRobertaTokenizer: the made-up RoBERTa tokenizer generates
// a model, its vocabulary has robertaVocab+5 ids (the four specials before
// it, <mask> after), and the directory holds no repository file.
func TestEngineCheckRobertaTokenizer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "roberta")
	if err := generateCheckModel(dir, testmodel.Config{Layers: 1, Hidden: 16, Heads: 2, Seed: 1}, defaultEngineConfig.models[2]); err != nil {
		t.Fatal(err)
	}
	a, err := ReadArch(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.Family != FamilyRoBERTa || a.Vocab != robertaVocab+5 || a.PositionOffset != 2 {
		t.Errorf("arch %+v", a)
	}
	tok, err := os.ReadFile(filepath.Join(dir, testmodel.TokenizerFile))
	if err != nil || !strings.Contains(string(tok), `"<pad>":1`) {
		t.Errorf("tokenizer.json lacks <pad> at 1 (%v)", err)
	}
}

// TestKernelCheckEngineNote: where the engine cannot run (here: no
// driver), SelfCheck's engine part leaves a note instead of failing.
func TestKernelCheckEngineNote(t *testing.T) {
	if _, _, err := loadLibraries(); err == nil {
		t.Skip("the driver and cuBLAS load here")
	}
	var res gpu.KernelCheck
	if err := checkEngineOn(context.Background(), 0, 1, &res); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.EngineNote, "splash's CUDA engine was not checked: ") || !strings.Contains(res.EngineNote, "does not load") ||
		res.Transformer != nil || res.Engine != nil {
		t.Errorf("%+v", res)
	}
}

// TestKernelCheckOnDevice runs CheckKernels and CheckEngine on GPU 0; it
// skips where the driver or cuBLAS do not load (CI).
func TestKernelCheckOnDevice(t *testing.T) {
	ctx := context.Background()
	res, err := CheckKernels(ctx, 0, 1)
	if errors.Is(err, gpu.ErrUnavailable) {
		if !errors.Is(err, gpu.ErrNoDriver) && strings.Contains(err.Error(), "libcuda") {
			t.Errorf("a driver failure does not match gpu.ErrNoDriver: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	if errors.Is(err, errOldGPU) {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res {
		t.Logf("%-45s %-4s max |diff| %.3g, relative %.3g (tolerance %.3g)", p.Name, p.DType, p.MaxAbs, p.MaxRel, p.Tolerance)
		if !p.OK {
			t.Errorf("%+v", p)
		}
	}
	eng, err := CheckEngine(ctx, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range eng {
		t.Logf("%+v", p)
		if !p.OK {
			t.Errorf("%+v", p)
		}
	}
}
