package testmodel

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/splash-encode/splash/encode/onnxpb"
	"github.com/splash-encode/splash/encode/safetensors"
)

// Llama families (config.json model_type) that GenerateLlama writes.
const (
	FamilyLlama   = "llama"
	FamilyMistral = "mistral"
)

// SafeTensorsIndexFile is the index of a sharded checkpoint, as Hugging
// Face's save_pretrained writes it: {"metadata": {"total_size": bytes},
// "weight_map": {tensor name: shard file}}.
const SafeTensorsIndexFile = "model.safetensors.index.json"

// LlamaRopeScaling is config.json's rope_scaling of rope_type "llama3"
// (Llama 3.1 and later): the long-context rescaling of the rotary
// frequencies (transformers' _compute_llama3_parameters).
type LlamaRopeScaling struct {
	Factor               float64 // factor (Llama 3.1: 8)
	LowFreqFactor        float64 // low_freq_factor (1)
	HighFreqFactor       float64 // high_freq_factor (4)
	OriginalMaxPositions int     // original_max_position_embeddings (8192)
}

// Llama31RopeScaling returns the rope_scaling of Llama 3.1, 3.2 and 3.3.
func Llama31RopeScaling() LlamaRopeScaling {
	return LlamaRopeScaling{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 8192}
}

// LlamaConfig describes a generated Llama- or Mistral-shaped decoder
// (LlamaForCausalLM, MistralForCausalLM): RMSNorm, rotary position
// embeddings, grouped-query attention, a SwiGLU MLP and an LM head over the
// vocabulary, with deterministic random weights. Zero values of the
// optional fields take the documented defaults.
type LlamaConfig struct {
	Family       string // FamilyLlama (default) or FamilyMistral
	Layers       int    // decoder layers, >= 1
	Hidden       int    // hidden size, a multiple of Heads, >= 4
	Heads        int    // query heads; Hidden/Heads (head_dim) must be even
	KVHeads      int    // num_key_value_heads, dividing Heads; default Heads
	Intermediate int    // MLP size; default 3*Hidden
	MaxPositions int    // max_position_embeddings; default 2048
	RopeTheta    float64
	// RopeScaling is nil (plain RoPE) or a llama3 rescaling.
	RopeScaling *LlamaRopeScaling
	RMSNormEps  float64 // default 1e-5
	// Tied makes the LM head the word embeddings (tie_word_embeddings):
	// no lm_head.weight is stored.
	Tied bool
	// Vocab is vocab_size: 0 takes the tokenizer's size; a larger value
	// pads the embeddings and the LM head with further random rows and the
	// written tokenizer.json with as many ids (so that, as in a real
	// checkpoint, the tokenizer covers the model's vocabulary): HighIDs
	// become added tokens that text can produce (HighIDToken), the others
	// vocabulary entries that no text produces; a smaller one is refused.
	Vocab int
	Seed  uint64
	Opset int // default 14, 14..21
	// Shards is the number of safetensors files: 1 (default) writes
	// model.safetensors; more write model-0000k-of-0000n.safetensors and
	// model.safetensors.index.json as Hugging Face shards checkpoints.
	Shards int
	// SafeTensorsDType is the dtype on disk: safetensors.F32 (default),
	// BF16 or F16. Every weight is rounded to it before it is written,
	// to model.onnx (float32) as well: both files hold the same values.
	SafeTensorsDType safetensors.DType
	// SkipONNX writes no model.onnx (a GPU-only directory).
	SkipONNX bool
	// Bidirectional writes the ONNX graph without the causal mask (the
	// bidirectional-attention variant of CSPLADE); config.json records it
	// under splash_test_model.attention.
	Bidirectional bool
}

// withDefaults returns cfg with the optional fields filled in and checks it.
func (cfg LlamaConfig) withDefaults() (LlamaConfig, error) {
	if cfg.Family == "" {
		cfg.Family = FamilyLlama
	}
	if cfg.KVHeads == 0 {
		cfg.KVHeads = cfg.Heads
	}
	if cfg.Intermediate == 0 {
		cfg.Intermediate = 3 * cfg.Hidden
	}
	if cfg.MaxPositions == 0 {
		cfg.MaxPositions = 2048
	}
	if cfg.RopeTheta == 0 {
		cfg.RopeTheta = 10000
	}
	if cfg.RMSNormEps == 0 {
		cfg.RMSNormEps = 1e-5
	}
	if cfg.Opset == 0 {
		cfg.Opset = 14
	}
	if cfg.Shards == 0 {
		cfg.Shards = 1
	}
	if cfg.SafeTensorsDType == "" {
		cfg.SafeTensorsDType = safetensors.F32
	}
	if cfg.Family != FamilyLlama && cfg.Family != FamilyMistral {
		return cfg, fmt.Errorf("%w: Family %q, want %q or %q", ErrConfig, cfg.Family, FamilyLlama, FamilyMistral)
	}
	if err := checkDims(cfg.Layers, cfg.Hidden, 4, cfg.Heads, cfg.Intermediate, cfg.MaxPositions, cfg.Opset); err != nil {
		return cfg, err
	}
	switch {
	case cfg.KVHeads < 1 || cfg.Heads%cfg.KVHeads != 0:
		return cfg, fmt.Errorf("%w: KVHeads %d does not divide Heads %d", ErrConfig, cfg.KVHeads, cfg.Heads)
	case (cfg.Hidden/cfg.Heads)%2 != 0:
		return cfg, fmt.Errorf("%w: head_dim %d (Hidden %d / Heads %d) is odd; rotary embeddings need it even",
			ErrConfig, cfg.Hidden/cfg.Heads, cfg.Hidden, cfg.Heads)
	case !(cfg.RopeTheta > 1) || math.IsInf(cfg.RopeTheta, 0):
		return cfg, fmt.Errorf("%w: RopeTheta %v, want > 1", ErrConfig, cfg.RopeTheta)
	case !(cfg.RMSNormEps > 0):
		return cfg, fmt.Errorf("%w: RMSNormEps %v, want > 0", ErrConfig, cfg.RMSNormEps)
	case cfg.Vocab < 0:
		return cfg, fmt.Errorf("%w: Vocab %d, want >= 0", ErrConfig, cfg.Vocab)
	case cfg.Shards < 1:
		return cfg, fmt.Errorf("%w: Shards %d, want >= 1", ErrConfig, cfg.Shards)
	case cfg.SkipONNX && cfg.Bidirectional:
		return cfg, fmt.Errorf("%w: Bidirectional shapes the ONNX graph, which SkipONNX does not write", ErrConfig)
	}
	switch cfg.SafeTensorsDType {
	case safetensors.F32, safetensors.BF16, safetensors.F16:
	default:
		return cfg, fmt.Errorf("%w: SafeTensorsDType %q, want %q, %q or %q", ErrConfig, cfg.SafeTensorsDType,
			safetensors.F32, safetensors.BF16, safetensors.F16)
	}
	if s := cfg.RopeScaling; s != nil {
		if !(s.Factor >= 1) || !(s.LowFreqFactor > 0) || !(s.HighFreqFactor > s.LowFreqFactor) || s.OriginalMaxPositions < 1 {
			return cfg, fmt.Errorf("%w: RopeScaling %+v: want factor >= 1, 0 < low_freq_factor < high_freq_factor, original_max_position_embeddings >= 1",
				ErrConfig, *s)
		}
	}
	if n := len(llamaWeightNames(cfg)); cfg.Shards > n {
		return cfg, fmt.Errorf("%w: Shards %d, more than the %d tensors", ErrConfig, cfg.Shards, n)
	}
	return cfg, nil
}

// headDim is the size of one attention head.
func (cfg LlamaConfig) headDim() int { return cfg.Hidden / cfg.Heads }

// GenerateLlama writes a model directory like a Hugging Face checkpoint of
// a Llama- or Mistral-shaped causal LM plus its optimum text-generation
// export, with deterministic random weights:
//
//   - config.json: a LlamaConfig or MistralConfig under Hugging Face's
//     names (architectures ["LlamaForCausalLM"] or ["MistralForCausalLM"],
//     model_type, hidden_size, intermediate_size, num_hidden_layers,
//     num_attention_heads, num_key_value_heads, head_dim, hidden_act
//     "silu", max_position_embeddings, rms_norm_eps, rope_theta,
//     rope_scaling ({"rope_type": "llama3", ...} or null),
//     tie_word_embeddings, vocab_size, bos_token_id, eos_token_id,
//     torch_dtype) plus "splash_test_model" (seed, opset, attention
//     "causal" or "bidirectional", padding side, shards, note).
//   - tokenizer.json and, when it exists beside tokenizerJSON,
//     tokenizer_config.json: byte-for-byte copies, as GenerateCausal makes.
//   - model.safetensors, or cfg.Shards files model-0000k-of-0000n.safetensors
//     with model.safetensors.index.json: the state dict under Hugging Face's
//     names (model.embed_tokens.weight; model.layers.N.input_layernorm.weight,
//     .self_attn.{q,k,v,o}_proj.weight, .post_attention_layernorm.weight,
//     .mlp.{gate,up,down}_proj.weight; model.norm.weight; lm_head.weight
//     unless cfg.Tied), Linear weights [out, in], in cfg.SafeTensorsDType.
//   - model.onnx (unless cfg.SkipONNX): optimum's text-generation layout
//     without past key values: int64 [batch_size, sequence_length] inputs
//     input_ids, attention_mask and position_ids; output logits
//     [batch_size, sequence_length, vocab] float32. Its initializers hold
//     the same values as the safetensors, under the same names and layouts
//     (the graph transposes the Linear weights), plus
//     model.rotary_emb.inv_freq, the float32 rotary frequencies.
//
// Stale weight files of an earlier generation into dir (model.onnx,
// model.safetensors, shards and index) that this cfg does not write are
// removed.
//
// # Architecture
//
// Hugging Face's LlamaForCausalLM (MistralForCausalLM is the same
// computation), as torch.onnx exports its eager attention: x =
// embed_tokens[input_ids]; per layer x += o_proj(attn(RMSNorm(x))),
// x += down_proj(silu(gate_proj(h)) * up_proj(h)) with h = RMSNorm(x);
// then the final RMSNorm and lm_head (the embeddings when tied), no biases
// anywhere. RMSNorm is x / sqrt(mean(x^2) + rms_norm_eps) * weight (Pow,
// ReduceMean, Add, Sqrt, Div, Mul). Rotary embeddings follow HF's
// rotate_half convention: freqs = float(position_ids) * inv_freq,
// emb = concat(freqs, freqs), q' = q cos(emb) + rotate_half(q) sin(emb) with
// rotate_half(x) = concat(-x2, x1); inv_freq = 1/rope_theta^(2j/head_dim),
// rescaled as transformers' _compute_llama3_parameters does with
// rope_scaling llama3, computed in float32. Grouped-query attention repeats
// each KV head for its Heads/KVHeads query heads (repeat_kv). Scores
// q k^T * head_dim^-0.5 get an additive mask, float32 min where a key is
// not allowed: keys whose attention_mask is 0, and with causal attention
// (the default) keys after the query; softmax, then the context. Padding
// must be on the right; position_ids are the caller's (splash feeds
// 0..n-1, and 1 at padding, as Hugging Face does).
//
// # Weights
//
// As for the other generated models (see GenerateCausal), a position's
// final hidden state stays close to its own token's embedding and the LM
// head gives logit_j ~= 12 cos(h_i, dir_j) - 4.75 * 12/sqrt(H) * c_j:
// realistic SPLADE sparsity. Llama has no bias to carry the -4.75 offset,
// so the last hidden feature does: every embedding row is 0.05 sqrt(H)
// (u_j, c_j), u_j a random unit vector over the first H-1 features and
// c_j = 1 + N(0, (0.25/4.75)^2). Untied, lm_head row j is 12 sqrt(2/H)
// (d_j, -4.75/sqrt(H) c'_j), d_j the direction of u_j plus 10% noise;
// tied, the final norm's weight is G = 12 sqrt(2) / (0.05 H) on the first
// H-1 features and -4.75 G / sqrt(H) on the last. The projections are
// uniform with standard deviation 1/sqrt(fan_in), o_proj and down_proj
// depth-scaled so that all sublayers together add a relative squared norm
// of 0.15 to the residual stream; RMSNorm weights are 1 + N(0, 0.02^2).
// Measured with LlamaOracle (TestLlamaSparsity, Cranfield documents cut at
// 100 tokens, Mistral's vocabulary): 2 x 48 x 4 models give 100 to 250
// non-zero terms per document, nearly every document token among them,
// logits within +-21. Hidden sizes of 48 and more keep a token's own logit
// reliably positive.
func GenerateLlama(dir string, cfg LlamaConfig, tokenizerJSON string) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	tok, tokVocab, err := readTokenizer(tokenizerJSON)
	if err != nil {
		return err
	}
	vocab := tokVocab
	if cfg.Vocab != 0 {
		if cfg.Vocab < tokVocab {
			return fmt.Errorf("%w: Vocab %d is smaller than the %d ids of %s", ErrConfig, cfg.Vocab, tokVocab, tokenizerJSON)
		}
		vocab = cfg.Vocab
	}
	if vocab > tokVocab {
		// Grow the tokenizer with the model, as a real checkpoint's covers
		// its vocab_size; a few high ids stay reachable from text
		// (HighIDToken).
		if tok, err = padTokenizer(tok, tokVocab, vocab); err != nil {
			return err
		}
	}
	tokConf, bos, eos, err := tokenizerConfig(tokenizerJSON, tok)
	if err != nil {
		return err
	}
	conf, err := llamaConfigJSON(cfg, vocab, bos, eos)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("testmodel: create model directory: %w", err)
	}
	if cfg.SkipONNX {
		if err := removeStale(dir, ModelFile); err != nil {
			return err
		}
	} else if err := writeAtomic(dir, ModelFile, func(w io.Writer) error { return writeLlamaModel(w, cfg, vocab) }); err != nil {
		return err
	}
	if err := writeLlamaSafeTensors(dir, cfg, vocab); err != nil {
		return err
	}
	return writeDecoderFiles(dir, tok, conf, tokConf)
}

// llamaArchitecture is config.json's architectures entry of a family.
func llamaArchitecture(family string) string {
	if family == FamilyMistral {
		return "MistralForCausalLM"
	}
	return "LlamaForCausalLM"
}

// llamaRopeScalingJSON is rope_scaling as transformers writes it.
type llamaRopeScalingJSON struct {
	Factor               float64 `json:"factor"`
	HighFreqFactor       float64 `json:"high_freq_factor"`
	LowFreqFactor        float64 `json:"low_freq_factor"`
	OriginalMaxPositions int     `json:"original_max_position_embeddings"`
	RopeType             string  `json:"rope_type"`
}

// llamaJSON is config.json of a generated Llama or Mistral model.
type llamaJSON struct {
	Architectures         []string              `json:"architectures"`
	ModelType             string                `json:"model_type"`
	VocabSize             int                   `json:"vocab_size"`
	HiddenSize            int                   `json:"hidden_size"`
	IntermediateSize      int                   `json:"intermediate_size"`
	NumHiddenLayers       int                   `json:"num_hidden_layers"`
	NumAttentionHeads     int                   `json:"num_attention_heads"`
	NumKeyValueHeads      int                   `json:"num_key_value_heads"`
	HeadDim               int                   `json:"head_dim"`
	HiddenAct             string                `json:"hidden_act"`
	MaxPositionEmbeddings int                   `json:"max_position_embeddings"`
	RMSNormEps            float64               `json:"rms_norm_eps"`
	RopeTheta             float64               `json:"rope_theta"`
	RopeScaling           *llamaRopeScalingJSON `json:"rope_scaling"`
	AttentionBias         bool                  `json:"attention_bias"`
	AttentionDropout      float64               `json:"attention_dropout"`
	MLPBias               *bool                 `json:"mlp_bias,omitempty"`       // llama
	SlidingWindow         json.RawMessage       `json:"sliding_window,omitempty"` // mistral: null (full attention)
	PretrainingTP         *int                  `json:"pretraining_tp,omitempty"` // llama
	TieWordEmbeddings     bool                  `json:"tie_word_embeddings"`
	BOSTokenID            *int                  `json:"bos_token_id,omitempty"`
	EOSTokenID            *int                  `json:"eos_token_id,omitempty"`
	InitializerRange      float64               `json:"initializer_range"`
	TorchDType            string                `json:"torch_dtype"`
	UseCache              bool                  `json:"use_cache"`
	SplashTestModel       llamaTestInfo         `json:"splash_test_model"`
}

// llamaTestInfo is the "splash_test_model" block of a Llama config.json.
type llamaTestInfo struct {
	Seed             uint64 `json:"seed"`
	Opset            int    `json:"opset"`
	Attention        string `json:"attention"` // "causal" or "bidirectional" (the ONNX graph's)
	PaddingSide      string `json:"padding_side"`
	SafeTensorsDType string `json:"safetensors_dtype"`
	Shards           int    `json:"safetensors_shards"`
	NoONNX           bool   `json:"no_onnx,omitempty"`
	MaskValue        string `json:"attention_mask_value"`
	Note             string `json:"note"`
}

// llamaTorchDType names a safetensors dtype as torch_dtype does.
func llamaTorchDType(dt safetensors.DType) string {
	switch dt {
	case safetensors.BF16:
		return "bfloat16"
	case safetensors.F16:
		return "float16"
	}
	return "float32"
}

func llamaConfigJSON(cfg LlamaConfig, vocab int, bos, eos *int) ([]byte, error) {
	c := llamaJSON{
		Architectures:         []string{llamaArchitecture(cfg.Family)},
		ModelType:             cfg.Family,
		VocabSize:             vocab,
		HiddenSize:            cfg.Hidden,
		IntermediateSize:      cfg.Intermediate,
		NumHiddenLayers:       cfg.Layers,
		NumAttentionHeads:     cfg.Heads,
		NumKeyValueHeads:      cfg.KVHeads,
		HeadDim:               cfg.headDim(),
		HiddenAct:             "silu",
		MaxPositionEmbeddings: cfg.MaxPositions,
		RMSNormEps:            cfg.RMSNormEps,
		RopeTheta:             cfg.RopeTheta,
		TieWordEmbeddings:     cfg.Tied,
		BOSTokenID:            bos,
		EOSTokenID:            eos,
		InitializerRange:      0.02,
		TorchDType:            llamaTorchDType(cfg.SafeTensorsDType),
		SplashTestModel: llamaTestInfo{
			Seed:             cfg.Seed,
			Opset:            cfg.Opset,
			Attention:        "causal",
			PaddingSide:      "right",
			SafeTensorsDType: string(cfg.SafeTensorsDType),
			Shards:           cfg.Shards,
			NoONNX:           cfg.SkipONNX,
			MaskValue:        "float32 min",
			Note:             "random weights, not a trained model",
		},
	}
	if cfg.Bidirectional {
		c.SplashTestModel.Attention = "bidirectional"
	}
	if cfg.Family == FamilyLlama {
		f, one := false, 1
		c.MLPBias, c.PretrainingTP = &f, &one
	} else {
		c.SlidingWindow = json.RawMessage("null")
	}
	if s := cfg.RopeScaling; s != nil {
		c.RopeScaling = &llamaRopeScalingJSON{
			Factor: s.Factor, LowFreqFactor: s.LowFreqFactor, HighFreqFactor: s.HighFreqFactor,
			OriginalMaxPositions: s.OriginalMaxPositions, RopeType: "llama3",
		}
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("testmodel: encode config.json: %w", err)
	}
	return append(b, '\n'), nil
}

// Hugging Face state-dict names of LlamaForCausalLM / MistralForCausalLM.
const (
	llamaNameEmbed  = "model.embed_tokens.weight"
	llamaNameNorm   = "model.norm.weight"
	llamaNameLMHead = "lm_head.weight"
	// llamaNameInvFreq is the rotary frequencies' initializer in model.onnx
	// (a buffer, not in the state dict).
	llamaNameInvFreq = "model.rotary_emb.inv_freq"
)

func llamaLayer(l int, suffix string) string {
	return fmt.Sprintf("model.layers.%d.%s", l, suffix)
}

// llamaLayerParts are a layer's parameters in state-dict order.
var llamaLayerParts = []string{
	"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
	"mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
	"input_layernorm.weight", "post_attention_layernorm.weight",
}

// llamaWeightNames lists the state dict's names in order (as
// llamaWeightSpecs does, without building the fills).
func llamaWeightNames(cfg LlamaConfig) []string {
	names := []string{llamaNameEmbed}
	for l := 0; l < cfg.Layers; l++ {
		for _, p := range llamaLayerParts {
			names = append(names, llamaLayer(l, p))
		}
	}
	names = append(names, llamaNameNorm)
	if !cfg.Tied {
		names = append(names, llamaNameLMHead)
	}
	return names
}

// Constants of the Llama weight distribution (GenerateLlama documents it).
const (
	// llamaBiasFeature is the relative size of the bias feature (the last
	// one) next to the unit word direction in an embedding row.
	llamaBiasFeature = 1.0
	// llamaBiasSigmas puts the output bias that many standard deviations
	// of a random token's logit below zero (biasSigmas of the other models
	// plus half a deviation: the bias feature, normalised with the rest of
	// the hidden state, weakens through the layers).
	llamaBiasSigmas = biasSigmas + 0.5
	// swigluSecondMoment is E[(silu(g) u)^2] for independent g, u ~ N(0, 1).
	swigluSecondMoment = 0.3558
)

// llamaEmbedFill fills embedding row j with wordStd sqrt(H) (u_j, c_j).
func llamaEmbedFill(h int) func(*rng, int, []float32) {
	norm := wordStd * math.Sqrt(float64(h))
	return func(r *rng, _ int, dst []float32) {
		n := len(dst) - 1
		v := make([]float64, n)
		var ss float64
		for k := range v {
			v[k] = r.normal()
			ss += v[k] * v[k]
		}
		s := norm / math.Sqrt(ss)
		for k, x := range v {
			dst[k] = float32(x * s)
		}
		c := 1 + biasJitter/llamaBiasSigmas*r.normal()
		dst[n] = float32(norm * llamaBiasFeature * c)
	}
}

// llamaLMHeadFill fills the untied LM head row j with
// 12 sqrt((1+b^2)/H) (d_j, -4.75/(b sqrt(H)) c'_j): d_j is the unit
// direction of embedding row j's word part (redrawn with the embedding's
// own generator) plus causalLMHeadNoise relative noise, normalised.
func llamaLMHeadFill(embed tensorSpec, seed uint64) func(*rng, int, []float32) {
	embedSeed := tensorSeed(seed, embed.name)
	return func(r *rng, row int, dst []float32) {
		h := len(dst)
		n := h - 1
		e := make([]float32, h)
		embed.fill(rowRNG(embedSeed, row), row, e)
		var es float64
		for _, x := range e[:n] {
			es += float64(x) * float64(x)
		}
		scale := 0.0
		if es > 0 {
			scale = math.Sqrt(float64(n) / es)
		}
		v := make([]float64, n)
		var ss float64
		for k := range v {
			v[k] = float64(e[k])*scale + causalLMHeadNoise*r.normal()
			ss += v[k] * v[k]
		}
		s := logitScale * math.Sqrt((1+llamaBiasFeature*llamaBiasFeature)/float64(h))
		inv := 1 / math.Sqrt(ss)
		for k, x := range v {
			dst[k] = float32(s * x * inv)
		}
		c := 1 + biasJitter/llamaBiasSigmas*r.normal()
		dst[n] = float32(-s * llamaBiasSigmas / (llamaBiasFeature * math.Sqrt(float64(h))) * c)
	}
}

// llamaTiedNormFill is the final norm's weight of a tied model: G on the
// word features, -4.75 G / (b^2 sqrt(H)) on the bias feature, each with
// lnJitter relative jitter.
func llamaTiedNormFill(h int) func(*rng, int, []float32) {
	g := logitScale * math.Sqrt(1+llamaBiasFeature*llamaBiasFeature) / (wordStd * float64(h))
	last := -g * llamaBiasSigmas / (llamaBiasFeature * llamaBiasFeature * math.Sqrt(float64(h)))
	return func(r *rng, _ int, dst []float32) {
		for k := range dst {
			base := g
			if k == len(dst)-1 {
				base = last
			}
			dst[k] = float32(base * (1 + lnJitter*r.normal()))
		}
	}
}

// roundedFill wraps fill so that every value is rounded to dt (BF16 or
// F16; F32 leaves fill as it is).
func roundedFill(dt safetensors.DType, fill func(*rng, int, []float32)) func(*rng, int, []float32) {
	switch dt {
	case safetensors.BF16:
		return func(r *rng, row int, dst []float32) {
			fill(r, row, dst)
			for k, v := range dst {
				dst[k] = safetensors.BFloat16ToFloat32(safetensors.Float32ToBFloat16(v))
			}
		}
	case safetensors.F16:
		return func(r *rng, row int, dst []float32) {
			fill(r, row, dst)
			for k, v := range dst {
				dst[k] = safetensors.Float16ToFloat32(safetensors.Float32ToFloat16(v))
			}
		}
	}
	return fill
}

// llamaWeightSpecs lists every parameter in state-dict order, each rounded
// to cfg.SafeTensorsDType. GenerateLlama documents the distribution.
func llamaWeightSpecs(cfg LlamaConfig, vocab int) []tensorSpec {
	h, inter := int64(cfg.Hidden), int64(cfg.Intermediate)
	d := int64(cfg.headDim())
	qDim, kvDim := int64(cfg.Heads)*d, int64(cfg.KVHeads)*d
	hf := float64(cfg.Hidden)
	// The residual stream has per-feature scale rs; each of the 2*Layers
	// sublayers adds residualBudget/(2*Layers) of its squared norm.
	rs := wordStd * math.Sqrt(1+llamaBiasFeature*llamaBiasFeature)
	eps := rs * math.Sqrt(residualBudget/float64(2*cfg.Layers))
	unit := 1 / math.Sqrt(hf)
	embed := tensorSpec{llamaNameEmbed, []int64{int64(vocab), h}, llamaEmbedFill(cfg.Hidden)}
	specs := []tensorSpec{embed}
	norm := func(name string) tensorSpec { return tensorSpec{name, []int64{h}, normalFill(1, lnJitter)} }
	for l := 0; l < cfg.Layers; l++ {
		specs = append(specs,
			tensorSpec{llamaLayer(l, "self_attn.q_proj.weight"), []int64{qDim, h}, uniformFill(unit)},
			tensorSpec{llamaLayer(l, "self_attn.k_proj.weight"), []int64{kvDim, h}, uniformFill(unit)},
			tensorSpec{llamaLayer(l, "self_attn.v_proj.weight"), []int64{kvDim, h}, uniformFill(unit)},
			tensorSpec{llamaLayer(l, "self_attn.o_proj.weight"), []int64{h, qDim}, uniformFill(eps / math.Sqrt(float64(qDim)))},
			tensorSpec{llamaLayer(l, "mlp.gate_proj.weight"), []int64{inter, h}, uniformFill(unit)},
			tensorSpec{llamaLayer(l, "mlp.up_proj.weight"), []int64{inter, h}, uniformFill(unit)},
			tensorSpec{llamaLayer(l, "mlp.down_proj.weight"), []int64{h, inter},
				uniformFill(eps / math.Sqrt(swigluSecondMoment*float64(cfg.Intermediate)))},
			norm(llamaLayer(l, "input_layernorm.weight")),
			norm(llamaLayer(l, "post_attention_layernorm.weight")),
		)
	}
	if cfg.Tied {
		specs = append(specs, tensorSpec{llamaNameNorm, []int64{h}, llamaTiedNormFill(cfg.Hidden)})
	} else {
		specs = append(specs, norm(llamaNameNorm),
			tensorSpec{llamaNameLMHead, []int64{int64(vocab), h}, llamaLMHeadFill(embed, cfg.Seed)})
	}
	for i := range specs {
		specs[i].fill = roundedFill(cfg.SafeTensorsDType, specs[i].fill)
	}
	return specs
}

// writeLlamaModel streams the ONNX model to w.
func writeLlamaModel(w io.Writer, cfg LlamaConfig, vocab int) error {
	nodes, consts := buildLlamaGraph(cfg)
	arch := llamaArchitecture(cfg.Family)
	attention := "causal"
	if cfg.Bidirectional {
		attention = "bidirectional"
	}
	model, graph := modelProto(arch, cfg.Opset, nodes, consts, []string{InputIDs, AttentionMask, InputPositionIDs},
		onnxpb.TensorProto_FLOAT, vocab,
		fmt.Sprintf("splash test model: %s with random weights (not a trained model); "+
			"layers=%d hidden=%d heads=%d kv_heads=%d intermediate=%d vocab=%d tied=%t attention=%s seed=%d",
			arch, cfg.Layers, cfg.Hidden, cfg.Heads, cfg.KVHeads, cfg.Intermediate, vocab, cfg.Tied, attention, cfg.Seed))
	return streamModelProto(w, model, graph, cfg.Seed, llamaWeightSpecs(cfg, vocab))
}

// llamaShardName is the name of shard k (1-based) of n, as Hugging Face
// names them.
func llamaShardName(k, n int) string {
	return fmt.Sprintf("model-%05d-of-%05d.safetensors", k, n)
}

// isShardFile reports whether name looks like a shard of a sharded
// safetensors checkpoint (model-*-of-*.safetensors).
func isShardFile(name string) bool {
	ok, _ := filepath.Match("model-*-of-*.safetensors", name)
	return ok
}

// llamaShardOf assigns each spec (in order) to one of n shards: contiguous
// runs of about equal bytes, none empty.
func llamaShardOf(specs []tensorSpec, n, elemSize int) []int {
	var total int64
	for _, s := range specs {
		total += int64(s.numel() * elemSize)
	}
	shard := make([]int, len(specs))
	cur, inCur := 0, 0
	var before int64
	for i, s := range specs {
		if cur < n-1 && inCur > 0 &&
			(before*int64(n) >= int64(cur+1)*total || len(specs)-i == n-1-cur) {
			cur++
			inCur = 0
		}
		shard[i] = cur
		inCur++
		before += int64(s.numel() * elemSize)
	}
	return shard
}

// writeLlamaSafeTensors writes the safetensors file(s) and, when sharded,
// the index, removing weight files of another layout left in dir.
func writeLlamaSafeTensors(dir string, cfg LlamaConfig, vocab int) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("testmodel: list %s: %w", dir, err)
	}
	keep := map[string]bool{}
	if cfg.Shards == 1 {
		keep[SafeTensorsFile] = true
	} else {
		keep[SafeTensorsIndexFile] = true
		for k := 1; k <= cfg.Shards; k++ {
			keep[llamaShardName(k, cfg.Shards)] = true
		}
	}
	for _, e := range entries {
		n := e.Name()
		if (n == SafeTensorsFile || n == SafeTensorsIndexFile || isShardFile(n)) && !keep[n] {
			if err := removeStale(dir, n); err != nil {
				return err
			}
		}
	}

	specs := llamaWeightSpecs(cfg, vocab)
	dt := cfg.SafeTensorsDType
	shardOf := llamaShardOf(specs, cfg.Shards, dt.Size())
	weightMap := make(map[string]string, len(specs))
	var total int64
	for k := 0; k < cfg.Shards; k++ {
		var group []tensorSpec
		for i, s := range specs {
			if shardOf[i] == k {
				group = append(group, s)
			}
		}
		name := SafeTensorsFile
		if cfg.Shards > 1 {
			name = llamaShardName(k+1, cfg.Shards)
		}
		for _, s := range group {
			weightMap[s.name] = name
			total += int64(s.numel() * dt.Size())
		}
		if err := writeAtomic(dir, name, func(w io.Writer) error { return writeSpecsSafeTensors(w, cfg.Seed, dt, group) }); err != nil {
			return err
		}
	}
	if cfg.Shards == 1 {
		return nil
	}
	index := struct {
		Metadata  map[string]int64  `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}{map[string]int64{"total_size": total}, weightMap}
	b, err := json.MarshalIndent(index, "", "  ")
	if err != nil {
		return fmt.Errorf("testmodel: encode %s: %w", SafeTensorsIndexFile, err)
	}
	return writeAtomic(dir, SafeTensorsIndexFile, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// writeSpecsSafeTensors streams one safetensors file holding specs in dt.
func writeSpecsSafeTensors(w io.Writer, seed uint64, dt safetensors.DType, specs []tensorSpec) error {
	infos := make([]safetensors.Info, len(specs))
	byName := make(map[string]tensorSpec, len(specs))
	for i, s := range specs {
		shape := make([]int, len(s.dims))
		for k, d := range s.dims {
			shape[k] = int(d)
		}
		infos[i] = safetensors.Info{Name: s.name, DType: dt, Shape: shape}
		byName[s.name] = s
	}
	sw, err := safetensors.NewWriter(w, infos, map[string]string{"format": "pt"})
	if err != nil {
		return err
	}
	for _, info := range sw.Tensors() {
		raw := generateRaw(seed, byName[info.Name])
		if dt == safetensors.F32 {
			err = sw.WriteTensor(info.Name, raw)
		} else {
			err = sw.WriteFloat32(info.Name, rawFloat32(raw))
		}
		if err != nil {
			return fmt.Errorf("tensor %s: %w", info.Name, err)
		}
	}
	return sw.Close()
}

// rawFloat32 decodes little-endian float32 bytes.
func rawFloat32(raw []byte) []float32 {
	vals := make([]float32, len(raw)/4)
	for i := range vals {
		vals[i] = math.Float32frombits(uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24)
	}
	return vals
}

// llamaFamilyOf returns the family of a config.json architectures entry or
// model_type, "" when it is neither Llama nor Mistral.
func llamaFamilyOf(name string) string {
	switch strings.ToLower(name) {
	case "llama", "llamaforcausallm":
		return FamilyLlama
	case "mistral", "mistralforcausallm":
		return FamilyMistral
	}
	return ""
}
