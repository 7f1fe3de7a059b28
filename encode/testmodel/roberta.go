package testmodel

import (
	"github.com/splash-encode/splash/encode/onnxpb"
)

// buildRoBERTaGraph returns the nodes and constant initializers of a
// RobertaForMaskedLM as torch.onnx exports it. It is BERT's graph except for
// the embeddings and the head:
//
//   - position ids are computed from input_ids as Hugging Face's
//     create_position_ids_from_input_ids does: mask = (input_ids != 1),
//     positions = cumsum(mask, axis 1) * mask + 1 (1 = padding_idx =
//     pad_token_id), so tokens count from 2 and padding tokens get 1;
//   - token types: there is no token_type_ids input; the ids are all zero,
//     so row 0 of the one-row table is added to every position;
//   - head: lm_head.dense, GELU, lm_head.layer_norm, decoder tied to the word
//     embeddings plus lm_head.bias.
func buildRoBERTaGraph(cfg Config) ([]*onnxpb.NodeProto, []*onnxpb.TensorProto) {
	b := newModelGraphBuilder(cfg)
	b.eps = robertaLayerNormEps
	n := archNamesOf(ArchRoBERTa)

	const emb = "/roberta/embeddings"
	pad := b.intsConst("const_i64_pad", true, robertaPadID)
	isPad := b.op(emb, "Equal", []string{InputIDs, pad})
	notPad := b.op(emb, "Not", []string{isPad})
	mask := b.op(emb, "Cast", []string{notPad}, attrInt("to", int64(onnxpb.TensorProto_INT64)))
	count := b.op(emb, "CumSum", []string{mask, b.intsConst("const_i64_1", true, 1)})
	count = b.op(emb, "Mul", []string{count, mask})
	posIDs := b.op(emb, "Add", []string{count, pad})

	word := b.op(emb, "Gather", []string{n.wordEmb, InputIDs}, attrInt("axis", 0))
	typ := b.op(emb, "Gather", []string{n.typeEmb, b.intsConst("const_i64_0", true, 0)}, attrInt("axis", 0))
	pos := b.op(emb, "Gather", []string{n.posEmb, posIDs}, attrInt("axis", 0))
	x := b.op(emb, "Add", []string{word, typ})
	x = b.op(emb, "Add", []string{x, pos})
	x = b.layerNorm(n.embLN, x)

	x = b.bertEncoder(cfg, "roberta", n, x)

	t := b.linear(n.headDense, x)
	t = b.gelu("/lm_head/gelu", t)
	t = b.layerNorm(n.headLN, t)
	b.tiedDecoder("/lm_head/decoder", t, n.wordEmb, n.outBias, cfg.FP16)
	return b.nodes, b.consts
}

// robertaJSON is a Hugging Face RobertaConfig.
type robertaJSON struct {
	Architectures         []string `json:"architectures"`
	ModelType             string   `json:"model_type"`
	VocabSize             int      `json:"vocab_size"`
	HiddenSize            int      `json:"hidden_size"`
	NumHiddenLayers       int      `json:"num_hidden_layers"`
	NumAttentionHeads     int      `json:"num_attention_heads"`
	IntermediateSize      int      `json:"intermediate_size"`
	MaxPositionEmbeddings int      `json:"max_position_embeddings"`
	TypeVocabSize         int      `json:"type_vocab_size"`
	LayerNormEps          float64  `json:"layer_norm_eps"`
	HiddenAct             string   `json:"hidden_act"`
	BosTokenID            int      `json:"bos_token_id"`
	PadTokenID            int      `json:"pad_token_id"`
	EosTokenID            int      `json:"eos_token_id"`
	PositionEmbeddingType string   `json:"position_embedding_type"`
	TieWordEmbeddings     bool     `json:"tie_word_embeddings"`
	TorchDType            string   `json:"torch_dtype,omitempty"`
	SplashTestModel       testInfo `json:"splash_test_model"`
}

func robertaConfig(cfg Config, vocab int) robertaJSON {
	return robertaJSON{
		Architectures:         []string{hfClass(ArchRoBERTa)},
		ModelType:             string(ArchRoBERTa),
		VocabSize:             vocab,
		HiddenSize:            cfg.Hidden,
		NumHiddenLayers:       cfg.Layers,
		NumAttentionHeads:     cfg.Heads,
		IntermediateSize:      cfg.Intermediate,
		MaxPositionEmbeddings: positionRows(cfg),
		TypeVocabSize:         cfg.TypeVocab,
		LayerNormEps:          robertaLayerNormEps,
		HiddenAct:             "gelu",
		BosTokenID:            robertaBOSID,
		PadTokenID:            robertaPadID,
		EosTokenID:            robertaEOSID,
		PositionEmbeddingType: "absolute",
		TieWordEmbeddings:     true,
		TorchDType:            torchDType(cfg),
		SplashTestModel:       newTestInfo(cfg),
	}
}
