package testmodel

import (
	"fmt"
	"math"

	"github.com/splash-encode/splash/encode/onnxpb"
)

// float32Min is torch.finfo(torch.float32).min, the value DistilBERT's
// attention puts in the scores of padding keys (masked_fill).
const float32Min = -math.MaxFloat32

// buildDistilBERTGraph returns the nodes and constant initializers of a
// DistilBertForMaskedLM as torch.onnx exports it: embeddings word + position
// (0..seq-1) and LayerNorm, no token types; per layer multi-head attention
// whose queries are divided by sqrt(head_dim) before the product with the
// keys and whose padding keys get float32 min through Where (masked_fill),
// out_lin, residual, sa_layer_norm, then ffn.lin1, GELU, ffn.lin2, residual,
// output_layer_norm; head vocab_transform, GELU, vocab_layer_norm and
// vocab_projector, whose weight is tied to the word embeddings.
func buildDistilBERTGraph(cfg Config) ([]*onnxpb.NodeProto, []*onnxpb.TensorProto) {
	b := newModelGraphBuilder(cfg)
	n := archNamesOf(ArchDistilBERT)
	headDim := cfg.Hidden / cfg.Heads

	const emb = "/distilbert/embeddings"
	word := b.op(emb, "Gather", []string{n.wordEmb, InputIDs}, attrInt("axis", 0))
	shape := b.op(emb, "Shape", []string{InputIDs})
	seqLen := b.op(emb, "Gather", []string{shape, b.intsConst("const_i64_1", true, 1)}, attrInt("axis", 0))
	positions := b.op(emb, "Range", []string{b.intsConst("const_i64_0", true, 0), seqLen, b.intsConst("const_i64_1", true, 1)})
	posIDs := b.op(emb, "Unsqueeze", []string{positions, b.intsConst("const_axes_0", false, 0)})
	pos := b.op(emb, "Gather", []string{n.posEmb, posIDs}, attrInt("axis", 0))
	x := b.op(emb, "Add", []string{word, pos})
	x = b.layerNorm(n.embLN, x)

	// Padding keys: (attention_mask == 0) as bool [batch, 1, 1, seq].
	const maskScope = "/distilbert/transformer/mask"
	isPad := b.op(maskScope, "Equal", []string{AttentionMask, b.intsConst("const_i64_0", true, 0)})
	isPad = b.op(maskScope, "Unsqueeze", []string{isPad, b.intsConst("const_axes_1_2", false, 1, 2)})
	minScore := b.scalarF("const_float32_min", float32Min)

	splitShape := b.intsConst("const_shape_heads", false, 0, 0, int64(cfg.Heads), int64(headDim))
	mergeShape := b.intsConst("const_shape_hidden", false, 0, 0, int64(cfg.Hidden))
	sqrtD := b.scalarF("const_sqrt_head_dim", float32(math.Sqrt(float64(headDim))))
	for l := 0; l < cfg.Layers; l++ {
		scope := fmt.Sprintf("/distilbert/transformer/layer.%d/attention", l)
		heads := func(part layerPart, perm ...int64) string {
			y := b.linear(n.layer(l, part), x)
			r := b.op(scope, "Reshape", []string{y, splitShape})
			return b.op(scope, "Transpose", []string{r}, attrInts("perm", perm...))
		}
		q := heads(partQuery, 0, 2, 1, 3) // [b, heads, seq, d]
		q = b.op(scope, "Div", []string{q, sqrtD})
		k := heads(partKey, 0, 2, 3, 1)   // [b, heads, d, seq]
		v := heads(partValue, 0, 2, 1, 3) // [b, heads, seq, d]
		scores := b.op(scope, "MatMul", []string{q, k})
		scores = b.op(scope, "Where", []string{isPad, minScore, scores})
		probs := b.op(scope, "Softmax", []string{scores}, attrInt("axis", -1))
		ctx := b.op(scope, "MatMul", []string{probs, v})
		ctx = b.op(scope, "Transpose", []string{ctx}, attrInts("perm", 0, 2, 1, 3))
		ctx = b.op(scope, "Reshape", []string{ctx, mergeShape})

		attn := b.linear(n.layer(l, partAttnOut), ctx)
		attn = b.op(fmt.Sprintf("/distilbert/transformer/layer.%d", l), "Add", []string{attn, x})
		x = b.layerNorm(n.layer(l, partAttnLN), attn)

		inter := b.linear(n.layer(l, partFFNIn), x)
		inter = b.gelu(fmt.Sprintf("/distilbert/transformer/layer.%d/ffn/activation", l), inter)
		out := b.linear(n.layer(l, partFFNOut), inter)
		out = b.op(fmt.Sprintf("/distilbert/transformer/layer.%d", l), "Add", []string{out, x})
		x = b.layerNorm(n.layer(l, partFFNLN), out)
	}

	t := b.linear(n.headDense, x)
	t = b.gelu("/activation", t)
	t = b.layerNorm(n.headLN, t)
	b.tiedDecoder("/vocab_projector", t, n.wordEmb, n.outBias, cfg.FP16)
	return b.nodes, b.consts
}

// distilbertJSON is a Hugging Face DistilBertConfig.
type distilbertJSON struct {
	Architectures         []string `json:"architectures"`
	ModelType             string   `json:"model_type"`
	VocabSize             int      `json:"vocab_size"`
	Dim                   int      `json:"dim"`
	HiddenDim             int      `json:"hidden_dim"`
	NLayers               int      `json:"n_layers"`
	NHeads                int      `json:"n_heads"`
	MaxPositionEmbeddings int      `json:"max_position_embeddings"`
	SinusoidalPosEmbds    bool     `json:"sinusoidal_pos_embds"`
	Activation            string   `json:"activation"`
	PadTokenID            int      `json:"pad_token_id"`
	TieWordEmbeddings     bool     `json:"tie_word_embeddings"`
	// TieWeights is DistilBertConfig's own tying flag (tie_weights_).
	TieWeights      bool     `json:"tie_weights_"`
	TorchDType      string   `json:"torch_dtype,omitempty"`
	SplashTestModel testInfo `json:"splash_test_model"`
}

func distilbertConfig(cfg Config, vocab int) distilbertJSON {
	return distilbertJSON{
		Architectures:         []string{hfClass(ArchDistilBERT)},
		ModelType:             string(ArchDistilBERT),
		VocabSize:             vocab,
		Dim:                   cfg.Hidden,
		HiddenDim:             cfg.Intermediate,
		NLayers:               cfg.Layers,
		NHeads:                cfg.Heads,
		MaxPositionEmbeddings: cfg.MaxPositions,
		Activation:            "gelu",
		PadTokenID:            padTokenID,
		TieWordEmbeddings:     true,
		TieWeights:            true,
		TorchDType:            torchDType(cfg),
		SplashTestModel:       newTestInfo(cfg),
	}
}
