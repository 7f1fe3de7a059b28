// fp8.cu: the activation quantization of splash's --precision fp8 (GPUs of
// compute capability 9.0 and later): a per-tensor amax, then E4M3 codes of
// x/scale with scale = amax/448, for cuBLASLt's FP8 GEMMs (per-tensor scale
// pointers). The twins are kernels.AmaxTwin and kernels.QuantizeFP8Twin.
//
// The E4M3 rounding (OCP float8_e4m3fn: bias 7, no infinities, NaN
// S.1111.111, largest finite 448; nearest even, saturating to +-448) is
// done in integer arithmetic here rather than with cuda_fp8.h, whose
// hardware conversion needs sm_89: the PTX stays compute_80, like the
// other kernels, and the twin (kernels.ToE4M3) is exact.
//
// Entries per activation storage type T (suffixes _f32, _bf16, _f16):
//   splash_fp8_amax_T(const T* x, int n, unsigned* amax)
//       grid-stride, blockDim a multiple of 32 up to 1024; *amax (float
//       bits; zeroed by the caller first) = max(*amax, max |x[i]|), NaN
//       ignored. Non-negative floats order as their bits, so atomicMax on
//       the bits is exact and the result independent of the order.
//   splash_fp8_quantize_T(const T* x, int n, const float* amax,
//                         unsigned char* out, float* scale)
//       grid-stride: out[i] = E4M3(x[i] / s), s = amax/448 (1 when that is
//       not a finite positive number); block 0 thread 0 writes s to
//       *scale for the GEMM.
//
// Regenerate the PTX with scripts/gen-ptx.sh after any change.

#include <float.h>

#include "common.cuh"

// splash_fp8_encode is kernels.ToE4M3.
__device__ __forceinline__ unsigned char splash_fp8_encode(float x) {
    const unsigned b = __float_as_uint(x);
    const unsigned sign = (b >> 24) & 0x80u;
    const unsigned a = b & 0x7fffffffu;
    if (a > 0x7f800000u) {
        return 0x7f;  // NaN
    }
    if (a >= 0x43e00000u) {
        return (unsigned char)(sign | 0x7eu);  // 448 and beyond saturate
    }
    if (a >= 0x3c800000u) {  // 2^-6 and beyond: normal
        const unsigned r = a + 0x7ffffu + ((a >> 20) & 1u);
        return (unsigned char)(sign | ((r >> 20) - (120u << 3)));
    }
    // Below 2^-6: multiples of 2^-9, ties to even (|x|*512 is exact).
    const float v = __fmul_rn(__uint_as_float(a), 512.0f);
    return (unsigned char)(sign | (unsigned)__float2int_rn(v));
}

// splash_fp8_scale is kernels.FP8Scale.
__device__ __forceinline__ float splash_fp8_scale(float amax) {
    const float s = __fdiv_rn(amax, 448.0f);
    if (!(s > 0.0f) || s > FLT_MAX) {
        return 1.0f;
    }
    return s;
}

template <typename T>
__device__ void splash_fp8_amax(const T* x, int n, unsigned* amax) {
    __shared__ float scratch[32];
    float m = 0.0f;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)n;
         i += (size_t)gridDim.x * blockDim.x) {
        const float a = fabsf(splash_f32(x[i]));
        if (a > m) {  // false for NaN: ignored
            m = a;
        }
    }
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) {
        const float o = __shfl_xor_sync(SPLASH_FULL_MASK, m, d);
        if (o > m) {
            m = o;
        }
    }
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    if (lane == 0) {
        scratch[warp] = m;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < (int)(blockDim.x >> 5); w++) {
            if (scratch[w] > m) {
                m = scratch[w];
            }
        }
        atomicMax(amax, __float_as_uint(m));
    }
}

template <typename T>
__device__ void splash_fp8_quantize(const T* x, int n, const float* amax, unsigned char* out, float* scale) {
    const float s = splash_fp8_scale(*amax);
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        *scale = s;
    }
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)n;
         i += (size_t)gridDim.x * blockDim.x) {
        out[i] = splash_fp8_encode(__fdiv_rn(splash_f32(x[i]), s));
    }
}

#define SPLASH_FP8_ENTRIES(T, SFX)                                                                  \
    extern "C" __global__ void splash_fp8_amax##SFX(const T* x, int n, unsigned* amax) {           \
        splash_fp8_amax<T>(x, n, amax);                                                            \
    }                                                                                              \
    extern "C" __global__ void splash_fp8_quantize##SFX(const T* x, int n, const float* amax,      \
                                                        unsigned char* out, float* scale) {        \
        splash_fp8_quantize<T>(x, n, amax, out, scale);                                            \
    }

SPLASH_FP8_ENTRIES(float, _f32)
SPLASH_FP8_ENTRIES(__nv_bfloat16, _bf16)
SPLASH_FP8_ENTRIES(__half, _f16)
