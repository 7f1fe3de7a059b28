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

// TransformerPTX is the PTX of transformer.cu: every Entry(name, dt) of
// TransformerEntries for the three storage types, and EntryActivateMax.
//
//go:embed transformer.ptx
var TransformerPTX string

// LlamaPTX is the PTX of llama.cu: every Entry(name, dt) of LlamaEntries
// for the three storage types.
//
//go:embed llama.ptx
var LlamaPTX string

// FP8PTX is the PTX of fp8.cu: every Entry(name, dt) of FP8Entries for the
// three storage types (the activation quantization of --precision fp8).
//
//go:embed fp8.ptx
var FP8PTX string

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

// Entry points of transformer.cu. All but EntryActivateMax are instantiated
// once per activation storage type T: the PTX name is Entry(name, dt), e.g.
// "splash_embed_ln_bf16". Pointers are device pointers; *T is an array of
// dt values, *f32 of float32 (gamma, beta, biases, pooled), *i32 of int32;
// the scalars are int32 unless marked f32. "Block 32k" means a multiple of
// 32 up to 1024 (256 recommended), required by the block reductions; the
// grid-stride kernels take any grid and block (256 threads and
// ceil(elements/256) blocks, capped at 2^31-1, recommended).
const (
	// EntryEmbedLN: (ids, pos, types *i32, word, posEmb, typeEmb *T,
	// gamma, beta *f32, out *T, tokens, H int32, eps f32); grid (tokens),
	// block 32k. out[i] = LayerNorm(word[ids[i]] + posEmb[pos[i]] +
	// typeEmb[types[i]]); types and typeEmb both null = no token types.
	EntryEmbedLN = "splash_embed_ln"
	// EntryBiasGELU: (x *T, bias *f32, rows, n, act int32); grid-stride over
	// rows*n. In place x[r][j] = GELU(x[r][j] + bias[j]); act is an
	// Activation (0 exact erf GELU, 1 tanh approximation).
	EntryBiasGELU = "splash_bias_gelu"
	// EntryBiasResidualLN: (y *T, bias *f32, residual *T, gamma, beta *f32,
	// out *T, rows, H int32, eps f32); grid (rows), block 32k.
	// out[r] = LayerNorm(y[r] + bias + residual[r]); bias and residual may
	// be null; out may alias y or residual.
	EntryBiasResidualLN = "splash_bias_residual_ln"
	// EntryQKVScatter: (qkv *T, bias *f32, offsets *i32, q, k, v *T,
	// B, heads, d, L int32); grid-stride over B*L*heads*d. qkv [tokens][3H]
	// (Q|K|V), bias [3H] or null, offsets [B+1]; q, k, v [B][heads][L][d]
	// with rows past a document's length zeroed.
	EntryQKVScatter = "splash_qkv_scatter"
	// EntryMaskedSoftmax: (s *T, offsets *i32, B, heads, L int32); grid
	// (B*heads*L), one block per row, block 32k. In place over
	// s [B][heads][L][L]: softmax over each document's columns, 0 elsewhere.
	EntryMaskedSoftmax = "splash_masked_softmax"
	// EntryAttnGather: (c *T, offsets *i32, out *T, B, heads, d, L int32);
	// grid-stride over B*L*heads*d. c [B][heads][L][d] -> out [tokens][H].
	EntryAttnGather = "splash_attn_gather"
	// EntryPoolChunkMax: (z *T, bias *f32, tokenDoc *i32, pooled *f32,
	// rows, V int32); grid (ceil(V/block), S), any block (128 or 256), S >= 1
	// row segments (about the number of documents in the chunk; the result
	// does not depend on S). pooled [B][V] = max(pooled, z+bias) over the
	// rows of each document (tokenDoc[r] = its index, -1 = skip; a
	// document's rows contiguous). The caller fills pooled with -Inf first
	// and runs EntryActivateMax after the last chunk.
	EntryPoolChunkMax = "splash_pool_chunk_max"
	// EntryPoolChunkSum: as EntryPoolChunkMax, pooled += log1p(relu(z+bias))
	// in ascending row order; the caller fills pooled with 0 first.
	EntryPoolChunkSum = "splash_pool_chunk_sum"
	// EntryActivateMax: (pooled *f32, n int32); grid-stride over n, float32
	// only. pooled[i] = log1p(relu(pooled[i])); -Inf and NaN become 0.
	EntryActivateMax = "splash_activate_max"
)

// Entry returns the PTX name of a transformer.cu kernel instantiated for
// dt: name followed by dt.Suffix().
func Entry(name string, dt DType) string { return name + dt.Suffix() }

// TransformerEntries lists the names of transformer.cu instantiated per
// storage type (pass them to Entry); EntryActivateMax is not among them.
func TransformerEntries() []string {
	return []string{
		EntryEmbedLN, EntryBiasGELU, EntryBiasResidualLN, EntryQKVScatter,
		EntryMaskedSoftmax, EntryAttnGather, EntryPoolChunkMax, EntryPoolChunkSum,
	}
}

// PTXArch is the virtual architecture the PTX is generated for.
const PTXArch = "compute_80"
