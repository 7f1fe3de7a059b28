package kernels

import (
	"fmt"
	"math"
)

// This file holds the pure-Go twins of llama.cu, the kernels of the
// Llama-family engine (LlamaForCausalLM, MistralForCausalLM), with the
// conventions of transformer_twin.go: float32 inputs representable in dt,
// float32 arithmetic in the kernels' order, every stored value passed
// through dt.Round, explicit float32 conversions against FMA fusion.

// Entry points of llama.cu, each instantiated per activation storage type
// T (the PTX name is Entry(name, dt), e.g. "splash_rope_bf16"). Pointers
// are device pointers (*T of dt values, *f32 of float32, *i32 of int32);
// the scalars are int32 unless marked f32. "Block 32k" is a multiple of 32
// up to 1024 (256 recommended: the twins mirror 256-thread reductions);
// the grid-stride kernels take any grid and block (256 threads and
// ceil(elements/256) blocks, capped, recommended).
const (
	// EntryEmbed: (ids *i32, word *T, out *T, tokens, H int32);
	// grid-stride over tokens*H. out[r] = word[ids[r]].
	EntryEmbed = "splash_embed"
	// EntryResidualRMSNorm: (y, residual *T, gamma *f32, sum, out *T,
	// rows, H int32, eps f32); grid (rows), block 32k. s = T(residual + y)
	// (y null: s = residual); sum = s (sum may be null); out =
	// T(gamma * T(s / sqrt(mean(s^2) + eps))). sum may alias residual.
	EntryResidualRMSNorm = "splash_residual_rmsnorm"
	// EntryGQAScatter: (qkv *T, offsets *i32, q, k, v *T, B, heads, kv, d,
	// L int32); grid-stride over B*L*(heads+2kv)*d. qkv [t][(heads+2kv)*d]
	// (Q|K|V) -> q [B][heads][L][d], k, v [B][kv][L][d], padded rows 0.
	EntryGQAScatter = "splash_gqa_scatter"
	// EntryRoPE: (x *T, offsets *i32, invFreq *f32, B, heads, d, L,
	// positionOffset int32); grid-stride over B*heads*L*(d/2). In place on
	// x [B][heads][L][d], real rows only; d even; invFreq [d/2].
	EntryRoPE = "splash_rope"
	// EntryCausalSoftmax: (s *T, offsets *i32, B, heads, L int32); grid
	// (B*heads*L), one block per row, block 32k. In place over
	// s [B][heads][L][L]: row p of a document softmax over columns <= p.
	EntryCausalSoftmax = "splash_causal_softmax"
	// EntrySwiGLU: (gateUp *T, out *T, rows, I int32); grid-stride over
	// rows*I. out[r][j] = T(T(silu(gateUp[r][j])) * gateUp[r][I+j]).
	EntrySwiGLU = "splash_swiglu"
)

// LlamaEntries lists the names of llama.cu, each instantiated per storage
// type (pass them to Entry).
func LlamaEntries() []string {
	return []string{EntryEmbed, EntryResidualRMSNorm, EntryGQAScatter, EntryRoPE, EntryCausalSoftmax, EntrySwiGLU}
}

// EmbedTwin is the pure-Go twin of splash_embed: out[r] = word[ids[r]] for
// every id, word being a table of h-wide rows (any number of rows: ids
// stay int32 end to end, so vocabularies above 65,535 are as any other).
// An id outside the table is an error (the kernel does not check).
func EmbedTwin(dt DType, ids []int32, word []float32, h int, out []float32) error {
	const kernel = "embed"
	if err := checkDType(dt); err != nil {
		return err
	}
	if err := checkDims(kernel, []string{"h"}, h); err != nil {
		return err
	}
	tokens := len(ids)
	switch {
	case tokens > math.MaxInt32:
		return fmt.Errorf("%s: %d tokens do not fit in int32", kernel, tokens)
	case len(word) == 0 || len(word)%h != 0:
		return fmt.Errorf("%s: word has %d values, want a positive multiple of h=%d", kernel, len(word), h)
	case len(out) != tokens*h:
		return fmt.Errorf("%s: out has %d values, want tokens*h = %d*%d", kernel, len(out), tokens, h)
	}
	vocab := len(word) / h
	for r, id := range ids {
		if id < 0 || int(id) >= vocab {
			return fmt.Errorf("%s: ids[%d] = %d is outside the table of %d rows", kernel, r, id, vocab)
		}
	}
	for r, id := range ids {
		copy(out[r*h:(r+1)*h], word[int(id)*h:(int(id)+1)*h])
	}
	return nil
}

// ResidualRMSNormTwin is the pure-Go twin of splash_residual_rmsnorm: for
// every row of residual [rows][h], s = dt(residual + y) (s = residual when
// y is nil), sum = s (when sum is not nil), and out = dt(gamma *
// dt(s * (1/sqrt(mean(s^2) + eps)))): Hugging Face's LlamaRMSNorm, which
// normalizes in float32 and casts to the input dtype before multiplying by
// the weight. The mean of squares is a block sum (blockSum). sum may be
// residual or y and out any of the inputs (in place), as for the kernel.
func ResidualRMSNormTwin(dt DType, y, residual, gamma []float32, h int, eps float32, sum, out []float32) error {
	const kernel = "residual-rmsnorm"
	if err := checkDType(dt); err != nil {
		return err
	}
	if err := checkDims(kernel, []string{"h"}, h); err != nil {
		return err
	}
	rows := len(residual) / h
	switch {
	case len(residual)%h != 0 || rows > math.MaxInt32:
		return fmt.Errorf("%s: residual has %d values, want rows*h with h=%d and rows < 2^31", kernel, len(residual), h)
	case y != nil && len(y) != len(residual):
		return fmt.Errorf("%s: y has %d values, want %d like residual (or nil)", kernel, len(y), len(residual))
	case sum != nil && len(sum) != len(residual):
		return fmt.Errorf("%s: sum has %d values, want %d like residual (or nil)", kernel, len(sum), len(residual))
	case len(out) != len(residual):
		return fmt.Errorf("%s: out has %d values, want %d like residual", kernel, len(out), len(residual))
	case len(gamma) != h:
		return fmt.Errorf("%s: gamma has %d values, want h=%d", kernel, len(gamma), h)
	case !(eps >= 0) || math.IsInf(float64(eps), 1):
		return fmt.Errorf("%s: eps %v must be a finite number >= 0", kernel, eps)
	}
	for r := 0; r < rows; r++ {
		lo, hi := r*h, (r+1)*h
		rr, or := residual[lo:hi], out[lo:hi]
		var yr, sr []float32
		if y != nil {
			yr = y[lo:hi]
		}
		if sum != nil {
			sr = sum[lo:hi]
		}
		value := func(j int) float32 {
			s := rr[j]
			if yr != nil {
				s = dt.Round(float32(s + yr[j]))
			}
			return s
		}
		// The kernel's first pass: thread t squares and stores its columns
		// t, t+256, ...; the block sum adds them in blockSum's order.
		ss := blockSum(h, func(j int) float32 {
			s := value(j)
			if sr != nil {
				sr[j] = s
			}
			return float32(s * s)
		})
		ms := float32(ss / float32(h))
		inv := float32(1 / float32(math.Sqrt(float64(float32(ms+eps)))))
		for j := 0; j < h; j++ {
			var s float32
			if sr != nil {
				s = sr[j]
			} else {
				s = value(j)
			}
			n := dt.Round(float32(s * inv))
			or[j] = dt.Round(float32(gamma[j] * n))
		}
	}
	return nil
}

// checkGQA validates heads, kv, d and l of the grouped-query kernels: kv
// divides heads and a qkv row, (heads+2kv)*d, fits in int32.
func checkGQA(kernel string, heads, kv, d, l int) error {
	if err := checkDims(kernel, []string{"heads", "kv", "d", "l"}, heads, kv, d, l); err != nil {
		return err
	}
	switch {
	case heads%kv != 0:
		return fmt.Errorf("%s: heads=%d is not a multiple of kv=%d", kernel, heads, kv)
	case int64(heads+2*kv)*int64(d) > math.MaxInt32:
		return fmt.Errorf("%s: a qkv row of (heads+2kv)*d = (%d+2*%d)*%d values does not fit in int32", kernel, heads, kv, d)
	}
	return nil
}

// GQAScatterTwin is the pure-Go twin of splash_gqa_scatter: qkv
// [tokens][(heads+2kv)*d] (Q columns, then K, then V: one GEMM of the
// concatenated [q;k;v] weights, no bias; tokens = offsets[B]) into q
// [B][heads][l][d] and k, v [B][kv][l][d]: q[b][h][p][e] =
// qkv[offsets[b]+p][h*d+e], k from column heads*d+h*d+e, v from
// (heads+kv)*d+h*d+e, for p below the document's length, and 0 for the
// padded rows up to l.
func GQAScatterTwin(dt DType, qkv []float32, offsets []int32, heads, kv, d, l int, q, k, v []float32) error {
	const kernel = "gqa-scatter"
	if err := checkDType(dt); err != nil {
		return err
	}
	if err := checkGQA(kernel, heads, kv, d, l); err != nil {
		return err
	}
	b, tokens, err := checkOffsets(kernel, offsets, l)
	if err != nil {
		return err
	}
	w := (heads + 2*kv) * d
	nq, nk := b*heads*l*d, b*kv*l*d
	switch {
	case len(qkv) != tokens*w:
		return fmt.Errorf("%s: qkv has %d values, want tokens*(heads+2kv)*d = %d*%d", kernel, len(qkv), tokens, w)
	case len(q) != nq:
		return fmt.Errorf("%s: q has %d values, want B*heads*l*d = %d", kernel, len(q), nq)
	case len(k) != nk || len(v) != nk:
		return fmt.Errorf("%s: k and v have %d and %d values, want B*kv*l*d = %d", kernel, len(k), len(v), nk)
	}
	for bi := 0; bi < b; bi++ {
		start, length := int(offsets[bi]), int(offsets[bi+1]-offsets[bi])
		for p := 0; p < l; p++ {
			for col := 0; col < w; col++ {
				dst, nh, c := q, heads, col
				switch {
				case col >= (heads+kv)*d:
					dst, nh, c = v, kv, col-(heads+kv)*d
				case col >= heads*d:
					dst, nh, c = k, kv, col-heads*d
				}
				x := float32(0)
				if p < length {
					x = qkv[(start+p)*w+col]
				}
				dst[((bi*nh+c/d)*l+p)*d+c%d] = dt.Round(x)
			}
		}
	}
	return nil
}

// RoPETwin is the pure-Go twin of splash_rope: in place on x
// [B][heads][l][d], for the real rows of each document (p below its
// length; padded rows are left alone), with position pos = p +
// positionOffset and half = d/2: for j < half, angle =
// float32(pos)*invFreq[j], c and s its cosine and sine in float32 (from
// float64, as CUDA's cosf and sinf are within 1-2 ulp of that),
// x[j] = x1*c - x2*s and x[j+half] = x2*c + x1*s for x1 = x[j],
// x2 = x[j+half] (Hugging Face's rotate_half). invFreq holds d/2 float32
// values; d must be even.
func RoPETwin(dt DType, x []float32, offsets []int32, heads, d, l int, invFreq []float32, positionOffset int32) error {
	const kernel = "rope"
	if err := checkDType(dt); err != nil {
		return err
	}
	if err := checkHeads(kernel, heads, d, l); err != nil {
		return err
	}
	b, _, err := checkOffsets(kernel, offsets, l)
	if err != nil {
		return err
	}
	half := d / 2
	switch {
	case d%2 != 0:
		return fmt.Errorf("%s: head dimension d=%d must be even", kernel, d)
	case len(invFreq) != half:
		return fmt.Errorf("%s: invFreq has %d values, want d/2 = %d", kernel, len(invFreq), half)
	case len(x) != b*heads*l*d:
		return fmt.Errorf("%s: x has %d values, want B*heads*l*d = %d", kernel, len(x), b*heads*l*d)
	case positionOffset < 0 || int64(positionOffset)+int64(l) > math.MaxInt32:
		return fmt.Errorf("%s: positionOffset %d must be >= 0 with positionOffset+l < 2^31", kernel, positionOffset)
	}
	for row := 0; row < b*heads*l; row++ {
		p, bi := row%l, row/l/heads
		if p >= int(offsets[bi+1]-offsets[bi]) {
			continue
		}
		xr := x[row*d : (row+1)*d]
		pos := float32(int32(p) + positionOffset)
		for j := 0; j < half; j++ {
			angle := float32(pos * invFreq[j])
			c := float32(math.Cos(float64(angle)))
			s := float32(math.Sin(float64(angle)))
			x1, x2 := xr[j], xr[j+half]
			xr[j] = dt.Round(float32(float32(x1*c) - float32(x2*s)))
			xr[j+half] = dt.Round(float32(float32(x2*c) + float32(x1*s)))
		}
	}
	return nil
}

// CausalSoftmaxTwin is the pure-Go twin of splash_causal_softmax: in place
// over s [B][heads][l][l], row p of document b (n tokens) becomes, for
// p < n, softmax over its columns j <= p (max, block sum of exp(x-max),
// exp(x-max)/sum, rounded to dt) followed by zeros, and for p >= n all
// zeros. Bidirectional attention uses MaskedSoftmaxTwin.
func CausalSoftmaxTwin(dt DType, s []float32, offsets []int32, heads, l int) error {
	return softmaxRows("causal-softmax", dt, s, offsets, heads, l, true)
}

// silu32 is x/(1+exp(-x)) in float32, exp from float64 (CUDA's expf is
// within 2 ulp of it).
func silu32(x float32) float32 { return float32(x / float32(1+exp32(-x))) }

// SwiGLUTwin is the pure-Go twin of splash_swiglu: with gateUp
// [t][2*inter] (gate columns, then up: one GEMM of the concatenated
// [gate;up] weights), out[r][j] = dt(dt(silu(gate)) * up), silu(x) =
// x/(1+exp(-x)) in float32: Hugging Face's act_fn(gate_proj(x)) *
// up_proj(x), the activation stored in the input dtype before the product.
func SwiGLUTwin(dt DType, gateUp []float32, t, inter int, out []float32) error {
	const kernel = "swiglu"
	if err := checkDType(dt); err != nil {
		return err
	}
	if err := checkDims(kernel, []string{"t", "inter"}, t, inter); err != nil {
		return err
	}
	switch {
	case int64(2)*int64(inter) > math.MaxInt32:
		return fmt.Errorf("%s: 2*inter = 2*%d does not fit in int32", kernel, inter)
	case len(gateUp) != t*2*inter:
		return fmt.Errorf("%s: gateUp has %d values, want t*2*inter = %d*%d", kernel, len(gateUp), t, 2*inter)
	case len(out) != t*inter:
		return fmt.Errorf("%s: out has %d values, want t*inter = %d*%d", kernel, len(out), t, inter)
	}
	for r := 0; r < t; r++ {
		row := gateUp[r*2*inter : (r+1)*2*inter]
		for j := 0; j < inter; j++ {
			a := dt.Round(silu32(row[j]))
			out[r*inter+j] = dt.Round(float32(a * row[inter+j]))
		}
	}
	return nil
}
