package testmodel

import (
	"fmt"
	"math"

	"github.com/splash-encode/splash/encode/onnxpb"
)

// llamaInvFreq32 computes the rotary inverse frequencies as transformers
// does in float32 (torch's default dtype): inv_freq = 1 / base^(2j/d) from
// _compute_default_rope_parameters, then, with rope_scaling llama3,
// _compute_llama3_parameters' rescaling, one float32 operation at a time.
// The oracle computes the same frequencies separately, in float64.
func llamaInvFreq32(headDim int, theta float64, scaling *LlamaRopeScaling) []float32 {
	half := headDim / 2
	inv := make([]float32, half)
	base := float32(theta)
	for j := range inv {
		exp := float32(2*j) / float32(headDim)
		inv[j] = 1 / float32(math.Pow(float64(base), float64(exp)))
	}
	if scaling == nil {
		return inv
	}
	factor := float32(scaling.Factor)
	low, high := float32(scaling.LowFreqFactor), float32(scaling.HighFreqFactor)
	old := float32(scaling.OriginalMaxPositions)
	lowWavelen, highWavelen := old/low, old/high
	for j, f := range inv {
		wavelen := float32(2*math.Pi) / f
		scaled := f
		if wavelen > lowWavelen {
			scaled = f / factor
		}
		if !(wavelen < highWavelen) && !(wavelen > lowWavelen) {
			smooth := (old/wavelen - low) / (high - low)
			scaled = (1-smooth)*scaled/factor + smooth*scaled
		}
		inv[j] = scaled
	}
	return inv
}

// floatsConst registers a float32 vector constant and returns its name.
func (b *graphBuilder) floatsConst(name string, v []float32) string {
	if !b.seen[name] {
		b.seen[name] = true
		b.consts = append(b.consts, &onnxpb.TensorProto{
			Name: name, DataType: int32(onnxpb.TensorProto_FLOAT), Dims: []int64{int64(len(v))}, FloatData: v,
		})
	}
	return name
}

// split2 splits x into two parts of size n along the last axis.
func (b *graphBuilder) split2(scope, x string, n int64) (string, string) {
	b.count++
	name := fmt.Sprintf("%s/Split_%d", scope, b.count)
	outs := []string{name + "_output_0", name + "_output_1"}
	b.nodes = append(b.nodes, &onnxpb.NodeProto{
		Name:      name,
		OpType:    "Split",
		Input:     []string{x, b.intsConst(fmt.Sprintf("const_split_%d_%d", n, n), false, n, n)},
		Output:    outs,
		Attribute: []*onnxpb.AttributeProto{attrInt("axis", -1)},
	})
	return outs[0], outs[1]
}

// llamaRMSNorm is LlamaRMSNorm: x / sqrt(mean(x^2) + eps) * weight.
func (b *graphBuilder) llamaRMSNorm(weight, x string, eps float32) string {
	scope := "/" + weight
	sq := b.op(scope, "Pow", []string{x, b.scalarF("const_two", 2)})
	v := b.reduceMeanLast(scope, sq)
	ve := b.op(scope, "Add", []string{v, b.scalarF("const_rms_eps", eps)})
	s := b.op(scope, "Sqrt", []string{ve})
	n := b.op(scope, "Div", []string{x, s})
	return b.op(scope, "Mul", []string{weight, n})
}

// llamaLinear is nn.Linear without bias: x @ W^T, W stored [out, in].
func (b *graphBuilder) llamaLinear(weight, x string) string {
	scope := "/" + weight
	wt := b.op(scope, "Transpose", []string{weight}, attrInts("perm", 1, 0))
	return b.op(scope, "MatMul", []string{x, wt})
}

// llamaRotary is apply_rotary_pos_emb for one tensor: x cos + rotate_half(x) sin
// with rotate_half(x) = concat(-x2, x1).
func (b *graphBuilder) llamaRotary(scope, x, cos, sin string, half int64) string {
	x1, x2 := b.split2(scope, x, half)
	neg := b.op(scope, "Neg", []string{x2})
	rot := b.op(scope, "Concat", []string{neg, x1}, attrInt("axis", -1))
	a := b.op(scope, "Mul", []string{x, cos})
	r := b.op(scope, "Mul", []string{rot, sin})
	return b.op(scope, "Add", []string{a, r})
}

// buildLlamaGraph returns the nodes and constant initializers of the
// Llama/Mistral causal LM that GenerateLlama documents. The weight
// initializers (llamaWeightSpecs) are added by the caller.
func buildLlamaGraph(cfg LlamaConfig) ([]*onnxpb.NodeProto, []*onnxpb.TensorProto) {
	b := newGraphBuilder(cfg.Opset)
	d := cfg.headDim()
	half := int64(d / 2)
	eps := float32(cfg.RMSNormEps)

	const m = "/model"
	x := b.op(m+"/embed_tokens", "Gather", []string{llamaNameEmbed, InputIDs}, attrInt("axis", 0))

	// Rotary cos and sin [batch, 1, seq, d] from position_ids.
	const re = "/model/rotary_emb"
	invFreq := b.floatsConst(llamaNameInvFreq, llamaInvFreq32(d, cfg.RopeTheta, cfg.RopeScaling))
	pos := b.op(re, "Cast", []string{InputPositionIDs}, attrInt("to", int64(onnxpb.TensorProto_FLOAT)))
	pos = b.op(re, "Unsqueeze", []string{pos, b.intsConst("const_axes_2", false, 2)}) // [b, seq, 1]
	freqs := b.op(re, "Mul", []string{pos, invFreq})                                  // [b, seq, d/2]
	emb := b.op(re, "Concat", []string{freqs, freqs}, attrInt("axis", -1))            // [b, seq, d]
	axes1 := b.intsConst("const_axes_1", false, 1)
	cos := b.op(re, "Unsqueeze", []string{b.op(re, "Cos", []string{emb}), axes1}) // [b, 1, seq, d]
	sin := b.op(re, "Unsqueeze", []string{b.op(re, "Sin", []string{emb}), axes1})

	// Additive attention bias: 0 where the key is allowed, float32 min
	// elsewhere; [batch, 1, seq, seq] causal, [batch, 1, 1, seq] bidirectional.
	const mk = "/model/attention_mask"
	keep := b.op(mk, "Cast", []string{AttentionMask}, attrInt("to", int64(onnxpb.TensorProto_BOOL)))
	keep = b.op(mk, "Unsqueeze", []string{keep, b.intsConst("const_axes_1_2", false, 1, 2)}) // [b, 1, 1, seq]
	allowed := keep
	if !cfg.Bidirectional {
		shape := b.op(mk, "Shape", []string{InputIDs})
		seqLen := b.op(mk, "Gather", []string{shape, b.intsConst("const_i64_1", true, 1)}, attrInt("axis", 0))
		positions := b.op(mk, "Range", []string{b.intsConst("const_i64_0", true, 0), seqLen, b.intsConst("const_i64_1", true, 1)})
		keyPos := b.op(mk, "Unsqueeze", []string{positions, b.intsConst("const_axes_0", false, 0)}) // [1, seq]: j
		queryPos := b.op(mk, "Unsqueeze", []string{positions, axes1})                               // [seq, 1]: i
		causal := b.op(mk, "LessOrEqual", []string{keyPos, queryPos})
		allowed = b.op(mk, "And", []string{causal, keep})
	}
	bias := b.op(mk, "Where", []string{allowed, b.scalarF("const_zero", 0), b.scalarF("const_f32_min", -math.MaxFloat32)})

	g := cfg.Heads / cfg.KVHeads
	qShape := b.intsConst("const_shape_q_heads", false, 0, 0, int64(cfg.Heads), int64(d))
	kvShape := b.intsConst("const_shape_kv_heads", false, 0, 0, int64(cfg.KVHeads), int64(d))
	repShape := b.intsConst("const_shape_repeated_kv", false, 0, int64(cfg.Heads), -1, int64(d))
	mergeShape := b.intsConst("const_shape_attn_out", false, 0, 0, int64(cfg.Heads*d))
	scaling := b.scalarF("const_attn_scaling", float32(1/math.Sqrt(float64(d))))
	for l := 0; l < cfg.Layers; l++ {
		scope := fmt.Sprintf("/model/layers.%d/self_attn", l)
		h := b.llamaRMSNorm(llamaLayer(l, "input_layernorm.weight"), x, eps)
		heads := func(part, shape string) string {
			y := b.llamaLinear(llamaLayer(l, "self_attn."+part+".weight"), h)
			y = b.op(scope, "Reshape", []string{y, shape})
			return b.op(scope, "Transpose", []string{y}, attrInts("perm", 0, 2, 1, 3)) // [b, heads, seq, d]
		}
		q := b.llamaRotary(scope, heads("q_proj", qShape), cos, sin, half)
		k := b.llamaRotary(scope, heads("k_proj", kvShape), cos, sin, half)
		v := heads("v_proj", kvShape)
		if g > 1 {
			// repeat_kv: [b, kv, seq, d] -> [b, kv, g, seq, d] -> [b, heads, seq, d].
			repeat := func(t string) string {
				t = b.op(scope, "Unsqueeze", []string{t, b.intsConst("const_axes_2", false, 2)})
				t = b.op(scope, "Tile", []string{t, b.intsConst(fmt.Sprintf("const_repeats_kv_%d", g), false, 1, 1, int64(g), 1, 1)})
				return b.op(scope, "Reshape", []string{t, repShape})
			}
			k, v = repeat(k), repeat(v)
		}
		kt := b.op(scope, "Transpose", []string{k}, attrInts("perm", 0, 1, 3, 2))
		scores := b.op(scope, "MatMul", []string{q, kt})
		scores = b.op(scope, "Mul", []string{scores, scaling})
		scores = b.op(scope, "Add", []string{scores, bias})
		probs := b.op(scope, "Softmax", []string{scores}, attrInt("axis", -1))
		ctx := b.op(scope, "MatMul", []string{probs, v})
		ctx = b.op(scope, "Transpose", []string{ctx}, attrInts("perm", 0, 2, 1, 3))
		ctx = b.op(scope, "Reshape", []string{ctx, mergeShape})
		a := b.llamaLinear(llamaLayer(l, "self_attn.o_proj.weight"), ctx)
		x = b.op(fmt.Sprintf("/model/layers.%d", l), "Add", []string{x, a})

		h = b.llamaRMSNorm(llamaLayer(l, "post_attention_layernorm.weight"), x, eps)
		mlp := fmt.Sprintf("/model/layers.%d/mlp", l)
		gate := b.llamaLinear(llamaLayer(l, "mlp.gate_proj.weight"), h)
		gate = b.op(mlp+"/act_fn", "Mul", []string{gate, b.op(mlp+"/act_fn", "Sigmoid", []string{gate})})
		up := b.llamaLinear(llamaLayer(l, "mlp.up_proj.weight"), h)
		down := b.llamaLinear(llamaLayer(l, "mlp.down_proj.weight"), b.op(mlp, "Mul", []string{gate, up}))
		x = b.op(fmt.Sprintf("/model/layers.%d", l), "Add", []string{x, down})
	}
	x = b.llamaRMSNorm(llamaNameNorm, x, eps)

	// LM head: a Linear without bias, the embeddings when tied.
	head := llamaNameLMHead
	if cfg.Tied {
		head = llamaNameEmbed
	}
	const lm = "/lm_head"
	wt := b.op(lm, "Transpose", []string{head}, attrInts("perm", 1, 0))
	b.nodes = append(b.nodes, &onnxpb.NodeProto{
		Name: lm + "/MatMul", OpType: "MatMul", Input: []string{x, wt}, Output: []string{OutputLogits},
	})
	return b.nodes, b.consts
}
