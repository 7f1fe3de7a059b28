package safetensors

import "math"

// Float16ToFloat32 returns the value of the IEEE 754 half-precision number
// with bits h. The conversion is exact: every float16 (subnormals, signed
// zeros and infinities included) is a float32; a NaN stays a NaN with its
// sign and payload.
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0:
		if mant == 0 {
			return math.Float32frombits(sign) // signed zero
		}
		// Subnormal: mant * 2^-24, exact in float32.
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13) // Inf or NaN
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// Float32ToFloat16 rounds f to the nearest IEEE 754 half-precision number,
// ties to even (what PyTorch's .half() and numpy's astype(float16) do):
// values beyond the largest float16 (65504) round to infinity, values
// below half the smallest subnormal (2^-25) to a signed zero. A NaN gives
// a quiet NaN of the same sign.
func Float32ToFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // biased float16 exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign // below 2^-25: rounds to zero
		}
		m := mant | 0x800000
		shift := uint(14 - e) // 14..24
		hm := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && hm&1 == 1) {
			hm++ // may carry into the smallest normal, whose encoding follows
		}
		return sign | uint16(hm)
	}
	hm := mant >> 13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && hm&1 == 1) {
		hm++
	}
	// A carry out of the mantissa increments the exponent; from the
	// largest exponent it gives the encoding of infinity.
	return sign | uint16(uint32(e)<<10+hm)
}

// BFloat16ToFloat32 returns the value of the bfloat16 number with bits h
// (the top half of a float32): exact.
func BFloat16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// Float32ToBFloat16 rounds f to the nearest bfloat16, ties to even (as
// PyTorch's .bfloat16() does); values beyond the largest bfloat16 round to
// infinity. A NaN gives a quiet NaN of the same sign.
func Float32ToBFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7f800000 == 0x7f800000 && b&0x7fffff != 0 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}
