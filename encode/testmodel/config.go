package testmodel

import (
	"errors"
	"fmt"

	"github.com/splash-encode/splash/encode/safetensors"
)

// Opset bounds accepted by Generate. Opsets 14 to 17 take the axes of
// ReduceMean as an attribute; from 18 on they are an input.
const (
	MinOpset = 14
	MaxOpset = 21
)

// ErrConfig is the prefix of every configuration error.
var ErrConfig = errors.New("testmodel: invalid config")

// Arch is the architecture of a generated model: the Hugging Face masked-LM
// class whose optimum fill-mask export Generate imitates.
type Arch string

// Architectures Generate writes.
const (
	// ArchBERT is BertForMaskedLM (the default): inputs input_ids,
	// attention_mask and token_type_ids.
	ArchBERT Arch = "bert"
	// ArchDistilBERT is DistilBertForMaskedLM: inputs input_ids and
	// attention_mask, no token type embeddings.
	ArchDistilBERT Arch = "distilbert"
	// ArchRoBERTa is RobertaForMaskedLM: inputs input_ids and
	// attention_mask, position ids computed in the graph from input_ids
	// (padding id 1), one token type row.
	ArchRoBERTa Arch = "roberta"
)

// Config describes a generated test model. Zero values of the optional fields
// take the defaults documented on each field.
type Config struct {
	// Arch is the architecture; default ArchBERT.
	Arch         Arch
	Layers       int // encoder layers, >= 1
	Hidden       int // hidden size, a multiple of Heads
	Heads        int // attention heads, >= 1
	Intermediate int // feed-forward size; default 4*Hidden
	// MaxPositions is the longest sequence the model takes; default 512.
	// BERT and DistilBERT have that many position embeddings, RoBERTa two
	// more (max_position_embeddings 514 for 512: positions start after
	// the padding id 1).
	MaxPositions int
	// TypeVocab is the number of token type embeddings: default 2 for
	// BERT; RoBERTa has 1 (the default; no other value is accepted) and
	// DistilBERT none (0 only).
	TypeVocab int
	Seed      uint64
	Opset     int // ONNX opset of the default domain; default 14, 14..21 accepted
	// FP16 makes the logits output float16: the float32 logits pass through
	// a final Cast to FLOAT16, as in mixed-precision exports whose outputs
	// are float16. Weights and every other computation stay float32, so the
	// oracle follows the model: its float64 logits rounded to float16.
	FP16 bool
	// SafeTensors makes Generate also write model.safetensors: every
	// weight of model.onnx under its Hugging Face state-dict name and in
	// PyTorch's layout (dense weights [out, in]), generated from the same
	// seed, with the metadata {"format": "pt"}. Like save_pretrained it
	// omits the decoder weight tied to the word embeddings and the
	// decoder bias duplicate (cls.predictions.decoder.{weight,bias},
	// lm_head.decoder.{weight,bias}, vocab_projector.weight): the file
	// holds exactly the weight initializers of model.onnx.
	SafeTensors bool
	// SafeTensorsDType is the dtype of model.safetensors: safetensors.F32
	// (the default), F16 or BF16. F16 and BF16 values are the float32
	// weights rounded to nearest, ties to even, so they differ from
	// model.onnx's (which the oracle reads) by that rounding.
	SafeTensorsDType safetensors.DType
	// OptimumNames makes model.onnx name its dense weights as optimum
	// exports do: every nn.Linear (the encoder's Q, K, V, attention
	// output and feed-forward denses, and the MLM head's transform dense)
	// is MatMul(x, onnx::MatMul_<n>) followed by Add(bias, ·), the weight
	// an initializer stored pre-transposed [in, out] under a made-up name
	// (torch.onnx's folded transpose) while the bias keeps its Hugging
	// Face name. Embeddings, LayerNorms, the biases and the tied decoder
	// (Transpose of the word embeddings) are unchanged. LoadOracle binds
	// the weights back through the graph.
	OptimumNames bool
	// SkipONNX makes Generate write no model.onnx (SafeTensors is then
	// required): for checks that need only the safetensors checkpoint of
	// a large model. No oracle can load such a directory.
	SkipONNX bool
}

// withDefaults returns cfg with the optional fields filled in and checks it.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Intermediate == 0 {
		cfg.Intermediate = 4 * cfg.Hidden
	}
	if cfg.MaxPositions == 0 {
		cfg.MaxPositions = 512
	}
	if cfg.Arch == "" {
		cfg.Arch = ArchBERT
	}
	switch cfg.Arch {
	case ArchBERT:
		if cfg.TypeVocab == 0 {
			cfg.TypeVocab = 2
		}
	case ArchRoBERTa:
		if cfg.TypeVocab == 0 {
			cfg.TypeVocab = 1
		}
		if cfg.TypeVocab != 1 {
			return cfg, fmt.Errorf("%w: TypeVocab %d, RoBERTa has 1 token type", ErrConfig, cfg.TypeVocab)
		}
	case ArchDistilBERT:
		if cfg.TypeVocab != 0 {
			return cfg, fmt.Errorf("%w: TypeVocab %d, DistilBERT has no token type embeddings", ErrConfig, cfg.TypeVocab)
		}
	default:
		return cfg, fmt.Errorf("%w: Arch %q, want %q, %q or %q", ErrConfig, cfg.Arch, ArchBERT, ArchDistilBERT, ArchRoBERTa)
	}
	if cfg.Opset == 0 {
		cfg.Opset = 14
	}
	if cfg.SafeTensorsDType == "" {
		cfg.SafeTensorsDType = safetensors.F32
	}
	switch cfg.SafeTensorsDType {
	case safetensors.F32, safetensors.F16, safetensors.BF16:
	default:
		return cfg, fmt.Errorf("%w: SafeTensorsDType %q, want %q, %q or %q", ErrConfig, cfg.SafeTensorsDType,
			safetensors.F32, safetensors.F16, safetensors.BF16)
	}
	if cfg.SkipONNX && !cfg.SafeTensors {
		return cfg, fmt.Errorf("%w: SkipONNX without SafeTensors would write no weights", ErrConfig)
	}
	if err := checkDims(cfg.Layers, cfg.Hidden, 1, cfg.Heads, cfg.Intermediate, cfg.MaxPositions, cfg.Opset); err != nil {
		return cfg, err
	}
	switch {
	case cfg.TypeVocab < 1 && cfg.Arch != ArchDistilBERT:
		return cfg, fmt.Errorf("%w: TypeVocab %d, want >= 1", ErrConfig, cfg.TypeVocab)
	}
	return cfg, nil
}

// irVersion is the ONNX IR version released with the given opset.
func irVersion(opset int) int64 {
	switch {
	case opset == 14:
		return 7
	case opset <= 18:
		return 8
	case opset <= 20:
		return 9
	default:
		return 10
	}
}

// GraphInputs returns the graph inputs of a model of arch, in order:
// input_ids, attention_mask and, for BERT (also arch ""), token_type_ids.
func GraphInputs(arch Arch) []string {
	switch arch {
	case ArchDistilBERT, ArchRoBERTa:
		return []string{InputIDs, AttentionMask}
	}
	return []string{InputIDs, AttentionMask, TokenTypeIDs}
}

// hfClass is the Hugging Face class of arch (a defaulted Config.Arch).
func hfClass(arch Arch) string {
	switch arch {
	case ArchDistilBERT:
		return "DistilBertForMaskedLM"
	case ArchRoBERTa:
		return "RobertaForMaskedLM"
	}
	return "BertForMaskedLM"
}

// checkDims checks the sizes every generated model has; minHidden is the
// smallest hidden size the architecture can use.
func checkDims(layers, hidden, minHidden, heads, intermediate, maxPositions, opset int) error {
	switch {
	case layers < 1:
		return fmt.Errorf("%w: Layers %d, want >= 1", ErrConfig, layers)
	case hidden < minHidden:
		return fmt.Errorf("%w: Hidden %d, want >= %d", ErrConfig, hidden, minHidden)
	case heads < 1:
		return fmt.Errorf("%w: Heads %d, want >= 1", ErrConfig, heads)
	case hidden%heads != 0:
		return fmt.Errorf("%w: Hidden %d is not a multiple of Heads %d", ErrConfig, hidden, heads)
	case intermediate < 1:
		return fmt.Errorf("%w: Intermediate %d, want >= 1", ErrConfig, intermediate)
	case maxPositions < 1:
		return fmt.Errorf("%w: MaxPositions %d, want >= 1", ErrConfig, maxPositions)
	case opset < MinOpset || opset > MaxOpset:
		return fmt.Errorf("%w: Opset %d, want %d..%d", ErrConfig, opset, MinOpset, MaxOpset)
	}
	return nil
}
