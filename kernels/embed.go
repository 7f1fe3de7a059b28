package kernels

import _ "embed"

// PoolPTX is the PTX of pool.cu (entries EntryPoolMax and EntryPoolSum).
//
//go:embed pool.ptx
var PoolPTX string

// SparsifyPTX is the PTX of sparsify.cu (entries EntrySparsifySelect and
// EntrySparsifyWrite).
//
//go:embed sparsify.ptx
var SparsifyPTX string

// Kernel entry points (extern "C" names in the PTX).
const (
	// EntryPoolMax: (logits *f32, mask *i64, out *f32, B, T, V int32);
	// grid (ceil(V/block), B), any block size.
	EntryPoolMax = "splash_pool_max"
	// EntryPoolSum: same signature and launch as EntryPoolMax.
	EntryPoolSum = "splash_pool_sum"
	// EntrySparsifySelect: (pooled *f32, B, V int32, minWeight f32, topK int32,
	// counts, thresh, tieKeep *u32); grid (B), block a multiple of 32 up to 1024.
	EntrySparsifySelect = "splash_sparsify_select"
	// EntrySparsifyWrite: (pooled *f32, B, V int32, minWeight f32,
	// thresh, tieKeep, offsets, terms *u32, weights *f32); grid (B), block a
	// multiple of 32 up to 1024; offsets is the exclusive scan of the counts.
	EntrySparsifyWrite = "splash_sparsify_write"
)

// PTXArch is the virtual architecture the PTX is generated for.
const PTXArch = "compute_80"
