// common.cuh: what splash's kernel files share (included by
// transformer.cu, llama.cu and fp8.cu; nvcc runs in kernels/, see
// scripts/gen-ptx.sh): the storage types' loads and stores and the block
// reductions whose order the Go twins (kernels.blockSum) transcribe.

#ifndef SPLASH_COMMON_CUH
#define SPLASH_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math_constants.h>

#define SPLASH_FULL_MASK 0xffffffffu

// Loads of T, widened to float (exact).
__device__ __forceinline__ float splash_f32(float x) { return x; }
__device__ __forceinline__ float splash_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float splash_f32(__half x) { return __half2float(x); }

// Stores as T, rounded to nearest even (float16 overflow goes to +-Inf).
template <typename T>
__device__ __forceinline__ T splash_store(float x);
template <>
__device__ __forceinline__ float splash_store<float>(float x) {
    return x;
}
template <>
__device__ __forceinline__ __nv_bfloat16 splash_store<__nv_bfloat16>(float x) {
    return __float2bfloat16_rn(x);
}
template <>
__device__ __forceinline__ __half splash_store<__half>(float x) {
    return __float2half_rn(x);
}

// splash_block_sum returns the float32 sum of x over the block to every
// thread: a butterfly over each warp (every lane ends with the same value,
// float addition being commutative), then the warps' sums added in order
// to 0. blockDim.x must be a multiple of 32; every thread must call it;
// scratch holds 32 floats and may be reused as soon as it returns.
__device__ float splash_block_sum(float x, float* scratch) {
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = blockDim.x >> 5;
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) {
        x = __fadd_rn(x, __shfl_xor_sync(SPLASH_FULL_MASK, x, d));
    }
    if (lane == 0) {
        scratch[warp] = x;
    }
    __syncthreads();
    float total = 0.0f;
    for (int i = 0; i < warps; i++) {
        total = __fadd_rn(total, scratch[i]);
    }
    __syncthreads();
    return total;
}

// splash_block_max is splash_block_sum for the maximum (y > m: NaN never
// wins; -Inf when every thread passes -Inf).
__device__ float splash_block_max(float x, float* scratch) {
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = blockDim.x >> 5;
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) {
        const float y = __shfl_xor_sync(SPLASH_FULL_MASK, x, d);
        x = y > x ? y : x;
    }
    if (lane == 0) {
        scratch[warp] = x;
    }
    __syncthreads();
    float m = -CUDART_INF_F;
    for (int i = 0; i < warps; i++) {
        m = scratch[i] > m ? scratch[i] : m;
    }
    __syncthreads();
    return m;
}

#endif  // SPLASH_COMMON_CUH
