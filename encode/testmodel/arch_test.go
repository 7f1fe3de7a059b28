package testmodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode/onnxpb"
	"github.com/splash-encode/splash/encode/tokenizer"
)

// Tests of the DistilBERT and RoBERTa shapes (Config.Arch) and of
// RobertaTokenizerJSON.

// gpt2TokenizerForRoBERTa is the source of RobertaTokenizerJSON.
var gpt2TokenizerForRoBERTa = filepath.Join(testdataDir, "tokenizers", "gpt2", "tokenizer.json")

// robertaVocab is the vocabulary size of RobertaTokenizerJSON on GPT-2's
// 50257 ids: 4 specials + 50256 GPT-2 tokens (without <|endoftext|>) + <mask>.
const robertaVocab = 50261

// robertaTokenizerFile writes RobertaTokenizerJSON(gpt2) to a temporary
// file and returns its path.
func robertaTokenizerFile(t testing.TB) string {
	t.Helper()
	requireFile(t, gpt2TokenizerForRoBERTa)
	b, err := RobertaTokenizerJSON(readFile(t, gpt2TokenizerForRoBERTa))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "roberta-tokenizer.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// generateArch generates cfg with the tokenizer of its architecture:
// bert-base-uncased for BERT and DistilBERT, the RoBERTa tokenizer built
// from GPT-2's for RoBERTa.
func generateArch(t testing.TB, cfg Config) string {
	t.Helper()
	if cfg.Arch != ArchRoBERTa {
		return generate(t, cfg)
	}
	tok := robertaTokenizerFile(t)
	dir := filepath.Join(t.TempDir(), "model")
	if err := Generate(dir, cfg, tok); err != nil {
		t.Fatalf("Generate(%+v): %v", cfg, err)
	}
	return dir
}

// loadTokenizer loads a tokenizer.json with encode/tokenizer.
func loadTokenizer(t testing.TB, path string) *tokenizer.Tokenizer {
	t.Helper()
	tk, err := tokenizer.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// TestWriteRobertaTokenizer writes the RoBERTa tokenizer.json to the path in
// SPLASH_WRITE_ROBERTA_TOKENIZER (for regenerating the tokenizer parity
// files, see encode/tokenizer/testdata/README.md).
func TestWriteRobertaTokenizer(t *testing.T) {
	out := os.Getenv("SPLASH_WRITE_ROBERTA_TOKENIZER")
	if out == "" {
		t.Skip("set SPLASH_WRITE_ROBERTA_TOKENIZER=PATH to write the RoBERTa tokenizer.json there")
	}
	requireFile(t, gpt2TokenizerForRoBERTa)
	b, err := RobertaTokenizerJSON(readFile(t, gpt2TokenizerForRoBERTa))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRobertaTokenizerJSON checks the generated file against GPT-2's, read
// independently: ids, merges, added tokens and the components of
// roberta-base's tokenizer.json.
func TestRobertaTokenizerJSON(t *testing.T) {
	requireFile(t, gpt2TokenizerForRoBERTa)
	src := readFile(t, gpt2TokenizerForRoBERTa)
	got, err := RobertaTokenizerJSON(src)
	if err != nil {
		t.Fatal(err)
	}
	again, err := RobertaTokenizerJSON(src)
	if err != nil || !bytes.Equal(got, again) {
		t.Fatalf("two calls differ (%v)", err)
	}
	if bytes.Contains(got, []byte(`\u003c`)) {
		t.Errorf("'<' is escaped as \\u003c")
	}
	type file struct {
		Truncation    json.RawMessage            `json:"truncation"`
		Padding       json.RawMessage            `json:"padding"`
		Normalizer    json.RawMessage            `json:"normalizer"`
		AddedTokens   []map[string]any           `json:"added_tokens"`
		PreTokenizer  map[string]any             `json:"pre_tokenizer"`
		PostProcessor map[string]any             `json:"post_processor"`
		Decoder       map[string]any             `json:"decoder"`
		Model         map[string]json.RawMessage `json:"model"`
	}
	var g, r file
	if err := json.Unmarshal(src, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &r); err != nil {
		t.Fatal(err)
	}
	var gv, rv map[string]int
	if err := json.Unmarshal(g.Model["vocab"], &gv); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(r.Model["vocab"], &rv); err != nil {
		t.Fatal(err)
	}
	if len(rv) != robertaVocab {
		t.Errorf("%d vocabulary entries, want %d", len(rv), robertaVocab)
	}
	for tok, id := range map[string]int{"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": robertaVocab - 1} {
		if rv[tok] != id {
			t.Errorf("%s has id %d, want %d", tok, rv[tok], id)
		}
	}
	for tok, id := range gv {
		switch {
		case tok == "<|endoftext|>":
			if _, ok := rv[tok]; ok {
				t.Errorf("<|endoftext|> kept")
			}
		case rv[tok] != id+4:
			t.Fatalf("%q: id %d, want GPT-2's %d + 4", tok, rv[tok], id)
		}
	}
	var gm, rm []string
	if err := json.Unmarshal(g.Model["merges"], &gm); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(r.Model["merges"], &rm); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gm, rm) {
		t.Errorf("merges differ from GPT-2's")
	}
	if string(r.Model["type"]) != `"BPE"` || string(r.Model["unk_token"]) != "null" || string(r.Model["dropout"]) != "null" {
		t.Errorf("model %s, unk_token %s, dropout %s", r.Model["type"], r.Model["unk_token"], r.Model["dropout"])
	}
	for name, raw := range map[string]json.RawMessage{"truncation": r.Truncation, "padding": r.Padding, "normalizer": r.Normalizer} {
		if string(raw) != "null" {
			t.Errorf("%s = %s, want null", name, raw)
		}
	}
	wantAdded := []map[string]any{
		{"id": 0.0, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": true},
		{"id": 1.0, "content": "<pad>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": true},
		{"id": 2.0, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": true},
		{"id": 3.0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": true},
		{"id": float64(robertaVocab - 1), "content": "<mask>", "single_word": false, "lstrip": true, "rstrip": false, "normalized": false, "special": true},
	}
	if fmt.Sprint(r.AddedTokens) != fmt.Sprint(wantAdded) {
		t.Errorf("added_tokens %v\nwant %v", r.AddedTokens, wantAdded)
	}
	wantPost := map[string]any{"type": "RobertaProcessing", "sep": []any{"</s>", 2.0}, "cls": []any{"<s>", 0.0}, "trim_offsets": true, "add_prefix_space": false}
	if fmt.Sprint(r.PostProcessor) != fmt.Sprint(wantPost) {
		t.Errorf("post_processor %v, want %v", r.PostProcessor, wantPost)
	}
	if r.PreTokenizer["type"] != "ByteLevel" || r.PreTokenizer["add_prefix_space"] != false || r.Decoder["type"] != "ByteLevel" {
		t.Errorf("pre_tokenizer %v, decoder %v", r.PreTokenizer, r.Decoder)
	}
	if n, err := VocabSize(got); err != nil || n != robertaVocab {
		t.Errorf("VocabSize = %d, %v", n, err)
	}

	for name, bad := range map[string]string{
		"not json":       `{`,
		"wordpiece":      `{"model":{"type":"WordPiece","vocab":{"a":0},"merges":[]}}`,
		"empty vocab":    `{"model":{"type":"BPE","vocab":{},"merges":[]}}`,
		"no merges":      `{"model":{"type":"BPE","vocab":{"a":0}}}`,
		"gap in ids":     `{"model":{"type":"BPE","vocab":{"a":0,"b":2},"merges":[]}}`,
		"duplicate id":   `{"model":{"type":"BPE","vocab":{"a":0,"b":0},"merges":[]}}`,
		"holds <s>":      `{"model":{"type":"BPE","vocab":{"a":0,"<s>":1},"merges":[]}}`,
		"holds <mask>":   `{"model":{"type":"BPE","vocab":{"<mask>":0},"merges":[]}}`,
		"negative id":    `{"model":{"type":"BPE","vocab":{"a":-1},"merges":[]}}`,
		"merges no list": `{"model":{"type":"BPE","vocab":{"a":0},"merges":{}}}`,
	} {
		if _, err := RobertaTokenizerJSON([]byte(bad)); err == nil || !strings.HasPrefix(err.Error(), "testmodel: roberta tokenizer: ") {
			t.Errorf("%s: error %v", name, err)
		}
	}
}

// archInitializers lists, independently of the generator's name tables,
// the initializers (name and dims) of a 2-layer model of each shape.
func archInitializers(arch Arch, vocab, h, inter, pos int64) map[string][]int64 {
	m := map[string][]int64{}
	dense := func(prefix string, out, in int64) {
		m[prefix+".weight"], m[prefix+".bias"] = []int64{out, in}, []int64{out}
	}
	ln := func(prefix string) { m[prefix+".weight"], m[prefix+".bias"] = []int64{h}, []int64{h} }
	switch arch {
	case ArchDistilBERT:
		m["distilbert.embeddings.word_embeddings.weight"] = []int64{vocab, h}
		m["distilbert.embeddings.position_embeddings.weight"] = []int64{pos, h}
		ln("distilbert.embeddings.LayerNorm")
		for l := 0; l < 2; l++ {
			p := fmt.Sprintf("distilbert.transformer.layer.%d.", l)
			for _, s := range []string{"q_lin", "k_lin", "v_lin", "out_lin"} {
				dense(p+"attention."+s, h, h)
			}
			ln(p + "sa_layer_norm")
			dense(p+"ffn.lin1", inter, h)
			dense(p+"ffn.lin2", h, inter)
			ln(p + "output_layer_norm")
		}
		dense("vocab_transform", h, h)
		ln("vocab_layer_norm")
		m["vocab_projector.bias"] = []int64{vocab}
	case ArchRoBERTa:
		m["roberta.embeddings.word_embeddings.weight"] = []int64{vocab, h}
		m["roberta.embeddings.position_embeddings.weight"] = []int64{pos, h}
		m["roberta.embeddings.token_type_embeddings.weight"] = []int64{1, h}
		ln("roberta.embeddings.LayerNorm")
		for l := 0; l < 2; l++ {
			p := fmt.Sprintf("roberta.encoder.layer.%d.", l)
			for _, s := range []string{"self.query", "self.key", "self.value", "output.dense"} {
				dense(p+"attention."+s, h, h)
			}
			ln(p + "attention.output.LayerNorm")
			dense(p+"intermediate.dense", inter, h)
			dense(p+"output.dense", h, inter)
			ln(p + "output.LayerNorm")
		}
		dense("lm_head.dense", h, h)
		ln("lm_head.layer_norm")
		m["lm_head.bias"] = []int64{vocab}
	}
	return m
}

// TestArchModelInterface parses the DistilBERT and RoBERTa models back and
// checks what consumers rely on: exactly the inputs input_ids and
// attention_mask, the logits output, the Hugging Face initializer names and
// shapes (the decoder tied to the word embeddings), a well-formed node list
// and the operators of each shape.
func TestArchModelInterface(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		vocab int64
		pos   int64
	}{
		{Config{Arch: ArchDistilBERT, Layers: 2, Hidden: 32, Heads: 2, Intermediate: 48}, bertVocab, 512},
		{Config{Arch: ArchRoBERTa, Layers: 2, Hidden: 32, Heads: 2, Intermediate: 48, Opset: 18}, robertaVocab, 514},
		{Config{Arch: ArchRoBERTa, Layers: 2, Hidden: 32, Heads: 2, Intermediate: 48, MaxPositions: 64}, robertaVocab, 66},
	} {
		t.Run(fmt.Sprintf("%s-%d", tc.cfg.Arch, tc.pos), func(t *testing.T) {
			m := loadModel(t, generateArch(t, tc.cfg))
			g := m.Graph
			checkValueInfo(t, g.Input, []string{"input_ids", "attention_mask"}, onnxpb.TensorProto_INT64, []any{DimBatch, DimSequence})
			checkValueInfo(t, g.Output, []string{"logits"}, onnxpb.TensorProto_FLOAT, []any{DimBatch, DimSequence, tc.vocab})
			if !slices.Equal(GraphInputs(tc.cfg.Arch), []string{"input_ids", "attention_mask"}) {
				t.Errorf("GraphInputs = %v", GraphInputs(tc.cfg.Arch))
			}
			want := archInitializers(tc.cfg.Arch, tc.vocab, 32, 48, tc.pos)
			got := map[string][]int64{}
			for _, in := range g.Initializer {
				if in.DataType == int32(onnxpb.TensorProto_FLOAT) && len(in.RawData) > 0 {
					got[in.Name] = in.Dims
				}
			}
			for name, dims := range want {
				if !equalDims(got[name], dims) {
					t.Errorf("initializer %s has dims %v, want %v", name, got[name], dims)
				}
			}
			for name := range got {
				if _, ok := want[name]; !ok {
					t.Errorf("unexpected weight initializer %s", name)
				}
			}

			defined := map[string]bool{}
			for _, in := range g.Input {
				defined[in.Name] = true
			}
			for _, in := range g.Initializer {
				defined[in.Name] = true
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
			}
			if !defined[OutputLogits] {
				t.Errorf("no node produces logits")
			}
			wantOps := map[string]int{"Softmax": 2, "Erf": 3, "ReduceMean": 2 * (2 + 2*2)}
			if tc.cfg.Arch == ArchDistilBERT {
				wantOps["Where"], wantOps["CumSum"] = 2, 0
			} else {
				wantOps["Where"], wantOps["CumSum"], wantOps["Not"] = 0, 1, 1
			}
			for op, n := range wantOps {
				if ops[op] != n {
					t.Errorf("%d %s nodes, want %d", ops[op], op, n)
				}
			}
			if !strings.Contains(m.DocString, hfClass(tc.cfg.Arch)) || g.Name != hfClass(tc.cfg.Arch) {
				t.Errorf("graph %q, doc %q", g.Name, m.DocString)
			}
		})
	}
}

func TestArchConfigJSON(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want map[string]any
		arch string
	}{
		{Config{Arch: ArchDistilBERT, Layers: 2, Hidden: 32, Heads: 4, Seed: 9}, map[string]any{
			"model_type": "distilbert", "vocab_size": 30522.0, "dim": 32.0, "hidden_dim": 128.0, "n_layers": 2.0,
			"n_heads": 4.0, "max_position_embeddings": 512.0, "pad_token_id": 0.0, "activation": "gelu",
			"sinusoidal_pos_embds": false, "tie_word_embeddings": true,
		}, "DistilBertForMaskedLM"},
		{Config{Arch: ArchRoBERTa, Layers: 1, Hidden: 32, Heads: 2, Seed: 9}, map[string]any{
			"model_type": "roberta", "vocab_size": float64(robertaVocab), "hidden_size": 32.0, "num_hidden_layers": 1.0,
			"num_attention_heads": 2.0, "intermediate_size": 128.0, "max_position_embeddings": 514.0,
			"type_vocab_size": 1.0, "layer_norm_eps": 1e-5, "hidden_act": "gelu",
			"bos_token_id": 0.0, "pad_token_id": 1.0, "eos_token_id": 2.0, "tie_word_embeddings": true,
		}, "RobertaForMaskedLM"},
	} {
		var c map[string]any
		if err := json.Unmarshal(readFile(t, filepath.Join(generateArch(t, tc.cfg), ConfigFile)), &c); err != nil {
			t.Fatal(err)
		}
		for k, v := range tc.want {
			if c[k] != v {
				t.Errorf("%s config.json %s = %v, want %v", tc.cfg.Arch, k, c[k], v)
			}
		}
		if a, ok := c["architectures"].([]any); !ok || len(a) != 1 || a[0] != tc.arch {
			t.Errorf("architectures = %v, want [%s]", c["architectures"], tc.arch)
		}
		info, ok := c["splash_test_model"].(map[string]any)
		if !ok || info["seed"] != 9.0 || !strings.Contains(fmt.Sprint(info["note"]), "random weights") {
			t.Errorf("splash_test_model = %v", c["splash_test_model"])
		}
		if tc.cfg.Arch == ArchDistilBERT {
			for _, k := range []string{"hidden_size", "num_hidden_layers", "type_vocab_size"} {
				if _, ok := c[k]; ok {
					t.Errorf("DistilBERT config.json has BERT's %s", k)
				}
			}
		}
	}
}

func TestArchDeterministic(t *testing.T) {
	for _, arch := range []Arch{ArchDistilBERT, ArchRoBERTa} {
		cfg := Config{Arch: arch, Layers: 1, Hidden: 32, Heads: 2, Seed: 5}
		a, b := generateArch(t, cfg), generateArch(t, cfg)
		for _, name := range []string{ModelFile, ConfigFile, TokenizerFile} {
			if !bytes.Equal(readFile(t, filepath.Join(a, name)), readFile(t, filepath.Join(b, name))) {
				t.Errorf("%s: %s differs between two runs with the same config", arch, name)
			}
		}
		cfg.Seed = 6
		if bytes.Equal(readFile(t, filepath.Join(a, ModelFile)), readFile(t, filepath.Join(generateArch(t, cfg), ModelFile))) {
			t.Errorf("%s: seeds 5 and 6 gave the same model.onnx", arch)
		}
	}
}

func TestArchConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Arch: "gpt2", Layers: 1, Hidden: 32, Heads: 2},
		{Arch: ArchRoBERTa, Layers: 1, Hidden: 32, Heads: 2, TypeVocab: 2},
		{Arch: ArchDistilBERT, Layers: 1, Hidden: 32, Heads: 2, TypeVocab: 1},
		{Arch: ArchDistilBERT, Layers: 1, Hidden: 30, Heads: 4},
	} {
		if _, err := cfg.withDefaults(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", cfg, err)
		}
	}
	if cfg, err := (Config{Layers: 1, Hidden: 32, Heads: 2}).withDefaults(); err != nil || cfg.Arch != ArchBERT || cfg.TypeVocab != 2 {
		t.Errorf("default arch %q, type vocab %d, %v", cfg.Arch, cfg.TypeVocab, err)
	}
	// A RoBERTa model with BERT's tokenizer ([PAD] 0, no <pad>) is refused.
	requireFile(t, bertTokenizer)
	dir := filepath.Join(t.TempDir(), "m")
	if err := Generate(dir, Config{Arch: ArchRoBERTa, Layers: 1, Hidden: 32, Heads: 2}, bertTokenizer); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "<pad>") {
		t.Errorf("RoBERTa with bert-base-uncased's tokenizer: %v", err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("the refused model's directory was created")
	}
}

// TestRoBERTaPaddingRows checks the padding rows Hugging Face leaves at zero:
// word embedding 1 (<pad>) and position embedding 1 (padding_idx), which
// every padding token gets; word row 0 (<s>) is a real token.
func TestRoBERTaPaddingRows(t *testing.T) {
	o, err := LoadOracle(generateArch(t, Config{Arch: ArchRoBERTa, Layers: 1, Hidden: 32, Heads: 2, MaxPositions: 30}))
	if err != nil {
		t.Fatal(err)
	}
	h := o.Hidden()
	norm := func(v []float64) float64 { return math.Sqrt(dot(v, v)) }
	if n := norm(o.wordEmb[1*h : 2*h]); n != 0 {
		t.Errorf("<pad> word row has norm %v", n)
	}
	if n := norm(o.posEmb[1*h : 2*h]); n != 0 {
		t.Errorf("position row 1 has norm %v", n)
	}
	if norm(o.wordEmb[:h]) == 0 || norm(o.posEmb[:h]) == 0 || norm(o.posEmb[2*h:3*h]) == 0 {
		t.Errorf("a non-padding row is zero")
	}
	if o.Arch() != ArchRoBERTa || o.MaxLength() != 30 || o.maxPos != 32 {
		t.Errorf("arch %q, MaxLength %d, %d positions; want roberta, 30, 32", o.Arch(), o.MaxLength(), o.maxPos)
	}
}

// TestOraclePositionIDs checks positions computed by hand from Hugging
// Face's create_position_ids_from_input_ids (padding_idx 1) and BERT's 0..L-1.
func TestOraclePositionIDs(t *testing.T) {
	rob := &Oracle{arch: ArchRoBERTa, padID: 1}
	for _, c := range []struct {
		ids  []int32
		want []int
	}{
		{[]int32{0, 9, 9, 2}, []int{2, 3, 4, 5}},
		{[]int32{1, 1, 0, 9, 2}, []int{1, 1, 2, 3, 4}}, // left padding
		{[]int32{0, 9, 2, 1, 1}, []int{2, 3, 4, 1, 1}}, // right padding
		{[]int32{0, 1, 9, 2}, []int{2, 1, 3, 4}},       // <pad> inside the text
	} {
		if got := rob.PositionIDs(c.ids); !slices.Equal(got, c.want) {
			t.Errorf("RoBERTa PositionIDs(%v) = %v, want %v", c.ids, got, c.want)
		}
	}
	for _, arch := range []Arch{ArchBERT, ArchDistilBERT} {
		o := &Oracle{arch: arch}
		if got := o.PositionIDs([]int32{1, 1, 0, 9}); !slices.Equal(got, []int{0, 1, 2, 3}) {
			t.Errorf("%s PositionIDs = %v", arch, got)
		}
	}
}

// TestArchOracleSinglePosition checks the whole forward pass of each shape
// on a one-token sequence, where attention is the identity on the value
// vectors: the oracle's logits must equal a direct computation from the
// weights, with the embedding sum of each architecture written out here.
func TestArchOracleSinglePosition(t *testing.T) {
	for _, tc := range []struct {
		cfg Config
		id  int
	}{
		{Config{Arch: ArchDistilBERT, Layers: 2, Hidden: 32, Heads: 4, MaxPositions: 40, Seed: 5}, 3358},
		{Config{Arch: ArchRoBERTa, Layers: 2, Hidden: 32, Heads: 4, MaxPositions: 40, Seed: 5}, 15500},
	} {
		o, err := LoadOracle(generateArch(t, tc.cfg))
		if err != nil {
			t.Fatal(err)
		}
		h := o.hidden
		x := make([]float64, h)
		for k := range x {
			switch tc.cfg.Arch {
			case ArchDistilBERT: // word + position 0, no token type
				x[k] = o.wordEmb[tc.id*h+k] + o.posEmb[k]
			case ArchRoBERTa: // word + token type 0 + position 2
				x[k] = o.wordEmb[tc.id*h+k] + o.typeEmb[k] + o.posEmb[2*h+k]
			}
		}
		x = o.layerNorm(x, o.embLN)
		vec := func(d denseW, in []float64) []float64 { return d.apply([][]float64{in})[0] }
		add := func(a, b []float64) []float64 {
			out := make([]float64, len(a))
			for k := range a {
				out[k] = a[k] + b[k]
			}
			return out
		}
		geluVec := func(v []float64) []float64 {
			for k := range v {
				v[k] = v[k] * 0.5 * math.Erfc(-v[k]/math.Sqrt2)
			}
			return v
		}
		for _, ly := range o.layers {
			x = o.layerNorm(add(vec(ly.attnOut, vec(ly.v, x)), x), ly.attnLN)
			x = o.layerNorm(add(vec(ly.ffnOut, geluVec(vec(ly.ffnIn, x))), x), ly.ffnLN)
		}
		tr := o.layerNorm(geluVec(vec(o.headDense, x)), o.headLN)
		got := o.Logits([]int32{int32(tc.id)})[0]
		best := 0
		for j := range got {
			want := dot(tr, o.wordEmb[j*h:(j+1)*h]) + o.outBias[j]
			if math.Abs(got[j]-want) > 1e-9 {
				t.Fatalf("%s: logit %d = %v, want %v", tc.cfg.Arch, j, got[j], want)
			}
			if got[j] > got[best] {
				best = j
			}
		}
		if best != tc.id {
			t.Errorf("%s: the highest logit of token %d is token %d", tc.cfg.Arch, tc.id, best)
		}
		if o.Validate(make([]int32, o.MaxLength()+1)) == nil || o.Logits(make([]int32, o.MaxLength())) == nil {
			t.Errorf("%s: MaxLength %d is not the limit of Validate", tc.cfg.Arch, o.MaxLength())
		}
	}
}

func TestLoadOracleArchErrors(t *testing.T) {
	good := generateArch(t, Config{Arch: ArchRoBERTa, Layers: 1, Hidden: 32, Heads: 2})
	model := readFile(t, filepath.Join(good, ModelFile))
	for name, conf := range map[string]string{
		"unknown model_type": `{"model_type":"gpt2","num_attention_heads":2,"num_hidden_layers":1,"layer_norm_eps":1e-5,"pad_token_id":1}`,
		"no pad_token_id":    `{"model_type":"roberta","num_attention_heads":2,"num_hidden_layers":1,"layer_norm_eps":1e-5}`,
		"bad pad_token_id":   `{"model_type":"roberta","num_attention_heads":2,"num_hidden_layers":1,"layer_norm_eps":1e-5,"pad_token_id":-3}`,
		"bert names":         `{"model_type":"bert","num_attention_heads":2,"num_hidden_layers":1,"layer_norm_eps":1e-12}`,
		"distilbert names":   `{"model_type":"distilbert","n_heads":2,"n_layers":1}`,
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ModelFile), model, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		if o, err := LoadOracle(dir); err == nil || o != nil || !strings.HasPrefix(err.Error(), "testmodel: oracle: ") {
			t.Errorf("%s: LoadOracle = %v, %v", name, o, err)
		}
	}
}

// TestArchSparsity checks that the new shapes keep the realistic SPLADE
// sparsity of the BERT models on real text (a few Cranfield documents).
func TestArchSparsity(t *testing.T) {
	texts := cranfieldTexts(t, 0)
	for _, arch := range []Arch{ArchDistilBERT, ArchRoBERTa} {
		dir := generateArch(t, Config{Arch: arch, Layers: 1, Hidden: 32, Heads: 2})
		o, err := LoadOracle(dir)
		if err != nil {
			t.Fatal(err)
		}
		tk := loadTokenizer(t, filepath.Join(dir, TokenizerFile))
		var docs [][]int32
		for i := 0; i < len(texts) && len(docs) < 4; i += len(texts) / 4 {
			docs = append(docs, tk.Encode(texts[i], 128).IDs)
		}
		st := sparsityStats(t, o, docs)
		n := st.nnz
		t.Logf("%s 1x32x2 on %d docs: non-zeros min %d median %d max %d; max |logit| %.1f; own share %.2f; own recall %.2f",
			arch, len(docs), n[0], n[len(n)/2], n[len(n)-1], st.maxAbs, st.ownShare, st.ownRecall)
		if n[0] == 0 || n[len(n)/2] > 400 || st.maxAbs > 30 || st.ownRecall < 0.9 {
			t.Errorf("%s: unrealistic sparsity", arch)
		}
	}
}

// TestArchFP16 checks Config.FP16 on the new shapes: a float16 logits
// output through a final Cast, which the oracle follows.
func TestArchFP16(t *testing.T) {
	for _, arch := range []Arch{ArchDistilBERT, ArchRoBERTa} {
		dir := generateArch(t, Config{Arch: arch, Layers: 1, Hidden: 32, Heads: 2, MaxPositions: 16, FP16: true})
		m := loadModel(t, dir)
		last := m.Graph.Node[len(m.Graph.Node)-1]
		if last.OpType != "Cast" || last.Output[0] != OutputLogits ||
			m.Graph.Output[0].Type.GetTensorType().GetElemType() != int32(onnxpb.TensorProto_FLOAT16) {
			t.Errorf("%s: last node %s, output %v", arch, last.OpType, m.Graph.Output[0].Type)
		}
		o, err := LoadOracle(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !o.Float16Logits() {
			t.Errorf("%s: the oracle does not round to float16", arch)
		}
	}
}
