package cuda

import (
	"errors"
	"fmt"
	"math"

	"github.com/splash-encode/splash/encode"
)

// Attention is the attention mask of a decoder-only model.
type Attention string

// Attentions.
const (
	// AttentionCausal lets token i see tokens 0..i: the models' own mask,
	// the default.
	AttentionCausal Attention = "causal"
	// AttentionBidirectional lets every token see every token of its
	// document (CSPLADE's bidirectional variant).
	AttentionBidirectional Attention = "bidirectional"
)

// ParseAttention reads the --attention flag's value: "causal" (also "")
// or "bidirectional".
func ParseAttention(s string) (Attention, error) {
	switch Attention(s) {
	case "", AttentionCausal:
		return AttentionCausal, nil
	case AttentionBidirectional:
		return AttentionBidirectional, nil
	}
	return "", fmt.Errorf("%w: attention %q: want %q or %q", encode.ErrSettings, s, AttentionCausal, AttentionBidirectional)
}

// SetAttention chooses the attention mask of a decoder-only model (Llama,
// Mistral; causal until set). BERT-family models are bidirectional only:
// asking them for causal attention is an error. Set it before Share: the
// shared Nets copy it.
func (n *Net) SetAttention(att Attention) error {
	if !n.arch.Family.Decoder() {
		if att == AttentionBidirectional {
			return nil
		}
		return fmt.Errorf("%w: attention %q: %s models attend bidirectionally only", encode.ErrSettings, att, n.arch.Family)
	}
	switch att {
	case AttentionCausal, AttentionBidirectional:
		n.attention = att
		return nil
	}
	return fmt.Errorf("%w: attention %q: want %q or %q", encode.ErrSettings, att, AttentionCausal, AttentionBidirectional)
}

// Attention is the attention mask the Net runs ("" for BERT-family
// models, which are bidirectional).
func (n *Net) Attention() Attention { return n.attention }

// deviceBlock is one decoder layer's parameters on an Ops.
type deviceBlock struct {
	inNorm, qkvW, oW, postNorm, gateUpW, downW Buf
}

// newDecoderNet uploads a decoder to ops: the embeddings word, the LM
// head (word itself when tied), the final norm and the layers, which
// layer(l) returns one at a time (binding them from a checkpoint, for
// NewDecoderNet), so that a layer's host copy may go once uploaded.
func newDecoderNet(ops Ops, a Arch, headChunk int, word, head []float32, tied bool, finalNorm []float32, layer func(l int) (DecoderLayer, error)) (n *Net, err error) {
	if headChunk <= 0 {
		headChunk = DefaultHeadChunk
	}
	n = &Net{ops: ops, arch: a, headChunk: headChunk, decoderTied: tied, attention: AttentionCausal}
	defer func() {
		if err != nil {
			err = errors.Join(err, n.Close())
			n = nil
		}
	}()
	upload := func(f func([]float32) (Buf, error), d []float32) Buf {
		if err != nil {
			return nil
		}
		var b Buf
		b, err = f(d)
		n.bufs = append(n.bufs, b)
		return b
	}
	n.word = upload(ops.Matrix, word)
	n.decoder = n.word
	if !tied {
		n.decoder = upload(ops.Matrix, head)
	}
	n.finalNorm, n.invFreq = upload(ops.Vector, finalNorm), upload(ops.Vector, a.InvFreq())
	for l := 0; l < a.Layers && err == nil; l++ {
		var ly DecoderLayer
		if ly, err = layer(l); err != nil {
			break
		}
		n.blocks = append(n.blocks, deviceBlock{
			inNorm: upload(ops.Vector, ly.InputNorm), qkvW: upload(ops.Matrix, ly.QKV.W), oW: upload(ops.Matrix, ly.O.W),
			postNorm: upload(ops.Vector, ly.PostNorm), gateUpW: upload(ops.Matrix, ly.GateUp.W), downW: upload(ops.Matrix, ly.Down.W),
		})
	}
	return n, err
}

// decoderBody runs a Llama/Mistral decoder over the packed batch and
// returns its final hidden states (model.norm's output), [t][Hidden]:
//
//	x = embed_tokens[ids]
//	per layer:
//	  xn = rmsnorm(x)                         (x += previous layer's MLP output first)
//	  q, k, v = split(xn · Wqkvᵀ)              one GEMM, scattered to [b][heads|kv][l][d]
//	  q, k = rope(q), rope(k)                  positions 0.. per document
//	  s = q·kᵀ/√d per (document, KV head)      one GEMM of [g·l][d]×[l][d]ᵀ each
//	  p = softmax(s), causal or bidirectional
//	  c = p·v → packed [t][heads·d]
//	  x += c · Woᵀ; xn = rmsnorm(x)
//	  y = silu(xn·Wgateᵀ) ⊙ (xn·Wupᵀ)          one GEMM of [gate; up], then SwiGLU
//	  (x += y · Wdownᵀ at the next norm)
//	hs = rmsnorm(x) (model.norm)
func (n *Net) decoderBody(ws *workspace, bt batchBufs) (Buf, error) {
	a, ops := n.arch, n.ops
	b, t, l := bt.b, bt.t, bt.l
	h, heads, kv, d, inter := a.Hidden, a.Heads, a.KV(), a.HeadDim(), a.Intermediate
	g := heads / kv
	qkvOut := (heads + 2*kv) * d
	x := ws.alloc("x", ops.Activations, t*h)
	xn := ws.alloc("xn", ops.Activations, t*h)
	y := ws.alloc("y", ops.Activations, t*max(qkvOut, 2*inter, h))
	c := ws.alloc("c", ops.Activations, t*max(heads*d, inter))
	q := ws.alloc("q", ops.Activations, b*heads*l*d)
	k := ws.alloc("k", ops.Activations, b*kv*l*d)
	v := ws.alloc("v", ops.Activations, b*kv*l*d)
	s := ws.alloc("s", ops.Activations, b*heads*l*l)
	if ws.err != nil {
		return nil, fmt.Errorf("cuda engine: batch of %d documents, %d tokens, longest %d: %w", b, t, l, ws.err)
	}
	offsets := bt.offsets
	var st steps
	step := st.do
	step("embeddings", ops.Embed(t, h, bt.ids, n.word, x))
	scale := float32(1 / math.Sqrt(float64(d)))
	for i, ly := range n.blocks {
		if st.err != nil {
			break
		}
		name := func(s string) string { return fmt.Sprintf("layer %d: %s", i, s) }
		if i == 0 {
			step(name("input norm"), ops.ResidualRMSNorm(t, h, nil, x, ly.inNorm, a.Eps, nil, xn))
		} else { // y holds the previous layer's MLP output
			step(name("input norm"), ops.ResidualRMSNorm(t, h, y, x, ly.inNorm, a.Eps, x, xn))
		}
		step(name("qkv"), ops.LinearT(t, qkvOut, h, xn, ly.qkvW, y))
		step(name("qkv scatter"), ops.GQAScatter(b, heads, kv, d, l, y, offsets, q, k, v))
		step(name("rope q"), ops.RoPE(b, heads, d, l, q, offsets, n.invFreq, 0))
		step(name("rope k"), ops.RoPE(b, kv, d, l, k, offsets, n.invFreq, 0))
		step(name("scores"), ops.ScoresGrouped(b*kv, g*l, l, d, scale, q, k, s))
		if n.attention == AttentionBidirectional {
			step(name("softmax"), ops.MaskedSoftmax(b, heads, l, s, offsets))
		} else {
			step(name("causal softmax"), ops.CausalSoftmax(b, heads, l, s, offsets))
		}
		step(name("context"), ops.ContextGrouped(b*kv, g*l, l, d, s, v, q)) // q is free again
		step(name("gather"), ops.AttnGather(b, heads, d, l, q, offsets, c))
		step(name("attention output"), ops.LinearT(t, h, heads*d, c, ly.oW, y))
		step(name("post-attention norm"), ops.ResidualRMSNorm(t, h, y, x, ly.postNorm, a.Eps, x, xn))
		step(name("gate and up"), ops.LinearT(t, 2*inter, h, xn, ly.gateUpW, y))
		step(name("swiglu"), ops.SwiGLU(t, inter, y, c))
		step(name("down"), ops.LinearT(t, h, inter, c, ly.downW, y))
	}
	step("final norm", ops.ResidualRMSNorm(t, h, y, x, n.finalNorm, a.Eps, x, xn))
	return xn, st.err
}
