package testmodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/splash-encode/splash/encode/onnxpb"
)

const bertVocab = 30522

func generate(t testing.TB, cfg Config) string {
	t.Helper()
	requireFile(t, bertTokenizer)
	dir := filepath.Join(t.TempDir(), "model")
	if err := Generate(dir, cfg, bertTokenizer); err != nil {
		t.Fatalf("Generate(%+v): %v", cfg, err)
	}
	return dir
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadModel(t testing.TB, dir string) *onnxpb.ModelProto {
	t.Helper()
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(readFile(t, filepath.Join(dir, ModelFile)), &m); err != nil {
		t.Fatalf("parse model.onnx: %v", err)
	}
	return &m
}

func TestGenerateDeterministic(t *testing.T) {
	cfg := Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 7}
	a, b := generate(t, cfg), generate(t, cfg)
	for _, name := range []string{ModelFile, ConfigFile, TokenizerFile} {
		if !bytes.Equal(readFile(t, filepath.Join(a, name)), readFile(t, filepath.Join(b, name))) {
			t.Errorf("%s differs between two runs with the same config", name)
		}
	}
	if !bytes.Equal(readFile(t, filepath.Join(a, TokenizerFile)), readFile(t, bertTokenizer)) {
		t.Errorf("tokenizer.json is not a byte-for-byte copy")
	}
	cfg.Seed = 8
	c := generate(t, cfg)
	if bytes.Equal(readFile(t, filepath.Join(a, ModelFile)), readFile(t, filepath.Join(c, ModelFile))) {
		t.Errorf("seeds 7 and 8 gave the same model.onnx")
	}

	// Regenerating into the same directory replaces the files and leaves no
	// temporary files behind.
	if err := Generate(a, cfg, bertTokenizer); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, filepath.Join(a, ModelFile)), readFile(t, filepath.Join(c, ModelFile))) {
		t.Errorf("regenerating over an existing directory did not replace model.onnx")
	}
	entries, err := os.ReadDir(a)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "config.json model.onnx tokenizer.json" {
		t.Errorf("directory holds %q, want only the three model files", got)
	}
}

// TestModelInterface parses model.onnx back and checks what consumers rely
// on: opset, inputs, output, initializer layout and a well-formed node list.
func TestModelInterface(t *testing.T) {
	for _, tc := range []struct {
		cfg      Config
		opset    int64
		axesAttr bool // ReduceMean axes as an attribute (opset < 18)
	}{
		{Config{Layers: 1, Hidden: 32, Heads: 2}, 14, true},
		{Config{Layers: 2, Hidden: 64, Heads: 4, Opset: 18}, 18, false},
		{Config{Layers: 2, Hidden: 48, Heads: 3, Intermediate: 100, MaxPositions: 64, TypeVocab: 1, Opset: 17}, 17, true},
	} {
		name := fmt.Sprintf("%dx%dx%d-opset%d", tc.cfg.Layers, tc.cfg.Hidden, tc.cfg.Heads, tc.opset)
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, generate(t, tc.cfg))
			full, err := tc.cfg.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			if len(m.OpsetImport) != 1 || m.OpsetImport[0].Domain != "" || m.OpsetImport[0].Version != tc.opset {
				t.Errorf("opset_import = %v, want default domain %d", m.OpsetImport, tc.opset)
			}
			if m.IrVersion < 7 || m.ProducerName != Producer {
				t.Errorf("ir_version %d, producer %q", m.IrVersion, m.ProducerName)
			}
			g := m.Graph
			checkValueInfo(t, g.Input, []string{InputIDs, AttentionMask, TokenTypeIDs}, onnxpb.TensorProto_INT64, []any{DimBatch, DimSequence})
			checkValueInfo(t, g.Output, []string{OutputLogits}, onnxpb.TensorProto_FLOAT, []any{DimBatch, DimSequence, int64(bertVocab)})

			inits := map[string]*onnxpb.TensorProto{}
			var params int
			for _, in := range g.Initializer {
				inits[in.Name] = in
				if in.DataType == int32(onnxpb.TensorProto_FLOAT) && len(in.RawData) > 0 {
					n := 1
					for _, d := range in.Dims {
						n *= int(d)
					}
					if len(in.RawData) != 4*n {
						t.Errorf("%s: %d raw bytes for dims %v", in.Name, len(in.RawData), in.Dims)
					}
					params += n
				}
			}
			h, v, inter := int64(full.Hidden), int64(bertVocab), int64(full.Intermediate)
			for name, dims := range map[string][]int64{
				nameWordEmb: {v, h},
				namePosEmb:  {int64(full.MaxPositions), h},
				nameTypeEmb: {int64(full.TypeVocab), h},
				nameOutBias: {v},
				layerName(full.Layers-1, "intermediate.dense.weight"): {inter, h},
				layerName(full.Layers-1, "output.dense.weight"):       {h, inter},
				nameHeadDense + ".weight":                             {h, h},
			} {
				in, ok := inits[name]
				if !ok {
					t.Errorf("no initializer %s", name)
					continue
				}
				if !equalDims(in.Dims, dims) {
					t.Errorf("%s has dims %v, want %v", name, in.Dims, dims)
				}
			}
			if _, ok := inits[layerName(full.Layers, "attention.self.query.weight")]; ok {
				t.Errorf("more than %d layers", full.Layers)
			}
			perLayer := 4*(h*h+h) + 2*2*h + inter*h + inter + h*inter + h
			want := v*h + int64(full.MaxPositions)*h + int64(full.TypeVocab)*h + 2*h +
				int64(full.Layers)*perLayer + h*h + h + 2*h + v
			if int64(params) != want {
				t.Errorf("%d parameters, want %d", params, want)
			}

			// Nodes are in topological order, every value is defined once,
			// and ReduceMean uses the signature of the opset.
			defined := map[string]bool{}
			for _, in := range g.Input {
				defined[in.Name] = true
			}
			for name := range inits {
				defined[name] = true
			}
			ops := map[string]int{}
			for _, n := range g.Node {
				ops[n.OpType]++
				if n.Domain != "" {
					t.Errorf("node %s in domain %q", n.Name, n.Domain)
				}
				for _, in := range n.Input {
					if !defined[in] {
						t.Fatalf("node %s (%s) uses %q before it is defined", n.Name, n.OpType, in)
					}
				}
				for _, out := range n.Output {
					if defined[out] {
						t.Fatalf("node %s redefines %q", n.Name, out)
					}
					defined[out] = true
				}
				if n.OpType == "ReduceMean" {
					hasAttr := false
					for _, a := range n.Attribute {
						hasAttr = hasAttr || a.Name == "axes"
					}
					if hasAttr != tc.axesAttr || (len(n.Input) == 2) == tc.axesAttr {
						t.Fatalf("ReduceMean %s: axes attribute %v, %d inputs at opset %d", n.Name, hasAttr, len(n.Input), tc.opset)
					}
				}
			}
			if !defined[OutputLogits] {
				t.Errorf("no node produces %s", OutputLogits)
			}
			if got, want := ops["Softmax"], full.Layers; got != want {
				t.Errorf("%d Softmax nodes, want %d", got, want)
			}
			if got, want := ops["Erf"], full.Layers+1; got != want {
				t.Errorf("%d Erf nodes (exact GELU), want %d", got, want)
			}
			if got, want := ops["ReduceMean"], 2*(2+2*full.Layers); got != want {
				t.Errorf("%d ReduceMean nodes, want %d (two per LayerNorm)", got, want)
			}
		})
	}
}

func equalDims(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkValueInfo checks names, element type and dims (string: symbolic,
// int64: fixed) of graph inputs or outputs.
func checkValueInfo(t *testing.T, vis []*onnxpb.ValueInfoProto, names []string, elem onnxpb.TensorProto_DataType, dims []any) {
	t.Helper()
	if len(vis) != len(names) {
		t.Fatalf("%d values, want %v", len(vis), names)
	}
	for i, vi := range vis {
		if vi.Name != names[i] {
			t.Errorf("value %d is %q, want %q", i, vi.Name, names[i])
		}
		tt := vi.GetType().GetTensorType()
		if tt == nil || tt.ElemType != int32(elem) {
			t.Errorf("%s: type %v, want tensor of %v", vi.Name, vi.GetType(), elem)
			continue
		}
		got := tt.GetShape().GetDim()
		if len(got) != len(dims) {
			t.Errorf("%s: %d dims, want %d", vi.Name, len(got), len(dims))
			continue
		}
		for k, d := range dims {
			switch d := d.(type) {
			case string:
				if got[k].GetDimParam() != d {
					t.Errorf("%s dim %d: %v, want symbolic %q", vi.Name, k, got[k], d)
				}
			case int64:
				if got[k].GetDimValue() != d {
					t.Errorf("%s dim %d: %v, want %d", vi.Name, k, got[k], d)
				}
			}
		}
	}
}

func TestConfigJSON(t *testing.T) {
	dir := generate(t, Config{Layers: 2, Hidden: 64, Heads: 4, Seed: 42})
	var c map[string]any
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, ConfigFile)), &c); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"model_type": "bert", "vocab_size": 30522.0, "hidden_size": 64.0, "num_hidden_layers": 2.0,
		"num_attention_heads": 4.0, "intermediate_size": 256.0, "max_position_embeddings": 512.0,
		"type_vocab_size": 2.0, "layer_norm_eps": 1e-12, "hidden_act": "gelu", "pad_token_id": 0.0,
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("config.json %s = %v, want %v", k, c[k], v)
		}
	}
	if a, ok := c["architectures"].([]any); !ok || len(a) != 1 || a[0] != "BertForMaskedLM" {
		t.Errorf("architectures = %v", c["architectures"])
	}
	info, ok := c["splash_test_model"].(map[string]any)
	if !ok || info["seed"] != 42.0 || !strings.Contains(info["note"].(string), "random weights") {
		t.Errorf("splash_test_model = %v", c["splash_test_model"])
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Layers: 1, Hidden: 30, Heads: 4},
		{Layers: 0, Hidden: 32, Heads: 2},
		{Layers: 1, Hidden: 32, Heads: 0},
		{Layers: 1, Hidden: 32, Heads: 2, Opset: 13},
		{Layers: 1, Hidden: 32, Heads: 2, Opset: 99},
		{Layers: 1, Hidden: 32, Heads: 2, MaxPositions: -1},
		{Layers: 1, Hidden: 32, Heads: 2, Intermediate: -5},
	} {
		dir := filepath.Join(t.TempDir(), "m")
		err := Generate(dir, cfg, bertTokenizer)
		if !errors.Is(err, ErrConfig) {
			t.Errorf("Generate(%+v) = %v, want ErrConfig", cfg, err)
		}
		if _, statErr := os.Stat(dir); statErr == nil {
			t.Errorf("Generate(%+v) created %s despite the error", cfg, dir)
		}
	}
	err := Generate(t.TempDir(), Config{Layers: 1, Hidden: 32, Heads: 2}, filepath.Join(t.TempDir(), "missing.json"))
	if err == nil || !strings.Contains(err.Error(), "tokenizer") {
		t.Errorf("missing tokenizer: %v", err)
	}
}

func TestVocabSize(t *testing.T) {
	requireFile(t, bertTokenizer)
	if n, err := VocabSize(readFile(t, bertTokenizer)); err != nil || n != bertVocab {
		t.Errorf("bert-base-uncased: %d, %v; want %d", n, err, bertVocab)
	}
	for _, tc := range []struct {
		json string
		want int // 0: error
	}{
		{`{"model":{"vocab":{"a":0,"b":1}},"added_tokens":[{"id":5}]}`, 6},
		{`{"model":{"vocab":{"a":3,"b":1}}}`, 4},
		{`{"model":{"vocab":[["a",-1.5],["b",-2]]}}`, 2},
		{`{"model":{"vocab":{}}}`, 0},
		{`{"model":{}}`, 0},
		{`{"model":{"vocab":{"a":-1}}}`, 0},
		{`not json`, 0},
	} {
		n, err := VocabSize([]byte(tc.json))
		if tc.want == 0 && err == nil {
			t.Errorf("%s: %d, want an error", tc.json, n)
		}
		if tc.want != 0 && (err != nil || n != tc.want) {
			t.Errorf("%s: %d, %v; want %d", tc.json, n, err, tc.want)
		}
	}
}

// TestWeightDistribution checks the properties doc.go promises: unit-norm
// word directions (zero padding row) and a negative output bias.
func TestWeightDistribution(t *testing.T) {
	o, err := LoadOracle(generate(t, Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 3}))
	if err != nil {
		t.Fatal(err)
	}
	h := o.hidden
	wantNorm := wordStd * math.Sqrt(float64(h))
	for j := 0; j < o.vocab; j++ {
		var ss float64
		for _, v := range o.wordEmb[j*h : (j+1)*h] {
			ss += v * v
		}
		norm := math.Sqrt(ss)
		if j == padTokenID {
			if norm != 0 {
				t.Errorf("padding row has norm %v, want 0", norm)
			}
			continue
		}
		if d := norm - wantNorm; d > 1e-6 || d < -1e-6 {
			t.Fatalf("word row %d has norm %v, want %v", j, norm, wantNorm)
		}
	}
	var mean float64
	for _, b := range o.outBias {
		mean += b / float64(len(o.outBias))
	}
	if want := -biasSigmas * logitScale / math.Sqrt(float64(h)); mean > 0.95*want || mean < 1.05*want {
		t.Errorf("mean output bias %v, want about %v", mean, want)
	}
}

// TestGenerateBaseSize generates a BERT-base-sized model (12 x 768) and
// checks its size; it shows that generation is practical (a few seconds).
func TestGenerateBaseSize(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 440 MB model; skipped with -short")
	}
	dir := generate(t, Config{Layers: 12, Hidden: 768, Heads: 12})
	st, err := os.Stat(filepath.Join(dir, ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	// 109.5M float32 parameters (BertForMaskedLM without pooler) plus the graph.
	const params = 109_514_298
	if st.Size() < 4*params || st.Size() > 4*params+1<<20 {
		t.Errorf("model.onnx is %d bytes, want about %d", st.Size(), 4*params)
	}
}
