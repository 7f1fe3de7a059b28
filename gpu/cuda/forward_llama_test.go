package cuda

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/safetensors"
	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/encode/tokenizer"
	"github.com/splash-encode/splash/gpu"
	"github.com/splash-encode/splash/kernels"
)

// mistralTokenizer is a Llama/Mistral-style tokenizer (a BOS prefix, 32,000
// ids) in the repository's test data.
const mistralTokenizer = "../../testdata/tokenizers/mistral-7b/tokenizer.json"

// smallLlama3Scaling is a llama3 rope_scaling that, at head_dim 8 and
// rope_theta 10000 (wavelengths 6.3, 63, 628 and 6283), reaches all three
// of its regimes: unchanged (6.3 < 128/4), smoothed (32 <= 63 <= 128) and
// divided by the factor (628, 6283 > 128). Llama 3.1's own (original
// context 8192) would leave these short wavelengths unchanged.
var smallLlama3Scaling = testmodel.LlamaRopeScaling{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 128}

// The generated decoders of the tests: Llama with grouped-query attention
// (4 heads, 2 KV heads), llama3 rope scaling and an untied head, written as
// three bf16 shards; Mistral with one KV head and a tied head.
var (
	testLlama = testmodel.LlamaConfig{Family: testmodel.FamilyLlama, Layers: 2, Hidden: 32, Heads: 4, KVHeads: 2,
		RopeScaling: &smallLlama3Scaling, Seed: 19, Shards: 3, SafeTensorsDType: safetensors.BF16, SkipONNX: true}
	testMistral = testmodel.LlamaConfig{Family: testmodel.FamilyMistral, Layers: 2, Hidden: 32, Heads: 4, KVHeads: 1,
		Tied: true, Seed: 23, SkipONNX: true}
)

// generatedLlama is a generated decoder with its tokenizer and oracle.
type generatedLlama struct {
	dir    string
	tok    *tokenizer.Tokenizer
	oracle *testmodel.LlamaOracle
}

func generateLlama(t testing.TB, cfg testmodel.LlamaConfig) generatedLlama {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	if err := testmodel.GenerateLlama(dir, cfg, mistralTokenizer); err != nil {
		t.Fatalf("generate %+v: %v", cfg, err)
	}
	tok, err := tokenizer.Load(mistralTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	oracle, err := testmodel.LoadLlamaOracle(dir)
	if err != nil {
		t.Fatal(err)
	}
	return generatedLlama{dir: dir, tok: tok, oracle: oracle}
}

// loadDecoderNet binds a generated decoder's weights (through
// OpenCheckpoint: sharded or not) to twin Ops of dt.
func loadDecoderNet(t testing.TB, dir string, dt kernels.DType, headChunk int, att Attention) *Net {
	t.Helper()
	arch, err := ReadArch(dir)
	if err != nil {
		t.Fatal(err)
	}
	ckpt, err := OpenCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ckpt.Close()
	w, err := BindWeights(arch, ckpt)
	if err != nil {
		t.Fatal(err)
	}
	n, err := NewNet(NewTwinOps(dt), w, headChunk)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.SetAttention(att); err != nil {
		t.Fatal(err)
	}
	return n
}

// llamaDocs tokenizes texts for a decoder: [BOS] text, at most maxText
// text tokens; with echo, [BOS] text text pooled from the second copy, as
// encode.Model.Prepare builds it (each copy gets half of the max length).
func llamaDocs(tok *tokenizer.Tokenizer, texts []string, maxText int, echo bool) (docs [][]int32, from []int) {
	for _, text := range texts {
		limit := maxText
		if echo {
			limit /= 2
		}
		content := tok.Content(tok.Encode(text, limit+tok.NumSpecialTokens()))
		if len(content) == 0 {
			continue
		}
		ids := append(tok.Prefix(), content...)
		f := 0
		if echo {
			f = len(ids)
			ids = append(ids, content...)
		}
		docs = append(docs, append(ids, tok.Suffix()...))
		from = append(from, f)
	}
	return docs, from
}

// compareDecoder runs net over docs in batches of 5 and returns the largest
// difference from the oracle's pooled rows.
func compareDecoder(t *testing.T, net *Net, oracle *testmodel.LlamaOracle, docs [][]int32, from []int, pooling encode.Pooling, bidirectional bool) float64 {
	t.Helper()
	v := net.Arch().Vocab
	worst := 0.0
	for start := 0; start < len(docs); start += 5 {
		end := min(start+5, len(docs))
		out := make([]float32, (end-start)*v)
		if err := net.Forward(Input{Docs: docs[start:end], PoolFrom: from[start:end]}, pooling, out); err != nil {
			t.Fatal(err)
		}
		for i, ids := range docs[start:end] {
			want := oracle.PooledFrom(ids, from[start+i], pooling.String(), bidirectional)
			if len(want) != v {
				t.Fatalf("document %d: the oracle refuses it (%v)", start+i, oracle.Validate(ids))
			}
			for j, w := range want {
				worst = math.Max(worst, math.Abs(w-float64(out[i*v+j])))
			}
		}
	}
	return worst
}

// TestDecoderForwardMatchesOracle is the engine's Llama/Mistral forward
// pass, composed of the kernels' Go twins in fp32, against the float64
// oracle of encode/testmodel: causal and bidirectional attention, echo
// inputs pooled over their second copy, max and sum pooling; every pooled
// weight within 1e-4. Batches mix documents of different lengths and the
// head chunk (97 tokens) splits documents across chunks.
func TestDecoderForwardMatchesOracle(t *testing.T) {
	texts := cranfieldTexts(t, 15)
	for _, m := range []struct {
		name string
		cfg  testmodel.LlamaConfig
	}{{"llama", testLlama}, {"mistral", testMistral}} {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			g := generateLlama(t, m.cfg)
			for _, c := range []struct {
				att     Attention
				echo    bool
				pooling encode.Pooling
			}{
				{AttentionCausal, false, encode.PoolMax},
				{AttentionBidirectional, false, encode.PoolMax},
				{AttentionCausal, true, encode.PoolMax},
				{AttentionBidirectional, true, encode.PoolSum},
				{AttentionCausal, false, encode.PoolSum},
			} {
				name := fmt.Sprintf("%s-echo=%v-%s", c.att, c.echo, c.pooling)
				net := loadDecoderNet(t, g.dir, kernels.F32, 97, c.att)
				docs, from := llamaDocs(g.tok, texts, 60, c.echo)
				worst := compareDecoder(t, net, g.oracle, docs, from, c.pooling, c.att == AttentionBidirectional)
				t.Logf("%s: %d documents, largest difference from the float64 oracle %.3g", name, len(docs), worst)
				if worst > 1e-4 {
					t.Errorf("%s: largest difference %.3g > 1e-4", name, worst)
				}
			}
		})
	}
}

// TestDecoderForwardDetectsWrongModel shows that the oracle comparison
// fails when something is wrong: the other attention mask, two layers
// swapped, the rope scaling dropped, or echo pooled over both copies.
func TestDecoderForwardDetectsWrongModel(t *testing.T) {
	g := generateLlama(t, testLlama)
	docs, from := llamaDocs(g.tok, cranfieldTexts(t, 4), 60, false)
	far := func(name string, net *Net, from []int, bidirectional bool) {
		t.Helper()
		worst := compareDecoder(t, net, g.oracle, docs, from, encode.PoolMax, bidirectional)
		t.Logf("%s: largest difference from the oracle %.3g", name, worst)
		if worst < 1e-3 {
			t.Errorf("%s: within %.3g of the oracle", name, worst)
		}
	}
	far("bidirectional net, causal oracle", loadDecoderNet(t, g.dir, kernels.F32, 0, AttentionBidirectional), from, false)
	far("causal net, bidirectional oracle", loadDecoderNet(t, g.dir, kernels.F32, 0, AttentionCausal), from, true)

	bind := func(mutate func(*Weights)) *Net {
		arch, err := ReadArch(g.dir)
		if err != nil {
			t.Fatal(err)
		}
		ckpt, err := OpenCheckpoint(g.dir)
		if err != nil {
			t.Fatal(err)
		}
		defer ckpt.Close()
		w, err := BindWeights(arch, ckpt)
		if err != nil {
			t.Fatal(err)
		}
		mutate(w)
		n, err := NewNet(NewTwinOps(kernels.F32), w, 0)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	far("layers swapped", bind(func(w *Weights) { w.Blocks[0], w.Blocks[1] = w.Blocks[1], w.Blocks[0] }), from, false)
	far("no rope scaling", bind(func(w *Weights) { w.Arch.Rope.Type = "" }), from, false)

	echoDocs, echoFrom := llamaDocs(g.tok, cranfieldTexts(t, 4), 60, true)
	net := loadDecoderNet(t, g.dir, kernels.F32, 0, AttentionCausal)
	v := net.Arch().Vocab
	out := make([]float32, len(echoDocs)*v)
	if err := net.Forward(Input{Docs: echoDocs}, encode.PoolMax, out); err != nil { // no PoolFrom: both copies pooled
		t.Fatal(err)
	}
	worst := 0.0
	for i, ids := range echoDocs {
		want := g.oracle.PooledFrom(ids, echoFrom[i], "max", false)
		if len(want) != v {
			t.Fatalf("echo document %d: the oracle refuses it", i)
		}
		for j, w := range want {
			worst = math.Max(worst, math.Abs(w-float64(out[i*v+j])))
		}
	}
	t.Logf("echo pooled over both copies: largest difference from the oracle %.3g", worst)
	if worst < 1e-3 {
		t.Errorf("echo pooled over both copies: within %.3g of the oracle", worst)
	}
}

// TestDecoderLargeVocabulary runs a Llama-3-sized vocabulary (128,256 ids,
// the rows past the tokenizer's 32,000 random) with documents whose ids
// reach above 65,535: the embeddings, the LM head and pooling all index
// past 16 bits.
func TestDecoderLargeVocabulary(t *testing.T) {
	cfg := testLlama
	cfg.Vocab, cfg.Layers, cfg.Shards, cfg.Seed = 128256, 1, 1, 29
	g := generateLlama(t, cfg)
	rng := rand.New(rand.NewPCG(1, 2))
	var docs [][]int32
	for _, n := range []int{9, 23, 4} {
		doc := []int32{1}
		for range n {
			doc = append(doc, int32(65536+rng.IntN(128256-65536)))
		}
		doc = append(doc, 128255, 65535, 65536)
		docs = append(docs, doc)
	}
	net := loadDecoderNet(t, g.dir, kernels.F32, 16, AttentionCausal)
	from := make([]int, len(docs))
	worst := compareDecoder(t, net, g.oracle, docs, from, encode.PoolMax, false)
	t.Logf("128,256 ids: largest difference %.3g", worst)
	if worst > 1e-4 {
		t.Errorf("largest difference %.3g > 1e-4", worst)
	}
	docs[0][1] = 128256
	if err := net.Forward(Input{Docs: docs}, encode.PoolMax, make([]float32, len(docs)*128256)); !errors.Is(err, encode.ErrBadInput) {
		t.Errorf("id 128256 of a 128,256-id vocabulary: %v", err)
	}
}

// TestDecoderForwardBF16TopTerms runs the decoder with bf16 weights and
// activations (the twins round every stored value as the GPU does): the
// mean share of each document's top-20 terms that the oracle's top 20 also
// have must be at least 0.9, as for the BERT family.
func TestDecoderForwardBF16TopTerms(t *testing.T) {
	if testing.Short() {
		t.Skip("generates two decoders (pure Go: the full run covers it)")
	}
	texts := cranfieldTexts(t, 10)
	for _, m := range []struct {
		name string
		cfg  testmodel.LlamaConfig
	}{{"llama", testLlama}, {"mistral", testMistral}} {
		g := generateLlama(t, m.cfg)
		for _, att := range []Attention{AttentionCausal, AttentionBidirectional} {
			net := loadDecoderNet(t, g.dir, kernels.BF16, 0, att)
			docs, _ := llamaDocs(g.tok, texts, 60, false)
			v := net.Arch().Vocab
			out := make([]float32, len(docs)*v)
			if err := net.Forward(Input{Docs: docs}, encode.PoolMax, out); err != nil {
				t.Fatal(err)
			}
			share, worstRel := 0.0, 0.0
			for i, ids := range docs {
				want := g.oracle.PooledFrom(ids, 0, "max", att == AttentionBidirectional)
				if len(want) != v {
					t.Fatalf("document %d: the oracle refuses it", i)
				}
				got := make([]float64, v)
				for j := range got {
					got[j] = float64(out[i*v+j])
				}
				share += TopOverlap(want, got, 20)
				for j, w := range want {
					if w > 0.1 {
						worstRel = math.Max(worstRel, math.Abs(got[j]-w)/w)
					}
				}
			}
			share /= float64(len(docs))
			t.Logf("%s %s bf16: %d documents, mean top-20 overlap %.3f, largest relative error (weights > 0.1) %.3g", m.name, att, len(docs), share, worstRel)
			if share < 0.9 {
				t.Errorf("%s %s: mean top-20 overlap %.3f < 0.9", m.name, att, share)
			}
		}
	}
}

// overrideTensors is a checkpoint with tensors removed or replaced.
type overrideTensors struct {
	Tensors
	drop    string
	replace map[string][]int // name -> shape of zeros returned instead
}

func (o overrideTensors) Has(name string) bool {
	if name == o.drop {
		return false
	}
	_, ok := o.replace[name]
	return ok || o.Tensors.Has(name)
}

func (o overrideTensors) FileOf(name string) string {
	if s, ok := o.Tensors.(interface{ FileOf(string) string }); ok {
		return s.FileOf(name)
	}
	return ""
}

func (o overrideTensors) Float32(name string) ([]float32, []int, error) {
	if name == o.drop {
		return nil, nil, fmt.Errorf("tensor %s is missing: %w", name, safetensors.ErrMissing)
	}
	if shape, ok := o.replace[name]; ok {
		n := 1
		for _, d := range shape {
			n *= d
		}
		return make([]float32, n), shape, nil
	}
	return o.Tensors.Float32(name)
}

// TestBindDecoderRefusals checks that missing and misshapen tensors are
// refused naming the tensor, its file (the shard) and the shapes.
func TestBindDecoderRefusals(t *testing.T) {
	cfg := testLlama
	cfg.Layers = 1
	g := generateLlama(t, cfg)
	arch, err := ReadArch(g.dir)
	if err != nil {
		t.Fatal(err)
	}
	ckpt, err := OpenCheckpoint(g.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ckpt.Close()
	if _, ok := ckpt.(*safetensors.Sharded); !ok {
		t.Fatalf("a sharded checkpoint opened as %T", ckpt)
	}
	for _, c := range []struct {
		t    Tensors
		want []string
	}{
		{overrideTensors{Tensors: ckpt, drop: "model.layers.0.self_attn.k_proj.weight"}, []string{"model.layers.0.self_attn.k_proj.weight is missing"}},
		{overrideTensors{Tensors: ckpt, drop: "lm_head.weight"}, []string{"lm_head.weight is missing and tie_word_embeddings is false"}},
		{overrideTensors{Tensors: ckpt, replace: map[string][]int{"model.layers.0.mlp.up_proj.weight": {96, 31}}},
			[]string{"model.layers.0.mlp.up_proj.weight has shape [96 31], the config says [96 32]", "model-0000"}},
		{overrideTensors{Tensors: ckpt, replace: map[string][]int{"model.layers.0.self_attn.o_proj.bias": {32}}},
			[]string{"model.layers.0.self_attn.o_proj.bias is there"}},
	} {
		_, err := BindWeights(arch, c.t)
		if !errors.Is(err, encode.ErrBadModel) {
			t.Errorf("error %v, want one wrapping ErrBadModel", err)
			continue
		}
		for _, s := range c.want {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not say %q", err, s)
			}
		}
	}
}

// TestSetAttention checks the attention choices: decoders take both,
// BERT-family models only bidirectional attention.
func TestSetAttention(t *testing.T) {
	if a, err := ParseAttention(""); err != nil || a != AttentionCausal {
		t.Errorf(`ParseAttention("") = %q, %v`, a, err)
	}
	if _, err := ParseAttention("sideways"); !errors.Is(err, encode.ErrSettings) {
		t.Errorf("ParseAttention(sideways): %v", err)
	}
	bert := &Net{arch: bertBase}
	if err := bert.SetAttention(AttentionCausal); !errors.Is(err, encode.ErrSettings) {
		t.Errorf("causal BERT: %v", err)
	}
	if err := bert.SetAttention(AttentionBidirectional); err != nil {
		t.Errorf("bidirectional BERT: %v", err)
	}
	dec := &Net{arch: Arch{Family: FamilyLlama}, attention: AttentionCausal}
	if err := dec.SetAttention(AttentionBidirectional); err != nil || dec.Attention() != AttentionBidirectional {
		t.Errorf("bidirectional Llama: %v, %q", err, dec.Attention())
	}
}

// TestBackendDecoderEcho runs echo inputs through the Backend as the
// encode pipeline hands them over: a padded encode.Batch whose PoolMask
// (SetPoolFrom) marks the second copies. Every pooled row equals the
// oracle's over the second copy, dense and sparse.
func TestBackendDecoderEcho(t *testing.T) {
	cfg := testMistral
	cfg.Layers = 1
	g := generateLlama(t, cfg)
	net := loadDecoderNet(t, g.dir, kernels.F32, 50, AttentionCausal)
	b := newBackend([]*lane{{ops: net.ops, net: net}}, encode.PoolMax, FP32, 4096)
	defer b.Close()
	docs, from := llamaDocs(g.tok, cranfieldTexts(t, 6), 40, true)
	batch := encode.NewBatch(docs, 0)
	batch.SetPoolFrom(from)
	v := b.VocabSize()
	out := make([]float32, len(docs)*v)
	if err := b.Encode(context.Background(), batch, out); err != nil {
		t.Fatal(err)
	}
	var csr encode.CSR
	if err := b.EncodeSparse(context.Background(), batch, &csr); err != nil {
		t.Fatal(err)
	}
	if _, err := csrMatchesDense(&csr, out, len(docs), v); err != nil {
		t.Error(err)
	}
	worst := 0.0
	for i, ids := range docs {
		want := g.oracle.PooledFrom(ids, from[i], "max", false)
		if len(want) != v {
			t.Fatalf("document %d: the oracle refuses it", i)
		}
		for j, w := range want {
			worst = math.Max(worst, math.Abs(w-float64(out[i*v+j])))
		}
	}
	t.Logf("%d echo documents through the Backend: largest difference %.3g", len(docs), worst)
	if worst > 1e-4 {
		t.Errorf("largest difference %.3g > 1e-4", worst)
	}
}

// TestCheckModelOptions checks the settings the engine refuses before it
// loads anything: echo and causal attention on BERT-family models, a max
// length beyond Mistral's sliding window, an unknown attention.
func TestCheckModelOptions(t *testing.T) {
	mistral, err := ParseArch([]byte(mistralConfig))
	if err != nil {
		t.Fatal(err)
	}
	llama, err := ParseArch([]byte(llama3Config))
	if err != nil {
		t.Fatal(err)
	}
	withLen := func(n int, echo bool) gpu.Options {
		return gpu.Options{PoolMask: echo, GPU: gpu.GPUOptions{MaxSeqLen: n}}
	}
	for _, c := range []struct {
		arch      Arch
		opts      gpu.Options
		attention string
		maxLen    int
		want      string
		is        error
	}{
		{llama, withLen(0, false), "", 512, "", nil},
		{llama, withLen(8192, true), "bidirectional", 8192, "", nil},
		{llama, withLen(100000, false), "", 8192, "", nil},
		{mistral, withLen(4096, true), "causal", 4096, "", nil},
		{mistral, withLen(4097, false), "", 0, "sliding_window is 4096, shorter than the max length 4097", encode.ErrBadModel},
		{llama, withLen(512, false), "sideways", 0, `attention "sideways"`, encode.ErrSettings},
		{bertBase, withLen(512, true), "", 0, "without echo", encode.ErrSettings},
		{bertBase, withLen(512, false), "causal", 0, "attend bidirectionally only", encode.ErrSettings},
		{bertBase, withLen(512, false), "bidirectional", 512, "", nil},
	} {
		n, err := checkModelOptions("dir", c.arch, c.opts, c.attention)
		if c.want == "" {
			if err != nil || n != c.maxLen {
				t.Errorf("%s %+v %q: %d, %v; want %d", c.arch.Family, c.opts, c.attention, n, err, c.maxLen)
			}
			continue
		}
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %+v %q: error %v, want one saying %q", c.arch.Family, c.opts, c.attention, err, c.want)
		}
	}
}

// TestNewDecoderNet checks the streaming upload: a Net that NewDecoderNet
// binds and uploads layer by layer gives exactly the rows of
// NewNet(BindWeights(...)), tied and untied, sharded and not; a missing
// tensor is refused naming it, and a BERT-family arch is refused.
func TestNewDecoderNet(t *testing.T) {
	docs, _ := llamaDocs(mustTokenizer(t), cranfieldTexts(t, 4), 40, false)
	for _, cfg := range []testmodel.LlamaConfig{testLlama, testMistral} {
		cfg.Layers = 2
		g := generateLlama(t, cfg)
		arch, err := ReadArch(g.dir)
		if err != nil {
			t.Fatal(err)
		}
		ckpt, err := OpenCheckpoint(g.dir)
		if err != nil {
			t.Fatal(err)
		}
		streamed, err := NewDecoderNet(NewTwinOps(kernels.F32), arch, ckpt, 0)
		if err != nil {
			t.Fatal(err)
		}
		whole := loadDecoderNet(t, g.dir, kernels.F32, 0, AttentionCausal)
		v := arch.Vocab
		got, want := make([]float32, len(docs)*v), make([]float32, len(docs)*v)
		if err := streamed.Forward(Input{Docs: docs}, encode.PoolMax, got); err != nil {
			t.Fatal(err)
		}
		if err := whole.Forward(Input{Docs: docs}, encode.PoolMax, want); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: NewDecoderNet's rows differ from NewNet's", cfg.Family)
		}
		_, err = NewDecoderNet(NewTwinOps(kernels.F32), arch, overrideTensors{Tensors: ckpt, drop: "model.layers.1.mlp.down_proj.weight"}, 0)
		if !errors.Is(err, encode.ErrBadModel) || !strings.Contains(err.Error(), "model.layers.1.mlp.down_proj.weight") {
			t.Errorf("%s: missing tensor: %v", cfg.Family, err)
		}
		ckpt.Close()
	}
	if _, err := NewDecoderNet(NewTwinOps(kernels.F32), bertBase, nil, 0); err == nil {
		t.Error("NewDecoderNet took a BERT arch")
	}
}

func mustTokenizer(t *testing.T) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.Load(mistralTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
