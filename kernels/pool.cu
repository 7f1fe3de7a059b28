// pool.cu: masked SPLADE pooling over the vocabulary.
//
// Layout (row-major, as ONNX Runtime hands out the masked-LM output):
//   logits  float32 [B][T][V]
//   mask    int64   [B][T]      0 = padding, anything else = a real token
//   out     float32 [B][V]
//
// Grid: (ceil(V / blockDim.x), B); one thread per (document, vocabulary
// entry), looping over the sequence. Neighbouring threads read neighbouring
// vocabulary entries of the same position, so every load is coalesced.
//
// The pure-Go twins in twin.go define the exact semantics; keep them in step.
// Regenerate the PTX with scripts/gen-ptx.sh after any change.

#include <math_constants.h>

// Positions whose loads are issued together before they are reduced; the
// reduction itself stays in ascending t order (the sum's rounding depends on it).
#define SPLASH_POOL_UNROLL 4

// splash_pool_max: out[b][v] = log1p(relu(max over unmasked t of logits[b][t][v])),
// 0 when the document has no unmasked position. Max pooling commutes with
// the monotone activation, so the activation runs once per output.
// NaN logits never win the maximum (x > m is false for NaN).
extern "C" __global__ void splash_pool_max(const float* __restrict__ logits,
                                           const long long* __restrict__ mask,
                                           float* __restrict__ out,
                                           int B, int T, int V) {
    const int v = blockIdx.x * blockDim.x + threadIdx.x;
    const int b = blockIdx.y;
    if (v >= V || b >= B) {
        return;
    }
    const long long* m = mask + (size_t)b * T;
    const float* col = logits + (size_t)b * T * V + v;
    float acc = -CUDART_INF_F;
    int t = 0;
    for (; t + SPLASH_POOL_UNROLL <= T; t += SPLASH_POOL_UNROLL) {
        float x[SPLASH_POOL_UNROLL];
        bool on[SPLASH_POOL_UNROLL];
#pragma unroll
        for (int u = 0; u < SPLASH_POOL_UNROLL; u++) {
            on[u] = m[t + u] != 0;
            x[u] = on[u] ? col[(size_t)(t + u) * V] : -CUDART_INF_F;
        }
#pragma unroll
        for (int u = 0; u < SPLASH_POOL_UNROLL; u++) {
            if (on[u] && x[u] > acc) {
                acc = x[u];
            }
        }
    }
    for (; t < T; t++) {
        if (m[t] != 0) {
            const float x = col[(size_t)t * V];
            if (x > acc) {
                acc = x;
            }
        }
    }
    out[(size_t)b * V + v] = acc > 0.0f ? log1pf(acc) : 0.0f;
}

// splash_pool_sum: out[b][v] = sum over unmasked t of log1p(relu(logits[b][t][v])),
// accumulated in float32 in ascending t order (SPLADE v1). NaN logits count as 0.
// __fadd_rn keeps the compiler from fusing the add into log1pf's last multiply,
// so each term is rounded before it is added, as in the twin.
extern "C" __global__ void splash_pool_sum(const float* __restrict__ logits,
                                           const long long* __restrict__ mask,
                                           float* __restrict__ out,
                                           int B, int T, int V) {
    const int v = blockIdx.x * blockDim.x + threadIdx.x;
    const int b = blockIdx.y;
    if (v >= V || b >= B) {
        return;
    }
    const long long* m = mask + (size_t)b * T;
    const float* col = logits + (size_t)b * T * V + v;
    float acc = 0.0f;
    int t = 0;
    for (; t + SPLASH_POOL_UNROLL <= T; t += SPLASH_POOL_UNROLL) {
        float x[SPLASH_POOL_UNROLL];
        bool on[SPLASH_POOL_UNROLL];
#pragma unroll
        for (int u = 0; u < SPLASH_POOL_UNROLL; u++) {
            on[u] = m[t + u] != 0;
            x[u] = on[u] ? col[(size_t)(t + u) * V] : 0.0f;
        }
#pragma unroll
        for (int u = 0; u < SPLASH_POOL_UNROLL; u++) {
            if (on[u] && x[u] > 0.0f) {
                acc = __fadd_rn(acc, log1pf(x[u]));
            }
        }
    }
    for (; t < T; t++) {
        if (m[t] != 0) {
            const float x = col[(size_t)t * V];
            if (x > 0.0f) {
                acc = __fadd_rn(acc, log1pf(x));
            }
        }
    }
    out[(size_t)b * V + v] = acc;
}
