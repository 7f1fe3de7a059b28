//go:build cgo

package sys

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// Hand-declared cuBLASLt entry points, as cublasLt.h (CUDA 11.8 to 13)
// declares them: handles and descriptors are opaque pointers, enums are
// int, statuses are cublasStatus_t.
typedef int sp_lt_result;
typedef struct { uint64_t data[8]; } sp_lt_algo; // cublasLtMatmulAlgo_t
typedef struct {                                   // cublasLtMatmulHeuristicResult_t
	sp_lt_algo algo;
	size_t workspaceSize;
	int state;
	float wavesCount;
	int reserved[4];
} sp_lt_heuristic;

typedef sp_lt_result (*pfn_ltCreate)(void **h);
typedef sp_lt_result (*pfn_ltDestroy)(void *h);
typedef size_t (*pfn_ltGetVersion)(void);
typedef sp_lt_result (*pfn_ltDescCreate)(void **d, int compute, int scaleType);
typedef sp_lt_result (*pfn_ltDescDestroy)(void *d);
typedef sp_lt_result (*pfn_ltDescSet)(void *d, int attr, const void *buf, size_t n);
typedef sp_lt_result (*pfn_ltLayoutCreate)(void **l, int type, uint64_t rows, uint64_t cols, int64_t ld);
typedef sp_lt_result (*pfn_ltLayoutDestroy)(void *l);
typedef sp_lt_result (*pfn_ltPrefCreate)(void **p);
typedef sp_lt_result (*pfn_ltPrefDestroy)(void *p);
typedef sp_lt_result (*pfn_ltPrefSet)(void *p, int attr, const void *buf, size_t n);
typedef sp_lt_result (*pfn_ltHeuristic)(void *h, void *d, void *a, void *b, void *c, void *dd, void *pref,
	int requested, sp_lt_heuristic *results, int *count);
typedef sp_lt_result (*pfn_ltMatmul)(void *h, void *d, const void *alpha, const void *A, void *Ad,
	const void *B, void *Bd, const void *beta, const void *C, void *Cd, void *D, void *Dd,
	const sp_lt_algo *algo, void *ws, size_t wsBytes, void *stream);

typedef struct {
	pfn_ltCreate create;
	pfn_ltDestroy destroy;
	pfn_ltGetVersion getVersion;
	pfn_ltDescCreate descCreate;
	pfn_ltDescDestroy descDestroy;
	pfn_ltDescSet descSet;
	pfn_ltLayoutCreate layoutCreate;
	pfn_ltLayoutDestroy layoutDestroy;
	pfn_ltPrefCreate prefCreate;
	pfn_ltPrefDestroy prefDestroy;
	pfn_ltPrefSet prefSet;
	pfn_ltHeuristic heuristic;
	pfn_ltMatmul matmul;
} sp_lt;

static const char *sp_lt_names[] = {
	"cublasLtCreate", "cublasLtDestroy", "cublasLtGetVersion",
	"cublasLtMatmulDescCreate", "cublasLtMatmulDescDestroy", "cublasLtMatmulDescSetAttribute",
	"cublasLtMatrixLayoutCreate", "cublasLtMatrixLayoutDestroy",
	"cublasLtMatmulPreferenceCreate", "cublasLtMatmulPreferenceDestroy", "cublasLtMatmulPreferenceSetAttribute",
	"cublasLtMatmulAlgoGetHeuristic", "cublasLtMatmul",
};

// sp_lt_resolve fills a table (never freed: the library stays loaded) in
// the order of sp_lt_names, which is sp_lt's; on a missing symbol it
// returns 0 and the name in *missing.
static uintptr_t sp_lt_resolve(uintptr_t lib, const char **missing) {
	size_t n = sizeof sp_lt_names / sizeof sp_lt_names[0];
	void **table = calloc(n, sizeof(void *));
	if (!table) {
		*missing = "(out of host memory)";
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		table[i] = dlsym((void *)lib, sp_lt_names[i]);
		if (!table[i]) {
			*missing = sp_lt_names[i];
			free(table);
			return 0;
		}
	}
	return (uintptr_t)table;
}

#define LT(api) ((const sp_lt *)(api))

static size_t sp_lt_version(uintptr_t lt) { return LT(lt)->getVersion(); }

static int sp_lt_create(uintptr_t lt, uintptr_t *h) {
	void *q = NULL;
	int r = LT(lt)->create(&q);
	*h = (uintptr_t)q;
	return r;
}

static int sp_lt_destroy(uintptr_t lt, uintptr_t h) { return LT(lt)->destroy((void *)h); }

// The enums of cublasLt.h and library_types.h that sp_lt_fp8 uses.
enum {
	SP_R_32F = 0, SP_R_16BF = 14, SP_R_8F_E4M3 = 28, SP_COMPUTE_32F = 68,
	SP_OP_N = 0, SP_OP_T = 1,
	SP_DESC_TRANSA = 3, SP_DESC_TRANSB = 4, SP_DESC_A_SCALE_POINTER = 17, SP_DESC_B_SCALE_POINTER = 18,
	SP_PREF_MAX_WORKSPACE_BYTES = 1,
	SP_STATUS_NOT_SUPPORTED = 15,
};

// sp_lt_fp8 queues D[m×n] (bf16, ldd m) = aScale·bScale·op(A)·B with A
// E4M3 [k×m] (lda k) transposed, B E4M3 [k×n] (ldb k), float32
// accumulation, column-major: the TN layout of cuBLASLt's FP8 kernels. The
// scales are device pointers to one float each. algo is in/out: when
// *have is 0 the heuristic's first algorithm is written to it (and *have
// set to 1); with no algorithm it returns CUBLAS_STATUS_NOT_SUPPORTED and
// *have = -1. The descriptors live for the call only.
static int sp_lt_fp8(uintptr_t lt, uintptr_t h, uintptr_t stream, uint64_t m, uint64_t n, uint64_t k,
		uint64_t A, uint64_t aScale, uint64_t B, uint64_t bScale, uint64_t D,
		uint64_t ws, size_t wsBytes, sp_lt_algo *algo, int *have) {
	void *desc = NULL, *la = NULL, *lb = NULL, *ld = NULL, *pref = NULL;
	int r = LT(lt)->descCreate(&desc, SP_COMPUTE_32F, SP_R_32F);
	int opT = SP_OP_T, opN = SP_OP_N;
	void *pa = (void *)(uintptr_t)aScale, *pb = (void *)(uintptr_t)bScale;
	if (r == 0) r = LT(lt)->descSet(desc, SP_DESC_TRANSA, &opT, sizeof opT);
	if (r == 0) r = LT(lt)->descSet(desc, SP_DESC_TRANSB, &opN, sizeof opN);
	if (r == 0) r = LT(lt)->descSet(desc, SP_DESC_A_SCALE_POINTER, &pa, sizeof pa);
	if (r == 0) r = LT(lt)->descSet(desc, SP_DESC_B_SCALE_POINTER, &pb, sizeof pb);
	if (r == 0) r = LT(lt)->layoutCreate(&la, SP_R_8F_E4M3, k, m, (int64_t)k);
	if (r == 0) r = LT(lt)->layoutCreate(&lb, SP_R_8F_E4M3, k, n, (int64_t)k);
	if (r == 0) r = LT(lt)->layoutCreate(&ld, SP_R_16BF, m, n, (int64_t)m);
	if (r == 0 && *have == 0) {
		uint64_t bytes = wsBytes;
		sp_lt_heuristic res;
		int count = 0;
		memset(&res, 0, sizeof res);
		r = LT(lt)->prefCreate(&pref);
		if (r == 0) r = LT(lt)->prefSet(pref, SP_PREF_MAX_WORKSPACE_BYTES, &bytes, sizeof bytes);
		if (r == 0) r = LT(lt)->heuristic((void *)h, desc, la, lb, ld, ld, pref, 1, &res, &count);
		if (r == 0 && count == 0) {
			r = SP_STATUS_NOT_SUPPORTED;
			*have = -1;
		}
		if (r == 0) {
			*algo = res.algo;
			*have = 1;
		}
	}
	if (r == 0) {
		float alpha = 1, beta = 0;
		void *d = (void *)(uintptr_t)D;
		r = LT(lt)->matmul((void *)h, desc, &alpha, (const void *)(uintptr_t)A, la, (const void *)(uintptr_t)B, lb,
			&beta, d, ld, d, ld, algo, (void *)(uintptr_t)ws, wsBytes, (void *)stream);
	}
	if (pref) LT(lt)->prefDestroy(pref);
	if (ld) LT(lt)->layoutDestroy(ld);
	if (lb) LT(lt)->layoutDestroy(lb);
	if (la) LT(lt)->layoutDestroy(la);
	if (desc) LT(lt)->descDestroy(desc);
	return r;
}
*/
import "C"

import "unsafe"

func resolveCUBLASLt(lib uintptr) (api uintptr, missing string) {
	var m *C.char
	t := C.sp_lt_resolve(C.uintptr_t(lib), &m)
	if t == 0 {
		return 0, C.GoString(m)
	}
	return uintptr(t), ""
}

func cublasLtVersion(lt uintptr) int { return int(C.sp_lt_version(C.uintptr_t(lt))) }

func cublasLtCreate(lt uintptr) (uintptr, int) {
	var h C.uintptr_t
	rc := C.sp_lt_create(C.uintptr_t(lt), &h)
	return uintptr(h), int(rc)
}

func cublasLtDestroy(lt, h uintptr) int { return int(C.sp_lt_destroy(C.uintptr_t(lt), C.uintptr_t(h))) }

// ltAlgo is a cublasLtMatmulAlgo_t (8 uint64 words, opaque).
type ltAlgo [8]uint64

func cublasLtFP8(lt, h, stream uintptr, m, n, k int, a, aScale, b, bScale, d, ws DevicePtr, wsBytes int, algo *ltAlgo, have *int) int {
	ch := C.int(*have)
	rc := C.sp_lt_fp8(C.uintptr_t(lt), C.uintptr_t(h), C.uintptr_t(stream), C.uint64_t(m), C.uint64_t(n), C.uint64_t(k),
		C.uint64_t(a), C.uint64_t(aScale), C.uint64_t(b), C.uint64_t(bScale), C.uint64_t(d),
		C.uint64_t(ws), C.size_t(wsBytes), (*C.sp_lt_algo)(unsafe.Pointer(algo)), &ch)
	*have = int(ch)
	return int(rc)
}
