package testmodel

import (
	"fmt"
	"math"

	"github.com/splash-encode/splash/encode/onnxpb"
)

// Graph input and output names (those of an optimum fill-mask export).
const (
	InputIDs      = "input_ids"
	AttentionMask = "attention_mask"
	TokenTypeIDs  = "token_type_ids"
	OutputLogits  = "logits"
)

// Symbolic dimension names of the inputs and of the output.
const (
	DimBatch    = "batch_size"
	DimSequence = "sequence_length"
)

// maskPenalty is added to the attention scores of padding keys, as in the
// original Hugging Face BERT ((1 - mask) * -10000); it stays finite in fp16.
const maskPenalty = -10000.0

// layerNormEps is the LayerNorm epsilon of BERT and DistilBERT;
// robertaLayerNormEps is RoBERTa's (layer_norm_eps of roberta-base).
const (
	layerNormEps        = 1e-12
	robertaLayerNormEps = 1e-5
)

// graphBuilder accumulates nodes and small constant initializers.
type graphBuilder struct {
	opset  int
	eps    float32 // LayerNorm epsilon
	nodes  []*onnxpb.NodeProto
	consts []*onnxpb.TensorProto
	seen   map[string]bool // constant names already emitted
	count  int
	// matmulNames maps dense weight names to the pre-transposed
	// initializers that linear multiplies by instead (Config.OptimumNames).
	matmulNames map[string]string
}

// newModelGraphBuilder is newGraphBuilder for a masked-LM of cfg.
func newModelGraphBuilder(cfg Config) *graphBuilder {
	b := newGraphBuilder(cfg.Opset)
	if cfg.OptimumNames {
		b.matmulNames = optimumMatMulNames(cfg)
	}
	return b
}

func newGraphBuilder(opset int) *graphBuilder {
	return &graphBuilder{opset: opset, eps: layerNormEps, seen: map[string]bool{}}
}

// op appends a node with one output and returns the output name.
func (b *graphBuilder) op(scope, opType string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	b.count++
	name := fmt.Sprintf("%s/%s_%d", scope, opType, b.count)
	out := name + "_output_0"
	b.nodes = append(b.nodes, &onnxpb.NodeProto{
		Name:      name,
		OpType:    opType,
		Input:     inputs,
		Output:    []string{out},
		Attribute: attrs,
	})
	return out
}

func attrInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_INTS, Ints: v}
}

func attrInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_INT, I: v}
}

// scalarF registers a float32 scalar constant and returns its name.
func (b *graphBuilder) scalarF(name string, v float32) string {
	if !b.seen[name] {
		b.seen[name] = true
		b.consts = append(b.consts, &onnxpb.TensorProto{
			Name: name, DataType: int32(onnxpb.TensorProto_FLOAT), FloatData: []float32{v},
		})
	}
	return name
}

// intsConst registers an int64 constant (a scalar when scalar is true) and returns its name.
func (b *graphBuilder) intsConst(name string, scalar bool, v ...int64) string {
	if !b.seen[name] {
		b.seen[name] = true
		t := &onnxpb.TensorProto{Name: name, DataType: int32(onnxpb.TensorProto_INT64), Int64Data: v}
		if !scalar {
			t.Dims = []int64{int64(len(v))}
		}
		b.consts = append(b.consts, t)
	}
	return name
}

// reduceMeanLast is ReduceMean over the last axis with keepdims, in the
// signature of the builder's opset.
func (b *graphBuilder) reduceMeanLast(scope, x string) string {
	if b.opset >= 18 {
		return b.op(scope, "ReduceMean", []string{x, b.intsConst("const_axes_last", false, -1)}, attrInt("keepdims", 1))
	}
	return b.op(scope, "ReduceMean", []string{x}, attrInts("axes", -1), attrInt("keepdims", 1))
}

// layerNorm is LayerNorm over the last axis, decomposed as torch.onnx does at
// opset 14: (x - mean) / sqrt(mean((x - mean)^2) + eps) * gamma + beta.
func (b *graphBuilder) layerNorm(prefix, x string) string {
	scope := "/" + prefix
	mean := b.reduceMeanLast(scope, x)
	d := b.op(scope, "Sub", []string{x, mean})
	sq := b.op(scope, "Pow", []string{d, b.scalarF("const_two", 2)})
	v := b.reduceMeanLast(scope, sq)
	ve := b.op(scope, "Add", []string{v, b.scalarF("const_ln_eps", b.eps)})
	s := b.op(scope, "Sqrt", []string{ve})
	n := b.op(scope, "Div", []string{d, s})
	g := b.op(scope, "Mul", []string{n, prefix + ".weight"})
	return b.op(scope, "Add", []string{g, prefix + ".bias"})
}

// linear is x @ W^T + b with W stored [out, in] as in PyTorch; with
// matmulNames (Config.OptimumNames) it is bias + x @ W' with W' = W^T
// stored under its made-up name, as torch.onnx exports it.
func (b *graphBuilder) linear(prefix, x string) string {
	scope := "/" + prefix
	if w, ok := b.matmulNames[prefix+".weight"]; ok {
		y := b.op(scope, "MatMul", []string{x, w})
		return b.op(scope, "Add", []string{prefix + ".bias", y})
	}
	wt := b.op(scope, "Transpose", []string{prefix + ".weight"}, attrInts("perm", 1, 0))
	y := b.op(scope, "MatMul", []string{x, wt})
	return b.op(scope, "Add", []string{y, prefix + ".bias"})
}

// gelu is the exact GELU: x * 0.5 * (1 + erf(x / sqrt(2))).
func (b *graphBuilder) gelu(scope, x string) string {
	d := b.op(scope, "Div", []string{x, b.scalarF("const_sqrt2", float32(math.Sqrt2))})
	e := b.op(scope, "Erf", []string{d})
	a := b.op(scope, "Add", []string{e, b.scalarF("const_one", 1)})
	m := b.op(scope, "Mul", []string{x, a})
	return b.op(scope, "Mul", []string{m, b.scalarF("const_half", 0.5)})
}

// buildGraph returns the nodes and constant initializers of the masked-LM of
// cfg.Arch. The weight initializers (weightSpecs) are added by the caller.
func buildGraph(cfg Config) ([]*onnxpb.NodeProto, []*onnxpb.TensorProto) {
	switch cfg.Arch {
	case ArchDistilBERT:
		return buildDistilBERTGraph(cfg)
	case ArchRoBERTa:
		return buildRoBERTaGraph(cfg)
	}
	return buildBERTGraph(cfg)
}

// buildBERTGraph returns the nodes and constant initializers of a BERT masked-LM.
func buildBERTGraph(cfg Config) ([]*onnxpb.NodeProto, []*onnxpb.TensorProto) {
	b := newModelGraphBuilder(cfg)
	names := archNamesOf(ArchBERT)

	// Embeddings: word + position (0..seq-1, from the input's shape) + token type.
	const emb = "/bert/embeddings"
	word := b.op(emb, "Gather", []string{nameWordEmb, InputIDs}, attrInt("axis", 0))
	shape := b.op(emb, "Shape", []string{InputIDs})
	seqLen := b.op(emb, "Gather", []string{shape, b.intsConst("const_i64_1", true, 1)}, attrInt("axis", 0))
	positions := b.op(emb, "Range", []string{b.intsConst("const_i64_0", true, 0), seqLen, b.intsConst("const_i64_1", true, 1)})
	posIDs := b.op(emb, "Unsqueeze", []string{positions, b.intsConst("const_axes_0", false, 0)})
	pos := b.op(emb, "Gather", []string{namePosEmb, posIDs}, attrInt("axis", 0))
	typ := b.op(emb, "Gather", []string{nameTypeEmb, TokenTypeIDs}, attrInt("axis", 0))
	x := b.op(emb, "Add", []string{word, typ})
	x = b.op(emb, "Add", []string{x, pos})
	x = b.layerNorm(nameEmbLN, x)

	x = b.bertEncoder(cfg, "bert", names, x)

	// MLM head: dense + GELU + LayerNorm, decoder tied to the word embeddings.
	t := b.linear(nameHeadDense, x)
	t = b.gelu("/cls/predictions/transform/transform_act_fn", t)
	t = b.layerNorm(nameHeadLN, t)
	b.tiedDecoder("/cls/predictions/decoder", t, nameWordEmb, nameOutBias, cfg.FP16)
	return b.nodes, b.consts
}

// extendedMask returns the additive attention mask [batch, 1, 1, seq]:
// (1 - mask) * -10000.
func (b *graphBuilder) extendedMask(scope string) string {
	m := b.op(scope, "Unsqueeze", []string{AttentionMask, b.intsConst("const_axes_1_2", false, 1, 2)})
	mf := b.op(scope, "Cast", []string{m}, attrInt("to", int64(onnxpb.TensorProto_FLOAT)))
	inv := b.op(scope, "Sub", []string{b.scalarF("const_one", 1), mf})
	return b.op(scope, "Mul", []string{inv, b.scalarF("const_mask_penalty", maskPenalty)})
}

// bertEncoder appends the extended attention mask and the post-LayerNorm
// encoder layers of BERT (also RoBERTa's) under the node scope /root/...
// and returns the last hidden state.
func (b *graphBuilder) bertEncoder(cfg Config, root string, names archNames, x string) string {
	headDim := cfg.Hidden / cfg.Heads
	penalty := b.extendedMask("/" + root + "/extended_attention_mask")

	splitShape := b.intsConst("const_shape_heads", false, 0, 0, int64(cfg.Heads), int64(headDim))
	mergeShape := b.intsConst("const_shape_hidden", false, 0, 0, int64(cfg.Hidden))
	sqrtD := b.scalarF("const_sqrt_head_dim", float32(math.Sqrt(float64(headDim))))
	for l := 0; l < cfg.Layers; l++ {
		scope := fmt.Sprintf("/%s/encoder/layer.%d/attention/self", root, l)
		heads := func(part layerPart, perm ...int64) string {
			y := b.linear(names.layer(l, part), x)
			r := b.op(scope, "Reshape", []string{y, splitShape})
			return b.op(scope, "Transpose", []string{r}, attrInts("perm", perm...))
		}
		q := heads(partQuery, 0, 2, 1, 3) // [b, heads, seq, d]
		k := heads(partKey, 0, 2, 3, 1)   // [b, heads, d, seq]
		v := heads(partValue, 0, 2, 1, 3) // [b, heads, seq, d]
		scores := b.op(scope, "MatMul", []string{q, k})
		scores = b.op(scope, "Div", []string{scores, sqrtD})
		scores = b.op(scope, "Add", []string{scores, penalty})
		probs := b.op(scope, "Softmax", []string{scores}, attrInt("axis", -1))
		ctx := b.op(scope, "MatMul", []string{probs, v})
		ctx = b.op(scope, "Transpose", []string{ctx}, attrInts("perm", 0, 2, 1, 3))
		ctx = b.op(scope, "Reshape", []string{ctx, mergeShape})

		attn := b.linear(names.layer(l, partAttnOut), ctx)
		attn = b.op(fmt.Sprintf("/%s/encoder/layer.%d/attention/output", root, l), "Add", []string{attn, x})
		x = b.layerNorm(names.layer(l, partAttnLN), attn)

		inter := b.linear(names.layer(l, partFFNIn), x)
		inter = b.gelu(fmt.Sprintf("/%s/encoder/layer.%d/intermediate/intermediate_act_fn", root, l), inter)
		out := b.linear(names.layer(l, partFFNOut), inter)
		out = b.op(fmt.Sprintf("/%s/encoder/layer.%d/output", root, l), "Add", []string{out, x})
		x = b.layerNorm(names.layer(l, partFFNLN), out)
	}
	return x
}

// tiedDecoder appends the decoder tied to the word embeddings,
// MatMul(t, Transpose(wordEmb)) + bias, as the graph output logits (through
// a Cast to float16 when fp16).
func (b *graphBuilder) tiedDecoder(dec, t, wordEmb, bias string, fp16 bool) {
	et := b.op(dec, "Transpose", []string{wordEmb}, attrInts("perm", 1, 0))
	logits := b.op(dec, "MatMul", []string{t, et})
	if !fp16 {
		b.nodes = append(b.nodes, &onnxpb.NodeProto{
			Name: dec + "/Add", OpType: "Add", Input: []string{logits, bias}, Output: []string{OutputLogits},
		})
		return
	}
	// Float16 output: the float32 logits, cast once (round half to even).
	logits = b.op(dec, "Add", []string{logits, bias})
	b.nodes = append(b.nodes, &onnxpb.NodeProto{
		Name: dec + "/Cast", OpType: "Cast", Input: []string{logits}, Output: []string{OutputLogits},
		Attribute: []*onnxpb.AttributeProto{attrInt("to", int64(onnxpb.TensorProto_FLOAT16))},
	})
}
