package cuda

import (
	"fmt"

	"github.com/splash-encode/splash/kernels"
)

// The Llama-family methods of TwinOps: the shape checks of ops_llama.go,
// then the twins of kernels/llama_twin.go on prefixes of the buffers, and
// the plain Go GEMM for the grouped attention products.

// twinKinds reports a buffer of TwinOps holding the wrong kind of values
// (int32 where float values are wanted, or the reverse); nil buffers pass.
func twinKinds(op string, intBufs []Buf, floatBufs ...Buf) error {
	for _, b := range intBufs {
		if h, ok := b.(*hostBuf); b != nil && (!ok || h.f != nil) {
			return fmt.Errorf("%s: %T is not an int32 buffer of TwinOps", op, b)
		}
	}
	for _, b := range floatBufs {
		if h, ok := b.(*hostBuf); b != nil && (!ok || h.i != nil) {
			return fmt.Errorf("%s: %T is not a float buffer of TwinOps", op, b)
		}
	}
	return nil
}

func (o *TwinOps) Embed(tokens, h int, ids, word, out Buf) error {
	if err := checkEmbedOp(tokens, h, ids, word, out); err != nil {
		return err
	}
	if err := twinKinds("embed", []Buf{ids}, word, out); err != nil {
		return err
	}
	return kernels.EmbedTwin(o.dt, ints(ids)[:tokens], floats(word), h, floats(out)[:tokens*h])
}

func (o *TwinOps) ResidualRMSNorm(tokens, h int, y, residual, gamma Buf, eps float32, sum, out Buf) error {
	if err := checkResidualRMSNormOp(tokens, h, y, residual, gamma, sum, out); err != nil {
		return err
	}
	if err := twinKinds("residual-rmsnorm", nil, y, residual, gamma, sum, out); err != nil {
		return err
	}
	n := tokens * h
	return kernels.ResidualRMSNormTwin(o.dt, prefixFloats(floats(y), n), floats(residual)[:n], floats(gamma)[:h], h, eps,
		prefixFloats(floats(sum), n), floats(out)[:n])
}

func (o *TwinOps) GQAScatter(b, heads, kv, d, l int, qkv, offsets, q, k, v Buf) error {
	if err := checkGQAScatterOp(b, heads, kv, d, l, qkv, offsets, q, k, v); err != nil {
		return err
	}
	if err := twinKinds("gqa-scatter", []Buf{offsets}, qkv, q, k, v); err != nil {
		return err
	}
	off := ints(offsets)[:b+1]
	w := (heads + 2*kv) * d
	tokens := int(off[b])
	if tokens < 0 || tokens*w > qkv.Len() {
		return fmt.Errorf("gqa-scatter: offsets[%d] = %d tokens of %d values, qkv has %d", b, tokens, w, qkv.Len())
	}
	nq, nk := b*heads*l*d, b*kv*l*d
	return kernels.GQAScatterTwin(o.dt, floats(qkv)[:tokens*w], off, heads, kv, d, l,
		floats(q)[:nq], floats(k)[:nk], floats(v)[:nk])
}

func (o *TwinOps) RoPE(b, heads, d, l int, x, offsets, invFreq Buf, positionOffset int32) error {
	if err := checkRoPEOp(b, heads, d, l, x, offsets, invFreq, positionOffset); err != nil {
		return err
	}
	if err := twinKinds("rope", []Buf{offsets}, x, invFreq); err != nil {
		return err
	}
	return kernels.RoPETwin(o.dt, floats(x)[:b*heads*l*d], ints(offsets)[:b+1], heads, d, l, floats(invFreq)[:d/2], positionOffset)
}

func (o *TwinOps) CausalSoftmax(b, heads, l int, s, offsets Buf) error {
	if err := checkCausalSoftmaxOp(b, heads, l, s, offsets); err != nil {
		return err
	}
	if err := twinKinds("causal-softmax", []Buf{offsets}, s); err != nil {
		return err
	}
	return kernels.CausalSoftmaxTwin(o.dt, floats(s)[:b*heads*l*l], ints(offsets)[:b+1], heads, l)
}

func (o *TwinOps) SwiGLU(tokens, inter int, gateUp, out Buf) error {
	if err := checkSwiGLUOp(tokens, inter, gateUp, out); err != nil {
		return err
	}
	if err := twinKinds("swiglu", nil, gateUp, out); err != nil {
		return err
	}
	return kernels.SwiGLUTwin(o.dt, floats(gateUp)[:tokens*2*inter], tokens, inter, floats(out)[:tokens*inter])
}

// ScoresGrouped: per block, the plain GEMM of Scores with m query rows and
// n key rows.
func (o *TwinOps) ScoresGrouped(batch, m, n, d int, alpha float32, q, k, s Buf) error {
	if err := checkScoresGroupedOp(batch, m, n, d, q, k, s); err != nil {
		return err
	}
	if err := twinKinds("scores-grouped", nil, q, k, s); err != nil {
		return err
	}
	qs, ks, ss := floats(q), floats(k), floats(s)
	for i := 0; i < batch; i++ {
		qi, ki := qs[i*m*d:(i+1)*m*d], ks[i*n*d:(i+1)*n*d]
		o.gemm(m, n, d, alpha,
			func(r, p int) float32 { return qi[r*d+p] },
			func(p, j int) float32 { return ki[j*d+p] },
			ss[i*m*n:(i+1)*m*n])
	}
	return nil
}

// ContextGrouped: per block, the plain GEMM of Context with m probability
// rows over n keys.
func (o *TwinOps) ContextGrouped(batch, m, n, d int, p, v, c Buf) error {
	if err := checkContextGroupedOp(batch, m, n, d, p, v, c); err != nil {
		return err
	}
	if err := twinKinds("context-grouped", nil, p, v, c); err != nil {
		return err
	}
	ps, vs, cs := floats(p), floats(v), floats(c)
	for i := 0; i < batch; i++ {
		pi, vi := ps[i*m*n:(i+1)*m*n], vs[i*n*d:(i+1)*n*d]
		o.gemm(m, d, n, 1,
			func(r, q int) float32 { return pi[r*n+q] },
			func(q, j int) float32 { return vi[q*d+j] },
			cs[i*m*d:(i+1)*m*d])
	}
	return nil
}
