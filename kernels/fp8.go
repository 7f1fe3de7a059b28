package kernels

import (
	"fmt"
	"math"
)

// This file holds the OCP FP8 E4M3 format ("float8_e4m3fn": 1 sign bit, 4
// exponent bits of bias 7, 3 mantissa bits, no infinities, NaN = S.1111.111,
// largest finite ±448) and the pure-Go twins of fp8.cu, the kernels that
// quantize activations for the FP8 GEMMs of --precision fp8 (cuBLASLt with
// per-tensor scales on GPUs of compute capability 9.0 and later).
//
// The conversion from float32 rounds to nearest even and saturates: every
// value of magnitude 448 or more, ±Inf included, becomes ±448, as
// __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3) and PyTorch's
// saturating casts do. fp8.cu does the same rounding in integer arithmetic
// (no cuda_fp8.h, whose hardware conversion needs sm_89), so the twins are
// exact.

// E4M3Max is the largest finite E4M3 value.
const E4M3Max = 448

// E4M3NaN is the canonical E4M3 NaN code (S.1111.111 with S = 0) that
// ToE4M3 returns for a NaN.
const E4M3NaN = 0x7f

// FromE4M3 returns the value of the E4M3 code c: ±2^-6·m/8 for exponent
// field 0 (subnormals and ±0), ±2^(e-7)·(1+m/8) otherwise, NaN for 0x7f and
// 0xff. Every value is exact in float32.
func FromE4M3(c uint8) float32 {
	e, m := int(c>>3)&0xf, int(c&7)
	var v float32
	switch {
	case e == 0xf && m == 7:
		return float32(math.NaN())
	case e == 0:
		v = float32(m) / 512 // 2^-6 · m/8
	default:
		v = float32(math.Ldexp(float64(8+m)/8, e-7))
	}
	if c&0x80 != 0 {
		v = -v
	}
	return v
}

// ToE4M3 returns the E4M3 code nearest to x, ties to even, saturating
// magnitudes of 448 and more (±Inf included) to ±448 and NaN to E4M3NaN;
// -0 and values that round to zero keep their sign. It is the integer
// arithmetic of splash_fp8_encode in fp8.cu.
func ToE4M3(x float32) uint8 {
	b := math.Float32bits(x)
	sign := uint8(b>>24) & 0x80
	a := b & 0x7fffffff
	switch {
	case a > 0x7f800000:
		return E4M3NaN
	case a >= 0x43e00000: // 448 and beyond
		return sign | 0x7e
	case a >= 0x3c800000: // 2^-6 and beyond: a normal E4M3 value
		// Round the 23-bit mantissa to 3 bits, ties to even; a carry
		// into the exponent is the right result (never past 448, which
		// the case above caught).
		r := a + 0x7ffff + (a>>20)&1
		return sign | uint8((r>>20)-(120<<3))
	}
	// Below 2^-6: a multiple of 2^-9 (a subnormal, or 2^-6 when it rounds
	// up to code 8). |x|·512 is exact in float32; round it to an integer,
	// ties to even (__float2int_rn on the device).
	v := math.Float32frombits(a) * 512
	return sign | uint8(math.RoundToEven(float64(v)))
}

// RoundE4M3 returns x after a conversion to E4M3 and back.
func RoundE4M3(x float32) float32 { return FromE4M3(ToE4M3(x)) }

// FP8Scale returns the per-tensor scale of a tensor whose largest magnitude
// is amax: amax/448 in float32, so that x/scale spans the E4M3 range; 1
// when that is zero (an all-zero tensor, or amax below 448·2^-149) or not a
// finite positive number, which keeps x/scale defined. The product of the
// E4M3 codes times the scale is the dequantized value.
func FP8Scale(amax float32) float32 {
	s := amax / E4M3Max
	if !(s > 0) || s > math.MaxFloat32 {
		return 1
	}
	return s
}

// AmaxTwin is the pure-Go twin of splash_fp8_amax: the largest |x| over x,
// NaNs ignored (0 for an empty or all-NaN x). The device reduction is
// exact in any order (a maximum), so the twin equals it bit for bit.
func AmaxTwin(x []float32) float32 {
	var m float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > m {
			m = a
		}
	}
	return m
}

// QuantizeFP8Twin is the pure-Go twin of splash_fp8_quantize: out[i] =
// ToE4M3(x[i] / scale) (a correctly rounded float32 division, as
// __fdiv_rn), with scale = FP8Scale(amax), which it returns (the kernel
// writes it for the GEMM's scale pointer).
func QuantizeFP8Twin(x []float32, amax float32, out []uint8) (float32, error) {
	if len(out) != len(x) {
		return 0, fmt.Errorf("fp8 quantize: out has %d values, want %d (one per input)", len(out), len(x))
	}
	scale := FP8Scale(amax)
	for i, v := range x {
		out[i] = ToE4M3(v / scale)
	}
	return scale, nil
}

// QuantizeFP8 quantizes a whole tensor with its own per-tensor scale
// (AmaxTwin, then QuantizeFP8Twin): the host-side quantization of a weight
// matrix at upload, and the twin of the amax + quantize kernel pair.
func QuantizeFP8(x []float32) (codes []uint8, scale float32) {
	codes = make([]uint8, len(x))
	scale, _ = QuantizeFP8Twin(x, AmaxTwin(x), codes) // lengths equal by construction
	return codes, scale
}

// Entry points of fp8.cu, each instantiated per activation storage type T
// (the PTX name is Entry(name, dt), e.g. "splash_fp8_amax_bf16").
const (
	// EntryFP8Amax: (x *T, n int32, amax *u32); grid-stride over n, block
	// a multiple of 32 up to 1024. *amax (float32 bits, zeroed by the
	// caller) = max(*amax, max |x|), NaN ignored; AmaxTwin.
	EntryFP8Amax = "splash_fp8_amax"
	// EntryFP8Quantize: (x *T, n int32, amax *f32, out *u8, scale *f32);
	// grid-stride over n. out[i] = ToE4M3(x[i] / FP8Scale(*amax)); the
	// scale is written to *scale; QuantizeFP8Twin.
	EntryFP8Quantize = "splash_fp8_quantize"
)

// FP8Entries lists the names of fp8.cu, each instantiated per storage type
// (pass them to Entry).
func FP8Entries() []string { return []string{EntryFP8Amax, EntryFP8Quantize} }
