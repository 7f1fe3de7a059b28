package kernels

import (
	"fmt"
	"math"
)

// DType is the storage type of the activations of the transformer kernels
// (transformer.cu). Whatever the storage type, the kernels compute in
// float32 and round once, to nearest even, when they store a result.
type DType int

// The storage types, in the order of the kernels' entry suffixes.
const (
	F32  DType = iota // float, suffix _f32
	BF16              // __nv_bfloat16, suffix _bf16
	F16               // __half (IEEE binary16), suffix _f16
)

// Valid reports whether dt is one of F32, BF16 and F16.
func (dt DType) Valid() bool { return dt == F32 || dt == BF16 || dt == F16 }

// String returns "f32", "bf16" or "f16" ("DType(n)" for anything else).
func (dt DType) String() string {
	switch dt {
	case F32:
		return "f32"
	case BF16:
		return "bf16"
	case F16:
		return "f16"
	}
	return fmt.Sprintf("DType(%d)", int(dt))
}

// Suffix returns the suffix of the kernel entries instantiated for dt
// ("_f32", "_bf16", "_f16"), or "" for an invalid DType.
func (dt DType) Suffix() string {
	if !dt.Valid() {
		return ""
	}
	return "_" + dt.String()
}

// Size returns the bytes one value of dt occupies on the device (0 for an
// invalid DType).
func (dt DType) Size() int {
	switch dt {
	case F32:
		return 4
	case BF16, F16:
		return 2
	}
	return 0
}

// Round returns x after a store as dt and a load back: x itself for F32,
// else x rounded to nearest even, with NaN and ±Inf preserved, float16
// overflow going to ±Inf and float16 subnormals rounded correctly (as
// __float2bfloat16_rn and __float2half_rn). An invalid DType returns x.
func (dt DType) Round(x float32) float32 {
	switch dt {
	case BF16:
		return FromBF16Bits(ToBF16Bits(x))
	case F16:
		return FromF16Bits(ToF16Bits(x))
	}
	return x
}

// ToBF16Bits returns the bfloat16 bit pattern nearest to x (ties to even).
// Values beyond the largest finite bfloat16 round to ±Inf as IEEE rounding
// prescribes. A NaN stays a NaN with its sign and the top of its payload,
// made quiet (CUDA's conversion returns a canonical NaN instead; both are
// NaN, which is all the kernels' users can observe).
func ToBF16Bits(x float32) uint16 {
	b := math.Float32bits(x)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x0040
	}
	// Round to nearest even on the 16 dropped bits: adding 0x7fff rounds
	// up above the half, and the kept lsb decides the exact half. A carry
	// runs into the exponent, which is what rounding up a mantissa of all
	// ones means (up to +Inf, never into the sign).
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// FromBF16Bits returns the float32 value of the bfloat16 bit pattern h
// (exact: bfloat16 is the top half of a float32).
func FromBF16Bits(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Bit patterns of float32 magnitudes that bound the float16 conversion.
const (
	f32HalfOverflow  = 0x477ff000 // 65520: the half-way point between 65504 (max float16) and 65536
	f32HalfMinNormal = 0x38800000 // 2^-14: the smallest normal float16
	f32HalfTinyTie   = 0x33000000 // 2^-25: half the smallest subnormal float16, which rounds to 0
)

// ToF16Bits returns the IEEE binary16 bit pattern nearest to x (ties to
// even): magnitudes from 65520 up become ±Inf, magnitudes up to 2^-25
// become ±0, and those in between below 2^-14 become correctly rounded
// subnormals. A NaN stays a NaN with its sign and the top of its payload,
// made quiet.
func ToF16Bits(x float32) uint16 {
	b := math.Float32bits(x)
	sign := uint16(b>>16) & 0x8000
	a := b & 0x7fffffff
	switch {
	case a > 0x7f800000: // NaN
		return sign | 0x7e00 | uint16(a>>13)&0x03ff
	case a >= f32HalfOverflow: // rounds past 65504, or ±Inf
		return sign | 0x7c00
	case a >= f32HalfMinNormal:
		// Rebias the exponent (127 -> 15) and round the 23-bit mantissa to
		// 10 bits, to nearest even; a carry into the exponent is correct.
		m := a - (127-15)<<23
		m += 0x0fff + (m>>13)&1
		return sign | uint16(m>>13)
	case a <= f32HalfTinyTie: // 2^-25 is a tie between 0 and 2^-24: even is 0
		return sign
	}
	// Subnormal: the result is k*2^-24 with k = a's value / 2^-24, rounded.
	// With the implicit bit, a's value is mant*2^(e-150), so
	// k = mant*2^(e-126), a right shift by 126-e (between 14 and 24 here).
	e := a >> 23
	mant := a&0x007fffff | 0x00800000
	shift := 126 - e
	k := mant >> shift
	rem := mant & (1<<shift - 1)
	half := uint32(1) << (shift - 1)
	if rem > half || rem == half && k&1 == 1 {
		k++ // k may reach 1024: the smallest normal, 2^-14, whose bits are 0x0400
	}
	return sign | uint16(k)
}

// FromF16Bits returns the float32 value of the IEEE binary16 bit pattern h
// (exact: every float16 is a float32, subnormals included).
func FromF16Bits(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	e := uint32(h>>10) & 0x1f
	m := uint32(h & 0x03ff)
	switch e {
	case 0: // ±0 or subnormal m*2^-24
		f := float32(m) * 0x1p-24
		if sign != 0 {
			f = -f
		}
		return f
	case 0x1f: // ±Inf or NaN, payload kept
		return math.Float32frombits(sign | 0x7f800000 | m<<13)
	}
	return math.Float32frombits(sign | (e+127-15)<<23 | m<<13)
}
