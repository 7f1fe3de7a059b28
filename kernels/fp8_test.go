package kernels

import (
	"math"
	"math/rand"
	"strings"
	"testing"
)

// specE4M3 is the value of code c written from the OCP 8-bit floating point
// specification (OFP8, E4M3): sign S, exponent field E (bias 7), mantissa
// M; E = 0 is ±2^(1-7)·(0 + M/8); otherwise ±2^(E-7)·(1 + M/8); S.1111.111
// is NaN; there are no infinities. In float64, independent of FromE4M3.
func specE4M3(c int) float64 {
	s, e, m := c>>7, (c>>3)&15, c&7
	if e == 15 && m == 7 {
		return math.NaN()
	}
	var v float64
	if e == 0 {
		v = math.Pow(2, -6) * float64(m) / 8
	} else {
		v = math.Pow(2, float64(e-7)) * (1 + float64(m)/8)
	}
	if s == 1 {
		v = -v
	}
	return v
}

func TestE4M3DecodeAllCodes(t *testing.T) {
	// Landmarks of the specification, as numbers.
	for _, c := range []struct {
		code uint8
		want float64
	}{
		{0x00, 0}, {0x01, 1.0 / 512}, {0x07, 7.0 / 512}, {0x08, 1.0 / 64}, {0x38, 1}, {0x39, 1.125},
		{0x40, 2}, {0x7e, 448}, {0x7d, 416}, {0x77, 240}, {0x78, 256}, {0xb8, -1}, {0xfe, -448}, {0x81, -1.0 / 512},
	} {
		if got := FromE4M3(c.code); float64(got) != c.want {
			t.Errorf("FromE4M3(%#02x) = %g, want %g", c.code, got, c.want)
		}
	}
	nan := 0
	for c := 0; c < 256; c++ {
		got, want := FromE4M3(uint8(c)), specE4M3(c)
		if math.IsNaN(want) {
			nan++
			if !math.IsNaN(float64(got)) {
				t.Errorf("FromE4M3(%#02x) = %g, want NaN", c, got)
			}
			continue
		}
		if float64(got) != want || math.Signbit(float64(got)) != (c&0x80 != 0) {
			t.Errorf("FromE4M3(%#02x) = %g, want %g", c, got, want)
		}
		if math.IsInf(float64(got), 0) {
			t.Errorf("FromE4M3(%#02x) is infinite: E4M3 has no infinities", c)
		}
	}
	if nan != 2 {
		t.Errorf("%d NaN codes, want 2 (0x7f and 0xff)", nan)
	}
}

// nearestE4M3 is a brute-force reference: the finite E4M3 value nearest to
// x (float64 distances over all codes), ties to the code with an even
// mantissa, magnitudes past 448 saturated to ±448, and the sign of x kept.
func nearestE4M3(x float32) float64 {
	ax := math.Abs(float64(x))
	if ax >= 448 {
		ax = 448
	}
	best, bestD := -1, math.Inf(1)
	for c := 0; c < 0x7f; c++ {
		d := math.Abs(specE4M3(c) - ax)
		if d < bestD || (d == bestD && c&1 == 0) {
			best, bestD = c, d
		}
	}
	v := specE4M3(best)
	if math.Signbit(float64(x)) {
		v = -v
	}
	return v
}

func checkEncode(t *testing.T, x float32) {
	t.Helper()
	got, want := FromE4M3(ToE4M3(x)), nearestE4M3(x)
	if float64(got) != want || math.Signbit(float64(got)) != math.Signbit(want) {
		t.Fatalf("ToE4M3(%g [%#08x]) = %#02x = %g, want %g", x, math.Float32bits(x), ToE4M3(x), got, want)
	}
}

func TestE4M3EncodeRepresentablesAndMidpoints(t *testing.T) {
	for c := 0; c < 0x7f; c++ {
		v := float32(specE4M3(c))
		for _, s := range []float32{1, -1} {
			x := s * v
			if got := ToE4M3(x); FromE4M3(got) != x {
				t.Fatalf("ToE4M3(%g) = %#02x, want the code of %g itself", x, got, x)
			}
			checkEncode(t, x)
			checkEncode(t, math.Nextafter32(x, 0))
			checkEncode(t, math.Nextafter32(x, s*1000))
		}
		if c == 0x7e {
			continue
		}
		// The midpoint with the next code (exact in float32) goes to the
		// even mantissa; one float32 step either side goes to the nearer.
		lo, hi := specE4M3(c), specE4M3(c+1)
		mid := float32((lo + hi) / 2)
		if float64(mid) != (lo+hi)/2 {
			t.Fatalf("midpoint of %g and %g is not exact in float32", lo, hi)
		}
		even := lo
		if c&1 == 1 {
			even = hi
		}
		for _, s := range []float32{1, -1} {
			if got := FromE4M3(ToE4M3(s * mid)); float64(got) != float64(s)*even {
				t.Fatalf("ToE4M3(%g) = %g, want %g (ties to even)", s*mid, got, float64(s)*even)
			}
			if got := FromE4M3(ToE4M3(s * math.Nextafter32(mid, 0))); float64(got) != float64(s)*lo {
				t.Fatalf("ToE4M3(just below %g) = %g, want %g", s*mid, got, float64(s)*lo)
			}
			if got := FromE4M3(ToE4M3(s * math.Nextafter32(mid, 1000))); float64(got) != float64(s)*hi {
				t.Fatalf("ToE4M3(just above %g) = %g, want %g", s*mid, got, float64(s)*hi)
			}
		}
	}
}

func TestE4M3EncodeSubnormalsSaturationNaN(t *testing.T) {
	for _, c := range []struct {
		x    float32
		code uint8
	}{
		{0, 0x00}, {float32(math.Copysign(0, -1)), 0x80},
		{1.0 / 1024, 0x00},               // half the smallest subnormal: tie to even (0)
		{1.5 / 512, 0x02},                // tie between 1 and 2 (·2^-9): even is 2
		{2.5 / 512, 0x02},                // tie between 2 and 3: even is 2
		{7.5 / 512, 0x08},                // tie between the largest subnormal and 2^-6: even is 8
		{math.SmallestNonzeroFloat32, 0}, // float32 subnormals vanish
		{-math.SmallestNonzeroFloat32, 0x80},
		{464, 0x7e}, {480, 0x7e}, {1e30, 0x7e}, {float32(math.Inf(1)), 0x7e}, {float32(math.Inf(-1)), 0xfe},
		{-500, 0xfe}, {447.9, 0x7e}, {431.9, 0x7d}, {432, 0x7e}, // 432: tie of 416 (M=5) and 448 (M=6)
		{math.MaxFloat32, 0x7e},
	} {
		if got := ToE4M3(c.x); got != c.code {
			t.Errorf("ToE4M3(%g) = %#02x, want %#02x", c.x, got, c.code)
		}
	}
	for _, bits := range []uint32{0x7fc00000, 0xffc00000, 0x7f800001, 0x7fffffff} {
		if got := ToE4M3(math.Float32frombits(bits)); got != E4M3NaN || !math.IsNaN(float64(FromE4M3(got))) {
			t.Errorf("ToE4M3(NaN %#08x) = %#02x, want %#02x", bits, got, E4M3NaN)
		}
	}
}

func TestE4M3EncodeRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(19))
	for i := 0; i < 200000; i++ {
		// Exponents from well below the subnormals to past saturation.
		x := float32(math.Ldexp(rng.Float64()+0.5, rng.Intn(30)-18))
		if rng.Intn(2) == 0 {
			x = -x
		}
		checkEncode(t, x)
	}
	// Every float32 in a band around the normal/subnormal boundary and
	// the top of the range: one binade each, exhaustively.
	for _, lo := range []float32{1.0 / 128, 256} {
		for b := math.Float32bits(lo); b <= math.Float32bits(2*lo); b += 7 {
			checkEncode(t, math.Float32frombits(b))
		}
	}
}

func TestFP8ScaleAndQuantize(t *testing.T) {
	if s := FP8Scale(448); s != 1 {
		t.Errorf("FP8Scale(448) = %g, want 1", s)
	}
	if s := FP8Scale(0); s != 1 {
		t.Errorf("FP8Scale(0) = %g, want 1 (all-zero tensor)", s)
	}
	if s := FP8Scale(float32(math.Inf(1))); s != 1 {
		t.Errorf("FP8Scale(+Inf) = %g, want 1", s)
	}
	x := []float32{0.5, -2, float32(math.NaN()), 3.5, -7, 0}
	if a := AmaxTwin(x); a != 7 {
		t.Errorf("AmaxTwin = %g, want 7 (NaN ignored)", a)
	}
	codes, scale := QuantizeFP8(x)
	if want := float32(7) / 448; scale != want {
		t.Fatalf("scale %g, want %g", scale, want)
	}
	// The largest magnitude maps to ±448 exactly; the others to the
	// nearest E4M3 value of x/scale: 0.5·64 = 32, 2·64 = 128, 3.5·64 = 224.
	for i, want := range []float64{32, -128, math.NaN(), 224, -448, 0} {
		got := float64(FromE4M3(codes[i]))
		if got != want && !(math.IsNaN(want) && math.IsNaN(got)) {
			t.Errorf("code %d: %g, want %g", i, got, want)
		}
	}
	if _, err := QuantizeFP8Twin(x, 7, make([]uint8, 2)); err == nil {
		t.Error("QuantizeFP8Twin accepted an output of the wrong length")
	}
	// Relative error of a quantized tensor: at most half an E4M3 step
	// (2^-4 relative) for values in the normal range.
	rng := rand.New(rand.NewSource(5))
	y := make([]float32, 4096)
	for i := range y {
		y[i] = float32(rng.NormFloat64())
	}
	c, s := QuantizeFP8(y)
	for i, v := range y {
		q := FromE4M3(c[i]) * s
		if math.Abs(float64(v)) > 0.1 && math.Abs(float64(q-v)) > math.Abs(float64(v))/16*1.0001 {
			t.Fatalf("y[%d] = %g dequantized to %g: more than 2^-4 relative", i, v, q)
		}
	}
}

func TestFP8PTX(t *testing.T) {
	if !strings.Contains(FP8PTX, ".target sm_80") {
		t.Errorf("fp8.ptx is not for %s", PTXArch)
	}
	n := 0
	for _, dt := range []DType{F32, BF16, F16} {
		for _, e := range FP8Entries() {
			n++
			if name := Entry(e, dt); !strings.Contains(FP8PTX, ".entry "+name+"(") {
				t.Errorf("fp8.ptx lacks the entry %s", name)
			}
		}
	}
	if got := strings.Count(FP8PTX, ".entry "); got != n {
		t.Errorf("fp8.ptx has %d entries, want %d", got, n)
	}
}
