package cuda

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/safetensors"
	"github.com/splash-encode/splash/encode/weights"
)

// DecoderLayer is one Llama/Mistral decoder layer, with the query, key and
// value projections concatenated into one [(heads+2·kv)·d][H] matrix and
// the gate and up projections into one [2·I][H] matrix (one GEMM each).
// No biases: Arch refuses attention_bias and mlp_bias.
type DecoderLayer struct {
	InputNorm []float32 // input_layernorm.weight [H]
	QKV       Linear    // q_proj; k_proj; v_proj
	O         Linear    // o_proj [H][heads·d]
	PostNorm  []float32 // post_attention_layernorm.weight [H]
	GateUp    Linear    // gate_proj; up_proj
	Down      Linear    // down_proj [H][I]
}

// Hugging Face state-dict names of LlamaForCausalLM and MistralForCausalLM.
const (
	llamaEmbed     = "model.embed_tokens.weight"
	llamaLayer     = "model.layers.%d."
	llamaFinalNorm = "model.norm.weight"
	llamaLMHead    = "lm_head.weight"
)

// bindDecoder reads a Llama/Mistral checkpoint: the embeddings, each
// layer's norms and projections, the final norm and the LM head
// (lm_head.weight, or the embeddings when tie_word_embeddings is true; an
// untied checkpoint without lm_head.weight is refused).
func bindDecoder(a Arch, t Tensors) (*Weights, error) {
	b := &binder{t: t}
	w := &Weights{Arch: a}
	w.Word = b.tensor(llamaEmbed, a.Vocab, a.Hidden)
	for l := 0; l < a.Layers && b.err == nil; l++ {
		w.Blocks = append(w.Blocks, b.decoderLayer(a, l))
	}
	w.FinalNorm = b.tensor(llamaFinalNorm, a.Hidden)
	w.Decoder, w.Tied = b.lmHead(a, w.Word)
	if b.err != nil {
		return nil, fmt.Errorf("cuda engine: %w", b.err)
	}
	return w, nil
}

// decoderLayer reads layer l of a Llama/Mistral checkpoint, refusing
// biases the config says are absent.
func (b *binder) decoderLayer(a Arch, l int) DecoderLayer {
	h, heads, kv, d, inter := a.Hidden, a.Heads, a.KV(), a.HeadDim(), a.Intermediate
	linear := func(name string, out, in int) Linear {
		return Linear{W: b.tensor(name+".weight", out, in), Out: out, In: in}
	}
	p := fmt.Sprintf(llamaLayer, l)
	q, k, vv := linear(p+"self_attn.q_proj", heads*d, h), linear(p+"self_attn.k_proj", kv*d, h), linear(p+"self_attn.v_proj", kv*d, h)
	gate, up := linear(p+"mlp.gate_proj", inter, h), linear(p+"mlp.up_proj", inter, h)
	ly := DecoderLayer{
		InputNorm: b.tensor(p+"input_layernorm.weight", h),
		QKV:       Linear{W: slices.Concat(q.W, k.W, vv.W), Out: (heads + 2*kv) * d, In: h},
		O:         linear(p+"self_attn.o_proj", h, heads*d),
		PostNorm:  b.tensor(p+"post_attention_layernorm.weight", h),
		GateUp:    Linear{W: slices.Concat(gate.W, up.W), Out: 2 * inter, In: h},
		Down:      linear(p+"mlp.down_proj", h, inter),
	}
	for _, name := range []string{"self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias", "self_attn.o_proj.bias",
		"mlp.gate_proj.bias", "mlp.up_proj.bias", "mlp.down_proj.bias"} {
		if b.t.Has(p + name) {
			b.fail(fmt.Errorf("%w: %s: tensor %s%s is there, but the config says the projections have no bias", encode.ErrBadModel, b.source(p+name), p, name))
		}
	}
	return ly
}

// lmHead returns the LM head: word when the config ties it, else
// lm_head.weight (refused when missing).
func (b *binder) lmHead(a Arch, word []float32) (head []float32, tied bool) {
	switch {
	case a.TiedEmbeddings:
		return word, true
	case b.t.Has(llamaLMHead):
		return b.tensor(llamaLMHead, a.Vocab, a.Hidden), false
	}
	b.fail(fmt.Errorf("%w: %s: tensor %s is missing and tie_word_embeddings is false", encode.ErrBadModel, b.t.Source(), llamaLMHead))
	return nil, false
}

// NewDecoderNet reads a Llama/Mistral model of architecture a from t and
// uploads it to ops one tensor at a time, so that the host holds no more
// than the embeddings, the LM head and one layer in float32 at once (an
// 8B model's weights are 32 GB in float32; BindWeights and NewNet hold
// them all). The Net equals NewNet(ops, BindWeights(a, t), headChunk).
func NewDecoderNet(ops Ops, a Arch, t Tensors, headChunk int) (*Net, error) {
	if !a.Family.Decoder() {
		return nil, fmt.Errorf("cuda engine: NewDecoderNet: %s is not a decoder-only family", a.Family)
	}
	b := &binder{t: t}
	word := b.tensor(llamaEmbed, a.Vocab, a.Hidden)
	head, tied := b.lmHead(a, word)
	finalNorm := b.tensor(llamaFinalNorm, a.Hidden)
	if b.err != nil {
		return nil, fmt.Errorf("cuda engine: %w", b.err)
	}
	n, err := newDecoderNet(ops, a, headChunk, word, head, tied, finalNorm, func(l int) (DecoderLayer, error) {
		ly := b.decoderLayer(a, l)
		return ly, b.err
	})
	if err != nil {
		return nil, fmt.Errorf("cuda engine: %w", err)
	}
	return n, nil
}

// Checkpoint is what OpenCheckpoint returns: Tensors that must be closed.
type Checkpoint interface {
	Tensors
	Close() error
}

// OpenCheckpoint opens the weights of a model directory:
// model.safetensors when there is one, else a sharded checkpoint
// (model.safetensors.index.json and the shards it names), else what
// encode/weights.Open finds (the ONNX file's initializers). Errors about
// the files' content wrap encode.ErrBadModel.
func OpenCheckpoint(dir string) (Checkpoint, error) {
	_, err := os.Stat(filepath.Join(dir, weights.SafeTensorsFile))
	if errors.Is(err, fs.ErrNotExist) {
		index := filepath.Join(dir, safetensors.IndexFile)
		if _, err := os.Stat(index); err == nil {
			s, err := safetensors.OpenSharded(index)
			if err != nil {
				if errors.Is(err, safetensors.ErrFormat) {
					err = fmt.Errorf("%w: %w", encode.ErrBadModel, err)
				}
				return nil, fmt.Errorf("cuda engine: %w", err)
			}
			return s, nil
		}
	}
	c, err := weights.Open(dir)
	if err != nil {
		if !errors.Is(err, encode.ErrBadModel) {
			err = fmt.Errorf("%w: %w", encode.ErrBadModel, err)
		}
		return nil, fmt.Errorf("cuda engine: %w", err)
	}
	return c, nil
}
