package cuda

import "math"

// llamaKernelCases are the kernel checks of the Llama-family Ops methods
// over the shared data of kernelCases: grouped-query attention with one KV
// head for the data's heads (g = heads), q/k/v, scores and probabilities
// taken from the BERT checks' buffers (prefixes where a KV tensor is
// smaller), SwiGLU over inter/2 columns of the feed-forward activations.
func llamaKernelCases(k *kernelData) []kernelCase {
	const eps = 1e-5
	const kv = 1
	t, h, b, l, d, heads, inter := k.t, k.h, k.b, k.l, k.d, k.heads, k.inter
	bh, bkv := b*heads, b*kv
	w := (heads + 2*kv) * d
	half := inter / 2
	invFreq := make([]float32, d/2)
	for j := range invFreq {
		invFreq[j] = float32(1 / math.Pow(10000, float64(2*j)/float64(d)))
	}
	act := func(bufs ...Buf) []checkOutput {
		var out []checkOutput
		for _, x := range bufs {
			if x == nil {
				return nil
			}
			out = append(out, checkOutput{b: x, n: x.Len(), act: true})
		}
		return out
	}
	return []kernelCase{
		{name: "embed", run: func(s *opsSide) []checkOutput {
			ids, word, out := s.ints(k.ids), s.matrix(k.word), s.activations(t*h)
			s.call(func() error { return s.ops.Embed(t, h, ids, word, out) })
			return act(out)
		}},
		{name: "embed, ids above 65,535", run: func(s *opsSide) []checkOutput {
			// A table of 70,001 rows of 4 values, each row distinct, read
			// at ids 65,536 and up: a 16-bit index would wrap.
			const bigVocab, bh = 70001, 4
			word := make([]float32, bigVocab*bh)
			for i := range word {
				word[i] = float32(math.Sin(0.37 * float64(i)))
			}
			big := make([]int32, t)
			for i, id := range k.ids {
				big[i] = 65536 + id%(bigVocab-65536)
			}
			ids, wb, out := s.ints(big), s.matrix(word), s.activations(t*bh)
			s.call(func() error { return s.ops.Embed(t, bh, ids, wb, out) })
			return act(out)
		}},
		{name: "residual-rmsnorm", run: func(s *opsSide) []checkOutput {
			// The residual stream updated in place (sum = residual), as
			// the forward pass does before each sublayer.
			y, x, gamma, out := s.matrix(k.y), s.matrix(k.x), s.vector(k.gamma), s.activations(t*h)
			s.call(func() error { return s.ops.ResidualRMSNorm(t, h, y, x, gamma, eps, x, out) })
			return act(x, out)
		}},
		{name: "rmsnorm without residual add", run: func(s *opsSide) []checkOutput {
			x, gamma, out := s.matrix(k.x), s.vector(k.gamma), s.activations(t*h)
			s.call(func() error { return s.ops.ResidualRMSNorm(t, h, nil, x, gamma, eps, nil, out) })
			return act(out)
		}},
		{name: "gqa-scatter", run: func(s *opsSide) []checkOutput {
			qkv, offsets := s.matrix(k.qkv[:t*w]), s.ints(k.offsets)
			q, kb, vb := s.activations(bh*l*d), s.activations(bkv*l*d), s.activations(bkv*l*d)
			s.call(func() error { return s.ops.GQAScatter(b, heads, kv, d, l, qkv, offsets, q, kb, vb) })
			return act(q, kb, vb)
		}},
		{name: "rope", run: func(s *opsSide) []checkOutput {
			x, offsets, f := s.matrix(k.q), s.ints(k.offsets), s.vector(invFreq)
			s.call(func() error { return s.ops.RoPE(b, heads, d, l, x, offsets, f, 1) })
			return act(x)
		}},
		{name: "causal-softmax", run: func(s *opsSide) []checkOutput {
			sc, offsets := s.matrix(k.scores), s.ints(k.offsets)
			s.call(func() error { return s.ops.CausalSoftmax(b, heads, l, sc, offsets) })
			return act(sc)
		}},
		{name: "swiglu", run: func(s *opsSide) []checkOutput {
			gateUp, out := s.matrix(k.ffn[:t*2*half]), s.activations(t*half)
			s.call(func() error { return s.ops.SwiGLU(t, half, gateUp, out) })
			return act(out)
		}},
		{name: "scores-grouped", gemm: true, run: func(s *opsSide) []checkOutput {
			q, kb, sc := s.matrix(k.q), s.matrix(k.k[:bkv*l*d]), s.activations(bh*l*l)
			alpha := float32(1 / math.Sqrt(float64(d)))
			s.call(func() error { return s.ops.ScoresGrouped(bkv, heads/kv*l, l, d, alpha, q, kb, sc) })
			return act(sc)
		}},
		{name: "context-grouped", gemm: true, run: func(s *opsSide) []checkOutput {
			p, vb, c := s.matrix(k.probs), s.matrix(k.vals[:bkv*l*d]), s.activations(bh*l*d)
			s.call(func() error { return s.ops.ContextGrouped(bkv, heads/kv*l, l, d, p, vb, c) })
			return act(c)
		}},
	}
}
