package testmodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/onnxpb"
	"github.com/splash-encode/splash/encode/safetensors"
	"github.com/splash-encode/splash/encode/tokenizer"
)

func generateLlama(t testing.TB, cfg LlamaConfig) string {
	t.Helper()
	requireFile(t, mistralTokenizer)
	dir := filepath.Join(t.TempDir(), "model")
	if err := GenerateLlama(dir, cfg, mistralTokenizer); err != nil {
		t.Fatalf("GenerateLlama(%+v): %v", cfg, err)
	}
	return dir
}

func mustLlamaOracle(t testing.TB, dir string) *LlamaOracle {
	t.Helper()
	o, err := LoadLlamaOracle(dir)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// llama31Config is the config.json of meta-llama/Llama-3.1-8B as published
// on the Hugging Face hub (transformers_version and use_cache aside).
const llama31Config = `{
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096,
  "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 131072,
  "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32,
  "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 128256
}`

// TestLlamaConfigJSON checks config.json against the names of Llama 3.1's
// published config.json and the values of cfg.
func TestLlamaConfigJSON(t *testing.T) {
	var ref map[string]any
	if err := json.Unmarshal([]byte(llama31Config), &ref); err != nil {
		t.Fatal(err)
	}
	read := func(dir string) map[string]any {
		var c map[string]any
		if err := json.Unmarshal(readFile(t, filepath.Join(dir, ConfigFile)), &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	scaling := Llama31RopeScaling()
	c := read(generateLlama(t, LlamaConfig{Layers: 2, Hidden: 64, Heads: 8, KVHeads: 2, RopeTheta: 500000,
		RopeScaling: &scaling, Vocab: 128256, SafeTensorsDType: safetensors.BF16, Seed: 3, SkipONNX: true}))
	for k := range ref {
		if _, ok := c[k]; !ok {
			t.Errorf("config.json has no %s (Llama 3.1's has)", k)
		}
	}
	for k, want := range map[string]any{
		"architectures": []any{"LlamaForCausalLM"}, "model_type": "llama", "hidden_size": 64.0, "intermediate_size": 192.0,
		"num_hidden_layers": 2.0, "num_attention_heads": 8.0, "num_key_value_heads": 2.0, "head_dim": 8.0,
		"rms_norm_eps": 1e-5, "rope_theta": 500000.0, "rope_scaling": ref["rope_scaling"], "tie_word_embeddings": false,
		"vocab_size": 128256.0, "max_position_embeddings": 2048.0, "hidden_act": "silu", "torch_dtype": "bfloat16",
		"bos_token_id": 1.0, "eos_token_id": 2.0, "attention_bias": false, "mlp_bias": false,
	} {
		if fmt.Sprint(c[k]) != fmt.Sprint(want) {
			t.Errorf("config.json %s = %v, want %v", k, c[k], want)
		}
	}
	info, _ := c["splash_test_model"].(map[string]any)
	if info["attention"] != "causal" || info["no_onnx"] != true || info["safetensors_shards"] != 1.0 || info["seed"] != 3.0 {
		t.Errorf("splash_test_model = %v", info)
	}

	c = read(generateLlama(t, LlamaConfig{Family: FamilyMistral, Layers: 1, Hidden: 32, Heads: 4, KVHeads: 1,
		RopeTheta: 1e6, Tied: true, Bidirectional: true}))
	for k, want := range map[string]any{
		"architectures": []any{"MistralForCausalLM"}, "model_type": "mistral", "num_key_value_heads": 1.0,
		"rope_theta": 1e6, "rope_scaling": nil, "sliding_window": nil, "tie_word_embeddings": true,
		"vocab_size": float64(mistralVocab), "torch_dtype": "float32",
	} {
		if v, ok := c[k]; !ok || fmt.Sprint(v) != fmt.Sprint(want) {
			t.Errorf("mistral config.json %s = %v (present %t), want %v", k, v, ok, want)
		}
	}
	if _, ok := c["mlp_bias"]; ok {
		t.Errorf("mistral config.json has llama's mlp_bias")
	}
	if info, _ := c["splash_test_model"].(map[string]any); info["attention"] != "bidirectional" {
		t.Errorf("splash_test_model.attention = %v, want bidirectional", info["attention"])
	}
}

// TestLlamaInvFreq checks the rotary frequencies of the oracle (float64)
// and of model.onnx (float32) against values computed here from the
// published llama3 formula (Meta's apply_scaling), for a head size of 16
// whose frequencies fall in all three bands of original length 64.
func TestLlamaInvFreq(t *testing.T) {
	scaling := LlamaRopeScaling{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 64}
	dir := generateLlama(t, LlamaConfig{Layers: 1, Hidden: 32, Heads: 2, RopeScaling: &scaling})
	o := mustLlamaOracle(t, dir)
	// From the formula, written out: f_j = 10000^(-2j/16); wavelength
	// 2 pi/f_j; < 64/4: kept; > 64/1: f/8; else (1-s) f/8 + s f with
	// s = (64/wavelength - 1)/(4 - 1).
	want := []float64{1, 0.24438459943539834, 0.013042256043820465, 0.003952847075210474,
		0.00125, 0.0003952847075210474, 0.000125, 3.952847075210474e-05}
	bands := map[string]int{}
	for j := range want {
		f := math.Pow(10000, -float64(2*j)/16)
		w := 2 * math.Pi / f
		switch {
		case w < 16:
			bands["high"]++
		case w > 64:
			bands["low"]++
			f /= 8
		default:
			bands["medium"]++
			s := (64/w - 1) / 3
			f = (1-s)*f/8 + s*f
		}
		if math.Abs(f-want[j]) > 1e-15*want[j] {
			t.Fatalf("the test's own formula gives %v for j=%d, the literal is %v", f, j, want[j])
		}
	}
	if bands["high"] == 0 || bands["medium"] != 2 || bands["low"] == 0 {
		t.Fatalf("bands %v: the case does not reach all three", bands)
	}
	if len(o.invFreq) != len(want) {
		t.Fatalf("oracle has %d frequencies, want %d", len(o.invFreq), len(want))
	}
	m := loadModel(t, dir)
	var onnx []float32
	for _, in := range m.Graph.Initializer {
		if in.Name == llamaNameInvFreq {
			onnx = in.FloatData
		}
	}
	if len(onnx) != len(want) {
		t.Fatalf("model.onnx %s has %d values, want %d", llamaNameInvFreq, len(onnx), len(want))
	}
	for j, w := range want {
		if math.Abs(o.invFreq[j]-w) > 1e-14*w {
			t.Errorf("oracle inv_freq[%d] = %v, want %v", j, o.invFreq[j], w)
		}
		if math.Abs(float64(onnx[j])-w) > 1e-6*w {
			t.Errorf("model.onnx inv_freq[%d] = %v, want %v (float32)", j, onnx[j], w)
		}
	}
	// Without scaling: plain theta^(-2j/d), here with Mistral's theta 1e6.
	o = mustLlamaOracle(t, generateLlama(t, LlamaConfig{Layers: 1, Hidden: 32, Heads: 2, RopeTheta: 1e6, SkipONNX: true}))
	for j, f := range o.invFreq {
		if w := math.Pow(1e6, -float64(j)/8); math.Abs(f-w) > 1e-14*w {
			t.Errorf("unscaled inv_freq[%d] = %v, want %v", j, f, w)
		}
	}
}

// llamaONNXWeights returns the float32 initializers of dir/model.onnx by name.
func llamaONNXWeights(t testing.TB, dir string) map[string]*onnxpb.TensorProto {
	t.Helper()
	out := map[string]*onnxpb.TensorProto{}
	for _, in := range loadModel(t, dir).Graph.Initializer {
		if len(in.RawData) > 0 {
			out[in.Name] = in
		}
	}
	return out
}

// TestLlamaSafeTensorsMatchONNX generates models with 1 and 3 shards in
// F32 and BF16 and checks the files (names, index, shard contents) and
// that every tensor equals the ONNX initializer of the same name (BF16:
// the ONNX value is bf16-representable, i.e. the weights were rounded
// once, for both files), then that the oracle loads exactly these weights.
func TestLlamaSafeTensorsMatchONNX(t *testing.T) {
	for _, tc := range []struct {
		shards int
		dt     safetensors.DType
		tied   bool
	}{{1, safetensors.F32, false}, {3, safetensors.F32, true}, {1, safetensors.BF16, true}, {3, safetensors.BF16, false}} {
		t.Run(fmt.Sprintf("shards=%d-%s-tied=%t", tc.shards, tc.dt, tc.tied), func(t *testing.T) {
			cfg := LlamaConfig{Layers: 2, Hidden: 32, Heads: 4, KVHeads: 2, Tied: tc.tied, Shards: tc.shards,
				SafeTensorsDType: tc.dt, Seed: 11}
			dir := generateLlama(t, cfg)
			full, err := cfg.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			names := llamaWeightNames(full)
			files := map[string]string{} // tensor -> file
			if tc.shards == 1 {
				if _, err := os.Stat(filepath.Join(dir, SafeTensorsIndexFile)); err == nil {
					t.Errorf("a single file has an index")
				}
				for _, n := range names {
					files[n] = SafeTensorsFile
				}
			} else {
				var index struct {
					Metadata  map[string]int64  `json:"metadata"`
					WeightMap map[string]string `json:"weight_map"`
				}
				if err := json.Unmarshal(readFile(t, filepath.Join(dir, SafeTensorsIndexFile)), &index); err != nil {
					t.Fatal(err)
				}
				files = index.WeightMap
				var total int64
				perFile := map[string][]string{}
				for name, file := range files {
					perFile[file] = append(perFile[file], name)
				}
				for k := 1; k <= tc.shards; k++ {
					file := fmt.Sprintf("model-%05d-of-%05d.safetensors", k, tc.shards)
					f, err := safetensors.Open(filepath.Join(dir, file))
					if err != nil {
						t.Fatal(err)
					}
					got := f.Names()
					for _, n := range got {
						info, _ := f.Tensor(n)
						total += info.NumElements() * int64(tc.dt.Size())
					}
					f.Close()
					sort.Strings(got)
					sort.Strings(perFile[file])
					if len(got) == 0 || !slices.Equal(got, perFile[file]) {
						t.Errorf("%s holds %v, the index maps %v to it", file, got, perFile[file])
					}
				}
				if index.Metadata["total_size"] != total {
					t.Errorf("index total_size %d, the shards hold %d bytes of tensors", index.Metadata["total_size"], total)
				}
				if _, err := os.Stat(filepath.Join(dir, SafeTensorsFile)); err == nil {
					t.Errorf("a sharded checkpoint also has %s", SafeTensorsFile)
				}
			}
			if len(files) != len(names) {
				t.Errorf("%d tensors in the safetensors, want %d (%v)", len(files), len(names), names)
			}
			onnx := llamaONNXWeights(t, dir)
			opened := map[string]*safetensors.File{}
			defer func() {
				for _, f := range opened {
					f.Close()
				}
			}()
			for _, name := range names {
				file, ok := files[name]
				if !ok {
					t.Fatalf("no tensor %s in the safetensors", name)
				}
				f := opened[file]
				if f == nil {
					if f, err = safetensors.Open(filepath.Join(dir, file)); err != nil {
						t.Fatal(err)
					}
					opened[file] = f
				}
				if info, _ := f.Tensor(name); info.DType != tc.dt {
					t.Errorf("%s has dtype %s, want %s", name, info.DType, tc.dt)
				}
				st, shape, err := f.Float32(name)
				if err != nil {
					t.Fatal(err)
				}
				in := onnx[name]
				if in == nil || !equalDims(in.Dims, int64s(shape)) {
					t.Fatalf("%s: ONNX initializer %v, safetensors shape %v", name, in.GetDims(), shape)
				}
				ov := rawFloat32(in.RawData)
				for i, v := range ov {
					if tc.dt == safetensors.BF16 && safetensors.BFloat16ToFloat32(safetensors.Float32ToBFloat16(v)) != v {
						t.Fatalf("%s[%d] = %v in model.onnx is not a bfloat16 value", name, i, v)
					}
					if st[i] != v {
						t.Fatalf("%s[%d]: safetensors %v, model.onnx %v", name, i, st[i], v)
					}
				}
			}
			if _, ok := onnx[llamaNameLMHead]; ok == tc.tied {
				t.Errorf("lm_head.weight in model.onnx: %t with tied %t", ok, tc.tied)
			}

			// The oracle holds the same weights.
			o := mustLlamaOracle(t, dir)
			for name, got := range map[string][]float64{
				llamaNameEmbed: o.embed, llamaNameNorm: o.norm,
				llamaLayer(1, "self_attn.k_proj.weight"): o.layers[1].k.w,
				llamaLayer(0, "mlp.down_proj.weight"):    o.layers[0].down.w,
				llamaLayer(1, "input_layernorm.weight"):  o.layers[1].inputNorm,
			} {
				want := rawFloat32(onnx[name].RawData)
				if len(got) != len(want) {
					t.Fatalf("oracle %s has %d values, model.onnx %d", name, len(got), len(want))
				}
				for i := range want {
					if got[i] != float64(want[i]) {
						t.Fatalf("oracle %s[%d] = %v, model.onnx %v", name, i, got[i], want[i])
					}
				}
			}
			if tc.tied != (&o.lmHead[0] == &o.embed[0]) {
				t.Errorf("oracle LM head shared with the embeddings: %t, tied %t", &o.lmHead[0] == &o.embed[0], tc.tied)
			}
		})
	}
}

func int64s(v []int) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

// TestLlamaRegenerate: regenerating with another shard count leaves only
// the new layout's files; the same config gives the same bytes.
func TestLlamaRegenerate(t *testing.T) {
	cfg := LlamaConfig{Layers: 1, Hidden: 32, Heads: 2, Shards: 3, Seed: 4}
	dir := generateLlama(t, cfg)
	again := generateLlama(t, cfg)
	for _, name := range []string{ModelFile, ConfigFile, SafeTensorsIndexFile, "model-00002-of-00003.safetensors"} {
		if string(readFile(t, filepath.Join(dir, name))) != string(readFile(t, filepath.Join(again, name))) {
			t.Errorf("%s differs between two runs with the same config", name)
		}
	}
	cfg.Shards, cfg.SkipONNX = 1, true
	if err := GenerateLlama(dir, cfg, mistralTokenizer); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if s := strings.Join(got, " "); s != "config.json model.safetensors tokenizer.json tokenizer_config.json" {
		t.Errorf("directory holds %q after regenerating with one shard and no ONNX", s)
	}
	mustLlamaOracle(t, dir)
}

func TestLlamaConfigErrors(t *testing.T) {
	requireFile(t, mistralTokenizer)
	ok := LlamaConfig{Layers: 1, Hidden: 32, Heads: 4}
	for _, mod := range []func(*LlamaConfig){
		func(c *LlamaConfig) { c.Family = "gpt2" },
		func(c *LlamaConfig) { c.KVHeads = 3 },
		func(c *LlamaConfig) { c.Heads = 32 }, // head_dim 1: odd
		func(c *LlamaConfig) { c.Layers = 0 },
		func(c *LlamaConfig) { c.Vocab = 1000 },
		func(c *LlamaConfig) { c.Shards = 100 },
		func(c *LlamaConfig) { c.Shards = -1 },
		func(c *LlamaConfig) { c.SafeTensorsDType = safetensors.I8 },
		func(c *LlamaConfig) { c.RopeTheta = -1 },
		func(c *LlamaConfig) {
			c.RopeScaling = &LlamaRopeScaling{Factor: 8, LowFreqFactor: 4, HighFreqFactor: 1, OriginalMaxPositions: 64}
		},
		func(c *LlamaConfig) { c.SkipONNX, c.Bidirectional = true, true },
		func(c *LlamaConfig) { c.Opset = 13 },
	} {
		cfg := ok
		mod(&cfg)
		dir := filepath.Join(t.TempDir(), "m")
		if err := GenerateLlama(dir, cfg, mistralTokenizer); !errors.Is(err, ErrConfig) {
			t.Errorf("GenerateLlama(%+v) = %v, want ErrConfig", cfg, err)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("GenerateLlama(%+v) created %s despite the error", cfg, dir)
		}
	}

	// The oracle refuses what it does not compute, naming the field.
	dir := generateLlama(t, LlamaConfig{Layers: 1, Hidden: 32, Heads: 4, SkipONNX: true})
	conf := string(readFile(t, filepath.Join(dir, ConfigFile)))
	for _, tc := range []struct{ from, to, field string }{
		{`"hidden_act": "silu"`, `"hidden_act": "gelu"`, "hidden_act"},
		{`"rope_scaling": null`, `"rope_scaling": {"rope_type": "linear", "factor": 2}`, "rope_type"},
		{`"attention_bias": false`, `"attention_bias": true`, "attention_bias"},
		{`"model_type": "llama"`, `"model_type": "bert"`, "model_type"},
		{`"num_key_value_heads": 4`, `"num_key_value_heads": 3`, "num_key_value_heads"},
		{`"rope_scaling": null`, `"rope_scaling": {"rope_type": "llama3", "factor": 8}`, "low_freq_factor"},
	} {
		if !strings.Contains(conf, tc.from) {
			t.Fatalf("config.json has no %s", tc.from)
		}
		bad := filepath.Join(t.TempDir(), "bad")
		if err := os.MkdirAll(bad, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bad, ConfigFile), []byte(strings.Replace(conf, tc.from, tc.to, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(filepath.Join(dir, SafeTensorsFile), filepath.Join(bad, SafeTensorsFile)); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadLlamaOracle(bad); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: LoadLlamaOracle = %v, want an error naming %s", tc.to, err, tc.field)
		}
	}
	if _, err := LoadLlamaOracle(generateCausal(t, CausalConfig{Layers: 1, Hidden: 32, Heads: 2}, mistralTokenizer)); err == nil {
		t.Errorf("LoadLlamaOracle accepted a GPT-2 model")
	}
}

// TestLlamaOracle checks the oracle's attention variants: causal logits do
// not depend on later tokens; bidirectional ones do; with one layer the
// last position is the same in both (it sees every key either way); the
// poolings follow encode.PoolReference; bad arguments give nil.
func TestLlamaOracle(t *testing.T) {
	ids := []int32{1, 415, 7853, 302, 264, 10002, 349, 11426, 28723}
	for _, layers := range []int{1, 2} {
		o := mustLlamaOracle(t, generateLlama(t, LlamaConfig{Layers: layers, Hidden: 32, Heads: 4, KVHeads: 2, Seed: 5,
			MaxPositions: 64, SkipONNX: true}))
		if o.VocabSize() != mistralVocab || o.MaxLength() != 64 || o.Hidden() != 32 || o.Family() != FamilyLlama {
			t.Fatalf("vocab %d, max length %d, hidden %d, family %s", o.VocabSize(), o.MaxLength(), o.Hidden(), o.Family())
		}
		causal, bidi := o.Logits(ids, false), o.Logits(ids, true)
		for n := 1; n < len(ids); n++ {
			prefix := o.Logits(ids[:n], false)
			for i := range prefix {
				if d := maxDiff(prefix[i], causal[i]); d != 0 {
					t.Fatalf("causal: position %d moved by %v when tokens after %d were added", i, d, n)
				}
			}
		}
		changed := slices.Clone(ids)
		changed[len(ids)-1] = 2
		if d := maxDiff(o.Logits(changed, true)[0], bidi[0]); d < 1e-3 {
			t.Errorf("%d layers, bidirectional: changing the last token moved position 0 by only %v", layers, d)
		}
		if d := maxDiff(o.Logits(changed, false)[0], causal[0]); d != 0 {
			t.Errorf("%d layers, causal: changing the last token moved position 0 by %v", layers, d)
		}
		last := len(ids) - 1
		if d := maxDiff(causal[last], bidi[last]); (d == 0) != (layers == 1) {
			t.Errorf("%d layers: last position differs by %v between causal and bidirectional", layers, d)
		}
		for _, bidirectional := range []bool{false, true} {
			full := o.Logits(ids, bidirectional)
			for _, from := range []int{0, 4, last} {
				for _, p := range []encode.Pooling{encode.PoolMax, encode.PoolSum} {
					got := o.PooledFrom(ids, from, p.String(), bidirectional)
					want := encode.PoolReference(full[from:], nil, p)
					if d := maxDiff(got, want); d > 1e-12 || len(got) != mistralVocab {
						t.Fatalf("PooledFrom(from %d, %v, bidirectional %t) differs from PoolReference by %v", from, p, bidirectional, d)
					}
				}
			}
		}
		for _, bad := range []struct {
			ids     []int32
			from    int
			pooling string
		}{
			{ids, 0, "mean"}, {ids, -1, "max"}, {ids, len(ids), "max"}, {nil, 0, "max"},
			{[]int32{1, mistralVocab}, 0, "max"}, {[]int32{-1}, 0, "sum"}, {make([]int32, 65), 0, "max"},
		} {
			if got := o.PooledFrom(bad.ids, bad.from, bad.pooling, false); got != nil {
				t.Errorf("PooledFrom(%d ids, %d, %q) = %d values, want nil", len(bad.ids), bad.from, bad.pooling, len(got))
			}
		}
	}
}

// TestLlamaRotaryRelative: with rotary embeddings a model sees only
// relative positions, so scores between two tokens depend on the distance
// between them, not where they sit: the oracle's rotate of (p, p+k) gives
// the same q.k for every p.
func TestLlamaRotaryRelative(t *testing.T) {
	scaling := LlamaRopeScaling{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 64}
	o := mustLlamaOracle(t, generateLlama(t, LlamaConfig{Layers: 1, Hidden: 32, Heads: 2, RopeScaling: &scaling, SkipONNX: true}))
	r := rowRNG(1, 0)
	q, k := make([]float64, 16), make([]float64, 16)
	for i := range q {
		q[i], k[i] = r.normal(), r.normal()
	}
	score := func(p, dist int) float64 {
		a, b := slices.Clone(q), slices.Clone(k)
		o.rotate(a, p+dist)
		o.rotate(b, p)
		return dot(a, b)
	}
	for _, dist := range []int{0, 1, 7} {
		ref := score(0, dist)
		for _, p := range []int{1, 5, 100} {
			if d := math.Abs(score(p, dist) - ref); d > 1e-9 {
				t.Errorf("distance %d at position %d: score differs from position 0 by %v", dist, p, d)
			}
		}
	}
	if math.Abs(score(0, 1)-score(0, 0)) < 1e-6 {
		t.Errorf("rotary embedding does not depend on the distance")
	}
}

// TestLlamaSparsity checks that SPLADE max pooling of the generated Llama
// and Mistral models gives realistic vectors on real text: tens to a few
// hundred non-zero terms per document, the document's own tokens among
// them, moderate logits; untied and tied heads, causal and bidirectional.
func TestLlamaSparsity(t *testing.T) {
	texts := cranfieldTexts(t, 0)
	tk, err := tokenizer.Load(mistralTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg           LlamaConfig
		bidirectional bool
	}{
		{LlamaConfig{Layers: 2, Hidden: 48, Heads: 4, KVHeads: 2, SkipONNX: true}, false},
		{LlamaConfig{Family: FamilyMistral, Layers: 2, Hidden: 48, Heads: 4, KVHeads: 1, RopeTheta: 1e6, Tied: true, SkipONNX: true}, false},
		{LlamaConfig{Layers: 2, Hidden: 48, Heads: 4, KVHeads: 1, SkipONNX: true}, true},
	} {
		o := mustLlamaOracle(t, generateLlama(t, tc.cfg))
		var nnz []int
		var maxAbs, recall float64
		const docs = 5
		for d := 0; d < docs; d++ {
			ids := tk.Encode(texts[d*len(texts)/docs], 100).IDs
			logits := o.Logits(ids, tc.bidirectional)
			if logits == nil {
				t.Fatalf("document %d rejected: %v", d, o.Validate(ids))
			}
			distinct := map[int32]bool{}
			for _, id := range ids[1:] { // not <s>
				distinct[id] = true
			}
			n, own := 0, 0
			for j := 0; j < o.VocabSize(); j++ {
				m := math.Inf(-1)
				for _, row := range logits {
					m = math.Max(m, row[j])
					maxAbs = math.Max(maxAbs, math.Abs(row[j]))
				}
				if m > 0 {
					n++
					if distinct[int32(j)] {
						own++
					}
				}
			}
			nnz = append(nnz, n)
			recall += float64(own) / float64(len(distinct)) / docs
		}
		sort.Ints(nnz)
		t.Logf("%s %dx%dx%d kv %d tied %t bidirectional %t: non-zeros %v; max |logit| %.1f; %.0f%% of document tokens non-zero",
			tc.cfg.Family, tc.cfg.Layers, tc.cfg.Hidden, tc.cfg.Heads, tc.cfg.KVHeads, tc.cfg.Tied, tc.bidirectional, nnz, maxAbs, 100*recall)
		if med := nnz[len(nnz)/2]; nnz[0] == 0 || med < 20 || med > 600 {
			t.Errorf("non-zeros %v, want a median of 20..600 and none empty", nnz)
		}
		if maxAbs > 40 || recall < 0.9 {
			t.Errorf("max |logit| %.1f (want < 40), recall of document tokens %.2f (want >= 0.9)", maxAbs, recall)
		}
	}
}

// TestLlamaGraphInterface parses model.onnx back: inputs, output, the
// initializers' names and shapes, and the operators of each variant.
func TestLlamaGraphInterface(t *testing.T) {
	for _, cfg := range []LlamaConfig{
		{Layers: 2, Hidden: 32, Heads: 4, KVHeads: 2},
		{Family: FamilyMistral, Layers: 1, Hidden: 32, Heads: 4, KVHeads: 4, Tied: true, Bidirectional: true, Opset: 18},
	} {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			dir := generateLlama(t, cfg)
			full, _ := cfg.withDefaults()
			m := loadModel(t, dir)
			g := m.Graph
			checkValueInfo(t, g.Input, []string{"input_ids", "attention_mask", "position_ids"}, onnxpb.TensorProto_INT64, []any{DimBatch, DimSequence})
			checkValueInfo(t, g.Output, []string{"logits"}, onnxpb.TensorProto_FLOAT, []any{DimBatch, DimSequence, int64(mistralVocab)})
			inits := llamaONNXWeights(t, dir)
			h, v, d := int64(full.Hidden), int64(mistralVocab), int64(full.headDim())
			want := map[string][]int64{
				llamaNameEmbed: {v, h}, llamaNameNorm: {h},
				llamaLayer(full.Layers-1, "self_attn.q_proj.weight"): {int64(full.Heads) * d, h},
				llamaLayer(full.Layers-1, "self_attn.k_proj.weight"): {int64(full.KVHeads) * d, h},
				llamaLayer(full.Layers-1, "self_attn.o_proj.weight"): {h, int64(full.Heads) * d},
				llamaLayer(full.Layers-1, "mlp.gate_proj.weight"):    {int64(full.Intermediate), h},
				llamaLayer(full.Layers-1, "mlp.down_proj.weight"):    {h, int64(full.Intermediate)},
			}
			if !full.Tied {
				want[llamaNameLMHead] = []int64{v, h}
			}
			for name, dims := range want {
				if in := inits[name]; in == nil || !equalDims(in.Dims, dims) {
					t.Errorf("initializer %s: %v, want dims %v", name, in.GetDims(), dims)
				}
			}
			if len(inits) != len(llamaWeightNames(full)) {
				t.Errorf("%d weight initializers, want %d", len(inits), len(llamaWeightNames(full)))
			}
			ops := map[string]int{}
			for _, n := range g.Node {
				ops[n.OpType]++
			}
			tiles := 0
			if full.KVHeads != full.Heads {
				tiles = 2 * full.Layers
			}
			causal := 1
			if full.Bidirectional {
				causal = 0
			}
			for op, n := range map[string]int{
				"Softmax": full.Layers, "Sigmoid": full.Layers, "Tile": tiles, "LessOrEqual": causal,
				"Cos": 1, "Sin": 1, "ReduceMean": 2*full.Layers + 1, "Where": 1, "Neg": 2 * full.Layers,
			} {
				if ops[op] != n {
					t.Errorf("%d %s nodes, want %d", ops[op], op, n)
				}
			}
		})
	}
}
