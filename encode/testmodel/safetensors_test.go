package testmodel

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode/onnxpb"
	"github.com/splash-encode/splash/encode/safetensors"
)

// onnxWeights returns model.onnx's float32 initializers that hold weights
// (those with a dotted name or a made-up onnx:: name: not the graph's
// constants), by name, with their dims.
func onnxWeights(t *testing.T, m *onnxpb.ModelProto) (map[string][]float32, map[string][]int) {
	t.Helper()
	vals, dims := map[string][]float32{}, map[string][]int{}
	for _, in := range m.Graph.Initializer {
		if in.DataType != int32(onnxpb.TensorProto_FLOAT) || !(strings.Contains(in.Name, ".") || strings.HasPrefix(in.Name, "onnx::")) {
			continue
		}
		v := make([]float32, len(in.RawData)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(in.RawData[4*i:]))
		}
		d := make([]int, len(in.Dims))
		for i, x := range in.Dims {
			d[i] = int(x)
		}
		vals[in.Name], dims[in.Name] = v, d
	}
	return vals, dims
}

func openSafeTensors(t *testing.T, dir string) *safetensors.File {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(dir, SafeTensorsFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestSafeTensorsMatchesONNX: model.safetensors holds exactly model.onnx's
// weight initializers, same names, shapes and float32 values, without the
// tied decoder weight and the decoder bias duplicate, with HF's metadata.
func TestSafeTensorsMatchesONNX(t *testing.T) {
	for _, arch := range []Arch{ArchBERT, ArchDistilBERT, ArchRoBERTa} {
		t.Run(string(arch), func(t *testing.T) {
			dir := generateArch(t, Config{Arch: arch, Layers: 2, Hidden: 32, Heads: 4, Seed: 11, SafeTensors: true})
			want, wantDims := onnxWeights(t, loadModel(t, dir))
			f := openSafeTensors(t, dir)
			if m := f.Metadata(); len(m) != 1 || m["format"] != "pt" {
				t.Errorf("metadata %v, want format pt", m)
			}
			var names []string
			for name := range want {
				names = append(names, name)
			}
			sort.Strings(names)
			if !slices.Equal(f.Names(), names) {
				t.Fatalf("safetensors names\n%v\nONNX weight initializers\n%v", f.Names(), names)
			}
			for _, name := range names {
				got, shape, err := f.Float32(name)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(shape, wantDims[name]) || !slices.Equal(got, want[name]) {
					t.Errorf("%s: safetensors %v differs from model.onnx %v", name, shape, wantDims[name])
				}
				if info, _ := f.Tensor(name); info.DType != safetensors.F32 {
					t.Errorf("%s: dtype %s", name, info.DType)
				}
			}
			n := archNamesOf(arch)
			for _, tied := range []string{"cls.predictions.decoder.weight", "cls.predictions.decoder.bias",
				"lm_head.decoder.weight", "lm_head.decoder.bias", "vocab_projector.weight"} {
				if _, ok := f.Tensor(tied); ok {
					t.Errorf("model.safetensors holds the tied %s", tied)
				}
			}
			if _, ok := f.Tensor(n.outBias); !ok {
				t.Errorf("no decoder bias %s", n.outBias)
			}
			var c map[string]any
			if err := json.Unmarshal(readFile(t, filepath.Join(dir, ConfigFile)), &c); err != nil {
				t.Fatal(err)
			}
			info, _ := c["splash_test_model"].(map[string]any)
			if c["torch_dtype"] != "float32" || info["safetensors_dtype"] != "F32" {
				t.Errorf("config.json torch_dtype %v, splash_test_model %v", c["torch_dtype"], info)
			}
			if arch == ArchDistilBERT && c["tie_weights_"] != true {
				t.Errorf("DistilBERT config.json tie_weights_ = %v", c["tie_weights_"])
			}
		})
	}
}

// TestSafeTensorsHalf: F16 and BF16 checkpoints hold model.onnx's float32
// weights rounded to nearest even (checked for F16 against the oracle's
// own rounding, RoundToFloat16).
func TestSafeTensorsHalf(t *testing.T) {
	for _, dt := range []safetensors.DType{safetensors.F16, safetensors.BF16} {
		t.Run(string(dt), func(t *testing.T) {
			dir := generate(t, Config{Layers: 1, Hidden: 32, Heads: 4, Seed: 3, SafeTensors: true, SafeTensorsDType: dt})
			want, _ := onnxWeights(t, loadModel(t, dir))
			f := openSafeTensors(t, dir)
			changed := 0
			for _, name := range f.Names() {
				info, _ := f.Tensor(name)
				if info.DType != dt || info.Size != int64(2*len(want[name])) {
					t.Fatalf("%s: %+v", name, info)
				}
				got, _, err := f.Float32(name)
				if err != nil {
					t.Fatal(err)
				}
				for i, w := range want[name] {
					var r float32
					if dt == safetensors.F16 {
						r = float32(RoundToFloat16(float64(w)))
					} else {
						r = safetensors.BFloat16ToFloat32(safetensors.Float32ToBFloat16(w))
					}
					if got[i] != r {
						t.Fatalf("%s[%d]: %v, want %v rounded = %v", name, i, got[i], w, r)
					}
					if got[i] != w {
						changed++
					}
				}
			}
			if changed == 0 {
				t.Error("no value changed by the rounding")
			}
			var c map[string]any
			if err := json.Unmarshal(readFile(t, filepath.Join(dir, ConfigFile)), &c); err != nil {
				t.Fatal(err)
			}
			if want := map[safetensors.DType]string{safetensors.F16: "float16", safetensors.BF16: "bfloat16"}[dt]; c["torch_dtype"] != want {
				t.Errorf("torch_dtype %v, want %s", c["torch_dtype"], want)
			}
		})
	}
}

// TestOptimumNames: the dense weights are pre-transposed onnx::MatMul_N
// initializers multiplied without a Transpose node, their biases keep
// their names, and the oracle reads the model exactly as the model with
// Hugging Face names and the same seed.
func TestOptimumNames(t *testing.T) {
	docs := [][]int32{{101, 2054, 2003, 1996, 4007, 1997, 1037, 3358, 102}, {101, 102}}
	for _, arch := range []Arch{ArchBERT, ArchDistilBERT, ArchRoBERTa} {
		t.Run(string(arch), func(t *testing.T) {
			cfg := Config{Arch: arch, Layers: 2, Hidden: 32, Heads: 4, Seed: 13}
			plain := generateArch(t, cfg)
			cfg.OptimumNames, cfg.SafeTensors = true, true
			dir := generateArch(t, cfg)
			m := loadModel(t, dir)
			vals, dims := onnxWeights(t, m)
			plainVals, _ := onnxWeights(t, loadModel(t, plain))
			renamed := optimumMatMulNames(cfg)
			if len(renamed) != 6*cfg.Layers+1 {
				t.Fatalf("%d renamed weights", len(renamed))
			}
			for hf, anon := range renamed {
				if _, ok := vals[hf]; ok {
					t.Errorf("%s is still an initializer", hf)
				}
				d, ok := dims[anon]
				if !ok {
					t.Fatalf("no initializer %s", anon)
				}
				out, in := d[1], d[0]
				for i := 0; i < out; i++ {
					for j := 0; j < in; j++ {
						if vals[anon][j*out+i] != plainVals[hf][i*in+j] {
							t.Fatalf("%s is not %s transposed", anon, hf)
						}
					}
				}
			}
			transposes, matmuls := 0, 0
			for _, n := range m.Graph.Node {
				if n.OpType == "Transpose" && len(n.Input) == 1 && strings.HasSuffix(n.Input[0], ".weight") {
					transposes++
					if n.Input[0] != archNamesOf(arch).wordEmb {
						t.Errorf("weight %s still goes through a Transpose", n.Input[0])
					}
				}
				if n.OpType == "MatMul" && strings.HasPrefix(n.Input[1], "onnx::MatMul_") {
					matmuls++
				}
			}
			if transposes != 1 || matmuls != len(renamed) {
				t.Errorf("%d weight Transposes (want the tied decoder's only), %d MatMuls by onnx::MatMul_N (want %d)",
					transposes, matmuls, len(renamed))
			}
			// model.safetensors holds the weights by their HF names, as in
			// the plain model.
			f := openSafeTensors(t, dir)
			for name, want := range plainVals {
				got, _, err := f.Float32(name)
				if err != nil || !slices.Equal(got, want) {
					t.Errorf("model.safetensors %s differs from the plain model's (%v)", name, err)
				}
			}
			if len(f.Names()) != len(plainVals) {
				t.Errorf("model.safetensors has %d tensors, want %d", len(f.Names()), len(plainVals))
			}

			want, err := LoadOracle(plain)
			if err != nil {
				t.Fatal(err)
			}
			got, err := LoadOracle(dir)
			if err != nil {
				t.Fatal(err)
			}
			if arch == ArchRoBERTa {
				docs = [][]int32{{0, 713, 16, 10, 1296, 2}, {0, 2}}
			}
			for _, ids := range docs {
				a, b := want.Logits(ids), got.Logits(ids)
				for i := range a {
					if !slices.Equal(a[i], b[i]) {
						t.Fatalf("oracle logits of the OptimumNames model differ at position %d", i)
					}
				}
			}
		})
	}
}

// TestSkipONNX writes a safetensors-only directory; SkipONNX needs
// SafeTensors; generating without SafeTensors or with SkipONNX removes a
// stale file of the other kind; a bad dtype is a config error.
func TestSkipONNX(t *testing.T) {
	requireFile(t, bertTokenizer)
	dir := filepath.Join(t.TempDir(), "m")
	cfg := Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 4}
	if err := Generate(dir, cfg, bertTokenizer); err != nil {
		t.Fatal(err)
	}
	cfg.SafeTensors, cfg.SkipONNX = true, true
	if err := Generate(dir, cfg, bertTokenizer); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ModelFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("model.onnx after a SkipONNX Generate: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{ConfigFile, SafeTensorsFile, TokenizerFile}) {
		t.Errorf("directory holds %v", names)
	}
	st := readFile(t, filepath.Join(dir, SafeTensorsFile))
	// Deterministic, and the same as with model.onnx written.
	other := filepath.Join(t.TempDir(), "m2")
	cfg.SkipONNX = false
	if err := Generate(other, cfg, bertTokenizer); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(st, readFile(t, filepath.Join(other, SafeTensorsFile))) {
		t.Error("model.safetensors depends on SkipONNX")
	}
	cfg.SafeTensors = false
	if err := Generate(other, cfg, bertTokenizer); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(other, SafeTensorsFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale model.safetensors left: %v", err)
	}

	for _, bad := range []Config{
		{Layers: 1, Hidden: 32, Heads: 2, SkipONNX: true},
		{Layers: 1, Hidden: 32, Heads: 2, SafeTensors: true, SafeTensorsDType: "F64"},
	} {
		if err := Generate(filepath.Join(t.TempDir(), "bad"), bad, bertTokenizer); !errors.Is(err, ErrConfig) {
			t.Errorf("Generate(%+v) = %v, want ErrConfig", bad, err)
		}
	}
}
