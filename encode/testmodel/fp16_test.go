package testmodel

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/onnxpb"
)

// decodeFloat16 is the value of a float16 bit pattern, read field by field
// (independently of RoundToFloat16).
func decodeFloat16(bits uint16) float64 {
	sign := 1.0
	if bits&0x8000 != 0 {
		sign = -1
	}
	exp, frac := int(bits>>10)&0x1f, float64(bits&0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(frac, -24)
	case 0x1f:
		if frac != 0 {
			return math.NaN()
		}
		return sign * math.Inf(1)
	}
	return sign * math.Ldexp(1024+frac, exp-25)
}

// TestRoundToFloat16 checks every float16 value: it rounds to itself, the
// midpoint to its neighbour rounds to the one with an even fraction, and
// the float64 just beside the midpoint rounds to the nearer one.
func TestRoundToFloat16(t *testing.T) {
	for bits := uint16(0); bits < 0x7c00; bits++ {
		v, next := decodeFloat16(bits), decodeFloat16(bits+1)
		if bits == 0x7bff {
			next = 65536 // the next power of two, beyond float16's range
		}
		for _, s := range []float64{1, -1} {
			if got := RoundToFloat16(s * v); got != s*v || math.Signbit(got) != (s < 0) {
				t.Fatalf("RoundToFloat16(%v) = %v, want itself", s*v, got)
			}
			mid := s * (v + next) / 2 // exact in float64
			even := v
			if bits&1 == 1 {
				even = next
			}
			if bits == 0x7bff {
				even = math.Inf(1) // 65520 rounds to 2^16, which overflows
			}
			if got := RoundToFloat16(mid); got != s*even {
				t.Fatalf("RoundToFloat16(%v) = %v, want %v (ties to even)", mid, got, s*even)
			}
			below, above := math.Nextafter(mid, 0), math.Nextafter(mid, s*math.Inf(1))
			if got := RoundToFloat16(below); got != s*v {
				t.Fatalf("RoundToFloat16(%v) = %v, want %v", below, got, s*v)
			}
			if bits < 0x7bff {
				if got := RoundToFloat16(above); got != s*next {
					t.Fatalf("RoundToFloat16(%v) = %v, want %v", above, got, s*next)
				}
			}
		}
	}
	for x, want := range map[float64]float64{
		1e6: math.Inf(1), -65520: math.Inf(-1), 65519.99: 65504, 1e-9: 0, 3e-8: math.Ldexp(1, -24),
		math.Inf(-1): math.Inf(-1), 1.0 / 3: 0.333251953125, 0.1: 0.0999755859375,
	} {
		if got := RoundToFloat16(x); got != want {
			t.Errorf("RoundToFloat16(%v) = %v, want %v", x, got, want)
		}
	}
	if got := RoundToFloat16(-1e-9); got != 0 || !math.Signbit(got) {
		t.Errorf("RoundToFloat16(-1e-9) = %v, want -0", got)
	}
	if !math.IsNaN(RoundToFloat16(math.NaN())) {
		t.Error("RoundToFloat16(NaN) is not NaN")
	}
}

// TestFP16Model checks Config.FP16: the same weights as the float32 model,
// a float16 logits output computed by a final Cast of the float32 logits,
// config.json saying so, and an oracle whose logits are the float32 model's
// oracle logits rounded to float16.
func TestFP16Model(t *testing.T) {
	cfg := Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 17}
	dir32 := generate(t, cfg)
	cfg.FP16 = true
	dir16 := generate(t, cfg)
	m32, m16 := loadModel(t, dir32), loadModel(t, dir16)

	out := m16.Graph.Output
	if len(out) != 1 || out[0].Name != OutputLogits ||
		out[0].Type.GetTensorType().GetElemType() != int32(onnxpb.TensorProto_FLOAT16) {
		t.Fatalf("outputs %v, want one float16 %q", out, OutputLogits)
	}
	if len(m16.Graph.Initializer) != len(m32.Graph.Initializer) {
		t.Fatalf("%d initializers, float32 model %d", len(m16.Graph.Initializer), len(m32.Graph.Initializer))
	}
	for i, a := range m32.Graph.Initializer {
		b := m16.Graph.Initializer[i]
		if !proto.Equal(a, b) {
			t.Fatalf("initializer %s differs from the float32 model's", a.Name)
		}
	}
	n16, n32 := m16.Graph.Node, m32.Graph.Node
	last := n16[len(n16)-1]
	if len(n16) != len(n32)+1 || last.OpType != "Cast" || len(last.Attribute) != 1 ||
		last.Attribute[0].Name != "to" || last.Attribute[0].I != int64(onnxpb.TensorProto_FLOAT16) ||
		last.Output[0] != OutputLogits {
		t.Fatalf("last node %v, want a Cast to float16 of the logits (after the float32 model's %d nodes)", last, len(n32))
	}
	if add := n16[len(n16)-2]; add.OpType != "Add" || add.Output[0] != last.Input[0] {
		t.Fatalf("the Cast reads %q, not the decoder's Add (%v)", last.Input[0], add)
	}

	info := func(dir string) map[string]any {
		var c struct {
			Info map[string]any `json:"splash_test_model"`
		}
		if err := json.Unmarshal(readFile(t, filepath.Join(dir, ConfigFile)), &c); err != nil {
			t.Fatal(err)
		}
		return c.Info
	}
	if got := info(dir16)["logits_dtype"]; got != "float16" {
		t.Errorf("config.json logits_dtype = %v, want float16", got)
	}
	if got, ok := info(dir32)["logits_dtype"]; ok {
		t.Errorf("float32 model's config.json has logits_dtype %v", got)
	}
	if bytes.Equal(readFile(t, filepath.Join(dir16, ModelFile)), readFile(t, filepath.Join(dir32, ModelFile))) {
		t.Fatal("FP16 did not change model.onnx")
	}

	o32, err := LoadOracle(dir32)
	if err != nil {
		t.Fatal(err)
	}
	o16, err := LoadOracle(dir16)
	if err != nil {
		t.Fatal(err)
	}
	if o32.Float16Logits() || !o16.Float16Logits() {
		t.Fatalf("Float16Logits: float32 model %v, float16 model %v", o32.Float16Logits(), o16.Float16Logits())
	}
	ids := []int32{101, 6388, 4812, 1997, 1996, 17001, 1997, 1037, 3358, 1012, 102}
	want, raw, got := o32.Logits(ids), o16.Float64Logits(ids), o16.Logits(ids)
	rounded := 0
	for i := range want {
		for j, z := range want[i] {
			if raw[i][j] != z {
				t.Fatalf("Float64Logits[%d][%d] = %v, float32 model's oracle %v", i, j, raw[i][j], z)
			}
			if got[i][j] != RoundToFloat16(z) {
				t.Fatalf("Logits[%d][%d] = %v, want %v rounded to float16", i, j, got[i][j], z)
			}
			if got[i][j] != z {
				rounded++
			}
		}
	}
	if rounded == 0 {
		t.Fatal("no logit changed in the rounding to float16")
	}
	for _, pooling := range []encode.Pooling{encode.PoolMax, encode.PoolSum} {
		p := o16.Pooled(ids, pooling.String())
		want := encode.PoolReference(got, nil, pooling)
		for j := range p {
			if w := want[j]; p[j] != w {
				t.Fatalf("%s pooling of term %d: %v, want %v from the float16 logits", pooling, j, p[j], w)
			}
		}
	}
}

// TestLoadOracleLogitsType checks that LoadOracle refuses a model whose
// logits output is missing or neither float nor float16.
func TestLoadOracleLogitsType(t *testing.T) {
	good := generate(t, Config{Layers: 1, Hidden: 32, Heads: 2})
	for name, edit := range map[string]func(g *onnxpb.GraphProto){
		"int64 logits": func(g *onnxpb.GraphProto) {
			g.Output[0].Type.GetTensorType().ElemType = int32(onnxpb.TensorProto_INT64)
		},
		"no logits": func(g *onnxpb.GraphProto) { g.Output[0].Name = "scores" },
	} {
		m := loadModel(t, good)
		edit(m.Graph)
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ModelFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ConfigFile), readFile(t, filepath.Join(good, ConfigFile)), 0o644); err != nil {
			t.Fatal(err)
		}
		if o, err := LoadOracle(dir); err == nil || o != nil || !strings.Contains(err.Error(), `"logits"`) {
			t.Errorf("%s: LoadOracle = %v, %v; want an error about \"logits\"", name, o, err)
		}
	}
}
