package cuda

import (
	"fmt"
	"slices"

	"github.com/splash-encode/splash/encode"
)

// Tensors is where the engine reads a checkpoint's weights by their Hugging
// Face state-dict names; encode/weights.Checkpoint is one.
type Tensors interface {
	Has(name string) bool
	Float32(name string) ([]float32, []int, error)
	Source() string
}

// LayerNorm holds a LayerNorm's gain and bias.
type LayerNorm struct{ Gamma, Beta []float32 }

// Linear is a PyTorch Linear: y = x·Wᵀ + B, W stored [out][in].
type Linear struct {
	W       []float32
	B       []float32
	Out, In int
}

// Layer is one encoder layer, with the query, key and value projections
// concatenated into one [3H][H] matrix (one GEMM instead of three).
type Layer struct {
	QKV    Linear
	AttnO  Linear
	AttnLN LayerNorm
	FFNIn  Linear
	FFNOut Linear
	FFNLN  LayerNorm
}

// Weights are a masked LM's parameters in float32 on the host, bound to the
// places of the forward pass.
type Weights struct {
	Arch      Arch
	Word      []float32 // [Vocab][Hidden]
	Position  []float32 // [MaxPositions][Hidden]
	TokenType []float32 // [TypeVocab][Hidden]; nil for DistilBERT
	EmbLN     LayerNorm
	Layers    []Layer
	HeadDense Linear
	HeadLN    LayerNorm
	// Decoder is the output projection [Vocab][Hidden]: the word embeddings
	// themselves when the checkpoint ties them (the same slice).
	Decoder     []float32
	DecoderBias []float32 // [Vocab]
	// Tied says whether Decoder is Word.
	Tied bool

	// Decoders (Llama, Mistral; Arch.Family.Decoder()): the layers and
	// the final RMSNorm's gain. Word, Decoder and Tied serve them too;
	// the BERT-family fields above stay empty.
	Blocks    []DecoderLayer
	FinalNorm []float32 // [Hidden]
}

// names are the state-dict names of one family.
type names struct {
	word, pos, typ, embLN string
	layer                 string // fmt pattern with the layer index
	q, k, v, o, attnLN    string
	ffnIn, ffnOut, ffnLN  string
	headDense, headLN     string
	decoder               []string // decoder weight names, in order of preference
	decoderBias           []string
}

func namesOf(f Family) names {
	bertLayer := names{
		q: "attention.self.query", k: "attention.self.key", v: "attention.self.value",
		o: "attention.output.dense", attnLN: "attention.output.LayerNorm",
		ffnIn: "intermediate.dense", ffnOut: "output.dense", ffnLN: "output.LayerNorm",
	}
	switch f {
	case FamilyDistilBERT:
		return names{
			word: "distilbert.embeddings.word_embeddings.weight", pos: "distilbert.embeddings.position_embeddings.weight",
			embLN: "distilbert.embeddings.LayerNorm", layer: "distilbert.transformer.layer.%d.",
			q: "attention.q_lin", k: "attention.k_lin", v: "attention.v_lin", o: "attention.out_lin",
			attnLN: "sa_layer_norm", ffnIn: "ffn.lin1", ffnOut: "ffn.lin2", ffnLN: "output_layer_norm",
			headDense: "vocab_transform", headLN: "vocab_layer_norm",
			decoder: []string{"vocab_projector.weight"}, decoderBias: []string{"vocab_projector.bias"},
		}
	case FamilyRoBERTa:
		n := bertLayer
		n.word, n.pos = "roberta.embeddings.word_embeddings.weight", "roberta.embeddings.position_embeddings.weight"
		n.typ, n.embLN, n.layer = "roberta.embeddings.token_type_embeddings.weight", "roberta.embeddings.LayerNorm", "roberta.encoder.layer.%d."
		n.headDense, n.headLN = "lm_head.dense", "lm_head.layer_norm"
		n.decoder, n.decoderBias = []string{"lm_head.decoder.weight"}, []string{"lm_head.bias", "lm_head.decoder.bias"}
		return n
	}
	n := bertLayer
	n.word, n.pos = "bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight"
	n.typ, n.embLN, n.layer = "bert.embeddings.token_type_embeddings.weight", "bert.embeddings.LayerNorm", "bert.encoder.layer.%d."
	n.headDense, n.headLN = "cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm"
	n.decoder, n.decoderBias = []string{"cls.predictions.decoder.weight"}, []string{"cls.predictions.bias", "cls.predictions.decoder.bias"}
	return n
}

// binder reads tensors and checks their shapes, keeping the first error.
type binder struct {
	t   Tensors
	err error
}

func (b *binder) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

// tensor reads name and checks its shape.
func (b *binder) tensor(name string, shape ...int) []float32 {
	if b.err != nil {
		return nil
	}
	data, got, err := b.t.Float32(name)
	if err != nil {
		b.fail(fmt.Errorf("%w: %w", encode.ErrBadModel, err))
		return nil
	}
	if !slices.Equal(got, shape) {
		b.fail(fmt.Errorf("%w: %s: tensor %s has shape %v, the config says %v", encode.ErrBadModel, b.source(name), name, got, shape))
		return nil
	}
	return data
}

// source names the file that holds name: the shard of a sharded
// checkpoint, else the checkpoint's file.
func (b *binder) source(name string) string {
	if s, ok := b.t.(interface{ FileOf(string) string }); ok {
		if f := s.FileOf(name); f != "" {
			return f
		}
	}
	return b.t.Source()
}

func (b *binder) linear(prefix string, out, in int) Linear {
	return Linear{W: b.tensor(prefix+".weight", out, in), B: b.tensor(prefix+".bias", out), Out: out, In: in}
}

// layerNorm reads a LayerNorm's gain and bias: ".weight" and ".bias", or
// ".gamma" and ".beta" in checkpoints saved before PyTorch renamed them
// (bert-base-uncased's own), which Hugging Face renames when it loads.
func (b *binder) layerNorm(prefix string, h int) LayerNorm {
	gamma, beta := prefix+".weight", prefix+".bias"
	if !b.t.Has(gamma) && b.t.Has(prefix+".gamma") {
		gamma, beta = prefix+".gamma", prefix+".beta"
	}
	return LayerNorm{Gamma: b.tensor(gamma, h), Beta: b.tensor(beta, h)}
}

// first returns the first of candidates that t has, or "".
func (b *binder) first(candidates []string) string {
	for _, c := range candidates {
		if b.t.Has(c) {
			return c
		}
	}
	return ""
}

// BindWeights reads the parameters of a masked LM of architecture a from t.
// A missing or misshapen tensor is an error naming it and the file (wrapping
// encode.ErrBadModel). The decoder is the word embedding matrix when the
// checkpoint has no decoder weight of its own (Hugging Face omits tied
// weights from model.safetensors).
func BindWeights(a Arch, t Tensors) (*Weights, error) {
	if a.Family.Decoder() {
		return bindDecoder(a, t)
	}
	n := namesOf(a.Family)
	b := &binder{t: t}
	h, v := a.Hidden, a.Vocab
	w := &Weights{Arch: a}
	w.Word = b.tensor(n.word, v, h)
	w.Position = b.tensor(n.pos, a.MaxPositions, h)
	if n.typ != "" {
		w.TokenType = b.tensor(n.typ, a.TypeVocab, h)
	}
	w.EmbLN = b.layerNorm(n.embLN, h)
	for l := 0; l < a.Layers; l++ {
		p := fmt.Sprintf(n.layer, l)
		q, k, vv := b.linear(p+n.q, h, h), b.linear(p+n.k, h, h), b.linear(p+n.v, h, h)
		ly := Layer{
			QKV:    Linear{W: slices.Concat(q.W, k.W, vv.W), B: slices.Concat(q.B, k.B, vv.B), Out: 3 * h, In: h},
			AttnO:  b.linear(p+n.o, h, h),
			AttnLN: b.layerNorm(p+n.attnLN, h),
			FFNIn:  b.linear(p+n.ffnIn, a.Intermediate, h),
			FFNOut: b.linear(p+n.ffnOut, h, a.Intermediate),
			FFNLN:  b.layerNorm(p+n.ffnLN, h),
		}
		w.Layers = append(w.Layers, ly)
	}
	w.HeadDense = b.linear(n.headDense, h, h)
	w.HeadLN = b.layerNorm(n.headLN, h)
	if name := b.first(n.decoder); name != "" {
		w.Decoder = b.tensor(name, v, h)
	} else {
		w.Decoder, w.Tied = w.Word, true
	}
	if name := b.first(n.decoderBias); name != "" {
		w.DecoderBias = b.tensor(name, v)
	} else {
		b.fail(fmt.Errorf("%w: %s: the decoder bias (%s) is missing", encode.ErrBadModel, t.Source(), n.decoderBias[0]))
	}
	if b.err != nil {
		return nil, fmt.Errorf("cuda engine: %w", b.err)
	}
	return w, nil
}
