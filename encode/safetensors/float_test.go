package safetensors

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

func TestFloat16ToFloat32Known(t *testing.T) {
	for _, tc := range []struct {
		bits uint16
		want float64
	}{
		{0x0000, 0},
		{0x3C00, 1},
		{0xBC00, -1},
		{0x4000, 2},
		{0x3555, 0.333251953125},
		{0x7BFF, 65504},              // largest finite
		{0x0400, math.Ldexp(1, -14)}, // smallest normal
		{0x0001, math.Ldexp(1, -24)}, // smallest subnormal
		{0x03FF, math.Ldexp(1023, -24)},
		{0x8001, -math.Ldexp(1, -24)},
		{0x7C00, math.Inf(1)},
		{0xFC00, math.Inf(-1)},
	} {
		if got := Float16ToFloat32(tc.bits); float64(got) != tc.want {
			t.Errorf("Float16ToFloat32(%#04x) = %g, want %g", tc.bits, got, tc.want)
		}
	}
	if got := Float16ToFloat32(0x8000); got != 0 || !math.Signbit(float64(got)) {
		t.Errorf("Float16ToFloat32(0x8000) = %g, want -0", got)
	}
	for _, nan := range []uint16{0x7E00, 0x7C01, 0xFE00, 0x7FFF} {
		got := Float16ToFloat32(nan)
		if !math.IsNaN(float64(got)) || math.Signbit(float64(got)) != (nan&0x8000 != 0) {
			t.Errorf("Float16ToFloat32(%#04x) = %g, want a NaN of the same sign", nan, got)
		}
	}
}

func TestBFloat16ToFloat32Known(t *testing.T) {
	for _, tc := range []struct {
		bits uint16
		want float64
	}{
		{0x3F80, 1},
		{0xBF80, -1},
		{0x4049, 3.140625},
		{0x0001, math.Ldexp(1, -133)},  // smallest subnormal
		{0x0080, math.Ldexp(1, -126)},  // smallest normal
		{0x7F7F, math.Ldexp(255, 120)}, // largest finite: 0x7F7F -> 1.9921875 * 2^127
		{0x7F80, math.Inf(1)},
		{0xFF80, math.Inf(-1)},
	} {
		if got := BFloat16ToFloat32(tc.bits); float64(got) != tc.want {
			t.Errorf("BFloat16ToFloat32(%#04x) = %g, want %g", tc.bits, got, tc.want)
		}
	}
	if got := BFloat16ToFloat32(0x7FC0); !math.IsNaN(float64(got)) {
		t.Errorf("BFloat16ToFloat32(0x7FC0) = %g, want NaN", got)
	}
}

func TestFloat32ToFloat16Known(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want uint16
	}{
		{1, 0x3C00},
		{-2, 0xC000},
		{65504, 0x7BFF},
		{65519, 0x7BFF},                    // below the midpoint to 65536
		{65520, 0x7C00},                    // the midpoint, ties to even: infinity
		{1e10, 0x7C00},                     // overflow
		{-1e10, 0xFC00},                    // overflow
		{1 + math.Ldexp(1, -11), 0x3C00},   // tie between 0x3C00 and 0x3C01: even
		{1 + 3*math.Ldexp(1, -11), 0x3C02}, // tie between 0x3C01 and 0x3C02: even
		{1 + math.Ldexp(1, -11) + math.Ldexp(1, -20), 0x3C01},
		{math.Ldexp(1, -14), 0x0400},    // smallest normal
		{math.Ldexp(1, -24), 0x0001},    // smallest subnormal
		{math.Ldexp(1, -25), 0x0000},    // tie between 0 and 0x0001: even
		{math.Ldexp(1.5, -25), 0x0001},  // above the tie
		{math.Ldexp(3, -25), 0x0002},    // tie between 0x0001 and 0x0002: even
		{math.Ldexp(1, -26), 0x0000},    // rounds to zero
		{math.Ldexp(2047, -25), 0x0400}, // 0x03FF.8: tie, even is the smallest normal
		{math.Ldexp(1, -140), 0x0000},   // float32 subnormal
		{-math.Ldexp(1, -30), 0x8000},   // negative underflow keeps the sign
		{math.Inf(1), 0x7C00},
		{math.Inf(-1), 0xFC00},
	} {
		if got := Float32ToFloat16(float32(tc.in)); got != tc.want {
			t.Errorf("Float32ToFloat16(%g) = %#04x, want %#04x", tc.in, got, tc.want)
		}
	}
	for _, nan := range []float32{float32(math.NaN()), math.Float32frombits(0xFF800001), math.Float32frombits(0x7F800001)} {
		got := Float32ToFloat16(nan)
		if got&0x7C00 != 0x7C00 || got&0x3FF == 0 || (got&0x8000 != 0) != math.Signbit(float64(nan)) {
			t.Errorf("Float32ToFloat16(NaN %#08x) = %#04x, want a NaN of the same sign", math.Float32bits(nan), got)
		}
	}
}

func TestFloat32ToBFloat16Known(t *testing.T) {
	for _, tc := range []struct {
		bits uint32
		want uint16
	}{
		{0x3F800000, 0x3F80},
		{0x3F808000, 0x3F80}, // tie, even
		{0x3F818000, 0x3F82}, // tie, even
		{0x3F808001, 0x3F81},
		{0x3F807FFF, 0x3F80},
		{0x7F7FFFFF, 0x7F80}, // float32 max rounds to infinity
		{0x7F7F7FFF, 0x7F7F},
		{0x00000001, 0x0000}, // float32 subnormal
		{0x80000000, 0x8000},
		{0x7F800000, 0x7F80},
		{0xFF800000, 0xFF80},
	} {
		if got := Float32ToBFloat16(math.Float32frombits(tc.bits)); got != tc.want {
			t.Errorf("Float32ToBFloat16(%#08x) = %#04x, want %#04x", tc.bits, got, tc.want)
		}
	}
	for _, nan := range []uint32{0x7FC00000, 0x7F800001, 0xFF800001} {
		got := Float32ToBFloat16(math.Float32frombits(nan))
		if got&0x7F80 != 0x7F80 || got&0x7F == 0 || (got&0x8000 != 0) != (nan&0x80000000 != 0) {
			t.Errorf("Float32ToBFloat16(%#08x) = %#04x, want a NaN of the same sign", nan, got)
		}
	}
}

// Every non-NaN half is a float32: converting back must give the same bits.
func TestHalfRoundTripExhaustive(t *testing.T) {
	for h := 0; h <= 0xFFFF; h++ {
		b := uint16(h)
		if f := Float16ToFloat32(b); !math.IsNaN(float64(f)) {
			if got := Float32ToFloat16(f); got != b {
				t.Fatalf("float16 %#04x -> %g -> %#04x", b, f, got)
			}
		}
		if f := BFloat16ToFloat32(b); !math.IsNaN(float64(f)) {
			if got := Float32ToBFloat16(f); got != b {
				t.Fatalf("bfloat16 %#04x -> %g -> %#04x", b, f, got)
			}
		}
	}
}

// nearestReference rounds x to the nearest of the sorted finite values
// (non-negative, including the largest finite) by search, ties to the one
// with the even last bit; beyond max+ulp/2 it returns the infinity bits.
func nearestReference(x float64, vals []float64, bits []uint16, maxHalfULP float64, inf uint16) uint16 {
	ax := math.Abs(x)
	var sign uint16
	if math.Signbit(x) {
		sign = 0x8000
	}
	top := vals[len(vals)-1]
	if ax >= top+maxHalfULP {
		return sign | inf
	}
	i := sort.SearchFloat64s(vals, ax)
	if i == len(vals) {
		return sign | bits[len(bits)-1]
	}
	if vals[i] == ax || i == 0 {
		return sign | bits[i]
	}
	lo, hi := ax-vals[i-1], vals[i]-ax
	switch {
	case lo < hi:
		return sign | bits[i-1]
	case hi < lo:
		return sign | bits[i]
	case bits[i-1]&1 == 0:
		return sign | bits[i-1]
	}
	return sign | bits[i]
}

// Rounding against an independent reference: the nearest representable
// value found by search over all finite non-negative values.
func TestRoundingAgainstSearch(t *testing.T) {
	table := func(dec func(uint16) float32, inf uint16) ([]float64, []uint16) {
		var vals []float64
		var bits []uint16
		for h := uint16(0); h < inf; h++ {
			vals = append(vals, float64(dec(h)))
			bits = append(bits, h)
		}
		return vals, bits
	}
	f16v, f16b := table(Float16ToFloat32, 0x7C00)
	bf16v, bf16b := table(BFloat16ToFloat32, 0x7F80)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		var f float32
		switch i % 3 {
		case 0: // any float32
			f = math.Float32frombits(r.Uint32())
		case 1: // the float16 range
			f = float32(math.Ldexp(r.Float64()*2-1, r.IntN(44)-28))
		default: // exact ties and their neighbours
			h := uint16(r.IntN(0x7BFF))
			mid := (float64(Float16ToFloat32(h)) + float64(Float16ToFloat32(h+1))) / 2
			f = math.Nextafter32(float32(mid), float32(r.IntN(3)-1)*math.MaxFloat32)
		}
		if math.IsNaN(float64(f)) {
			continue
		}
		x := float64(f)
		if want := nearestReference(x, f16v, f16b, 16, 0x7C00); Float32ToFloat16(f) != want {
			t.Fatalf("Float32ToFloat16(%g [%#08x]) = %#04x, want %#04x", f, math.Float32bits(f), Float32ToFloat16(f), want)
		}
		bfHalfULP := math.Ldexp(1, 127-8) // half an ulp of the largest bfloat16
		if want := nearestReference(x, bf16v, bf16b, bfHalfULP, 0x7F80); Float32ToBFloat16(f) != want {
			t.Fatalf("Float32ToBFloat16(%g [%#08x]) = %#04x, want %#04x", f, math.Float32bits(f), Float32ToBFloat16(f), want)
		}
	}
}
