package testmodel

import (
	"fmt"
	"math"

	"github.com/splash-encode/splash/encode/onnxpb"
)

// Hugging Face parameter names of GPT2LMHeadModel. Conv1D weights keep
// GPT-2's layout [in, out]; lm_head.weight is a Linear, [vocab, hidden].
const (
	nameWTE    = "transformer.wte.weight"
	nameWPE    = "transformer.wpe.weight"
	nameLNF    = "transformer.ln_f"
	nameLMHead = "lm_head.weight"
)

// causalLMHeadNoise is the relative noise between the direction of a word
// embedding and that of its LM head row.
const causalLMHeadNoise = 0.1

func gpt2Layer(l int, suffix string) string {
	return fmt.Sprintf("transformer.h.%d.%s", l, suffix)
}

// causalWeightSpecs lists every parameter of the causal model in state-dict
// order. GenerateCausal's documentation explains the distribution.
func causalWeightSpecs(cfg CausalConfig, vocab int) []tensorSpec {
	h, inter := int64(cfg.Hidden), int64(cfg.Intermediate)
	hf := float64(cfg.Hidden)
	// Each of the 2*Layers sublayers adds a squared relative norm of
	// residualBudget/(2*Layers) to a residual stream of per-feature scale
	// wordStd (its input, a LayerNorm output, has per-feature scale 1).
	eps := wordStd * math.Sqrt(residualBudget/float64(2*cfg.Layers))
	unit := 1 / math.Sqrt(hf)
	wte := tensorSpec{nameWTE, []int64{int64(vocab), h}, unitRowFill(wordStd*math.Sqrt(hf), -1)}
	specs := []tensorSpec{
		wte,
		{nameWPE, []int64{int64(cfg.MaxPositions), h}, normalFill(0, posStd)},
	}
	ln := func(prefix string, mean float64) []tensorSpec {
		return []tensorSpec{
			{prefix + ".weight", []int64{h}, normalFill(1, lnJitter)},
			{prefix + ".bias", []int64{h}, normalFill(mean, lnJitter)},
		}
	}
	// Biases follow the scale of their output: those that write into the
	// residual stream are wordStd times smaller.
	conv := func(prefix string, in, out int64, std, bstd float64) []tensorSpec {
		return []tensorSpec{
			{prefix + ".weight", []int64{in, out}, uniformFill(std)},
			{prefix + ".bias", []int64{out}, normalFill(0, bstd)},
		}
	}
	for l := 0; l < cfg.Layers; l++ {
		specs = append(specs, ln(gpt2Layer(l, "ln_1"), 0)...)
		specs = append(specs, conv(gpt2Layer(l, "attn.c_attn"), h, 3*h, unit, biasStd)...)
		specs = append(specs, conv(gpt2Layer(l, "attn.c_proj"), h, h, eps*unit, wordStd*biasStd)...)
		specs = append(specs, ln(gpt2Layer(l, "ln_2"), 0)...)
		specs = append(specs, conv(gpt2Layer(l, "mlp.c_fc"), h, inter, unit, biasStd)...)
		specs = append(specs, conv(gpt2Layer(l, "mlp.c_proj"), inter, h,
			eps/math.Sqrt(geluSecondMoment*float64(cfg.Intermediate)), wordStd*biasStd)...)
	}
	// ln_f's bias, -biasSigmas/sqrt(H) in every feature, meets the all-ones
	// component of every LM head row: the output bias.
	specs = append(specs, ln(nameLNF, -biasSigmas/math.Sqrt(hf))...)
	specs = append(specs, tensorSpec{nameLMHead, []int64{int64(vocab), h}, lmHeadFill(wte, cfg.Seed)})
	return specs
}

// lmHeadFill fills LM head row j with logitScale/sqrt(H) * (dir_j + c_j/sqrt(H)
// * ones): dir_j is the zero-mean unit direction of row j of the word
// embeddings wte (redrawn with wte's own generator for that row) plus
// causalLMHeadNoise relative noise, and c_j = 1 + N(0, (biasJitter/biasSigmas)^2).
func lmHeadFill(wte tensorSpec, seed uint64) func(*rng, int, []float32) {
	wteSeed := tensorSeed(seed, wte.name)
	return func(r *rng, row int, dst []float32) {
		n := len(dst)
		w := make([]float32, n)
		wte.fill(rowRNG(wteSeed, row), row, w)
		var ws float64
		for _, x := range w {
			ws += float64(x) * float64(x)
		}
		// Scale the word row to unit variance per feature, add the noise,
		// remove the mean and normalise.
		scale := 0.0
		if ws > 0 {
			scale = math.Sqrt(float64(n) / ws)
		}
		v := make([]float64, n)
		var mean float64
		for k := range v {
			v[k] = float64(w[k])*scale + causalLMHeadNoise*r.normal()
			mean += v[k]
		}
		mean /= float64(n)
		var ss float64
		for k := range v {
			v[k] -= mean
			ss += v[k] * v[k]
		}
		s := logitScale / math.Sqrt(float64(n))
		c := (1 + biasJitter/biasSigmas*r.normal()) / math.Sqrt(float64(n))
		inv := 1 / math.Sqrt(ss)
		for k := range v {
			dst[k] = float32(s * (v[k]*inv + c))
		}
	}
}

// causalLayerNorm is LayerNorm over the last axis with GPT-2's epsilon,
// decomposed as torch.onnx does at opset 14.
func (b *graphBuilder) causalLayerNorm(prefix, x string) string {
	scope := "/" + prefix
	mean := b.reduceMeanLast(scope, x)
	d := b.op(scope, "Sub", []string{x, mean})
	sq := b.op(scope, "Pow", []string{d, b.scalarF("const_two", 2)})
	v := b.reduceMeanLast(scope, sq)
	ve := b.op(scope, "Add", []string{v, b.scalarF("const_ln_eps_gpt2", causalLayerNormEps)})
	s := b.op(scope, "Sqrt", []string{ve})
	n := b.op(scope, "Div", []string{d, s})
	g := b.op(scope, "Mul", []string{n, prefix + ".weight"})
	return b.op(scope, "Add", []string{g, prefix + ".bias"})
}

// causalConv1D is GPT-2's Conv1D: x @ W + b with W stored [in, out].
func (b *graphBuilder) causalConv1D(prefix, x string) string {
	scope := "/" + prefix
	y := b.op(scope, "MatMul", []string{x, prefix + ".weight"})
	return b.op(scope, "Add", []string{y, prefix + ".bias"})
}

// causalGeluTanh is GPT-2's gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
func (b *graphBuilder) causalGeluTanh(scope, x string) string {
	x3 := b.op(scope, "Pow", []string{x, b.scalarF("const_three", 3)})
	c := b.op(scope, "Mul", []string{x3, b.scalarF("const_gelu_cubic", 0.044715)})
	inner := b.op(scope, "Add", []string{x, c})
	inner = b.op(scope, "Mul", []string{inner, b.scalarF("const_sqrt_2_over_pi", float32(math.Sqrt(2/math.Pi)))})
	t := b.op(scope, "Tanh", []string{inner})
	t = b.op(scope, "Add", []string{t, b.scalarF("const_one", 1)})
	hx := b.op(scope, "Mul", []string{x, b.scalarF("const_half", 0.5)})
	return b.op(scope, "Mul", []string{hx, t})
}

// causalSplit3 splits x into three equal parts of size n along the last axis.
func (b *graphBuilder) causalSplit3(scope, x string, n int64) (string, string, string) {
	b.count++
	name := fmt.Sprintf("%s/Split_%d", scope, b.count)
	outs := []string{name + "_output_0", name + "_output_1", name + "_output_2"}
	b.nodes = append(b.nodes, &onnxpb.NodeProto{
		Name:      name,
		OpType:    "Split",
		Input:     []string{x, b.intsConst(fmt.Sprintf("const_split_%d", n), false, n, n, n)},
		Output:    outs,
		Attribute: []*onnxpb.AttributeProto{attrInt("axis", -1)},
	})
	return outs[0], outs[1], outs[2]
}

// buildCausalGraph returns the nodes and constant initializers of the
// GPT-2 causal LM that GenerateCausal documents. The weight initializers
// (causalWeightSpecs) are added by the caller.
func buildCausalGraph(cfg CausalConfig) ([]*onnxpb.NodeProto, []*onnxpb.TensorProto) {
	b := newGraphBuilder(cfg.Opset)
	headDim := cfg.Hidden / cfg.Heads

	// Positions 0..seq-1 from the input's shape: the position ids without a
	// position_ids input, and both axes of the causal mask.
	const tr = "/transformer"
	shape := b.op(tr, "Shape", []string{InputIDs})
	seqLen := b.op(tr, "Gather", []string{shape, b.intsConst("const_i64_1", true, 1)}, attrInt("axis", 0))
	positions := b.op(tr, "Range", []string{b.intsConst("const_i64_0", true, 0), seqLen, b.intsConst("const_i64_1", true, 1)})
	keyPos := b.op(tr, "Unsqueeze", []string{positions, b.intsConst("const_axes_0", false, 0)})   // [1, seq]: j
	queryPos := b.op(tr, "Unsqueeze", []string{positions, b.intsConst("const_axes_1", false, 1)}) // [seq, 1]: i

	posIDs := keyPos
	if cfg.PositionIDs {
		posIDs = InputPositionIDs
	}
	word := b.op(tr+"/wte", "Gather", []string{nameWTE, InputIDs}, attrInt("axis", 0))
	pos := b.op(tr+"/wpe", "Gather", []string{nameWPE, posIDs}, attrInt("axis", 0))
	x := b.op(tr, "Add", []string{word, pos})

	// Additive attention bias [batch, 1, seq, seq]: 0 where key j <= query i
	// and attention_mask[j] = 1, float32 min elsewhere.
	const mk = "/transformer/attention_mask"
	causal := b.op(mk, "LessOrEqual", []string{keyPos, queryPos}) // [seq, seq]
	keep := b.op(mk, "Cast", []string{AttentionMask}, attrInt("to", int64(onnxpb.TensorProto_BOOL)))
	keep = b.op(mk, "Unsqueeze", []string{keep, b.intsConst("const_axes_1_2", false, 1, 2)}) // [batch, 1, 1, seq]
	allowed := b.op(mk, "And", []string{causal, keep})
	bias := b.op(mk, "Where", []string{allowed, b.scalarF("const_zero", 0), b.scalarF("const_f32_min", -math.MaxFloat32)})

	splitShape := b.intsConst("const_shape_heads", false, 0, 0, int64(cfg.Heads), int64(headDim))
	mergeShape := b.intsConst("const_shape_hidden", false, 0, 0, int64(cfg.Hidden))
	sqrtD := b.scalarF("const_sqrt_head_dim", float32(math.Sqrt(float64(headDim))))
	for l := 0; l < cfg.Layers; l++ {
		scope := fmt.Sprintf("/transformer/h.%d/attn", l)
		h := b.causalLayerNorm(gpt2Layer(l, "ln_1"), x)
		qkv := b.causalConv1D(gpt2Layer(l, "attn.c_attn"), h)
		q, k, v := b.causalSplit3(scope, qkv, int64(cfg.Hidden))
		heads := func(t string, perm ...int64) string {
			r := b.op(scope, "Reshape", []string{t, splitShape})
			return b.op(scope, "Transpose", []string{r}, attrInts("perm", perm...))
		}
		q = heads(q, 0, 2, 1, 3) // [b, heads, seq, d]
		k = heads(k, 0, 2, 3, 1) // [b, heads, d, seq]
		v = heads(v, 0, 2, 1, 3) // [b, heads, seq, d]
		scores := b.op(scope, "MatMul", []string{q, k})
		scores = b.op(scope, "Div", []string{scores, sqrtD})
		scores = b.op(scope, "Add", []string{scores, bias})
		probs := b.op(scope, "Softmax", []string{scores}, attrInt("axis", -1))
		ctx := b.op(scope, "MatMul", []string{probs, v})
		ctx = b.op(scope, "Transpose", []string{ctx}, attrInts("perm", 0, 2, 1, 3))
		ctx = b.op(scope, "Reshape", []string{ctx, mergeShape})
		a := b.causalConv1D(gpt2Layer(l, "attn.c_proj"), ctx)
		x = b.op(fmt.Sprintf("/transformer/h.%d", l), "Add", []string{x, a})

		h = b.causalLayerNorm(gpt2Layer(l, "ln_2"), x)
		m := b.causalConv1D(gpt2Layer(l, "mlp.c_fc"), h)
		m = b.causalGeluTanh(fmt.Sprintf("/transformer/h.%d/mlp/act", l), m)
		m = b.causalConv1D(gpt2Layer(l, "mlp.c_proj"), m)
		x = b.op(fmt.Sprintf("/transformer/h.%d", l), "Add", []string{x, m})
	}
	x = b.causalLayerNorm(nameLNF, x)

	// LM head: a Linear without bias, logits = x @ lm_head^T.
	const head = "/lm_head"
	wt := b.op(head, "Transpose", []string{nameLMHead}, attrInts("perm", 1, 0))
	if !cfg.FP16 {
		b.nodes = append(b.nodes, &onnxpb.NodeProto{
			Name: head + "/MatMul", OpType: "MatMul", Input: []string{x, wt}, Output: []string{OutputLogits},
		})
		return b.nodes, b.consts
	}
	logits := b.op(head, "MatMul", []string{x, wt})
	b.nodes = append(b.nodes, &onnxpb.NodeProto{
		Name: head + "/Cast", OpType: "Cast", Input: []string{logits}, Output: []string{OutputLogits},
		Attribute: []*onnxpb.AttributeProto{attrInt("to", int64(onnxpb.TensorProto_FLOAT16))},
	})
	return b.nodes, b.consts
}
