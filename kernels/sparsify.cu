// sparsify.cu: pooled SPLADE rows -> compact CSR, so that only the non-zeros
// cross PCIe.
//
// Input:  pooled float32 [B][V] (row-major, the output of pool.cu).
// Output: offsets uint32 [B+1], terms uint32 [nnz], weights float32 [nnz];
//         document b owns terms[offsets[b]:offsets[b+1]], in ascending term id.
//
// A weight w is eligible when w > minWeight && w > 0 (NaN never is). With
// topK > 0 a document keeps only its topK largest eligible weights, ties
// broken by the lower term id; topK = 0 keeps every eligible weight. These are
// the semantics of encode.Sparsify without quantization; the pure-Go twin in
// twin.go mirrors this file step by step.
//
// Two passes, one block per document (blockDim.x a multiple of 32, <= 1024):
//   1. splash_sparsify_select counts the eligible weights. When topK cuts,
//      it finds the topK-th largest value by binary search over the float bit
//      pattern (positive floats order like their uint32 bits), counting with
//      a block reduction, and records how many weights equal to it to keep
//      (the lowest term ids). Per document it writes the count, the
//      threshold bits and the number of ties to keep.
//   2. The host turns the counts into offsets (exclusive scan) and launches
//      splash_sparsify_write, which walks the row in chunks of blockDim.x
//      and computes each kept entry's position with block-wide prefix sums
//      (warp ballots), so the output is deterministic and ascending.
//
// Regenerate the PTX with scripts/gen-ptx.sh after any change.

#define SPLASH_FULL_MASK 0xffffffffu
// Bits of +Inf: the largest eligible bit pattern.
#define SPLASH_POS_INF_BITS 0x7f800000u

__device__ __forceinline__ bool splash_eligible(float w, float minWeight) {
    return w > minWeight && w > 0.0f;
}

// splash_block_sum returns the sum of x over the block to every thread.
// Every thread of the block must call it; scratch holds 32 entries.
__device__ unsigned splash_block_sum(unsigned x, unsigned* scratch) {
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = blockDim.x >> 5;
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) {
        x += __shfl_down_sync(SPLASH_FULL_MASK, x, d);
    }
    if (lane == 0) {
        scratch[warp] = x;
    }
    __syncthreads();
    unsigned total = 0;
    for (int i = 0; i < warps; i++) {
        total += scratch[i];
    }
    __syncthreads();  // scratch may be reused right away
    return total;
}

// splash_count_ge counts the eligible weights of row whose bits are >= lo.
__device__ unsigned splash_count_ge(const float* __restrict__ row, int V, float minWeight,
                                    unsigned lo, unsigned* scratch) {
    unsigned c = 0;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        const float w = row[v];
        c += (splash_eligible(w, minWeight) && __float_as_uint(w) >= lo) ? 1u : 0u;
    }
    return splash_block_sum(c, scratch);
}

// splash_sparsify_select: grid (B), block (multiple of 32).
// counts[b]  = entries document b keeps;
// thresh[b]  = bit pattern of the smallest kept value (0 when all eligible are kept);
// tieKeep[b] = how many eligible entries with bits == thresh[b] to keep, lowest ids first.
extern "C" __global__ void splash_sparsify_select(const float* __restrict__ pooled,
                                                  int B, int V, float minWeight, int topK,
                                                  unsigned* __restrict__ counts,
                                                  unsigned* __restrict__ thresh,
                                                  unsigned* __restrict__ tieKeep) {
    __shared__ unsigned scratch[32];
    const int b = blockIdx.x;
    if (b >= B) {
        return;
    }
    const float* row = pooled + (size_t)b * V;
    const unsigned n = splash_count_ge(row, V, minWeight, 0u, scratch);
    if (topK <= 0 || n <= (unsigned)topK) {
        if (threadIdx.x == 0) {
            counts[b] = n;
            thresh[b] = 0u;
            tieKeep[b] = 0u;
        }
        return;
    }
    const unsigned k = (unsigned)topK;
    // Largest lo with count(bits >= lo) >= k: the bits of the k-th largest value.
    unsigned lo = 1u, hi = SPLASH_POS_INF_BITS;
    while (lo < hi) {
        const unsigned mid = lo + ((hi - lo + 1u) >> 1);
        if (splash_count_ge(row, V, minWeight, mid, scratch) >= k) {
            lo = mid;
        } else {
            hi = mid - 1u;
        }
    }
    const unsigned greater = splash_count_ge(row, V, minWeight, lo + 1u, scratch);
    if (threadIdx.x == 0) {
        counts[b] = k;
        thresh[b] = lo;
        tieKeep[b] = k - greater;
    }
}

// splash_sparsify_write: grid (B), block (multiple of 32). offsets is the
// exclusive scan of splash_sparsify_select's counts (B+1 entries).
extern "C" __global__ void splash_sparsify_write(const float* __restrict__ pooled,
                                                 int B, int V, float minWeight,
                                                 const unsigned* __restrict__ thresh,
                                                 const unsigned* __restrict__ tieKeep,
                                                 const unsigned* __restrict__ offsets,
                                                 unsigned* __restrict__ terms,
                                                 float* __restrict__ weights) {
    __shared__ unsigned warpTies[32];
    __shared__ unsigned warpKept[32];
    const int b = blockIdx.x;
    if (b >= B) {
        return;
    }
    const float* row = pooled + (size_t)b * V;
    const unsigned base = offsets[b];
    if (offsets[b + 1] == base) {
        return;
    }
    const unsigned tau = thresh[b];
    const unsigned tk = tieKeep[b];
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = blockDim.x >> 5;
    const unsigned below = (1u << lane) - 1u;  // lanes before this one
    unsigned tiesBefore = 0, keptBefore = 0;    // same in every thread
    for (int c = 0; c < V; c += blockDim.x) {
        const int v = c + threadIdx.x;
        const bool in = v < V;
        const float w = in ? row[v] : 0.0f;
        const unsigned bits = __float_as_uint(w);
        const bool el = in && splash_eligible(w, minWeight);
        const bool tie = el && bits == tau;

        const unsigned tieMask = __ballot_sync(SPLASH_FULL_MASK, tie);
        if (lane == 0) {
            warpTies[warp] = __popc(tieMask);
        }
        __syncthreads();
        unsigned tieOff = 0, ties = 0;
        for (int i = 0; i < warps; i++) {
            const unsigned x = warpTies[i];
            tieOff += i < warp ? x : 0u;
            ties += x;
        }
        const unsigned tieRank = tiesBefore + tieOff + __popc(tieMask & below);
        const bool keep = el && (bits > tau || (tie && tieRank < tk));

        const unsigned keepMask = __ballot_sync(SPLASH_FULL_MASK, keep);
        if (lane == 0) {
            warpKept[warp] = __popc(keepMask);
        }
        __syncthreads();
        unsigned keepOff = 0, kept = 0;
        for (int i = 0; i < warps; i++) {
            const unsigned x = warpKept[i];
            keepOff += i < warp ? x : 0u;
            kept += x;
        }
        if (keep) {
            const unsigned pos = base + keptBefore + keepOff + __popc(keepMask & below);
            terms[pos] = (unsigned)v;
            weights[pos] = w;
        }
        tiesBefore += ties;
        keptBefore += kept;
        __syncthreads();  // warpTies and warpKept are rewritten by the next chunk
    }
}
