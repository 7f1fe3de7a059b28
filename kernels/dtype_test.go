package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// f16Value is the float64 value of a float16 bit pattern written from the
// IEEE 754 definition (sign, 5-bit exponent with bias 15, 10-bit fraction).
func f16Value(h uint16) float64 {
	s := 1.0
	if h&0x8000 != 0 {
		s = -1
	}
	e := int(h>>10) & 0x1f
	f := float64(h & 0x3ff)
	switch e {
	case 0:
		return s * f * math.Pow(2, -24)
	case 0x1f:
		if f == 0 {
			return s * math.Inf(1)
		}
		return math.NaN()
	}
	return s * (1 + f/1024) * math.Pow(2, float64(e-15))
}

// bf16Value is the float64 value of a bfloat16 bit pattern from its
// definition (8-bit exponent with bias 127, 7-bit fraction).
func bf16Value(h uint16) float64 {
	s := 1.0
	if h&0x8000 != 0 {
		s = -1
	}
	e := int(h>>7) & 0xff
	f := float64(h & 0x7f)
	switch e {
	case 0:
		return s * f * math.Pow(2, -133)
	case 0xff:
		if f == 0 {
			return s * math.Inf(1)
		}
		return math.NaN()
	}
	return s * (1 + f/128) * math.Pow(2, float64(e-127))
}

// roundReference rounds x to a binary format with mantBits fraction bits,
// minimum normal exponent minExp and largest finite value maxFinite, to
// nearest even, in float64 arithmetic (exact here: every step scales by a
// power of two or rounds an integer-valued quotient): the result is a
// multiple of the ulp of x's binade, 2^(max(exponent, minExp)-mantBits).
// Beyond maxFinite it rounds to ±Inf when the value is at least half an
// ulp past it.
func roundReference(x float64, mantBits, minExp int, maxFinite float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) || x == 0 {
		return x
	}
	_, e := math.Frexp(math.Abs(x)) // |x| = f*2^e, f in [0.5, 1)
	exp := e - 1
	if exp < minExp {
		exp = minExp
	}
	ulp := math.Ldexp(1, exp-mantBits)
	r := math.RoundToEven(x/ulp) * ulp
	if math.Abs(r) > maxFinite {
		return math.Copysign(math.Inf(1), x)
	}
	if r == 0 {
		return math.Copysign(0, x)
	}
	return r
}

const (
	maxF16  = 65504.0
	maxBF16 = (2 - 1.0/128) * 0x1p127
)

func refF16(x float32) float64  { return roundReference(float64(x), 10, -14, maxF16) }
func refBF16(x float32) float64 { return roundReference(float64(x), 7, -126, maxBF16) }

func sameValue(got, want float64) bool {
	if math.IsNaN(want) {
		return math.IsNaN(got)
	}
	return got == want && math.Signbit(got) == math.Signbit(want)
}

func TestDTypeNames(t *testing.T) {
	for _, c := range []struct {
		dt           DType
		name, suffix string
		size         int
	}{
		{F32, "f32", "_f32", 4},
		{BF16, "bf16", "_bf16", 2},
		{F16, "f16", "_f16", 2},
	} {
		if c.dt.String() != c.name || c.dt.Suffix() != c.suffix || c.dt.Size() != c.size || !c.dt.Valid() {
			t.Errorf("%d: %q %q %d %v, want %q %q %d true", int(c.dt), c.dt.String(), c.dt.Suffix(), c.dt.Size(), c.dt.Valid(), c.name, c.suffix, c.size)
		}
	}
	bad := DType(3)
	if bad.Valid() || bad.Suffix() != "" || bad.Size() != 0 || bad.String() != "DType(3)" || bad.Round(0.1) != 0.1 {
		t.Errorf("DType(3): %v %q %d %q", bad.Valid(), bad.Suffix(), bad.Size(), bad.String())
	}
	if got := Entry(EntryEmbedLN, BF16); got != "splash_embed_ln_bf16" {
		t.Errorf("Entry = %q", got)
	}
}

// TestFromBitsExhaustive checks every one of the 65536 patterns of both
// formats against the definition, and that converting the value back gives
// the pattern again (NaNs: a NaN of the same sign, made quiet).
func TestFromBitsExhaustive(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		if got, want := float64(FromF16Bits(h)), f16Value(h); !sameValue(got, want) || (want == 0 && math.Signbit(got) != (h&0x8000 != 0)) {
			t.Fatalf("FromF16Bits(%#04x) = %v, want %v", h, got, want)
		}
		if got, want := float64(FromBF16Bits(h)), bf16Value(h); !sameValue(got, want) || (want == 0 && math.Signbit(got) != (h&0x8000 != 0)) {
			t.Fatalf("FromBF16Bits(%#04x) = %v, want %v", h, got, want)
		}
		f16NaN := h&0x7c00 == 0x7c00 && h&0x3ff != 0
		wantF16 := h
		if f16NaN {
			wantF16 = h | 0x0200
		}
		if got := ToF16Bits(FromF16Bits(h)); got != wantF16 {
			t.Fatalf("ToF16Bits(FromF16Bits(%#04x)) = %#04x, want %#04x", h, got, wantF16)
		}
		bf16NaN := h&0x7f80 == 0x7f80 && h&0x7f != 0
		wantBF16 := h
		if bf16NaN {
			wantBF16 = h | 0x0040
		}
		if got := ToBF16Bits(FromBF16Bits(h)); got != wantBF16 {
			t.Fatalf("ToBF16Bits(FromBF16Bits(%#04x)) = %#04x, want %#04x", h, got, wantBF16)
		}
		if F16.Round(FromF16Bits(h)) != FromF16Bits(h) && !f16NaN {
			t.Fatalf("F16.Round changed the float16 %#04x", h)
		}
	}
}

func checkRound(t *testing.T, x float32) {
	t.Helper()
	if got, want := float64(F16.Round(x)), refF16(x); !sameValue(got, want) {
		t.Fatalf("F16.Round(%g = %#08x) = %g, want %g", x, math.Float32bits(x), got, want)
	}
	if got, want := float64(BF16.Round(x)), refBF16(x); !sameValue(got, want) {
		t.Fatalf("BF16.Round(%g = %#08x) = %g, want %g", x, math.Float32bits(x), got, want)
	}
	if got := F32.Round(x); math.Float32bits(got) != math.Float32bits(x) {
		t.Fatalf("F32.Round(%g) = %g", x, got)
	}
}

func TestRoundEdges(t *testing.T) {
	p := func(e int) float32 { return float32(math.Ldexp(1, e)) }
	edges := []float32{
		0, float32(math.Copysign(0, -1)), 1, -1, 0.1, 1.0 / 3,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
		// float16 ties and neighbours around 1: ulp 2^-10.
		1 + p(-11), 1 + 3*p(-11), 1 + p(-11) + p(-23), -(1 + p(-11)),
		// float16 max finite, the overflow tie 65520 and just below it.
		maxF16, 65519, math.Nextafter32(65520, 0), 65520, 65536, -65520, 1e10,
		// float16 normal/subnormal boundary and subnormals.
		p(-14), math.Nextafter32(p(-14), 0), p(-14) - p(-25), p(-24), p(-25),
		math.Nextafter32(p(-25), 1), math.Nextafter32(p(-25), 0), 3 * p(-25), 5 * p(-25), p(-26), -p(-25), -3 * p(-25),
		1023 * p(-24), 1023*p(-24) + p(-25), // the largest subnormal and the tie above it (-> 2^-14)
		// bfloat16 ties around 1: ulp 2^-7.
		1 + p(-8), 1 + 3*p(-8), 1 + p(-8) + p(-20),
		// bfloat16 max finite, the overflow tie, float32 max.
		float32(maxBF16), float32(maxBF16) + float32(math.Ldexp(1, 119)), math.MaxFloat32, -math.MaxFloat32,
		// bfloat16 subnormals: the smallest float32 subnormal and the bfloat16 ones.
		math.Float32frombits(1), math.Float32frombits(0x8000), math.Float32frombits(0x8001), math.Float32frombits(0x18000),
		math.Float32frombits(0x007fffff), math.Float32frombits(0x007f8000),
	}
	for _, x := range edges {
		checkRound(t, x)
	}
	// Spot values whose results are known without any reference.
	for _, c := range []struct {
		dt      DType
		x, want float32
	}{
		{F16, 65519, 65504},
		{F16, 65520, float32(math.Inf(1))},
		{F16, p(-25), 0},
		{F16, 3 * p(-25), p(-23)},
		{F16, 1 + p(-11), 1},
		{F16, 1 + 3*p(-11), 1 + p(-9)},
		{BF16, 1 + p(-8), 1},
		{BF16, 1 + 3*p(-8), 1 + p(-6)},
		{BF16, math.MaxFloat32, float32(math.Inf(1))},
	} {
		if got := c.dt.Round(c.x); got != c.want {
			t.Errorf("%v.Round(%g) = %g, want %g", c.dt, c.x, got, c.want)
		}
	}
	if ToF16Bits(65504) != 0x7bff || ToF16Bits(p(-24)) != 0x0001 || ToF16Bits(-2) != 0xc000 || ToBF16Bits(1) != 0x3f80 {
		t.Error("a known bit pattern is wrong")
	}
}

func TestRoundRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 1_000_000; i++ {
		var x float32
		switch i % 3 {
		case 0: // any bit pattern
			x = math.Float32frombits(rng.Uint32())
		case 1: // the float16 range, subnormals included
			x = float32(math.Ldexp(rng.Float64()*2-1, rng.IntN(46)-26))
		default: // values half-way between float16 neighbours, and near them
			h := uint16(rng.Uint32N(0x7c00))
			lo, hi := float64(FromF16Bits(h)), float64(FromF16Bits(h+1))
			x = float32((lo + hi) / 2)
			if rng.IntN(2) == 0 {
				x = math.Nextafter32(x, float32(math.Inf(2*rng.IntN(2)-1)))
			}
		}
		checkRound(t, x)
	}
}
