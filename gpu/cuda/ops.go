package cuda

import "github.com/splash-encode/splash/kernels"

// Buf is a buffer of an Ops implementation: float values stored in one
// kernels.DType, or int32 values. Slices of a Buf share its storage.
type Buf interface {
	// Len is the number of elements.
	Len() int
}

// Ops is what the forward pass is written against, once: the GEMMs and
// splash's kernels. Two implementations exist: hostOps (ops_twin.go) runs
// the kernels' pure-Go twins and a plain Go GEMM on the CPU, so CI checks
// the whole forward pass (weight binding, layer order, strides, masks, the
// chunked head, pooling) against the float64 oracle; deviceOps
// (ops_device.go) runs cuBLAS and the PTX kernels on one CUDA stream.
//
// Every method is asynchronous on the device: errors of a launch may surface
// at the next synchronizing call (Download). Shapes are row-major. Methods
// that take a DType-sensitive buffer use the Ops' activation type for
// activations and matrices, and float32 for biases, LayerNorm parameters and
// the pooled rows.
type Ops interface {
	// DType is the storage type of activations and weight matrices.
	DType() kernels.DType
	// Matrix uploads a weight matrix (stored as DType).
	Matrix(data []float32) (Buf, error)
	// Vector uploads float32 parameters (biases, LayerNorm).
	Vector(data []float32) (Buf, error)
	// Activations allocates n values of DType.
	Activations(n int) (Buf, error)
	// Floats allocates n float32 values.
	Floats(n int) (Buf, error)
	// Ints allocates n int32 values.
	Ints(n int) (Buf, error)
	// SetInts copies src into the start of dst.
	SetInts(dst Buf, src []int32) error
	// Fill sets the first n values of a float32 buffer to v.
	Fill(dst Buf, n int, v float32) error
	// Slice is the elements [off, off+n) of b.
	Slice(b Buf, off, n int) Buf
	// Download copies the first len(dst) float32 values of b (a float32
	// buffer) to dst, waiting for the work before it.
	Download(dst []float32, b Buf) error
	// Free releases a buffer made by the methods above.
	Free(b Buf) error

	// LinearT computes y[r][j] = Σ_k x[r][k]·w[j][k] for r < rows, j < n:
	// x [rows][k], w [n][k] (a PyTorch Linear weight), y [rows][n].
	LinearT(rows, n, k int, x, w, y Buf) error
	// Scores computes, for each of batch blocks i, s_i = alpha·q_i·k_iᵀ with
	// q_i, k_i [l][d] and s_i [l][l], the blocks contiguous.
	Scores(batch, l, d int, alpha float32, q, k, s Buf) error
	// Context computes, for each of batch blocks, c_i = p_i·v_i with p_i
	// [l][l], v_i [l][d] and c_i [l][d].
	Context(batch, l, d int, p, v, c Buf) error

	// The kernels, with the semantics of their twins in package kernels.
	EmbedLN(tokens, h int, ids, pos, types Buf, word, posEmb, typeEmb, gamma, beta Buf, eps float32, out Buf) error
	BiasGELU(rows, n int, x, bias Buf, act kernels.Activation) error
	BiasResidualLN(rows, h int, y, bias, residual, gamma, beta Buf, eps float32, out Buf) error
	QKVScatter(b, heads, d, l int, qkv, bias, offsets Buf, q, k, v Buf) error
	MaskedSoftmax(b, heads, l int, s, offsets Buf) error
	AttnGather(b, heads, d, l int, c, offsets, out Buf) error
	PoolChunk(rows, v int, sum bool, z, bias, tokenDoc, pooled Buf) error
	ActivateMax(n int, pooled Buf) error
	// SparsifyRows copies the positive entries of pooled ([b][v] float32)
	// to the host as CSR (offsets [b+1], ascending term ids, weights),
	// waiting for the work before it: on the device, only the non-zeros
	// cross to the host (the sparsify kernels of package kernels).
	SparsifyRows(pooled Buf, b, v int) (offsets, terms []uint32, weights []float32, err error)

	// Llama-family kernels (ops_twin_llama.go, ops_device_llama.go), with
	// the semantics of their twins in package kernels (llama_twin.go).
	// Embed: out [tokens][h] = word[ids]; kernels.EmbedTwin.
	Embed(tokens, h int, ids, word, out Buf) error
	// ResidualRMSNorm: per row s = residual + y (y nil: s = residual), sum
	// = s (sum may be nil; may alias residual), out = RMSNorm(s)·gamma
	// (gamma float32); kernels.ResidualRMSNormTwin.
	ResidualRMSNorm(tokens, h int, y, residual, gamma Buf, eps float32, sum, out Buf) error
	// GQAScatter: qkv [t][(heads+2kv)·d] into q [b][heads][l][d] and k, v
	// [b][kv][l][d], padded rows 0; kernels.GQAScatterTwin.
	GQAScatter(b, heads, kv, d, l int, qkv, offsets, q, k, v Buf) error
	// RoPE: rotary embedding in place on x [b][heads][l][d], real rows
	// only, positions from positionOffset; invFreq is a float32 Vector of
	// d/2 values; kernels.RoPETwin.
	RoPE(b, heads, d, l int, x, offsets, invFreq Buf, positionOffset int32) error
	// CausalSoftmax: in place over s [b][heads][l][l], row p over its
	// columns <= p; kernels.CausalSoftmaxTwin.
	CausalSoftmax(b, heads, l int, s, offsets Buf) error
	// SwiGLU: out [tokens][inter] = silu(gate)·up of gateUp
	// [tokens][2·inter] (gate columns first); kernels.SwiGLUTwin.
	SwiGLU(tokens, inter int, gateUp, out Buf) error
	// ScoresGrouped computes, for each of batch blocks i,
	// s_i[m][n] = alpha·q_i[m][d]·k_i[n][d]ᵀ, with q blocks m·d apart, k
	// blocks n·d and s blocks m·n: with q [b][heads][l][d], k
	// [b][kv][l][d], batch = b·kv, m = (heads/kv)·l and n = l, the scores
	// [b][heads][l][l] of grouped-query attention, no copy of k.
	ScoresGrouped(batch, m, n, d int, alpha float32, q, k, s Buf) error
	// ContextGrouped computes, per block, c_i[m][d] = p_i[m][n]·v_i[n][d]
	// (blocks m·n, n·d and m·d apart).
	ContextGrouped(batch, m, n, d int, p, v, c Buf) error
}
