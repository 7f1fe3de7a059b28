package testmodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/onnxpb"
	"github.com/splash-encode/splash/encode/tokenizer"
)

// Real causal-LM tokenizers (the repository's test data).
var (
	gpt2Tokenizer    = filepath.Join(testdataDir, "tokenizers", "gpt2", "tokenizer.json")
	gpt2HFConfig     = filepath.Join(testdataDir, "tokenizers", "gpt2", "config.json")
	mistralTokenizer = filepath.Join(testdataDir, "tokenizers", "mistral-7b", "tokenizer.json")
)

// Vocabulary sizes of the real tokenizers (GPT-2: 50,256 merges-derived
// tokens plus <|endoftext|>; Mistral 7B: a 32,000-entry SentencePiece BPE).
const (
	gpt2Vocab    = 50257
	mistralVocab = 32000
)

func generateCausal(t testing.TB, cfg CausalConfig, tok string) string {
	t.Helper()
	requireFile(t, tok)
	dir := filepath.Join(t.TempDir(), "model")
	if err := GenerateCausal(dir, cfg, tok); err != nil {
		t.Fatalf("GenerateCausal(%+v, %s): %v", cfg, tok, err)
	}
	return dir
}

func loadCausalOracle(t testing.TB, dir string) *CausalOracle {
	t.Helper()
	o, err := LoadCausalOracle(dir)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestCausalModelInterface parses model.onnx back and checks what consumers
// rely on: opset, inputs (position_ids only when asked for), the logits
// output, GPT-2's parameter names and layouts, and a well-formed node list
// with the operators of the documented architecture.
func TestCausalModelInterface(t *testing.T) {
	for _, tc := range []struct {
		tok   string
		vocab int64
		cfg   CausalConfig
		opset int64
	}{
		{gpt2Tokenizer, gpt2Vocab, CausalConfig{Layers: 1, Hidden: 32, Heads: 2, PositionIDs: true}, 14},
		{mistralTokenizer, mistralVocab, CausalConfig{Layers: 2, Hidden: 64, Heads: 4, Opset: 18}, 18},
		{mistralTokenizer, mistralVocab, CausalConfig{Layers: 2, Hidden: 48, Heads: 3, Intermediate: 100, MaxPositions: 64, Opset: 17, FP16: true}, 17},
	} {
		name := fmt.Sprintf("%s-%dx%dx%d-opset%d-pos%t-fp16%t", filepath.Base(filepath.Dir(tc.tok)),
			tc.cfg.Layers, tc.cfg.Hidden, tc.cfg.Heads, tc.opset, tc.cfg.PositionIDs, tc.cfg.FP16)
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, generateCausal(t, tc.cfg, tc.tok))
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
			inputs := []string{"input_ids", "attention_mask"}
			if tc.cfg.PositionIDs {
				inputs = append(inputs, "position_ids")
			}
			checkValueInfo(t, g.Input, inputs, onnxpb.TensorProto_INT64, []any{DimBatch, DimSequence})
			outElem := onnxpb.TensorProto_FLOAT
			if tc.cfg.FP16 {
				outElem = onnxpb.TensorProto_FLOAT16
			}
			checkValueInfo(t, g.Output, []string{"logits"}, outElem, []any{DimBatch, DimSequence, tc.vocab})

			inits := map[string]*onnxpb.TensorProto{}
			var params int64
			for _, in := range g.Initializer {
				inits[in.Name] = in
				if len(in.RawData) > 0 {
					n := int64(1)
					for _, d := range in.Dims {
						n *= d
					}
					if in.DataType != int32(onnxpb.TensorProto_FLOAT) || int64(len(in.RawData)) != 4*n {
						t.Errorf("%s: type %d, %d raw bytes for dims %v", in.Name, in.DataType, len(in.RawData), in.Dims)
					}
					params += n
				}
			}
			h, v, inter, p := int64(full.Hidden), tc.vocab, int64(full.Intermediate), int64(full.MaxPositions)
			last := full.Layers - 1
			for name, dims := range map[string][]int64{
				"transformer.wte.weight":                                 {v, h},
				"transformer.wpe.weight":                                 {p, h},
				fmt.Sprintf("transformer.h.%d.ln_1.weight", last):        {h},
				fmt.Sprintf("transformer.h.%d.attn.c_attn.weight", last): {h, 3 * h},
				fmt.Sprintf("transformer.h.%d.attn.c_attn.bias", last):   {3 * h},
				fmt.Sprintf("transformer.h.%d.attn.c_proj.weight", last): {h, h},
				fmt.Sprintf("transformer.h.%d.ln_2.bias", last):          {h},
				fmt.Sprintf("transformer.h.%d.mlp.c_fc.weight", last):    {h, inter},
				fmt.Sprintf("transformer.h.%d.mlp.c_proj.weight", last):  {inter, h},
				"transformer.ln_f.weight":                                {h},
				"transformer.ln_f.bias":                                  {h},
				"lm_head.weight":                                         {v, h},
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
			for _, name := range []string{fmt.Sprintf("transformer.h.%d.ln_1.weight", full.Layers), "lm_head.bias"} {
				if _, ok := inits[name]; ok {
					t.Errorf("unexpected initializer %s", name)
				}
			}
			// GPT2LMHeadModel's parameters, with an untied LM head.
			perLayer := 2*2*h + (h*3*h + 3*h) + (h*h + h) + (h*inter + inter) + (inter*h + h)
			if want := v*h + p*h + int64(full.Layers)*perLayer + 2*h + v*h; params != want {
				t.Errorf("%d parameters, want %d", params, want)
			}

			// Topological order, single definitions, opset-dependent
			// ReduceMean, and the operators of the architecture.
			defined := map[string]bool{}
			for _, in := range g.Input {
				defined[in.Name] = true
			}
			for name := range inits {
				defined[name] = true
			}
			ops := map[string]int{}
			used := map[string]bool{}
			for _, n := range g.Node {
				ops[n.OpType]++
				if n.Domain != "" {
					t.Errorf("node %s in domain %q", n.Name, n.Domain)
				}
				for _, in := range n.Input {
					if !defined[in] {
						t.Fatalf("node %s (%s) uses %q before it is defined", n.Name, n.OpType, in)
					}
					used[in] = true
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
					if hasAttr != (tc.opset < 18) || (len(n.Input) == 2) == (tc.opset < 18) {
						t.Fatalf("ReduceMean %s: axes attribute %v, %d inputs at opset %d", n.Name, hasAttr, len(n.Input), tc.opset)
					}
				}
			}
			for _, in := range inputs {
				if !used[in] {
					t.Errorf("input %s is not used by any node", in)
				}
			}
			if !defined["logits"] {
				t.Errorf("no node produces logits")
			}
			for op, want := range map[string]int{
				"Softmax": full.Layers, "Split": full.Layers, "Tanh": full.Layers, "Erf": 0,
				"ReduceMean": 2 * (2*full.Layers + 1), "LessOrEqual": 1, "Where": 1,
			} {
				if ops[op] != want {
					t.Errorf("%d %s nodes, want %d", ops[op], op, want)
				}
			}
			lastNode := g.Node[len(g.Node)-1]
			if tc.cfg.FP16 != (lastNode.OpType == "Cast") {
				t.Errorf("last node is %s with FP16 %t", lastNode.OpType, tc.cfg.FP16)
			}
		})
	}
}

// TestCausalDeterministic: the same config gives the same bytes; another
// seed other weights; tokenizer files are byte copies; regenerating
// replaces the files and leaves no temporary or stale ones.
func TestCausalDeterministic(t *testing.T) {
	cfg := CausalConfig{Layers: 1, Hidden: 32, Heads: 2, Seed: 7}
	a, b := generateCausal(t, cfg, mistralTokenizer), generateCausal(t, cfg, mistralTokenizer)
	names := []string{ModelFile, ConfigFile, TokenizerFile, TokenizerConfigFile}
	for _, name := range names {
		if !bytes.Equal(readFile(t, filepath.Join(a, name)), readFile(t, filepath.Join(b, name))) {
			t.Errorf("%s differs between two runs with the same config", name)
		}
	}
	for name, src := range map[string]string{
		TokenizerFile:       mistralTokenizer,
		TokenizerConfigFile: filepath.Join(filepath.Dir(mistralTokenizer), TokenizerConfigFile),
	} {
		if !bytes.Equal(readFile(t, filepath.Join(a, name)), readFile(t, src)) {
			t.Errorf("%s is not a byte-for-byte copy of %s", name, src)
		}
	}
	cfg.Seed = 8
	c := generateCausal(t, cfg, mistralTokenizer)
	if bytes.Equal(readFile(t, filepath.Join(a, ModelFile)), readFile(t, filepath.Join(c, ModelFile))) {
		t.Errorf("seeds 7 and 8 gave the same model.onnx")
	}

	// Regenerating a with the GPT-2 tokenizer (no tokenizer_config.json
	// beside it) replaces the files and removes the stale tokenizer config.
	requireFile(t, gpt2Tokenizer)
	if err := GenerateCausal(a, cfg, gpt2Tokenizer); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, filepath.Join(a, TokenizerFile)), readFile(t, gpt2Tokenizer)) {
		t.Errorf("regenerating did not replace tokenizer.json")
	}
	entries, err := os.ReadDir(a)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if s := strings.Join(got, " "); s != "config.json model.onnx tokenizer.json" {
		t.Errorf("directory holds %q, want only the three model files", s)
	}
	if o := loadCausalOracle(t, a); o.VocabSize() != gpt2Vocab {
		t.Errorf("regenerated model has vocabulary %d, want %d", o.VocabSize(), gpt2Vocab)
	}
}

// TestCausalConfigJSON compares config.json with GPT-2's own config.json
// (the Hugging Face file in testdata/tokenizers/gpt2) for the fields a GPT2Config
// reader uses, and the special tokens with Mistral 7B's published ones.
func TestCausalConfigJSON(t *testing.T) {
	requireFile(t, gpt2HFConfig)
	var ref map[string]any
	if err := json.Unmarshal(readFile(t, gpt2HFConfig), &ref); err != nil {
		t.Fatal(err)
	}
	read := func(dir string) map[string]any {
		var c map[string]any
		if err := json.Unmarshal(readFile(t, filepath.Join(dir, ConfigFile)), &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := read(generateCausal(t, CausalConfig{Layers: 2, Hidden: 64, Heads: 4, Seed: 42, PositionIDs: true}, gpt2Tokenizer))
	for _, k := range []string{"model_type", "vocab_size", "layer_norm_epsilon", "activation_function", "bos_token_id", "eos_token_id", "scale_attn_weights"} {
		if fmt.Sprint(c[k]) != fmt.Sprint(ref[k]) {
			t.Errorf("config.json %s = %v, GPT-2's is %v", k, c[k], ref[k])
		}
	}
	if fmt.Sprint(c["architectures"]) != fmt.Sprint(ref["architectures"]) {
		t.Errorf("architectures = %v, GPT-2's %v", c["architectures"], ref["architectures"])
	}
	for k, v := range map[string]float64{"n_embd": 64, "n_layer": 2, "n_head": 4, "n_inner": 256, "n_positions": 1024} {
		if c[k] != v {
			t.Errorf("config.json %s = %v, want %v", k, c[k], v)
		}
	}
	if c["tie_word_embeddings"] != false {
		t.Errorf("tie_word_embeddings = %v, want false (untied LM head)", c["tie_word_embeddings"])
	}
	info, ok := c["splash_test_model"].(map[string]any)
	if !ok || info["seed"] != 42.0 || info["position_ids_input"] != true || info["padding_side"] != "right" ||
		!strings.Contains(fmt.Sprint(info["note"]), "random weights") {
		t.Errorf("splash_test_model = %v", c["splash_test_model"])
	}

	// Mistral 7B: <s> = 1, </s> = 2 (its config.json's bos/eos_token_id),
	// named by the tokenizer_config.json beside the tokenizer.
	c = read(generateCausal(t, CausalConfig{Layers: 1, Hidden: 32, Heads: 2}, mistralTokenizer))
	if c["bos_token_id"] != 1.0 || c["eos_token_id"] != 2.0 || c["vocab_size"] != float64(mistralVocab) {
		t.Errorf("mistral: bos %v, eos %v, vocab %v; want 1, 2, %d", c["bos_token_id"], c["eos_token_id"], c["vocab_size"], mistralVocab)
	}
}

func TestSpecialTokenIDs(t *testing.T) {
	const tok = `{"model":{"vocab":{"a":0,"<bos>":1,"b":2}},"added_tokens":[{"id":7,"content":"<s>"},{"id":8,"content":"</s>"},{"id":9,"content":"<|endoftext|>"}]}`
	str := func(p *int) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprint(*p)
	}
	for _, tc := range []struct {
		tok, conf string
		bos, eos  string // "nil", an id, or "error"
	}{
		{tok, "", "7", "8"},
		{tok, `{"bos_token":"<bos>","eos_token":{"__type":"AddedToken","content":"<|endoftext|>"}}`, "1", "9"},
		{tok, `{"bos_token":null}`, "7", "8"},
		{`{"model":{"vocab":{"a":0}},"added_tokens":[{"id":3,"content":"<|endoftext|>"}]}`, "", "3", "3"},
		{`{"model":{"vocab":{"a":0}}}`, "", "nil", "nil"},
		{tok, `{"bos_token":"<missing>"}`, "error", "error"},
		{tok, `{"eos_token":5}`, "error", "error"},
		{tok, `not json`, "error", "error"},
	} {
		var conf []byte
		if tc.conf != "" {
			conf = []byte(tc.conf)
		}
		bos, eos, err := specialTokenIDs([]byte(tc.tok), conf)
		if tc.bos == "error" {
			if err == nil {
				t.Errorf("%s: bos %s eos %s, want an error", tc.conf, str(bos), str(eos))
			}
			continue
		}
		if err != nil || str(bos) != tc.bos || str(eos) != tc.eos {
			t.Errorf("%s %s: bos %s eos %s err %v; want %s %s", tc.tok, tc.conf, str(bos), str(eos), err, tc.bos, tc.eos)
		}
	}
}

func TestCausalConfigErrors(t *testing.T) {
	requireFile(t, gpt2Tokenizer)
	for _, cfg := range []CausalConfig{
		{},
		{Layers: 1, Hidden: 30, Heads: 4},
		{Layers: 0, Hidden: 32, Heads: 2},
		{Layers: 1, Hidden: 32, Heads: 0},
		{Layers: 1, Hidden: 1, Heads: 1},
		{Layers: 1, Hidden: 32, Heads: 2, Opset: 13},
		{Layers: 1, Hidden: 32, Heads: 2, Opset: 22},
		{Layers: 1, Hidden: 32, Heads: 2, MaxPositions: -1},
		{Layers: 1, Hidden: 32, Heads: 2, Intermediate: -5},
	} {
		dir := filepath.Join(t.TempDir(), "m")
		if err := GenerateCausal(dir, cfg, gpt2Tokenizer); !errors.Is(err, ErrConfig) {
			t.Errorf("GenerateCausal(%+v) = %v, want ErrConfig", cfg, err)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("GenerateCausal(%+v) created %s despite the error", cfg, dir)
		}
	}
	err := GenerateCausal(t.TempDir(), CausalConfig{Layers: 1, Hidden: 32, Heads: 2}, filepath.Join(t.TempDir(), "missing.json"))
	if err == nil || !strings.Contains(err.Error(), "tokenizer") {
		t.Errorf("missing tokenizer: %v", err)
	}
	// A BERT directory is not a causal model.
	if _, err := LoadCausalOracle(generate(t, Config{Layers: 1, Hidden: 32, Heads: 2})); err == nil {
		t.Errorf("LoadCausalOracle accepted a BERT model")
	}
}

// TestCausalOracle checks the oracle's causality (a position's logits do not
// depend on later tokens; the last one does on its own token), the
// positions' dependence on their index, and the poolings against a naive
// computation over Logits.
func TestCausalOracle(t *testing.T) {
	o := loadCausalOracle(t, generateCausal(t, CausalConfig{Layers: 2, Hidden: 32, Heads: 2, Seed: 5, MaxPositions: 64}, mistralTokenizer))
	if o.VocabSize() != mistralVocab || o.MaxLength() != 64 || o.Hidden() != 32 || o.Float16Logits() {
		t.Fatalf("vocab %d, max length %d, hidden %d, fp16 %t", o.VocabSize(), o.MaxLength(), o.Hidden(), o.Float16Logits())
	}
	ids := []int32{1, 415, 7853, 302, 264, 10002, 349, 11426, 28723}
	full := o.Logits(ids)
	if len(full) != len(ids) || len(full[0]) != mistralVocab {
		t.Fatalf("logits shape [%d][%d]", len(full), len(full[0]))
	}
	for n := 1; n < len(ids); n++ {
		prefix := o.Logits(ids[:n])
		for i := range prefix {
			for j := range prefix[i] {
				if prefix[i][j] != full[i][j] {
					t.Fatalf("position %d, term %d: %v with %d tokens, %v with %d: a later token changed it", i, j, prefix[i][j], n, full[i][j], len(ids))
				}
			}
		}
	}
	changed := append([]int32(nil), ids...)
	changed[len(changed)-1] = 2
	other := o.Logits(changed)
	if maxDiff(other[len(ids)-1], full[len(ids)-1]) < 1e-3 {
		t.Errorf("changing the last token did not change its logits")
	}
	if d := maxDiff(other[len(ids)-2], full[len(ids)-2]); d != 0 {
		t.Errorf("changing the last token changed the previous position's logits by %v", d)
	}
	// The same token at another position (after the same prefix length) sees
	// another position embedding and context.
	if same := o.Logits([]int32{415, 415}); maxDiff(same[0], same[1]) == 0 {
		t.Errorf("positions 0 and 1 of the same token have identical logits")
	}

	for _, from := range []int{0, 3, len(ids) - 1} {
		maxP, sumP := o.PooledFrom(ids, from, "max"), o.PooledFrom(ids, from, "sum")
		wantMax := encode.PoolReference(full[from:], nil, encode.PoolMax)
		wantSum := encode.PoolReference(full[from:], nil, encode.PoolSum)
		var nnz int
		for j := range maxP {
			m, s := wantMax[j], wantSum[j]
			if maxP[j] != m || math.Abs(sumP[j]-s) > 1e-12 {
				t.Fatalf("from %d, term %d: max %v sum %v, want %v %v", from, j, maxP[j], sumP[j], m, s)
			}
			if m > 0 {
				nnz++
			}
		}
		if nnz == 0 {
			t.Errorf("from %d: no non-zero term", from)
		}
	}
	pooled := o.Pooled(ids, "max")
	if d := maxDiff(pooled, o.PooledFrom(ids, 0, "max")); d != 0 {
		t.Errorf("Pooled and PooledFrom(0) differ by %v", d)
	}
	for _, bad := range []struct {
		ids     []int32
		from    int
		pooling string
	}{
		{ids, 0, "mean"}, {ids, -1, "max"}, {ids, len(ids), "max"}, {nil, 0, "max"},
		{[]int32{1, mistralVocab}, 0, "max"}, {[]int32{-1}, 0, "sum"}, {make([]int32, 65), 0, "max"},
	} {
		if got := o.PooledFrom(bad.ids, bad.from, bad.pooling); got != nil {
			t.Errorf("PooledFrom(%d ids, %d, %q) = %d values, want nil", len(bad.ids), bad.from, bad.pooling, len(got))
		}
	}
	if o.Logits(make([]int32, 65)) != nil || o.Validate(make([]int32, 64)) != nil {
		t.Errorf("Validate does not follow MaxLength 64")
	}
}

// TestCausalFP16Oracle: a float16 model has the float32 model's weights and
// its oracle rounds the same float64 logits to float16.
func TestCausalFP16Oracle(t *testing.T) {
	cfg := CausalConfig{Layers: 1, Hidden: 32, Heads: 2, Seed: 9}
	o32 := loadCausalOracle(t, generateCausal(t, cfg, mistralTokenizer))
	cfg.FP16 = true
	o16 := loadCausalOracle(t, generateCausal(t, cfg, mistralTokenizer))
	if o32.Float16Logits() || !o16.Float16Logits() {
		t.Fatalf("Float16Logits: %t %t", o32.Float16Logits(), o16.Float16Logits())
	}
	ids := []int32{1, 22557, 28725, 1526}
	l32, l16, raw := o32.Logits(ids), o16.Logits(ids), o16.Float64Logits(ids)
	for i := range l32 {
		for j, z := range l32[i] {
			if raw[i][j] != z || l16[i][j] != RoundToFloat16(z) {
				t.Fatalf("[%d][%d]: float32 model %v, float16 model %v (raw %v)", i, j, z, l16[i][j], raw[i][j])
			}
		}
	}
}

func maxDiff(a, b []float64) float64 {
	var d float64
	for i := range a {
		d = max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

// TestCausalSparsity checks that SPLADE max pooling over the LM-head logits
// gives realistic vectors on real text for both vocabularies: Cranfield
// documents tokenized by the real GPT-2 and Mistral tokenizers get tens to a
// few hundred non-zero terms, nearly all of the document's own tokens among
// them, with moderate logits.
func TestCausalSparsity(t *testing.T) {
	texts := cranfieldTexts(t, 0)
	for _, tc := range []struct {
		tok string
		cfg CausalConfig
	}{
		{gpt2Tokenizer, CausalConfig{Layers: 1, Hidden: 32, Heads: 2}},
		{mistralTokenizer, CausalConfig{Layers: 2, Hidden: 48, Heads: 4}},
	} {
		o := loadCausalOracle(t, generateCausal(t, tc.cfg, tc.tok))
		tk, err := tokenizer.Load(tc.tok)
		if err != nil {
			t.Fatal(err)
		}
		var nnz []int
		var maxAbs, recall float64
		const docs = 5
		for d := 0; d < docs; d++ {
			ids := tk.Encode(texts[d*len(texts)/docs], 100).IDs
			logits := o.Logits(ids)
			if logits == nil {
				t.Fatalf("document %d rejected: %v", d, o.Validate(ids))
			}
			n, own := 0, 0
			distinct := map[int32]bool{}
			for _, id := range ids {
				distinct[id] = true
			}
			pooled := make([]float64, o.VocabSize())
			for j := range pooled {
				pooled[j] = math.Inf(-1)
			}
			for _, row := range logits {
				for j, z := range row {
					pooled[j] = math.Max(pooled[j], z)
					maxAbs = math.Max(maxAbs, math.Abs(z))
				}
			}
			for j, m := range pooled {
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
		t.Logf("%s %dx%dx%d: non-zeros %v; max |logit| %.1f; %.0f%% of document tokens non-zero",
			filepath.Base(filepath.Dir(tc.tok)), tc.cfg.Layers, tc.cfg.Hidden, tc.cfg.Heads, nnz, maxAbs, 100*recall)
		if med := nnz[len(nnz)/2]; nnz[0] == 0 || med < 20 || med > 600 {
			t.Errorf("non-zeros %v, want a median of 20..600 and none empty", nnz)
		}
		if maxAbs > 30 || recall < 0.9 {
			t.Errorf("max |logit| %.1f (want < 30), recall of document tokens %.2f (want >= 0.9)", maxAbs, recall)
		}
	}
}

// TestCausalWeightDistribution checks what GenerateCausal documents about
// the LM head: row j is 12/sqrt(H) * (dir_j + c_j/sqrt(H) * ones) with dir_j
// a zero-mean unit vector close to the direction of word embedding j and
// c_j near 1, and ln_f's bias is about -4.25/sqrt(H) in every feature.
func TestCausalWeightDistribution(t *testing.T) {
	o := loadCausalOracle(t, generateCausal(t, CausalConfig{Layers: 1, Hidden: 32, Heads: 2, Seed: 3}, mistralTokenizer))
	h := o.hidden
	s := logitScale / math.Sqrt(float64(h))
	var minCos, minC, maxC = 1.0, math.Inf(1), math.Inf(-1)
	for j := 0; j < o.vocab; j++ {
		row, word := o.lmHead[j*h:(j+1)*h], o.wte[j*h:(j+1)*h]
		var mean, wmean, wss float64
		for k, v := range row {
			mean += v / float64(h)
			wmean += word[k] / float64(h)
			wss += word[k] * word[k]
		}
		if math.Abs(math.Sqrt(wss)-wordStd*math.Sqrt(float64(h))) > 1e-5 {
			t.Fatalf("word row %d has norm %v", j, math.Sqrt(wss))
		}
		// Cosine of the zero-mean parts of the LM head row and the word row.
		var ss, dotW, zss float64
		for k, v := range row {
			d, w := v-mean, word[k]-wmean
			ss += d * d
			dotW += d * w
			zss += w * w
		}
		if math.Abs(math.Sqrt(ss)-s) > 1e-5*s {
			t.Fatalf("row %d: zero-mean part has norm %v, want %v", j, math.Sqrt(ss), s)
		}
		c := mean * math.Sqrt(float64(h)) / s
		minC, maxC = min(minC, c), max(maxC, c)
		minCos = min(minCos, dotW/math.Sqrt(ss*zss))
	}
	t.Logf("zero-mean LM head vs word rows: lowest cosine %.3f; c_j in %.2f..%.2f", minCos, minC, maxC)
	if minCos < 0.95 || minC < 0.6 || maxC > 1.4 {
		t.Errorf("lowest cosine %.3f (want >= 0.95), c_j in %.2f..%.2f (want about 1)", minCos, minC, maxC)
	}
	for k, b := range o.lnF.beta {
		if want := -biasSigmas / math.Sqrt(float64(h)); math.Abs(b-want) > 0.15 {
			t.Errorf("ln_f bias[%d] = %v, want about %v", k, b, want)
		}
	}
}
