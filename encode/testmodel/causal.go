package testmodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/splash-encode/splash/encode/onnxpb"
)

// TokenizerConfigFile is copied by GenerateCausal from beside the tokenizer
// when it exists there (Hugging Face's tokenizer_config.json: the special
// tokens and add_bos_token of Llama- and Mistral-style tokenizers).
const TokenizerConfigFile = "tokenizer_config.json"

// InputPositionIDs is the optional position_ids input of a causal model
// (CausalConfig.PositionIDs), as optimum's causal-lm exports of Llama and
// Mistral declare it.
const InputPositionIDs = "position_ids"

// CausalConfig describes a generated decoder-only (causal LM) test model: a
// GPT-2-style pre-LayerNorm transformer with learned position embeddings and
// an untied LM head over the whole tokenizer vocabulary, what CSPLADE-style
// encoders pool. Zero values of the optional fields take the documented
// defaults.
type CausalConfig struct {
	Layers       int // decoder blocks, >= 1
	Hidden       int // hidden size (n_embd), a multiple of Heads
	Heads        int // attention heads, >= 1
	Intermediate int // MLP size (n_inner); default 4*Hidden
	MaxPositions int // learned positions (n_positions); default 1024
	Seed         uint64
	Opset        int // ONNX opset of the default domain; default 14, 14..21 accepted
	// PositionIDs makes the graph declare an int64 [batch, sequence]
	// position_ids input, as optimum's causal-lm exports of Llama and Mistral
	// do; the position embedding of each token is then looked up at the
	// given position. Without it the positions are 0..sequence-1, computed
	// in the graph, which is right for right-padded batches only.
	PositionIDs bool
	// FP16 makes the logits output float16 through a final Cast of the
	// float32 logits, as Config.FP16 does; the oracle then rounds its logits
	// to float16.
	FP16 bool
}

// withDefaults returns cfg with the optional fields filled in and checks it.
func (cfg CausalConfig) withDefaults() (CausalConfig, error) {
	if cfg.Intermediate == 0 {
		cfg.Intermediate = 4 * cfg.Hidden
	}
	if cfg.MaxPositions == 0 {
		cfg.MaxPositions = 1024
	}
	if cfg.Opset == 0 {
		cfg.Opset = 14
	}
	// Hidden >= 2: LayerNorm of a single feature is constant, the model
	// would ignore its input.
	return cfg, checkDims(cfg.Layers, cfg.Hidden, 2, cfg.Heads, cfg.Intermediate, cfg.MaxPositions, cfg.Opset)
}

// GenerateCausal writes a model directory like an optimum causal-lm export
// of a GPT-2 language model (GPT2LMHeadModel) with deterministic random
// weights:
//
//   - model.onnx: inputs input_ids and attention_mask (int64 [batch_size,
//     sequence_length]) and, with cfg.PositionIDs, position_ids; output
//     logits [batch_size, sequence_length, vocab] (float32, or float16 with
//     cfg.FP16), vocab being the tokenizer's (VocabSize). No past key/value
//     inputs or outputs (an encoder runs one forward pass).
//   - tokenizer.json: a byte-for-byte copy of tokenizerJSON.
//   - tokenizer_config.json: a byte-for-byte copy of the file of that name
//     beside tokenizerJSON when there is one (a stale one from an earlier
//     generation into dir is removed otherwise).
//   - config.json: a GPT2Config (model_type "gpt2", architectures
//     ["GPT2LMHeadModel"], n_embd, n_layer, n_head, n_inner, n_positions,
//     vocab_size, layer_norm_epsilon 1e-5, activation_function "gelu_new",
//     tie_word_embeddings false, bos_token_id and eos_token_id when the
//     tokenizer names them) plus "splash_test_model" with the seed, the
//     opset, whether position_ids is an input, the padding side ("right")
//     and the note "random weights, not a trained model".
//
// # Architecture
//
// GPT-2's pre-LayerNorm decoder, as torch.onnx exports it without constant
// folding: x = wte[input_ids] + wpe[positions]; per block
// x += c_proj(attn(ln_1(x))), x += mlp.c_proj(gelu_new(mlp.c_fc(ln_2(x))));
// then ln_f and the LM head, logits = ln_f(x) lm_head^T, an untied [vocab,
// hidden] matrix without bias. Dense layers are GPT-2's Conv1D, y = x W + b
// with W stored [in, out]; attn.c_attn computes Q, K and V in one MatMul and
// a Split separates them. Attention is causal: query i sees keys j <= i
// whose attention_mask is 1. The mask is an additive bias built in the
// graph, Where(j <= i and mask_j = 1, 0, float32 min) added to the scaled
// scores, the value Hugging Face uses (torch.finfo(float32).min); a query
// that sees no key (a row whose mask is all 0) gets uniform weights, never
// NaN. The MLP activation is GPT-2's "gelu_new", the tanh approximation
// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), and LayerNorm is
// decomposed (ReduceMean, Sub, Pow, ReduceMean, Add 1e-5, Sqrt, Div, Mul,
// Add), ReduceMean taking its axes as an attribute before opset 18 and as
// an input from 18.
//
// Padding must be on the right (splash pads right): without position_ids
// the graph numbers positions 0..sequence-1 from the start of the row, so a
// left-padded row would give its first real token the position of its
// padding count, and its padding queries would see no key. With
// cfg.PositionIDs the caller chooses the positions; padding positions may
// hold any valid position (Hugging Face puts 1 there).
//
// # Weights
//
// As for Generate (see the package documentation), the weights make each
// position's final hidden state stay close to its own token's embedding so
// that SPLADE pooling over the LM-head logits gives realistic sparsity:
// logit_j ~= 12 cos(h_i, dir_j) - 4.25 * 12/sqrt(H) * c_j. The word
// embeddings are random directions of norm 0.05 sqrt(H) (no padding row),
// position embeddings N(0, 0.005^2); attention and MLP output projections
// are depth-scaled (and scaled by the embedding size, since the pre-LN
// residual stream keeps the embeddings' scale). lm_head row j is
// 12/sqrt(H) * (dir_j + c_j/sqrt(H) * ones), dir_j the unit, zero-mean
// direction of wte row j plus 10% noise and c_j = 1 + N(0, (0.25/4.25)^2);
// ln_f's bias is -4.25/sqrt(H) in every feature. Because LayerNorm output
// has zero mean, the all-ones component turns that bias into the per-token
// output bias that GPT-2's LM head lacks. Conv1D weights are uniform
// (c_attn and c_fc with standard deviation 1/sqrt(fan_in)), their biases
// N(0, 0.02^2) (0.05 times that for the two output projections, which write
// into the residual stream); LayerNorm gains are 1 + N(0, 0.02^2) and
// biases N(0, 0.02^2) around their mean. Measured with CausalOracle
// (TestCausalSparsity, Cranfield documents cut at 100 tokens): 1 x 32 x 2
// with GPT-2's vocabulary and 2 x 48 x 4 with Mistral's give 50 to 90
// non-zero terms per document, every distinct token of the document among
// them, logits within +-20.
//
// Generation is deterministic: the same cfg and tokenizer always give
// byte-identical files on a given architecture.
func GenerateCausal(dir string, cfg CausalConfig, tokenizerJSON string) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	tok, vocab, err := readTokenizer(tokenizerJSON)
	if err != nil {
		return err
	}
	tokConf, bos, eos, err := tokenizerConfig(tokenizerJSON, tok)
	if err != nil {
		return err
	}
	conf, err := causalConfigJSON(cfg, vocab, bos, eos)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("testmodel: create model directory: %w", err)
	}
	if err := writeAtomic(dir, ModelFile, func(w io.Writer) error { return writeCausalModel(w, cfg, vocab) }); err != nil {
		return err
	}
	return writeDecoderFiles(dir, tok, conf, tokConf)
}

// tokenizerConfig reads the tokenizer_config.json beside tokenizerJSON
// (nil when there is none) and the BOS and EOS ids it and tok give.
func tokenizerConfig(tokenizerJSON string, tok []byte) (tokConf []byte, bos, eos *int, err error) {
	tokConf, err = os.ReadFile(filepath.Join(filepath.Dir(tokenizerJSON), TokenizerConfigFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil, fmt.Errorf("testmodel: read tokenizer config: %w", err)
	}
	if bos, eos, err = specialTokenIDs(tok, tokConf); err != nil {
		return nil, nil, nil, fmt.Errorf("testmodel: special tokens of %s: %w", tokenizerJSON, err)
	}
	return tokConf, bos, eos, nil
}

// writeDecoderFiles writes a decoder's tokenizer.json, config.json and,
// when there is one, tokenizer_config.json into dir (removing a stale one
// otherwise), each atomically, then syncs dir.
func writeDecoderFiles(dir string, tok, conf, tokConf []byte) error {
	type file struct {
		name string
		data []byte
	}
	files := []file{{TokenizerFile, tok}, {ConfigFile, conf}}
	if tokConf != nil {
		files = append(files, file{TokenizerConfigFile, tokConf})
	} else if err := removeStale(dir, TokenizerConfigFile); err != nil {
		return err
	}
	for _, f := range files {
		if err := writeAtomic(dir, f.name, func(w io.Writer) error {
			_, err := w.Write(f.data)
			return err
		}); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

// causalLayerNormEps is GPT-2's layer_norm_epsilon.
const causalLayerNormEps = 1e-5

// causalActivation is GPT-2's activation_function: GELU, tanh approximation.
const causalActivation = "gelu_new"

func causalConfigJSON(cfg CausalConfig, vocab int, bos, eos *int) ([]byte, error) {
	type testInfo struct {
		Seed        uint64 `json:"seed"`
		Opset       int    `json:"opset"`
		PositionIDs bool   `json:"position_ids_input"`
		PaddingSide string `json:"padding_side"`
		LogitsDType string `json:"logits_dtype,omitempty"`
		MaskValue   string `json:"attention_mask_value"`
		Note        string `json:"note"`
	}
	c := struct {
		Architectures              []string `json:"architectures"`
		ModelType                  string   `json:"model_type"`
		VocabSize                  int      `json:"vocab_size"`
		NEmbd                      int      `json:"n_embd"`
		NLayer                     int      `json:"n_layer"`
		NHead                      int      `json:"n_head"`
		NInner                     int      `json:"n_inner"`
		NPositions                 int      `json:"n_positions"`
		NCtx                       int      `json:"n_ctx"`
		LayerNormEpsilon           float64  `json:"layer_norm_epsilon"`
		ActivationFunction         string   `json:"activation_function"`
		ScaleAttnWeights           bool     `json:"scale_attn_weights"`
		TieWordEmbeddings          bool     `json:"tie_word_embeddings"`
		BOSTokenID                 *int     `json:"bos_token_id,omitempty"`
		EOSTokenID                 *int     `json:"eos_token_id,omitempty"`
		UseCache                   bool     `json:"use_cache"`
		ReorderAndUpcastAttn       bool     `json:"reorder_and_upcast_attn"`
		ScaleAttnByInverseLayerIdx bool     `json:"scale_attn_by_inverse_layer_idx"`
		SplashTestModel            testInfo `json:"splash_test_model"`
	}{
		Architectures:      []string{"GPT2LMHeadModel"},
		ModelType:          "gpt2",
		VocabSize:          vocab,
		NEmbd:              cfg.Hidden,
		NLayer:             cfg.Layers,
		NHead:              cfg.Heads,
		NInner:             cfg.Intermediate,
		NPositions:         cfg.MaxPositions,
		NCtx:               cfg.MaxPositions,
		LayerNormEpsilon:   causalLayerNormEps,
		ActivationFunction: causalActivation,
		ScaleAttnWeights:   true,
		BOSTokenID:         bos,
		EOSTokenID:         eos,
		SplashTestModel: testInfo{
			Seed:        cfg.Seed,
			Opset:       cfg.Opset,
			PositionIDs: cfg.PositionIDs,
			PaddingSide: "right",
			MaskValue:   "float32 min",
			Note:        "random weights, not a trained model",
		},
	}
	if cfg.FP16 {
		c.SplashTestModel.LogitsDType = "float16"
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("testmodel: encode config.json: %w", err)
	}
	return append(b, '\n'), nil
}

// specialTokenIDs finds the ids of the beginning- and end-of-sequence
// tokens: those that tokenizer_config.json names (bos_token, eos_token, a
// string or an AddedToken object), else the added token among the common
// names ("<s>", "<|begin_of_text|>", "<|endoftext|>" for bos; "</s>",
// "<|end_of_text|>", "<|endoftext|>" for eos). A name is looked up among the
// added tokens, then in the model vocabulary. nil means not found.
func specialTokenIDs(tokenizerJSON, tokenizerConfig []byte) (bos, eos *int, err error) {
	var tj struct {
		Model struct {
			Vocab json.RawMessage `json:"vocab"`
		} `json:"model"`
		AddedTokens []struct {
			ID      int    `json:"id"`
			Content string `json:"content"`
		} `json:"added_tokens"`
	}
	if err := json.Unmarshal(tokenizerJSON, &tj); err != nil {
		return nil, nil, fmt.Errorf("parse tokenizer.json: %w", err)
	}
	added := make(map[string]int, len(tj.AddedTokens))
	for _, t := range tj.AddedTokens {
		added[t.Content] = t.ID
	}
	var vocab map[string]int // nil for a Unigram list: added tokens only
	_ = json.Unmarshal(tj.Model.Vocab, &vocab)
	lookup := func(name string) *int {
		if id, ok := added[name]; ok {
			return &id
		}
		if id, ok := vocab[name]; ok {
			return &id
		}
		return nil
	}

	var conf struct {
		BOS json.RawMessage `json:"bos_token"`
		EOS json.RawMessage `json:"eos_token"`
	}
	if tokenizerConfig != nil {
		if err := json.Unmarshal(tokenizerConfig, &conf); err != nil {
			return nil, nil, fmt.Errorf("parse %s: %w", TokenizerConfigFile, err)
		}
	}
	fromConfig := func(raw json.RawMessage, field string) (*int, bool, error) {
		if len(raw) == 0 || string(raw) == "null" {
			return nil, false, nil
		}
		var name string
		if err := json.Unmarshal(raw, &name); err != nil {
			var obj struct {
				Content string `json:"content"`
			}
			if err := json.Unmarshal(raw, &obj); err != nil {
				return nil, false, fmt.Errorf("%s %s is neither a string nor an object with content", TokenizerConfigFile, field)
			}
			name = obj.Content
		}
		id := lookup(name)
		if id == nil {
			return nil, false, fmt.Errorf("%s %s %q is not a token of tokenizer.json", TokenizerConfigFile, field, name)
		}
		return id, true, nil
	}
	guess := func(names ...string) *int {
		for _, n := range names {
			if id, ok := added[n]; ok {
				return &id
			}
		}
		return nil
	}
	bos, ok, err := fromConfig(conf.BOS, "bos_token")
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		bos = guess("<s>", "<|begin_of_text|>", "<|endoftext|>")
	}
	eos, ok, err = fromConfig(conf.EOS, "eos_token")
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		eos = guess("</s>", "<|end_of_text|>", "<|endoftext|>")
	}
	return bos, eos, nil
}

// writeCausalModel streams the causal model's ModelProto to w.
func writeCausalModel(w io.Writer, cfg CausalConfig, vocab int) error {
	nodes, consts := buildCausalGraph(cfg)
	logitsElem, logitsNote := onnxpb.TensorProto_FLOAT, ""
	if cfg.FP16 {
		logitsElem, logitsNote = onnxpb.TensorProto_FLOAT16, " logits=float16"
	}
	names := []string{InputIDs, AttentionMask}
	if cfg.PositionIDs {
		names = append(names, InputPositionIDs)
	}
	model, graph := modelProto("GPT2LMHeadModel", cfg.Opset, nodes, consts, names, logitsElem, vocab,
		fmt.Sprintf("splash test model: GPT2LMHeadModel (causal LM) with random weights (not a trained model); "+
			"layers=%d hidden=%d heads=%d intermediate=%d seed=%d position_ids=%t%s",
			cfg.Layers, cfg.Hidden, cfg.Heads, cfg.Intermediate, cfg.Seed, cfg.PositionIDs, logitsNote))
	return streamModelProto(w, model, graph, cfg.Seed, causalWeightSpecs(cfg, vocab))
}
