package cuda

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/splash-encode/splash/encode"
)

// Rope is a decoder's rotary position embedding, with Hugging Face's names:
// rope_theta and rope_scaling (none, or Llama 3's "llama3" scaling).
type Rope struct {
	Theta float64 // rope_theta
	// Type is rope_scaling's rope_type: "" (no scaling) or "llama3".
	Type string
	// Llama 3 scaling: factor, low_freq_factor, high_freq_factor,
	// original_max_position_embeddings.
	Factor, LowFreqFactor, HighFreqFactor float64
	OriginalMax                           int
}

// RopeLlama3 is the rope_type of Llama 3's frequency scaling.
const RopeLlama3 = "llama3"

// llamaFields are config.json's fields of LlamaConfig and MistralConfig
// that the BERT family does not have (archConfig embeds them; the shared
// ones, vocab_size, hidden_size and so on, are archConfig's own).
type llamaFields struct {
	NumKeyValueHeads  *int            `json:"num_key_value_heads"`
	HeadDim           *int            `json:"head_dim"`
	RMSNormEps        *float64        `json:"rms_norm_eps"`
	RopeTheta         *float64        `json:"rope_theta"`
	RopeScaling       json.RawMessage `json:"rope_scaling"`
	RopeParameters    json.RawMessage `json:"rope_parameters"` // transformers 5's name for both
	TieWordEmbeddings *bool           `json:"tie_word_embeddings"`
	AttentionBias     *bool           `json:"attention_bias"`
	MLPBias           *bool           `json:"mlp_bias"`
	SlidingWindow     json.RawMessage `json:"sliding_window"`
}

// ropeConfig is rope_scaling (or rope_parameters).
type ropeConfig struct {
	RopeType       *string  `json:"rope_type"`
	Type           *string  `json:"type"` // the name before transformers 4.45
	RopeTheta      *float64 `json:"rope_theta"`
	Factor         *float64 `json:"factor"`
	LowFreqFactor  *float64 `json:"low_freq_factor"`
	HighFreqFactor *float64 `json:"high_freq_factor"`
	OriginalMax    *int     `json:"original_max_position_embeddings"`
}

// Hugging Face's defaults where config.json leaves a field out
// (LlamaConfig, MistralConfig).
const (
	defaultRopeTheta       = 10000
	defaultRMSNormEps      = 1e-6
	defaultLlamaPositions  = 2048
	defaultMistralWindow   = 4096
	defaultMistralPosition = 4096 * 32
)

// parseLlama reads a LlamaForCausalLM or MistralForCausalLM config: RMSNorm
// (rms_norm_eps), rotary positions (rope_theta; rope_scaling null or of
// type "llama3"), SwiGLU (hidden_act "silu"), grouped-query attention
// (num_key_value_heads, head_dim), no biases (attention_bias and mlp_bias
// false), a tied or untied LM head (tie_word_embeddings) and, for Mistral, a
// sliding window (sliding_window, null for none) that Arch.MaxTokens
// respects. Every refusal names the field and its value and wraps
// encode.ErrBadModel.
func parseLlama(c *archConfig) (Arch, error) {
	var errs []error
	refuse := func(field string, value any, want string) {
		errs = append(errs, fmt.Errorf("%w: %s is %v; the CUDA engine runs %s", encode.ErrBadModel, field, value, want))
	}
	need := func(field string, p *int, min int) int {
		switch {
		case p == nil:
			errs = append(errs, fmt.Errorf("%w: %s is missing", encode.ErrBadModel, field))
			return 0
		case *p < min:
			refuse(field, *p, fmt.Sprintf("values >= %d", min))
			return 0
		}
		return *p
	}
	a := Arch{Family: Family(c.ModelType), Eps: defaultRMSNormEps, Rope: Rope{Theta: defaultRopeTheta}}
	want := map[Family]string{FamilyLlama: "LlamaForCausalLM", FamilyMistral: "MistralForCausalLM"}[a.Family]
	if len(c.Architectures) > 0 && !slices.Contains(c.Architectures, want) {
		refuse("architectures", fmt.Sprintf("%q", c.Architectures), fmt.Sprintf("%q for model_type %q", want, c.ModelType))
	}
	a.Vocab = need("vocab_size", c.VocabSize, 1)
	a.Hidden = need("hidden_size", c.HiddenSize, 1)
	a.Layers = need("num_hidden_layers", c.NumHiddenLayers, 1)
	a.Heads = need("num_attention_heads", c.NumAttentionHeads, 1)
	a.Intermediate = need("intermediate_size", c.IntermediateSize, 1)
	a.KVHeads = a.Heads
	if c.NumKeyValueHeads != nil {
		a.KVHeads = need("num_key_value_heads", c.NumKeyValueHeads, 1)
	}
	if a.Heads > 0 && a.KVHeads > 0 && a.Heads%a.KVHeads != 0 {
		refuse("num_key_value_heads", a.KVHeads, fmt.Sprintf("divisors of num_attention_heads %d", a.Heads))
	}
	if c.HeadDim != nil {
		a.HeadSize = need("head_dim", c.HeadDim, 2)
	} else if a.Heads > 0 && a.Hidden%a.Heads != 0 {
		errs = append(errs, fmt.Errorf("%w: hidden size %d is not a multiple of the %d attention heads (and head_dim is missing)", encode.ErrBadModel, a.Hidden, a.Heads))
	}
	if a.Heads > 0 && a.HeadDim()%2 != 0 {
		refuse("head_dim", a.HeadDim(), "even head sizes (rotary embeddings rotate pairs)")
	}
	switch {
	case c.MaxPositionEmbeddings != nil:
		a.MaxPositions = need("max_position_embeddings", c.MaxPositionEmbeddings, 1)
	case a.Family == FamilyMistral:
		a.MaxPositions = defaultMistralPosition
	default:
		a.MaxPositions = defaultLlamaPositions
	}
	if p := c.RMSNormEps; p != nil {
		if !(*p > 0 && *p < 1) {
			refuse("rms_norm_eps", *p, "values in (0, 1)")
		}
		a.Eps = float32(*p)
	}
	if p := c.HiddenAct; p != nil && *p != "silu" && *p != "swish" {
		refuse("hidden_act", fmt.Sprintf("%q", *p), `"silu" (SwiGLU)`)
	}
	if p := c.AttentionBias; p != nil && *p {
		refuse("attention_bias", true, "projections without biases (false)")
	}
	if p := c.MLPBias; p != nil && *p {
		refuse("mlp_bias", true, "projections without biases (false)")
	}
	if p := c.TieWordEmbeddings; p != nil {
		a.TiedEmbeddings = *p
	}
	if c.IsDecoder && c.AddCrossAttention {
		refuse("add_cross_attention", true, "decoders without cross-attention")
	}
	if c.RopeTheta != nil {
		a.Rope.Theta = *c.RopeTheta
	}
	scaling, field := c.RopeScaling, "rope_scaling"
	if isNull(scaling) && !isNull(c.RopeParameters) {
		scaling, field = c.RopeParameters, "rope_parameters"
	}
	errs = append(errs, parseRope(&a, scaling, field))
	if !(a.Rope.Theta > 0) || math.IsInf(a.Rope.Theta, 0) {
		refuse("rope_theta", a.Rope.Theta, "positive values")
	}
	if a.Family == FamilyMistral {
		a.SlidingWindow = defaultMistralWindow
		if c.SlidingWindow != nil {
			if isNull(c.SlidingWindow) {
				a.SlidingWindow = 0
			} else if err := json.Unmarshal(c.SlidingWindow, &a.SlidingWindow); err != nil || a.SlidingWindow < 1 {
				refuse("sliding_window", string(c.SlidingWindow), "null or a positive window")
				a.SlidingWindow = 0
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Arch{}, err
	}
	return a, nil
}

// parseRope reads rope_scaling (or transformers 5's rope_parameters, named
// by field) into a.Rope: null, rope_type "default", or "llama3" with its
// four parameters.
func parseRope(a *Arch, raw json.RawMessage, field string) error {
	if isNull(raw) {
		return nil
	}
	var r ropeConfig
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("%w: %s is %s: %w", encode.ErrBadModel, field, raw, err)
	}
	if r.RopeTheta != nil {
		a.Rope.Theta = *r.RopeTheta
	}
	typ := r.RopeType
	if typ == nil {
		typ = r.Type
	}
	if typ == nil {
		return fmt.Errorf("%w: %s has no rope_type; the CUDA engine runs null, \"default\" or \"llama3\"", encode.ErrBadModel, field)
	}
	switch *typ {
	case "default":
		return nil
	case RopeLlama3:
	default:
		return fmt.Errorf("%w: %s.rope_type is %q; the CUDA engine runs null, \"default\" or \"llama3\" rotary embeddings", encode.ErrBadModel, field, *typ)
	}
	var errs []error
	num := func(name string, p *float64) float64 {
		switch {
		case p == nil:
			errs = append(errs, fmt.Errorf("%w: %s.%s is missing (rope_type llama3)", encode.ErrBadModel, field, name))
			return 0
		case !(*p > 0) || math.IsInf(*p, 0):
			errs = append(errs, fmt.Errorf("%w: %s.%s is %v; want a positive value", encode.ErrBadModel, field, name, *p))
			return 0
		}
		return *p
	}
	a.Rope.Type = RopeLlama3
	a.Rope.Factor = num("factor", r.Factor)
	a.Rope.LowFreqFactor = num("low_freq_factor", r.LowFreqFactor)
	a.Rope.HighFreqFactor = num("high_freq_factor", r.HighFreqFactor)
	switch {
	case r.OriginalMax == nil:
		errs = append(errs, fmt.Errorf("%w: %s.original_max_position_embeddings is missing (rope_type llama3)", encode.ErrBadModel, field))
	case *r.OriginalMax < 1:
		errs = append(errs, fmt.Errorf("%w: %s.original_max_position_embeddings is %d; want a positive value", encode.ErrBadModel, field, *r.OriginalMax))
	default:
		a.Rope.OriginalMax = *r.OriginalMax
	}
	if a.Rope.LowFreqFactor > 0 && a.Rope.HighFreqFactor > 0 && a.Rope.HighFreqFactor <= a.Rope.LowFreqFactor {
		errs = append(errs, fmt.Errorf("%w: %s.high_freq_factor %v is not above low_freq_factor %v", encode.ErrBadModel, field, a.Rope.HighFreqFactor, a.Rope.LowFreqFactor))
	}
	return errors.Join(errs...)
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// InvFreq is the rotary embedding's inverse frequencies, HeadDim()/2
// float32 values, computed as transformers does in float32 (torch's
// arithmetic, with Python scalars taken at float32):
//
//	_compute_default_rope_parameters:
//	    inv_freq = 1.0 / (base ** (arange(0, dim, 2).float() / dim))
//	_compute_llama3_parameters (rope_type "llama3"):
//	    low_freq_wavelen = old_context_len / low_freq_factor
//	    high_freq_wavelen = old_context_len / high_freq_factor
//	    wavelen = 2 * math.pi / inv_freq
//	    inv_freq_llama = where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
//	    smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
//	    smoothed = (1 - smooth) * inv_freq_llama / factor + smooth * inv_freq_llama
//	    medium = !(wavelen < high_freq_wavelen) & !(wavelen > low_freq_wavelen)
//	    inv_freq_llama = where(medium, smoothed, inv_freq_llama)
//
// torch evaluates scalar / tensor as reciprocal(tensor) * scalar, which
// this transcribes.
func (a Arch) InvFreq() []float32 {
	d := a.HeadDim()
	out := make([]float32, d/2)
	base := float32(a.Rope.Theta)
	for j := range out {
		e := float32(2*j) / float32(d)
		p := float32(math.Pow(float64(base), float64(e)))
		out[j] = 1 / p
	}
	if a.Rope.Type != RopeLlama3 {
		return out
	}
	factor, low := float32(a.Rope.Factor), float32(a.Rope.LowFreqFactor)
	old := float32(a.Rope.OriginalMax)
	lowWavelen := float32(float64(a.Rope.OriginalMax) / a.Rope.LowFreqFactor)
	highWavelen := float32(float64(a.Rope.OriginalMax) / a.Rope.HighFreqFactor)
	span := float32(a.Rope.HighFreqFactor - a.Rope.LowFreqFactor)
	for j, f := range out {
		// Each float32(...) rounds as torch's float32 ops do (and keeps
		// the compiler from fusing a multiply-add).
		wavelen := float32(float32(1/f) * float32(2*math.Pi))
		llama := f
		if wavelen > lowWavelen {
			llama = f / factor
		}
		smooth := float32(float32(float32(1/wavelen)*old)-low) / span
		smoothed := float32(float32(float32(1-smooth)*llama)/factor) + float32(smooth*llama)
		if !(wavelen < highWavelen) && !(wavelen > lowWavelen) {
			llama = smoothed
		}
		out[j] = llama
	}
	return out
}
