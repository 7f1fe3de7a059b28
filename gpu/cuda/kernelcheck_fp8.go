package cuda

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/splash-encode/splash/kernels"
)

// The fp8 cases of the kernel and engine checks (`splash selftest`,
// scripts/gpu-check.sh): the activation quantization (EntryFP8Amax and
// EntryFP8Quantize, exact against kernels.AmaxTwin and QuantizeFP8Twin)
// and cuBLASLt's FP8 GEMM (against TwinOps' FP8 LinearT) on GPUs of compute
// capability 9.0 and later; one entry marked skipped elsewhere.

// errFP8Unsupported marks a GPU without FP8 tensor cores.
var errFP8Unsupported = errors.New("--precision fp8 needs a GPU of compute capability 9.0 or newer")

// fp8Maker is implemented by the Ops that can make --precision fp8 Ops on
// the same device: DeviceOps (a new DeviceOps with EnableFP8). The checks
// skip fp8 silently for other Ops (TwinOps in CI, whose fp8 numerics
// fp8_test.go checks, and test wrappers).
type fp8Maker interface {
	newFP8Ops() (Ops, func() error, error)
}

// fp8Quantizer is the activation quantization of an fp8 Ops, exposed to
// the checks: the E4M3 codes and the scale of the first n values of x.
type fp8Quantizer interface {
	quantizeFP8(x Buf, n int) ([]uint8, float32, error)
}

// fp8Ops makes the fp8 Ops under test from the bf16 Ops newOps makes:
// none (all nil) when that Ops is no fp8Maker; skip set when the device has
// no FP8.
func fp8Ops(newOps OpsFactory) (dut Ops, release func() error, skip error, err error) {
	base, releaseBase, err := newOps(kernels.BF16)
	if err != nil {
		return nil, nil, nil, err
	}
	m, ok := base.(fp8Maker)
	if !ok {
		return nil, nil, nil, releaseBase()
	}
	dut, releaseDut, err := m.newFP8Ops()
	if errors.Is(err, errFP8Unsupported) {
		return nil, nil, err, releaseBase()
	}
	if err != nil {
		return nil, nil, nil, errors.Join(err, releaseBase())
	}
	return dut, func() error { return errors.Join(releaseDut(), releaseBase()) }, nil, nil
}

// fp8GEMMShapes are the FP8 GEMMs of the kernel check (rows from the
// kernel data): shapes of the QKV, FFN-down and LM-head kind, all
// multiples of 16 (FP8Eligible), with a k above the 16-bit split of
// cuBLASLt's smaller tiles.
var fp8GEMMShapes = []struct {
	name string
	n, k int
}{{"qkv", 192, 64}, {"down", 64, 272}, {"head", 4112, 64}}

// compareKernelsFP8 runs the fp8 cases on the fp8 Ops made from newOps's
// bf16 Ops, against NewTwinFP8Ops.
func compareKernelsFP8(ctx context.Context, newOps OpsFactory, shape kernelShape, seed uint64) ([]KernelParity, error) {
	dut, release, skip, err := fp8Ops(newOps)
	if err != nil {
		return nil, fmt.Errorf("kernel check (fp8): %w", err)
	}
	if skip != nil {
		return []KernelParity{{Name: "fp8", DType: "fp8", Skipped: skip.Error(), OK: true}}, nil
	}
	if dut == nil {
		return nil, nil
	}
	res, err := compareFP8Ops(ctx, NewTwinFP8Ops(), dut, shape, seed)
	return res, errors.Join(err, release())
}

func compareFP8Ops(ctx context.Context, ref, dut Ops, shape kernelShape, seed uint64) ([]KernelParity, error) {
	data := newKernelData(shape, seed)
	rng := rand.New(rand.NewPCG(seed, 0x66703828))
	t := data.t
	var res []KernelParity
	// The quantization: codes and scale equal, bit for bit. The input has
	// one outlier (the amax), zeros, values that fall into the E4M3
	// subnormals and a NaN.
	x := make([]float32, t*64)
	for i := range x {
		x[i] = kernels.BF16.Round(float32(rng.NormFloat64()))
	}
	x[7], x[100], x[101], x[len(x)-1] = 37, 0, 1e-4, float32(math.NaN())
	p := KernelParity{Name: "fp8 quantize (amax, e4m3 codes)", DType: "fp8", Values: len(x) + 1}
	var codes [2][]uint8
	var scales [2]float32
	for i, o := range []Ops{ref, dut} {
		q, ok := o.(fp8Quantizer)
		if !ok {
			return res, fmt.Errorf("kernel check fp8 quantize: %T does not expose it", o)
		}
		s := &opsSide{ops: o}
		xb := s.matrix(x) // the bf16 values, as an activation (its E4M3 copy unused)
		if s.err == nil {
			codes[i], scales[i], s.err = q.quantizeFP8(xb, len(x))
		}
		if err := errors.Join(s.err, s.free()); err != nil {
			return res, fmt.Errorf("kernel check fp8 quantize on %T: %w", o, err)
		}
	}
	for i := range codes[0] {
		if codes[0][i] != codes[1][i] {
			a, b := float64(kernels.FromE4M3(codes[0][i])), float64(kernels.FromE4M3(codes[1][i]))
			p.MaxAbs = math.Max(p.MaxAbs, math.Abs(a-b))
			p.MaxRel = math.MaxFloat64 // codes must be equal
		}
	}
	if scales[0] != scales[1] {
		p.MaxRel = math.MaxFloat64
	}
	p.OK = p.MaxRel == 0
	res = append(res, p)
	// The GEMMs: the same codes and scales on both sides, so they differ
	// only in the order of the float32 sums and the bf16 rounding: the
	// bf16 GEMM tolerance.
	for _, g := range fp8GEMMShapes {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		xs := make([]float32, t*g.k)
		for i := range xs {
			xs[i] = kernels.BF16.Round(float32(rng.NormFloat64()))
		}
		w := make([]float32, g.n*g.k)
		for i := range w {
			w[i] = float32(rng.NormFloat64() * 0.05)
		}
		c := kernelCase{name: fmt.Sprintf("linear-t fp8 %s (n=%d, k=%d)", g.name, g.n, g.k), gemm: true, run: func(s *opsSide) []checkOutput {
			xb, wb, y := s.matrix(xs), s.matrix(w), s.activations(t*g.n)
			s.call(func() error { return s.ops.LinearT(t, g.n, g.k, xb, wb, y) })
			return []checkOutput{{b: y, n: t * g.n, act: true}}
		}}
		var vals [2][]float32
		for i, o := range []Ops{ref, dut} {
			v, err := runCase(o, c)
			if err != nil {
				return res, fmt.Errorf("kernel check %s on %T: %w", c.name, o, err)
			}
			vals[i] = v
		}
		p := KernelParity{Name: c.name, DType: "fp8", Values: len(vals[0]), Tolerance: gemmTolBF16}
		p.MaxAbs, p.MaxRel = compareValues(vals[0], vals[1])
		p.OK = p.MaxRel <= p.Tolerance
		res = append(res, p)
	}
	return res, nil
}
