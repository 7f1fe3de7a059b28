// llama.cu: the non-GEMM kernels of splash's engine for Llama-family causal
// LMs (LlamaForCausalLM, MistralForCausalLM); cuBLAS does the GEMMs.
//
// Conventions as in transformer.cu: every kernel is a template over the
// activation storage type T, instantiated as extern "C" entries with the
// suffixes _f32, _bf16 and _f16; loads are widened to float, the math is
// float32 with __fadd_rn/__fmul_rn/__fdiv_rn (no FMA contraction), and each
// result is rounded to nearest even when stored as T. RMSNorm weights and
// the rotary inverse frequencies are float32.
//
// Layouts (row-major; t packed tokens, document b owning rows
// offsets[b]..offsets[b+1]-1 with offsets[0] = 0; L >= every document):
//   activations   T [t][H], packed
//   qkv           T [t][(heads+2*kv)*d]: Q columns, then K, then V
//   q             T [B][heads][L][d]; k, v T [B][kv][L][d]
//   scores        T [B][heads][L][L]
//   gateUp        T [t][2*I]: gate columns, then up
//
// Index arithmetic that can pass 2^31 (row * width, vocabulary rows) is in
// size_t; no index is narrower than 32 bits, so vocabularies above 65,535
// ids need nothing special.
//
// Regenerate the PTX with scripts/gen-ptx.sh after any change.

#include "common.cuh"

// splash_round returns x rounded to T and widened back to float.
template <typename T>
__device__ __forceinline__ float splash_round(float x) {
    return splash_f32(splash_store<T>(x));
}

// splash_embed: out[r][j] = word[ids[r]][j] for r < tokens, j < H (a copy:
// no rounding). A grid-stride loop over tokens*H: any grid and block;
// ceil(tokens*H/256) blocks of 256. Ids are not checked (the twin does).
template <typename T>
__device__ __forceinline__ void splash_embed(const int* __restrict__ ids,
                                             const T* __restrict__ word, T* __restrict__ out,
                                             int tokens, int H) {
    const size_t total = (size_t)tokens * H;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const size_t r = i / H;
        const int j = (int)(i - r * H);
        out[i] = word[(size_t)(unsigned)ids[r] * H + j];
    }
}

// splash_residual_rmsnorm: grid (rows), block a multiple of 32 up to 1024
// (256). Per row r: s = residual + y rounded to T (s = residual when y is
// null); sum[r] = s when sum is not null; out[r] = gamma * T(s * 1/sqrt(
// mean(s^2) + eps)), rounded to T: Hugging Face's LlamaRMSNorm, which
// normalizes in float32, casts to the input dtype and then multiplies by
// the weight. sum may alias residual or y, and out any input: column j is
// read and written only by one thread, which reads s back from sum in the
// second pass (or recomputes it when sum is null) before it writes out[j].
template <typename T>
__device__ __forceinline__ void splash_residual_rmsnorm(const T* y, const T* residual,
                                                        const float* __restrict__ gamma, T* sum,
                                                        T* out, int rows, int H, float eps) {
    __shared__ float scratch[32];
    const int r = blockIdx.x;
    if (r >= rows) {
        return;
    }
    const size_t base = (size_t)r * H;
    const T* yr = y != nullptr ? y + base : nullptr;
    const T* rr = residual + base;
    T* sr = sum != nullptr ? sum + base : nullptr;
    T* outr = out + base;
    auto value = [=](int j) {
        float s = splash_f32(rr[j]);
        if (yr != nullptr) {
            s = splash_round<T>(__fadd_rn(s, splash_f32(yr[j])));
        }
        return s;
    };
    float q = 0.0f;
    for (int j = threadIdx.x; j < H; j += blockDim.x) {
        const float s = value(j);
        q = __fadd_rn(q, __fmul_rn(s, s));
        if (sr != nullptr) {
            sr[j] = splash_store<T>(s);
        }
    }
    const float ms = __fdiv_rn(splash_block_sum(q, scratch), (float)H);
    const float inv = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(ms, eps)));
    for (int j = threadIdx.x; j < H; j += blockDim.x) {
        const float s = sr != nullptr ? splash_f32(sr[j]) : value(j);
        const float n = splash_round<T>(__fmul_rn(s, inv));
        outr[j] = splash_store<T>(__fmul_rn(gamma[j], n));
    }
}

// splash_gqa_scatter: qkv [t][(heads+2*kv)*d] into q [B][heads][L][d] and
// k, v [B][kv][L][d]: q[b][h][p][e] = qkv[offsets[b]+p][h*d+e], k from
// column heads*d + h*d+e, v from (heads+kv)*d + h*d+e, for p below the
// document's length, and 0 for the padded rows up to L. A grid-stride loop
// over (b, p, column), reading each token's row in order: any grid and
// block; ceil(B*L*(heads+2kv)*d/256) blocks of 256.
template <typename T>
__device__ __forceinline__ void splash_gqa_scatter(const T* __restrict__ qkv,
                                                   const int* __restrict__ offsets,
                                                   T* __restrict__ q, T* __restrict__ k,
                                                   T* __restrict__ v, int B, int heads, int kv,
                                                   int d, int L) {
    const int W = (heads + 2 * kv) * d;
    const int HQ = heads * d;
    const int HK = kv * d;
    const size_t total = (size_t)B * L * W;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int col = (int)(i % W);
        const size_t bp = i / W;
        const int p = (int)(bp % L);
        const int b = (int)(bp / L);
        const int start = offsets[b];
        const int len = offsets[b + 1] - start;
        T* dst;
        int nh, c;
        if (col < HQ) {
            dst = q, nh = heads, c = col;
        } else if (col < HQ + HK) {
            dst = k, nh = kv, c = col - HQ;
        } else {
            dst = v, nh = kv, c = col - HQ - HK;
        }
        const int h = c / d;
        const int e = c - h * d;
        const size_t at = (((size_t)b * nh + h) * L + p) * d + e;
        dst[at] = p < len ? qkv[(size_t)(start + p) * W + col] : splash_store<T>(0.0f);
    }
}

// splash_rope: rotary position embedding in place on x [B][heads][L][d]
// (q or k after the scatter), real rows only (p < the document's length;
// padded rows are left as they are). Row p is position pos = p +
// positionOffset; with half = d/2, for j < half: angle = float(pos) *
// invFreq[j] (float32), c = cosf(angle), s = sinf(angle) (by sincosf),
// x[j] = x1*c - x2*s and x[j+half] = x2*c + x1*s for x1 = x[j],
// x2 = x[j+half] (Hugging Face's rotate_half). d must be even. A
// grid-stride loop over (b, h, p, j): any grid and block;
// ceil(B*heads*L*half/256) blocks of 256.
template <typename T>
__device__ __forceinline__ void splash_rope(T* __restrict__ x, const int* __restrict__ offsets,
                                            const float* __restrict__ invFreq, int B, int heads,
                                            int d, int L, int positionOffset) {
    const int half = d / 2;
    const size_t total = (size_t)B * heads * L * half;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const int j = (int)(i % half);
        const size_t row = i / half;  // (b*heads + h)*L + p
        const int p = (int)(row % L);
        const int b = (int)(row / L / heads);
        if (p >= offsets[b + 1] - offsets[b]) {
            continue;
        }
        const float angle = __fmul_rn((float)(p + positionOffset), invFreq[j]);
        float s, c;
        sincosf(angle, &s, &c);  // one argument reduction, sinf/cosf accuracy (2 ulp)
        T* xr = x + row * d;
        const float x1 = splash_f32(xr[j]);
        const float x2 = splash_f32(xr[j + half]);
        xr[j] = splash_store<T>(__fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, s)));
        xr[j + half] = splash_store<T>(__fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, s)));
    }
}

// splash_causal_softmax: grid (B*heads*L), one block per score row, block
// a multiple of 32 up to 1024 (256). Row p of document b (len tokens): for
// p < len, softmax in float32 over the columns j <= p (max, sum of
// expf(x-max), expf(x-max)/sum) and 0 for j > p; for p >= len, all 0. In
// place; any L.
template <typename T>
__device__ __forceinline__ void splash_causal_softmax(T* __restrict__ s,
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
    const int n = p + 1;
    float m = -CUDART_INF_F;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        const float y = splash_f32(x[j]);
        m = y > m ? y : m;
    }
    m = splash_block_max(m, scratch);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        sum = __fadd_rn(sum, expf(__fsub_rn(splash_f32(x[j]), m)));
    }
    sum = splash_block_sum(sum, scratch);
    for (int j = threadIdx.x; j < L; j += blockDim.x) {
        float y = 0.0f;
        if (j < n) {
            y = __fdiv_rn(expf(__fsub_rn(splash_f32(x[j]), m)), sum);
        }
        x[j] = splash_store<T>(y);
    }
}

// splash_swiglu: out[r][j] = T(silu(gate)) * up rounded to T, with gate =
// gateUp[r][j], up = gateUp[r][I+j] and silu(x) = x/(1+expf(-x)) in
// float32 (Hugging Face's act_fn(gate_proj(x)) * up_proj(x): the
// activation is stored in the input dtype before the product). A
// grid-stride loop over rows*I: any grid and block; ceil(rows*I/256)
// blocks of 256.
template <typename T>
__device__ __forceinline__ void splash_swiglu(const T* __restrict__ gateUp, T* __restrict__ out,
                                              int rows, int I) {
    const size_t total = (size_t)rows * I;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const size_t r = i / I;
        const int j = (int)(i - r * I);
        const T* row = gateUp + r * (2 * (size_t)I);
        const float g = splash_f32(row[j]);
        const float u = splash_f32(row[I + j]);
        const float a = splash_round<T>(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))));
        out[i] = splash_store<T>(__fmul_rn(a, u));
    }
}

#define SPLASH_LLAMA_ENTRIES(T, SFX)                                                                \
    extern "C" __global__ void splash_embed##SFX(const int* ids, const T* word, T* out,            \
                                                 int tokens, int H) {                              \
        splash_embed<T>(ids, word, out, tokens, H);                                                \
    }                                                                                              \
    extern "C" __global__ void splash_residual_rmsnorm##SFX(const T* y, const T* residual,         \
                                                            const float* gamma, T* sum, T* out,    \
                                                            int rows, int H, float eps) {          \
        splash_residual_rmsnorm<T>(y, residual, gamma, sum, out, rows, H, eps);                    \
    }                                                                                              \
    extern "C" __global__ void splash_gqa_scatter##SFX(const T* qkv, const int* offsets, T* q,     \
                                                       T* k, T* v, int B, int heads, int kv,       \
                                                       int d, int L) {                             \
        splash_gqa_scatter<T>(qkv, offsets, q, k, v, B, heads, kv, d, L);                          \
    }                                                                                              \
    extern "C" __global__ void splash_rope##SFX(T* x, const int* offsets, const float* invFreq,    \
                                                int B, int heads, int d, int L,                    \
                                                int positionOffset) {                              \
        splash_rope<T>(x, offsets, invFreq, B, heads, d, L, positionOffset);                       \
    }                                                                                              \
    extern "C" __global__ void splash_causal_softmax##SFX(T* s, const int* offsets, int B,         \
                                                          int heads, int L) {                      \
        splash_causal_softmax<T>(s, offsets, B, heads, L);                                         \
    }                                                                                              \
    extern "C" __global__ void splash_swiglu##SFX(const T* gateUp, T* out, int rows, int I) {      \
        splash_swiglu<T>(gateUp, out, rows, I);                                                    \
    }

SPLASH_LLAMA_ENTRIES(float, _f32)
SPLASH_LLAMA_ENTRIES(__nv_bfloat16, _bf16)
SPLASH_LLAMA_ENTRIES(__half, _f16)
