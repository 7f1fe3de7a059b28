// transformer.cu: the non-GEMM kernels of splash's engine for BERT-family
// masked LMs (BERT, DistilBERT, RoBERTa); cuBLAS does the GEMMs.
//
// Every kernel is a template over the activation storage type T and is
// instantiated three times as extern "C" entries with the suffixes _f32
// (float), _bf16 (__nv_bfloat16) and _f16 (__half). Whatever T is, the math
// is float32: values are widened on load, and every result is rounded once,
// to nearest even, when it is stored as T. LayerNorm gamma/beta, biases and
// the pooled SPLADE rows are always float32.
//
// Layouts (row-major, int32 sizes; "packed" means the tokens of the batch's
// documents one after the other, document b owning rows
// offsets[b]..offsets[b+1]-1, with offsets[0] = 0):
//   activations     T [tokens][H], packed
//   qkv             T [tokens][3H]: Q | K | V of each token
//   q, k, v, c      T [B][heads][L][d], padded to L >= every document
//   scores          T [B][heads][L][L]
//   logits chunk    T [rows][V], without the decoder bias
//   pooled          float [B][V]
//
// Floating point: the elementwise steps use __fadd_rn/__fmul_rn/__fdiv_rn so
// that nvcc fuses nothing into an FMA and each step is rounded as in the
// pure-Go twins (dtype.go, transformer_twin.go). The block reductions (sum,
// max) sum per thread over a strided slice of the row, then over each warp
// with a shuffle butterfly, then over the warps in order; the twins mirror
// that order for blocks of 256 threads. What remains different is libm:
// erff, tanhf, expf and log1pf are within 1-2 ulp of the correctly rounded
// values the twins use.
//
// Regenerate the PTX with scripts/gen-ptx.sh after any change.

#include "common.cuh"

// splash_ln_row normalizes one row of H values given by value(j) and
// stores (x-mean)/sqrt(var+eps)*gamma+beta into out: the mean first, then
// the biased variance of x-mean (two reductions, for accuracy), all in
// float32. value(j) is called three times per column, always by the same
// thread, and out[j] is written last, by that thread, after the block has
// finished reading: out may alias the storage value reads (in-place
// LayerNorm) as long as column j only reads column j.
template <typename T, typename F>
__device__ __forceinline__ void splash_ln_row(F value, const float* __restrict__ gamma,
                                              const float* __restrict__ beta, T* out, int H,
                                              float eps, float* scratch) {
    float s = 0.0f;
    for (int j = threadIdx.x; j < H; j += blockDim.x) {
        s = __fadd_rn(s, value(j));
    }
    const float mean = __fdiv_rn(splash_block_sum(s, scratch), (float)H);
    float q = 0.0f;
    for (int j = threadIdx.x; j < H; j += blockDim.x) {
        const float d = __fsub_rn(value(j), mean);
        q = __fadd_rn(q, __fmul_rn(d, d));
    }
    const float var = __fdiv_rn(splash_block_sum(q, scratch), (float)H);
    const float sd = __fsqrt_rn(__fadd_rn(var, eps));
    for (int j = threadIdx.x; j < H; j += blockDim.x) {
        const float n = __fdiv_rn(__fsub_rn(value(j), mean), sd);
        out[j] = splash_store<T>(__fadd_rn(__fmul_rn(n, gamma[j]), beta[j]));
    }
}

// splash_embed_ln: grid (tokens), block a multiple of 32 up to 1024 (256).
// out[i] = LayerNorm(word[ids[i]] + posEmb[pos[i]] + typeEmb[types[i]]),
// the sum in float32 in that order; types and typeEmb are both null for
// models without token types. Indices are not checked (the twin does).
template <typename T>
__device__ __forceinline__ void splash_embed_ln(const int* __restrict__ ids,
                                                const int* __restrict__ pos,
                                                const int* __restrict__ types,
                                                const T* __restrict__ word,
                                                const T* __restrict__ posEmb,
                                                const T* __restrict__ typeEmb,
                                                const float* __restrict__ gamma,
                                                const float* __restrict__ beta,
                                                T* __restrict__ out, int tokens, int H, float eps) {
    __shared__ float scratch[32];
    const int i = blockIdx.x;
    if (i >= tokens) {
        return;
    }
    const T* w = word + (size_t)ids[i] * H;
    const T* pe = posEmb + (size_t)pos[i] * H;
    const T* te = (types != nullptr && typeEmb != nullptr) ? typeEmb + (size_t)types[i] * H : nullptr;
    auto value = [=](int j) {
        float x = __fadd_rn(splash_f32(w[j]), splash_f32(pe[j]));
        if (te != nullptr) {
            x = __fadd_rn(x, splash_f32(te[j]));
        }
        return x;
    };
    splash_ln_row<T>(value, gamma, beta, out + (size_t)i * H, H, eps, scratch);
}

// GELU constants, rounded to float32 as the twins round them.
#define SPLASH_SQRT1_2 0.70710678118654752440f  // 1/sqrt(2)
#define SPLASH_SQRT2_PI 0.79788456080286535588f  // sqrt(2/pi)
#define SPLASH_GELU_C 0.044715f

// splash_gelu: act 1 = gelu_new, 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3)));
// anything else = exact GELU, 0.5x(1+erf(x/sqrt(2))).
__device__ __forceinline__ float splash_gelu(float x, int act) {
    float t;
    if (act == 1) {
        const float x3 = __fmul_rn(__fmul_rn(x, x), x);
        const float inner = __fadd_rn(x, __fmul_rn(SPLASH_GELU_C, x3));
        t = tanhf(__fmul_rn(SPLASH_SQRT2_PI, inner));
    } else {
        t = erff(__fmul_rn(x, SPLASH_SQRT1_2));
    }
    return __fmul_rn(__fmul_rn(0.5f, x), __fadd_rn(1.0f, t));
}

// splash_bias_gelu: in place x[r][j] = act(x[r][j] + bias[j]), x [rows][n].
// A grid-stride loop: any grid and block; ceil(rows*n/256) blocks of 256.
template <typename T>
__device__ __forceinline__ void splash_bias_gelu(T* __restrict__ x, const float* __restrict__ bias,
                                                 int rows, int n, int act) {
    const size_t total = (size_t)rows * n;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int j = (int)(i % n);
        x[i] = splash_store<T>(splash_gelu(__fadd_rn(splash_f32(x[i]), bias[j]), act));
    }
}

// splash_bias_residual_ln: grid (rows), block a multiple of 32 up to 1024
// (256). out[r] = LayerNorm(y[r] + bias + residual[r]), the sum in float32
// in that order; bias and residual may be null. out may alias y or
// residual (the row is read completely before it is written), hence no
// __restrict__ on them.
template <typename T>
__device__ __forceinline__ void splash_bias_residual_ln(const T* y, const float* __restrict__ bias,
                                                        const T* residual,
                                                        const float* __restrict__ gamma,
                                                        const float* __restrict__ beta, T* out,
                                                        int rows, int H, float eps) {
    __shared__ float scratch[32];
    const int r = blockIdx.x;
    if (r >= rows) {
        return;
    }
    const T* yr = y + (size_t)r * H;
    const T* rr = residual != nullptr ? residual + (size_t)r * H : nullptr;
    auto value = [=](int j) {
        float x = splash_f32(yr[j]);
        if (bias != nullptr) {
            x = __fadd_rn(x, bias[j]);
        }
        if (rr != nullptr) {
            x = __fadd_rn(x, splash_f32(rr[j]));
        }
        return x;
    };
    splash_ln_row<T>(value, gamma, beta, out + (size_t)r * H, H, eps, scratch);
}

// splash_qkv_scatter: q[b][h][p][e] = qkv[offsets[b]+p][h*d+e] + bias[h*d+e]
// (k and v from the H and 2H column blocks, with their biases) for
// p < len_b = offsets[b+1]-offsets[b], and 0 for len_b <= p < L, so the
// padded blocks of the batched attention GEMMs are clean. bias may be null.
// A grid-stride loop over (b, p, h, e), reading each token's row in order:
// any grid and block; ceil(B*L*H/256) blocks of 256.
template <typename T>
__device__ __forceinline__ void splash_qkv_scatter(const T* __restrict__ qkv,
                                                   const float* __restrict__ bias,
                                                   const int* __restrict__ offsets,
                                                   T* __restrict__ q, T* __restrict__ k,
                                                   T* __restrict__ v, int B, int heads, int d,
                                                   int L) {
    const int H = heads * d;
    const size_t total = (size_t)B * L * H;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int hd = (int)(i % H);
        const size_t bp = i / H;
        const int p = (int)(bp % L);
        const int b = (int)(bp / L);
        const int h = hd / d;
        const int e = hd - h * d;
        const int start = offsets[b];
        const int len = offsets[b + 1] - start;
        const size_t dst = (((size_t)b * heads + h) * L + p) * d + e;
        if (p < len) {
            const T* row = qkv + (size_t)(start + p) * (3 * (size_t)H);
            float xq = splash_f32(row[hd]);
            float xk = splash_f32(row[H + hd]);
            float xv = splash_f32(row[2 * H + hd]);
            if (bias != nullptr) {
                xq = __fadd_rn(xq, bias[hd]);
                xk = __fadd_rn(xk, bias[H + hd]);
                xv = __fadd_rn(xv, bias[2 * H + hd]);
            }
            q[dst] = splash_store<T>(xq);
            k[dst] = splash_store<T>(xk);
            v[dst] = splash_store<T>(xv);
        } else {
            q[dst] = splash_store<T>(0.0f);
            k[dst] = splash_store<T>(0.0f);
            v[dst] = splash_store<T>(0.0f);
        }
    }
}

// splash_masked_softmax: grid (B*heads*L), one block per score row, block a
// multiple of 32 up to 1024 (256). Row p of document b (len = offsets[b+1]
// - offsets[b]): for p < len, softmax in float32 over the columns j < len
// (max, then sum of expf(x-max), then expf(x-max)/sum) and 0 for j >= len;
// for p >= len, all 0. In place; any L (the row is walked in strides of
// blockDim.x, three times).
template <typename T>
__device__ __forceinline__ void splash_masked_softmax(T* __restrict__ s,
                                                      const int* __restrict__ offsets, int B,
                                                      int heads, int L) {
    __shared__ float scratch[32];
    const size_t row = blockIdx.x;
    const int p = (int)(row % L);
    const int b = (int)(row / L / heads);
    if (b >= B) {
        return;
    }
    const int len = offsets[b + 1] - offsets[b];
    T* x = s + row * L;
    if (p >= len) {
        for (int j = threadIdx.x; j < L; j += blockDim.x) {
            x[j] = splash_store<T>(0.0f);
        }
        return;
    }
    float m = -CUDART_INF_F;
    for (int j = threadIdx.x; j < len; j += blockDim.x) {
        const float y = splash_f32(x[j]);
        m = y > m ? y : m;
    }
    m = splash_block_max(m, scratch);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < len; j += blockDim.x) {
        sum = __fadd_rn(sum, expf(__fsub_rn(splash_f32(x[j]), m)));
    }
    sum = splash_block_sum(sum, scratch);
    for (int j = threadIdx.x; j < L; j += blockDim.x) {
        float y = 0.0f;
        if (j < len) {
            y = __fdiv_rn(expf(__fsub_rn(splash_f32(x[j]), m)), sum);
        }
        x[j] = splash_store<T>(y);
    }
}

// splash_attn_gather: out[offsets[b]+p][h*d+e] = c[b][h][p][e] for
// p < len_b, the inverse of the scatter (padded rows are dropped). A
// grid-stride loop over (b, p, h, e), writing each token's row in order:
// any grid and block; ceil(B*L*H/256) blocks of 256.
template <typename T>
__device__ __forceinline__ void splash_attn_gather(const T* __restrict__ c,
                                                   const int* __restrict__ offsets,
                                                   T* __restrict__ out, int B, int heads, int d,
                                                   int L) {
    const int H = heads * d;
    const size_t total = (size_t)B * L * H;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int hd = (int)(i % H);
        const size_t bp = i / H;
        const int p = (int)(bp % L);
        const int b = (int)(bp / L);
        const int start = offsets[b];
        if (p >= offsets[b + 1] - start) {
            continue;
        }
        const int h = hd / d;
        const int e = hd - h * d;
        out[(size_t)(start + p) * H + hd] = c[(((size_t)b * heads + h) * L + p) * d + e];
    }
}

// Rows whose loads are issued together before they are reduced, in order.
#define SPLASH_CHUNK_UNROLL 4

// splash_pool_chunk: SPLADE pooling of one chunk of logit rows into the
// running pooled [B][V] (float32), for the rows whose tokenDoc is >= 0 (the
// document's index in the batch). Max: pooled = max(pooled, z+bias), the
// raw maximum (splash_activate_max applies log1p(relu) at the end; NaN
// never wins). Sum: pooled += log1pf(max(z+bias, 0)), in ascending row
// order (NaN counts as 0). bias may be null.
//
// One thread per vocabulary column j (coalesced loads) walks the rows in
// order with a running accumulator that starts from pooled[doc][j] when the
// document changes and is written back when it changes again: no atomics,
// and the result of a document that spans several calls is the same as
// one call over all its rows.
//
// Grid (ceil(V/blockDim.x), S), any block: blockIdx.y splits the rows into
// S segments of ceil(rows/S). A document belongs to the segment holding its
// first row of the chunk; its owner walks all its rows, past the segment's
// end if need be, and the other segments skip them. This relies on the
// documents' rows being contiguous (tokenDoc non-decreasing apart from -1
// rows); S = 1 needs nothing, and the result does not depend on S. S about
// the number of documents in the chunk gives each segment one document.
template <typename T, bool SUM>
__device__ __forceinline__ void splash_pool_chunk(const T* __restrict__ z,
                                                  const float* __restrict__ bias,
                                                  const int* __restrict__ tokenDoc,
                                                  float* __restrict__ pooled, int rows, int V) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= V || rows <= 0) {
        return;
    }
    const int seg = (rows + gridDim.y - 1) / gridDim.y;
    const long long lo64 = (long long)blockIdx.y * seg;
    if (lo64 >= rows) {
        return;
    }
    const int lo = (int)lo64;
    const int hi = rows - lo < seg ? rows : lo + seg;
    // Skip the rows of the document that started before lo (the last
    // document seen before lo), and the -1 rows among them.
    int r = lo;
    int prev = -1;
    for (int t = lo - 1; t >= 0; t--) {
        const int doc = tokenDoc[t];
        if (doc >= 0) {
            prev = doc;
            break;
        }
    }
    if (prev >= 0) {
        while (r < rows) {
            const int doc = tokenDoc[r];
            if (doc >= 0 && doc != prev) {
                break;
            }
            r++;
        }
    }
    const float bj = bias != nullptr ? bias[j] : 0.0f;
    int cur = -1;
    float acc = 0.0f;
    bool done = false;
    for (; r < rows && !done; r += SPLASH_CHUNK_UNROLL) {
        int doc[SPLASH_CHUNK_UNROLL];
        float x[SPLASH_CHUNK_UNROLL];
#pragma unroll
        for (int u = 0; u < SPLASH_CHUNK_UNROLL; u++) {
            const int t = r + u;
            doc[u] = t < rows ? tokenDoc[t] : -1;
            x[u] = 0.0f;
            if (doc[u] >= 0) {
                x[u] = splash_f32(z[(size_t)t * V + j]);
                if (bias != nullptr) {
                    x[u] = __fadd_rn(x[u], bj);
                }
            }
        }
#pragma unroll
        for (int u = 0; u < SPLASH_CHUNK_UNROLL; u++) {
            if (done || doc[u] < 0) {
                continue;
            }
            if (doc[u] != cur) {
                if (r + u >= hi) {
                    done = true;  // a document starting here belongs to a later segment
                    continue;
                }
                if (cur >= 0) {
                    pooled[(size_t)cur * V + j] = acc;
                }
                cur = doc[u];
                acc = pooled[(size_t)cur * V + j];
            }
            if (SUM) {
                if (x[u] > 0.0f) {
                    acc = __fadd_rn(acc, log1pf(x[u]));
                }
            } else if (x[u] > acc) {
                acc = x[u];
            }
        }
    }
    if (cur >= 0) {
        pooled[(size_t)cur * V + j] = acc;
    }
}

// Instantiations: one extern "C" entry per kernel and storage type.
#define SPLASH_TRANSFORMER_ENTRIES(T, SFX)                                                         \
    extern "C" __global__ void splash_embed_ln##SFX(                                               \
        const int* ids, const int* pos, const int* types, const T* word, const T* posEmb,          \
        const T* typeEmb, const float* gamma, const float* beta, T* out, int tokens, int H,        \
        float eps) {                                                                               \
        splash_embed_ln<T>(ids, pos, types, word, posEmb, typeEmb, gamma, beta, out, tokens, H,    \
                           eps);                                                                   \
    }                                                                                              \
    extern "C" __global__ void splash_bias_gelu##SFX(T* x, const float* bias, int rows, int n,     \
                                                     int act) {                                    \
        splash_bias_gelu<T>(x, bias, rows, n, act);                                                \
    }                                                                                              \
    extern "C" __global__ void splash_bias_residual_ln##SFX(                                       \
        const T* y, const float* bias, const T* residual, const float* gamma, const float* beta,   \
        T* out, int rows, int H, float eps) {                                                      \
        splash_bias_residual_ln<T>(y, bias, residual, gamma, beta, out, rows, H, eps);             \
    }                                                                                              \
    extern "C" __global__ void splash_qkv_scatter##SFX(const T* qkv, const float* bias,            \
                                                       const int* offsets, T* q, T* k, T* v,       \
                                                       int B, int heads, int d, int L) {           \
        splash_qkv_scatter<T>(qkv, bias, offsets, q, k, v, B, heads, d, L);                        \
    }                                                                                              \
    extern "C" __global__ void splash_masked_softmax##SFX(T* s, const int* offsets, int B,         \
                                                          int heads, int L) {                      \
        splash_masked_softmax<T>(s, offsets, B, heads, L);                                         \
    }                                                                                              \
    extern "C" __global__ void splash_attn_gather##SFX(const T* c, const int* offsets, T* out,     \
                                                       int B, int heads, int d, int L) {           \
        splash_attn_gather<T>(c, offsets, out, B, heads, d, L);                                    \
    }                                                                                              \
    extern "C" __global__ void splash_pool_chunk_max##SFX(const T* z, const float* bias,           \
                                                          const int* tokenDoc, float* pooled,      \
                                                          int rows, int V) {                       \
        splash_pool_chunk<T, false>(z, bias, tokenDoc, pooled, rows, V);                           \
    }                                                                                              \
    extern "C" __global__ void splash_pool_chunk_sum##SFX(const T* z, const float* bias,           \
                                                          const int* tokenDoc, float* pooled,      \
                                                          int rows, int V) {                       \
        splash_pool_chunk<T, true>(z, bias, tokenDoc, pooled, rows, V);                            \
    }

SPLASH_TRANSFORMER_ENTRIES(float, _f32)
SPLASH_TRANSFORMER_ENTRIES(__nv_bfloat16, _bf16)
SPLASH_TRANSFORMER_ENTRIES(__half, _f16)

// splash_activate_max: pooled[i] = log1p(relu(pooled[i])) over n floats, the
// last step of max pooling; -Inf (a document without pooled tokens) and NaN
// become 0. A grid-stride loop: any grid and block; ceil(n/256) blocks of 256.
extern "C" __global__ void splash_activate_max(float* __restrict__ pooled, int n) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)n; i += stride) {
        const float x = pooled[i];
        pooled[i] = x > 0.0f ? log1pf(x) : 0.0f;
    }
}
