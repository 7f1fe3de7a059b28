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
}
