package kernels

import (
	"fmt"
	"math"
)

// This file holds the pure-Go twins of transformer.cu. They take float32
// slices whose values are already representable in dt (what the kernels
// load from T storage), compute in float32 with the kernels' order of
// operations, and pass every stored result through dt.Round. Explicit
// float32 conversions keep the Go compiler from fusing a multiply and an
// add into an FMA, as __fmul_rn/__fadd_rn do in the kernels.
//
// They are not bit-exact oracles, and the GPU check compares the kernels
// with them within a tolerance: the block reductions of the LayerNorm and
// softmax kernels add in an order that depends on the block size (the
// twins mirror a block of twinBlock threads, which a launch may not use),
// and CUDA's erff, tanhf, expf and log1pf are within 1-2 ulp of the
// correctly rounded values the twins compute through float64.

// Activation selects the GELU variant of splash_bias_gelu (its act
// argument).
type Activation int

const (
	// GELUExact is 0.5x(1+erf(x/sqrt(2))) (BERT's "gelu").
	GELUExact Activation = 0
	// GELUTanh is 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))) ("gelu_new",
	// "gelu_pytorch_tanh").
	GELUTanh Activation = 1
)

// twinBlock is the block size whose reduction order the twins mirror (the
// recommended launch of the row kernels).
const twinBlock = 256

// GELU constants, rounded to float32 like the kernel's float literals.
const (
	gelu1Sqrt2  = float32(0.70710678118654752440) // 1/sqrt(2)
	geluSqrt2Pi = float32(0.79788456080286535588) // sqrt(2/pi)
	geluCubic   = float32(0.044715)
)

// blockSum returns the float32 sum of f(0..n-1) in the order of
// splash_block_sum with twinBlock threads: thread t adds f(t), f(t+256),
// ... to 0; each warp adds its lanes by a butterfly (lane l adds lane l^d
// for d = 16, 8, 4, 2, 1); the warps' sums are added to 0 in order.
func blockSum(n int, f func(j int) float32) float32 {
	var part [twinBlock]float32
	for t := 0; t < twinBlock && t < n; t++ {
		acc := float32(0)
		for j := t; j < n; j += twinBlock {
			acc = float32(acc + f(j))
		}
		part[t] = acc
	}
	total := float32(0)
	for w := 0; w < twinBlock/32; w++ {
		var s [32]float32
		copy(s[:], part[w*32:])
		for d := 16; d > 0; d >>= 1 {
			var next [32]float32
			for l := range next {
				next[l] = float32(s[l] + s[l^d])
			}
			s = next
		}
		total = float32(total + s[0])
	}
	return total
}

// layerNormRow is splash_ln_row: it stores (x-mean)/sqrt(var+eps)*gamma+beta
// for x = value(0..h-1) into out, with the mean and then the biased
// variance of x-mean as block sums. Like the kernel it reads value(j) just
// before writing out[j], so out may alias what value reads column by column.
func layerNormRow(dt DType, h int, value func(j int) float32, gamma, beta []float32, eps float32, out []float32) {
	fh := float32(h)
	mean := float32(blockSum(h, value) / fh)
	variance := float32(blockSum(h, func(j int) float32 {
		d := float32(value(j) - mean)
		return float32(d * d)
	}) / fh)
	sd := float32(math.Sqrt(float64(float32(variance + eps))))
	for j := 0; j < h; j++ {
		n := float32(float32(value(j)-mean) / sd)
		out[j] = dt.Round(float32(float32(n*gamma[j]) + beta[j]))
	}
}

func checkDType(dt DType) error {
	if !dt.Valid() {
		return fmt.Errorf("storage type %v: want F32, BF16 or F16", dt)
	}
	return nil
}

// checkDims reports a dimension that is not in [1, 2^31), the range of the
// kernels' int32 arguments.
func checkDims(kernel string, names []string, dims ...int) error {
	for i, d := range dims {
		if d <= 0 || d > math.MaxInt32 {
			return fmt.Errorf("%s: %s=%d must be in [1, 2^31)", kernel, names[i], d)
		}
	}
	return nil
}

// checkLN reports bad gamma, beta and eps of a LayerNorm over h columns.
func checkLN(kernel string, h int, gamma, beta []float32, eps float32) error {
	switch {
	case len(gamma) != h || len(beta) != h:
		return fmt.Errorf("%s: gamma and beta have %d and %d values, want h=%d", kernel, len(gamma), len(beta), h)
	case !(eps >= 0) || math.IsInf(float64(eps), 1):
		return fmt.Errorf("%s: eps %v must be a finite number >= 0", kernel, eps)
	}
	return nil
}

// checkOffsets validates the cumulative token offsets of a packed batch
// against the padded length l: offsets[0] = 0, non-decreasing, every
// document at most l tokens. It returns the batch size and the token count.
func checkOffsets(kernel string, offsets []int32, l int) (b, tokens int, err error) {
	if len(offsets) < 2 {
		return 0, 0, fmt.Errorf("%s: offsets has %d values, want B+1 >= 2", kernel, len(offsets))
	}
	if offsets[0] != 0 {
		return 0, 0, fmt.Errorf("%s: offsets[0] = %d, want 0", kernel, offsets[0])
	}
	for i := 1; i < len(offsets); i++ {
		n := int(offsets[i]) - int(offsets[i-1])
		if n < 0 || n > l {
			return 0, 0, fmt.Errorf("%s: document %d has %d tokens, want 0..l=%d", kernel, i-1, n, l)
		}
	}
	return len(offsets) - 1, int(offsets[len(offsets)-1]), nil
}

// EmbedLNTwin is the pure-Go twin of splash_embed_ln: for every token i,
// out[i] = LayerNorm(word[ids[i]] + posEmb[pos[i]] + typeEmb[types[i]]) over
// h columns, the embedding sum in float32 in that order, then the mean, the
// biased variance of x-mean and (x-mean)/sqrt(var+eps)*gamma+beta, rounded
// to dt. word, posEmb and typeEmb are tables of h-wide rows; types and
// typeEmb are nil together for models without token types. Indices out of
// their table are an error (the kernel does not check them).
func EmbedLNTwin(dt DType, ids, pos, types []int32, word, posEmb, typeEmb, gamma, beta []float32, h int, eps float32, out []float32) error {
	const kernel = "embed-ln"
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
	case len(pos) != tokens:
		return fmt.Errorf("%s: pos has %d values, want one per id (%d)", kernel, len(pos), tokens)
	case (types == nil) != (typeEmb == nil):
		return fmt.Errorf("%s: types and typeEmb must be both nil or both set", kernel)
	case types != nil && len(types) != tokens:
		return fmt.Errorf("%s: types has %d values, want one per id (%d)", kernel, len(types), tokens)
	case len(word) == 0 || len(word)%h != 0:
		return fmt.Errorf("%s: word has %d values, want a positive multiple of h=%d", kernel, len(word), h)
	case len(posEmb) == 0 || len(posEmb)%h != 0:
		return fmt.Errorf("%s: posEmb has %d values, want a positive multiple of h=%d", kernel, len(posEmb), h)
	case typeEmb != nil && (len(typeEmb) == 0 || len(typeEmb)%h != 0):
		return fmt.Errorf("%s: typeEmb has %d values, want a positive multiple of h=%d", kernel, len(typeEmb), h)
	case len(out) != tokens*h:
		return fmt.Errorf("%s: out has %d values, want tokens*h=%d", kernel, len(out), tokens*h)
	}
	if err := checkLN(kernel, h, gamma, beta, eps); err != nil {
		return err
	}
	for _, t := range []struct {
		name  string
		idx   []int32
		table []float32
	}{{"ids", ids, word}, {"pos", pos, posEmb}, {"types", types, typeEmb}} {
		for i, x := range t.idx {
			if x < 0 || int(x) >= len(t.table)/h {
				return fmt.Errorf("%s: %s[%d] = %d is outside its table of %d rows", kernel, t.name, i, x, len(t.table)/h)
			}
		}
	}
	for i := 0; i < tokens; i++ {
		w := word[int(ids[i])*h:]
		p := posEmb[int(pos[i])*h:]
		var te []float32
		if types != nil {
			te = typeEmb[int(types[i])*h:]
		}
		value := func(j int) float32 {
			x := float32(w[j] + p[j])
			if te != nil {
				x = float32(x + te[j])
			}
			return x
		}
		layerNormRow(dt, h, value, gamma, beta, eps, out[i*h:(i+1)*h])
	}
	return nil
}

// gelu32 is splash_gelu in float32, with erf and tanh computed in float64
// and rounded to float32 (CUDA's erff and tanhf are within 2 ulp of that).
func gelu32(x float32, act Activation) float32 {
	var t float32
	if act == GELUTanh {
		x3 := float32(float32(x*x) * x)
		inner := float32(x + float32(geluCubic*x3))
		t = float32(math.Tanh(float64(float32(geluSqrt2Pi * inner))))
	} else {
		t = float32(math.Erf(float64(float32(x * gelu1Sqrt2))))
	}
	return float32(float32(0.5*x) * float32(1+t))
}

// BiasGELUTwin is the pure-Go twin of splash_bias_gelu: in place,
// x[r][j] = act(x[r][j] + bias[j]) for x [rows][n], rounded to dt.
func BiasGELUTwin(dt DType, x, bias []float32, n int, act Activation) error {
	const kernel = "bias-gelu"
	if err := checkDType(dt); err != nil {
		return err
	}
	if err := checkDims(kernel, []string{"n"}, n); err != nil {
		return err
	}
	switch {
	case act != GELUExact && act != GELUTanh:
		return fmt.Errorf("%s: activation %d: want GELUExact (0) or GELUTanh (1)", kernel, act)
	case len(x)%n != 0 || len(x)/n > math.MaxInt32:
		return fmt.Errorf("%s: x has %d values, want rows*n with n=%d and rows < 2^31", kernel, len(x), n)
	case len(bias) != n:
		return fmt.Errorf("%s: bias has %d values, want n=%d", kernel, len(bias), n)
	}
	for i, xi := range x {
		x[i] = dt.Round(gelu32(float32(xi+bias[i%n]), act))
	}
	return nil
}

// BiasResidualLNTwin is the pure-Go twin of splash_bias_residual_ln: for
// every row r of y [rows][h], out[r] = LayerNorm(y[r] + bias +
// residual[r]), the sum in float32 in that order, normalized as in
// EmbedLNTwin and rounded to dt. bias ([h]) and residual ([rows][h]) may be
// nil; out may be y or residual (in place), as for the kernel.
func BiasResidualLNTwin(dt DType, y, bias, residual, gamma, beta []float32, h int, eps float32, out []float32) error {
	const kernel = "bias-residual-ln"
	if err := checkDType(dt); err != nil {
		return err
	}
	if err := checkDims(kernel, []string{"h"}, h); err != nil {
		return err
	}
	rows := len(y) / h
	switch {
	case len(y)%h != 0 || rows > math.MaxInt32:
		return fmt.Errorf("%s: y has %d values, want rows*h with h=%d and rows < 2^31", kernel, len(y), h)
	case bias != nil && len(bias) != h:
		return fmt.Errorf("%s: bias has %d values, want h=%d (or nil)", kernel, len(bias), h)
	case residual != nil && len(residual) != len(y):
		return fmt.Errorf("%s: residual has %d values, want %d like y (or nil)", kernel, len(residual), len(y))
	case len(out) != len(y):
		return fmt.Errorf("%s: out has %d values, want %d like y", kernel, len(out), len(y))
	}
	if err := checkLN(kernel, h, gamma, beta, eps); err != nil {
		return err
	}
	for r := 0; r < rows; r++ {
		yr := y[r*h : (r+1)*h]
		var rr []float32
		if residual != nil {
			rr = residual[r*h : (r+1)*h]
		}
		value := func(j int) float32 {
			x := yr[j]
			if bias != nil {
				x = float32(x + bias[j])
			}
			if rr != nil {
				x = float32(x + rr[j])
			}
			return x
		}
		layerNormRow(dt, h, value, gamma, beta, eps, out[r*h:(r+1)*h])
	}
	return nil
}

// checkHeads validates heads, d and l of the attention kernels, with
// 3*heads*d (a qkv row) within int32.
func checkHeads(kernel string, heads, d, l int) error {
	if err := checkDims(kernel, []string{"heads", "d", "l"}, heads, d, l); err != nil {
		return err
	}
	if heads*d > math.MaxInt32/3 {
		return fmt.Errorf("%s: 3*heads*d = 3*%d*%d does not fit in int32", kernel, heads, d)
	}
	return nil
}

// QKVScatterTwin is the pure-Go twin of splash_qkv_scatter: with H =
// heads*d and qkv [tokens][3H] (Q | K | V per token, tokens = offsets[B]),
// q[b][h][p][e] = qkv[offsets[b]+p][h*d+e] + bias[h*d+e] for p below the
// document's length, k and v likewise from columns H+h*d+e and
// 2H+h*d+e, and 0 for the padded rows up to l. q, k and v are [B][heads][l][d];
// bias ([3H]) may be nil.
func QKVScatterTwin(dt DType, qkv, bias []float32, offsets []int32, heads, d, l int, q, k, v []float32) error {
	const kernel = "qkv-scatter"
	if err := checkDType(dt); err != nil {
		return err
	}
	if err := checkHeads(kernel, heads, d, l); err != nil {
		return err
	}
	b, tokens, err := checkOffsets(kernel, offsets, l)
	if err != nil {
		return err
	}
	h := heads * d
	n := b * heads * l * d
	switch {
	case len(qkv) != tokens*3*h:
		return fmt.Errorf("%s: qkv has %d values, want tokens*3H = %d*%d", kernel, len(qkv), tokens, 3*h)
	case bias != nil && len(bias) != 3*h:
		return fmt.Errorf("%s: bias has %d values, want 3H=%d (or nil)", kernel, len(bias), 3*h)
	case len(q) != n || len(k) != n || len(v) != n:
		return fmt.Errorf("%s: q, k, v have %d, %d, %d values, want B*heads*l*d=%d", kernel, len(q), len(k), len(v), n)
	}
	outs := [3][]float32{q, k, v}
	for bi := 0; bi < b; bi++ {
		start, length := int(offsets[bi]), int(offsets[bi+1]-offsets[bi])
		for hh := 0; hh < heads; hh++ {
			for p := 0; p < l; p++ {
				for e := 0; e < d; e++ {
					dst := ((bi*heads+hh)*l+p)*d + e
					for s, o := range outs {
						x := float32(0)
						if p < length {
							col := s*h + hh*d + e
							x = qkv[(start+p)*3*h+col]
							if bias != nil {
								x = float32(x + bias[col])
							}
						}
						o[dst] = dt.Round(x)
					}
				}
			}
		}
	}
	return nil
}

// exp32 is expf as the twins compute it: exp in float64, rounded once.
func exp32(x float32) float32 { return float32(math.Exp(float64(x))) }

// MaskedSoftmaxTwin is the pure-Go twin of splash_masked_softmax: in place
// over s [B][heads][l][l], row p of document b (n tokens) becomes, for
// p < n, softmax over its first n columns (max, sum of exp(x-max) as a
// block sum, exp(x-max)/sum, rounded to dt) followed by zeros, and for
// p >= n all zeros.
func MaskedSoftmaxTwin(dt DType, s []float32, offsets []int32, heads, l int) error {
	return softmaxRows("masked-softmax", dt, s, offsets, heads, l, false)
}

// softmaxRows is MaskedSoftmaxTwin and, with causal, CausalSoftmaxTwin:
// row p of a document of n tokens takes part with its first n columns, or
// with causal its first p+1.
func softmaxRows(kernel string, dt DType, s []float32, offsets []int32, heads, l int, causal bool) error {
	if err := checkDType(dt); err != nil {
		return err
	}
	if err := checkHeads(kernel, heads, 1, l); err != nil {
		return err
	}
	b, _, err := checkOffsets(kernel, offsets, l)
	if err != nil {
		return err
	}
	if len(s) != b*heads*l*l {
		return fmt.Errorf("%s: s has %d values, want B*heads*l*l=%d", kernel, len(s), b*heads*l*l)
	}
	for row := 0; row < b*heads*l; row++ {
		p, bi := row%l, row/l/heads
		n := int(offsets[bi+1] - offsets[bi])
		x := s[row*l : (row+1)*l]
		if p >= n {
			clear(x)
			continue
		}
		if causal {
			n = p + 1
		}
		m := float32(math.Inf(-1))
		for _, y := range x[:n] {
			if y > m {
				m = y
			}
		}
		sum := blockSum(n, func(j int) float32 { return exp32(float32(x[j] - m)) })
		for j := range x {
			y := float32(0)
			if j < n {
				y = float32(exp32(float32(x[j]-m)) / sum)
			}
			x[j] = dt.Round(y)
		}
	}
	return nil
}

// AttnGatherTwin is the pure-Go twin of splash_attn_gather: with c
// [B][heads][l][d] and out [tokens][heads*d], out[offsets[b]+p][h*d+e] =
// c[b][h][p][e] for p below document b's length; padded rows are dropped.
func AttnGatherTwin(dt DType, c []float32, offsets []int32, heads, d, l int, out []float32) error {
	const kernel = "attn-gather"
	if err := checkDType(dt); err != nil {
		return err
	}
	if err := checkHeads(kernel, heads, d, l); err != nil {
		return err
	}
	b, tokens, err := checkOffsets(kernel, offsets, l)
	if err != nil {
		return err
	}
	h := heads * d
	switch {
	case len(c) != b*heads*l*d:
		return fmt.Errorf("%s: c has %d values, want B*heads*l*d=%d", kernel, len(c), b*heads*l*d)
	case len(out) != tokens*h:
		return fmt.Errorf("%s: out has %d values, want tokens*H=%d", kernel, len(out), tokens*h)
	}
	for bi := 0; bi < b; bi++ {
		start, n := int(offsets[bi]), int(offsets[bi+1]-offsets[bi])
		for p := 0; p < n; p++ {
			for hh := 0; hh < heads; hh++ {
				src := c[((bi*heads+hh)*l+p)*d:]
				dst := out[(start+p)*h+hh*d:]
				for e := 0; e < d; e++ {
					dst[e] = dt.Round(src[e])
				}
			}
		}
	}
	return nil
}

// chunkUnroll is SPLASH_CHUNK_UNROLL: the rows splash_pool_chunk loads
// together.
const chunkUnroll = 4

// poolChunkSegment is splash_pool_chunk for one segment [lo, hi) of the
// rows (blockIdx.y), transcribed step by step for every column j, unrolled
// loads included. owned, when not nil, is called with each document the
// segment pools (once per column).
func poolChunkSegment(sum bool, z, bias []float32, tokenDoc []int32, v int, pooled []float32, lo, hi int, owned func(doc int32)) {
	rows := len(tokenDoc)
	for j := 0; j < v; j++ {
		// Skip the document that started before lo, and -1 rows among it.
		r, prev := lo, int32(-1)
		for t := lo - 1; t >= 0; t-- {
			if tokenDoc[t] >= 0 {
				prev = tokenDoc[t]
				break
			}
		}
		if prev >= 0 {
			for r < rows && (tokenDoc[r] < 0 || tokenDoc[r] == prev) {
				r++
			}
		}
		cur, acc, done := int32(-1), float32(0), false
		flush := func() {
			if cur >= 0 {
				pooled[int(cur)*v+j] = acc
				if owned != nil {
					owned(cur)
				}
			}
		}
		for ; r < rows && !done; r += chunkUnroll {
			var doc [chunkUnroll]int32
			var x [chunkUnroll]float32
			for u := range chunkUnroll {
				doc[u] = -1
				if r+u < rows {
					doc[u] = tokenDoc[r+u]
				}
				if doc[u] >= 0 {
					x[u] = z[(r+u)*v+j]
					if bias != nil {
						x[u] = float32(x[u] + bias[j])
					}
				}
			}
			for u := range chunkUnroll {
				if done || doc[u] < 0 {
					continue
				}
				if doc[u] != cur {
					if r+u >= hi {
						done = true // a later segment's document
						continue
					}
					flush()
					cur = doc[u]
					acc = pooled[int(cur)*v+j]
				}
				if sum {
					if x[u] > 0 {
						acc = float32(acc + log1p32(x[u]))
					}
				} else if x[u] > acc {
					acc = x[u]
				}
			}
		}
		flush()
	}
}

// checkPoolChunk validates the arguments of PoolChunkTwin and returns the
// batch size B = len(pooled)/v.
func checkPoolChunk(dt DType, z, bias []float32, tokenDoc []int32, v int, pooled []float32) (int, error) {
	const kernel = "pool-chunk"
	if err := checkDType(dt); err != nil {
		return 0, err
	}
	if err := checkDims(kernel, []string{"v"}, v); err != nil {
		return 0, err
	}
	rows := len(tokenDoc)
	b := len(pooled) / v
	switch {
	case rows > math.MaxInt32:
		return 0, fmt.Errorf("%s: %d rows do not fit in int32", kernel, rows)
	case len(z) != rows*v:
		return 0, fmt.Errorf("%s: z has %d values, want rows*v = %d*%d", kernel, len(z), rows, v)
	case bias != nil && len(bias) != v:
		return 0, fmt.Errorf("%s: bias has %d values, want v=%d (or nil)", kernel, len(bias), v)
	case b == 0 || len(pooled)%v != 0:
		return 0, fmt.Errorf("%s: pooled has %d values, want B*v with B >= 1 and v=%d", kernel, len(pooled), v)
	}
	last := int32(-1)
	for r, doc := range tokenDoc {
		switch {
		case doc < -1 || int(doc) >= b:
			return 0, fmt.Errorf("%s: tokenDoc[%d] = %d, want -1 or a document in [0, %d)", kernel, r, doc, b)
		case doc >= 0 && doc < last:
			return 0, fmt.Errorf("%s: tokenDoc[%d] = %d after document %d: a document's rows must be contiguous", kernel, r, doc, last)
		case doc >= 0:
			last = doc
		}
	}
	return b, nil
}

// PoolChunkTwin is the pure-Go twin of splash_pool_chunk_max (sum false)
// and splash_pool_chunk_sum (sum true): it pools the rows of z [rows][v]
// (logits without the decoder bias) whose tokenDoc is a document index
// into the running pooled [B][v]. Max: pooled = max(pooled, z+bias), NaN
// never winning (x > m); sum: pooled += log1p(max(z+bias, 0)) in ascending
// row order, NaN counting as 0. bias may be nil; pooled is float32 and not
// rounded to dt. A document's rows must be contiguous (tokenDoc
// non-decreasing apart from -1 rows), as the kernel's row segments need;
// a document split over several calls pools as in one call.
func PoolChunkTwin(dt DType, sum bool, z, bias []float32, tokenDoc []int32, v int, pooled []float32) error {
	if _, err := checkPoolChunk(dt, z, bias, tokenDoc, v, pooled); err != nil {
		return err
	}
	poolChunkSegment(sum, z, bias, tokenDoc, v, pooled, 0, len(tokenDoc), nil)
	return nil
}

// ActivateMaxTwin is the pure-Go twin of splash_activate_max: in place,
// pooled[i] = log1p(relu(pooled[i])), with -Inf (a document without pooled
// tokens) and NaN becoming 0.
func ActivateMaxTwin(pooled []float32) {
	for i, x := range pooled {
		if x > 0 {
			pooled[i] = log1p32(x)
		} else {
			pooled[i] = 0
		}
	}
}
