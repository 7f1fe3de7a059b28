package cuda

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/kernels"
)

// Family is the architecture family of a masked LM the engine runs.
type Family string

// Families the engine runs, by Hugging Face model_type.
const (
	FamilyBERT       Family = "bert"
	FamilyDistilBERT Family = "distilbert"
	FamilyRoBERTa    Family = "roberta"
	// The decoder-only (causal LM) families, pooled CSPLADE-style.
	FamilyLlama   Family = "llama"
	FamilyMistral Family = "mistral"
)

// Decoder reports whether f is a decoder-only family (Llama, Mistral):
// RMSNorm, rotary positions, grouped-query attention, SwiGLU, no biases.
func (f Family) Decoder() bool { return f == FamilyLlama || f == FamilyMistral }

// Arch is the shape of a model the engine runs, read from config.json with
// Hugging Face's names: a BERT-family masked LM, or a Llama- or
// Mistral-family causal LM (the fields after PositionOffset; see
// arch_llama.go). Arch is comparable.
type Arch struct {
	Family       Family
	Vocab        int
	Hidden       int
	Heads        int
	Layers       int
	Intermediate int
	MaxPositions int // rows of the position table
	TypeVocab    int // 0: no token type embeddings (DistilBERT)
	Eps          float32
	// Act is the activation of the feed-forward layers; HeadAct that of the
	// MLM head's transform (RoBERTa's lm_head always uses exact GELU).
	Act, HeadAct kernels.Activation
	// PositionOffset is added to a token's index to find its position row:
	// RoBERTa numbers positions from padding_idx+1.
	PositionOffset int

	// KVHeads is num_key_value_heads (grouped-query attention); 0 means
	// Heads (every BERT-family model).
	KVHeads int
	// HeadSize is head_dim when config.json gives it; 0 means
	// Hidden/Heads.
	HeadSize int
	// Rope holds the rotary embedding's parameters (decoders only).
	Rope Rope
	// TiedEmbeddings is tie_word_embeddings: the LM head is the embedding
	// matrix (decoders only; BERT-family checkpoints say so by omitting
	// the decoder weight).
	TiedEmbeddings bool
	// SlidingWindow is Mistral's sliding_window: documents may not be
	// longer (0: none).
	SlidingWindow int
}

// HeadDim is the width of one attention head.
func (a Arch) HeadDim() int {
	if a.HeadSize > 0 {
		return a.HeadSize
	}
	return a.Hidden / a.Heads
}

// KV is the number of key/value heads: KVHeads, or Heads when it is 0.
func (a Arch) KV() int {
	if a.KVHeads > 0 {
		return a.KVHeads
	}
	return a.Heads
}

// MaxTokens is the longest sequence the model takes: the position table's
// rows after the offset, and no more than a sliding window.
func (a Arch) MaxTokens() int {
	n := a.MaxPositions - a.PositionOffset
	if a.SlidingWindow > 0 {
		n = min(n, a.SlidingWindow)
	}
	return n
}

// archConfig holds the config.json fields of the five families.
type archConfig struct {
	ModelType             string   `json:"model_type"`
	Architectures         []string `json:"architectures"`
	VocabSize             *int     `json:"vocab_size"`
	HiddenSize            *int     `json:"hidden_size"`
	NumHiddenLayers       *int     `json:"num_hidden_layers"`
	NumAttentionHeads     *int     `json:"num_attention_heads"`
	IntermediateSize      *int     `json:"intermediate_size"`
	MaxPositionEmbeddings *int     `json:"max_position_embeddings"`
	TypeVocabSize         *int     `json:"type_vocab_size"`
	LayerNormEps          *float64 `json:"layer_norm_eps"`
	HiddenAct             *string  `json:"hidden_act"`
	PadTokenID            *int     `json:"pad_token_id"`
	PositionEmbeddingType *string  `json:"position_embedding_type"`
	IsDecoder             bool     `json:"is_decoder"`
	AddCrossAttention     bool     `json:"add_cross_attention"`
	// DistilBERT's names.
	Dim        *int    `json:"dim"`
	HiddenDim  *int    `json:"hidden_dim"`
	NLayers    *int    `json:"n_layers"`
	NHeads     *int    `json:"n_heads"`
	Activation *string `json:"activation"`
	// Llama's and Mistral's names.
	llamaFields
}

// ReadArch reads dir/config.json. It accepts BERT, DistilBERT and RoBERTa
// masked LMs with absolute positions and a GELU activation, and Llama and
// Mistral causal LMs (see parseLlama), and refuses anything else with an
// error that names the field and its value and wraps encode.ErrBadModel.
func ReadArch(dir string) (Arch, error) {
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return Arch{}, fmt.Errorf("cuda engine: %w: %w", encode.ErrBadModel, err)
	}
	a, err := ParseArch(b)
	if err != nil {
		return Arch{}, fmt.Errorf("cuda engine: %s: %w", path, err)
	}
	return a, nil
}

// ParseArch parses the contents of a config.json (see ReadArch).
func ParseArch(data []byte) (Arch, error) {
	var c archConfig
	if err := json.Unmarshal(data, &c); err != nil {
		return Arch{}, fmt.Errorf("%w: parse: %w", encode.ErrBadModel, err)
	}
	refuse := func(field string, value any, want string) error {
		return fmt.Errorf("%w: %s is %v; the CUDA engine runs %s", encode.ErrBadModel, field, value, want)
	}
	var errs []error
	need := func(field string, p *int, min int) int {
		switch {
		case p == nil:
			errs = append(errs, fmt.Errorf("%w: %s is missing", encode.ErrBadModel, field))
			return 0
		case *p < min:
			errs = append(errs, refuse(field, *p, fmt.Sprintf("values >= %d", min)))
			return 0
		}
		return *p
	}
	act := func(field string, p *string) kernels.Activation {
		if p == nil {
			return kernels.GELUExact // the default of all three configs
		}
		switch *p {
		case "gelu", "gelu_python":
			return kernels.GELUExact
		case "gelu_new", "gelu_pytorch_tanh", "gelu_fast":
			return kernels.GELUTanh
		}
		errs = append(errs, refuse(field, fmt.Sprintf("%q", *p), `"gelu" or "gelu_new"`))
		return kernels.GELUExact
	}
	a := Arch{Family: Family(c.ModelType), Eps: 1e-12}
	switch a.Family {
	case FamilyBERT, FamilyRoBERTa:
		a.Vocab = need("vocab_size", c.VocabSize, 1)
		a.Hidden = need("hidden_size", c.HiddenSize, 1)
		a.Layers = need("num_hidden_layers", c.NumHiddenLayers, 1)
		a.Heads = need("num_attention_heads", c.NumAttentionHeads, 1)
		a.Intermediate = need("intermediate_size", c.IntermediateSize, 1)
		a.MaxPositions = need("max_position_embeddings", c.MaxPositionEmbeddings, 1)
		a.TypeVocab = 2
		if c.TypeVocabSize != nil {
			a.TypeVocab = need("type_vocab_size", c.TypeVocabSize, 1)
		}
		if c.LayerNormEps != nil {
			if !(*c.LayerNormEps > 0 && *c.LayerNormEps < 1) {
				errs = append(errs, refuse("layer_norm_eps", *c.LayerNormEps, "values in (0, 1)"))
			}
			a.Eps = float32(*c.LayerNormEps)
		}
		a.Act = act("hidden_act", c.HiddenAct)
		a.HeadAct = a.Act
		if p := c.PositionEmbeddingType; p != nil && *p != "absolute" {
			errs = append(errs, refuse("position_embedding_type", fmt.Sprintf("%q", *p), `"absolute" positions`))
		}
		if c.IsDecoder || c.AddCrossAttention {
			errs = append(errs, refuse("is_decoder/add_cross_attention", true, "encoders"))
		}
		if a.Family == FamilyRoBERTa {
			a.HeadAct = kernels.GELUExact // RobertaLMHead calls gelu whatever hidden_act says
			pad := 1
			if c.PadTokenID != nil {
				pad = *c.PadTokenID
			}
			if pad < 0 {
				errs = append(errs, refuse("pad_token_id", pad, "ids >= 0"))
			}
			a.PositionOffset = pad + 1
		}
	case FamilyDistilBERT:
		a.Vocab = need("vocab_size", c.VocabSize, 1)
		a.Hidden = need("dim", c.Dim, 1)
		a.Layers = need("n_layers", c.NLayers, 1)
		a.Heads = need("n_heads", c.NHeads, 1)
		a.Intermediate = need("hidden_dim", c.HiddenDim, 1)
		a.MaxPositions = need("max_position_embeddings", c.MaxPositionEmbeddings, 1)
		a.Act = act("activation", c.Activation)
		a.HeadAct = a.Act
		// sinusoidal_pos_embds needs nothing: the sinusoidal table is
		// stored in the checkpoint like a learned one.
	case FamilyLlama, FamilyMistral:
		return parseLlama(&c)
	default:
		return Arch{}, refuse("model_type", fmt.Sprintf("%q", c.ModelType), `"bert", "distilbert" or "roberta" masked LMs and "llama" or "mistral" causal LMs`)
	}
	if a.Heads > 0 && a.Hidden%a.Heads != 0 {
		errs = append(errs, fmt.Errorf("%w: hidden size %d is not a multiple of the %d attention heads", encode.ErrBadModel, a.Hidden, a.Heads))
	}
	if a.MaxPositions > 0 && a.MaxTokens() < 1 {
		errs = append(errs, fmt.Errorf("%w: max_position_embeddings %d leaves no position after the padding offset %d", encode.ErrBadModel, a.MaxPositions, a.PositionOffset))
	}
	if err := errors.Join(errs...); err != nil {
		return Arch{}, err
	}
	return a, nil
}
