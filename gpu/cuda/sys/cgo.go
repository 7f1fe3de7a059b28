//go:build cgo

package sys

/*
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Hand-declared CUDA driver and cuBLAS types: opaque handles and the
// prototypes of the entry points, as cuda.h and cublas_api.h declare them
// (stable from CUDA 11 to 13). Enums travel as int.
typedef int sp_result;                 // CUresult, cublasStatus_t
typedef int sp_device;                 // CUdevice
typedef unsigned long long sp_dptr;    // CUdeviceptr
typedef struct CUctx_st *sp_context;   // CUcontext
typedef struct CUstream_st *sp_stream; // CUstream, cudaStream_t
typedef struct CUevent_st *sp_event;   // CUevent
typedef struct CUmod_st *sp_module;    // CUmodule
typedef struct CUfunc_st *sp_function; // CUfunction
typedef struct cublasContext *sp_blas; // cublasHandle_t

typedef sp_result (*pfn_cuInit)(unsigned int flags);
typedef sp_result (*pfn_cuDriverGetVersion)(int *version);
typedef sp_result (*pfn_cuDeviceGetCount)(int *count);
typedef sp_result (*pfn_cuDeviceGet)(sp_device *dev, int ordinal);
typedef sp_result (*pfn_cuDeviceGetName)(char *name, int len, sp_device dev);
typedef sp_result (*pfn_cuDeviceGetAttribute)(int *value, int attrib, sp_device dev);
typedef sp_result (*pfn_cuDeviceTotalMem)(size_t *bytes, sp_device dev);
typedef sp_result (*pfn_cuDevicePrimaryCtxRetain)(sp_context *ctx, sp_device dev);
typedef sp_result (*pfn_cuDevicePrimaryCtxRelease)(sp_device dev);
typedef sp_result (*pfn_cuCtxSetCurrent)(sp_context ctx);
typedef sp_result (*pfn_cuCtxSynchronize)(void);
typedef sp_result (*pfn_cuMemGetInfo)(size_t *free, size_t *total);
typedef sp_result (*pfn_cuMemAlloc)(sp_dptr *dptr, size_t bytes);
typedef sp_result (*pfn_cuMemFree)(sp_dptr dptr);
typedef sp_result (*pfn_cuMemHostAlloc)(void **pp, size_t bytes, unsigned int flags);
typedef sp_result (*pfn_cuMemFreeHost)(void *p);
typedef sp_result (*pfn_cuMemcpyHtoDAsync)(sp_dptr dst, const void *src, size_t bytes, sp_stream s);
typedef sp_result (*pfn_cuMemcpyDtoHAsync)(void *dst, sp_dptr src, size_t bytes, sp_stream s);
typedef sp_result (*pfn_cuMemcpyHtoD)(sp_dptr dst, const void *src, size_t bytes);
typedef sp_result (*pfn_cuMemcpyDtoH)(void *dst, sp_dptr src, size_t bytes);
typedef sp_result (*pfn_cuMemsetD8Async)(sp_dptr dst, unsigned char v, size_t n, sp_stream s);
typedef sp_result (*pfn_cuMemsetD32Async)(sp_dptr dst, unsigned int v, size_t n, sp_stream s);
typedef sp_result (*pfn_cuStreamCreate)(sp_stream *s, unsigned int flags);
typedef sp_result (*pfn_cuStreamSynchronize)(sp_stream s);
typedef sp_result (*pfn_cuStreamDestroy)(sp_stream s);
typedef sp_result (*pfn_cuEventCreate)(sp_event *e, unsigned int flags);
typedef sp_result (*pfn_cuEventRecord)(sp_event e, sp_stream s);
typedef sp_result (*pfn_cuEventSynchronize)(sp_event e);
typedef sp_result (*pfn_cuEventElapsedTime)(float *ms, sp_event start, sp_event end);
typedef sp_result (*pfn_cuEventDestroy)(sp_event e);
typedef sp_result (*pfn_cuModuleLoadDataEx)(sp_module *m, const void *image, unsigned int n, int *options, void **values);
typedef sp_result (*pfn_cuModuleUnload)(sp_module m);
typedef sp_result (*pfn_cuModuleGetFunction)(sp_function *f, sp_module m, const char *name);
typedef sp_result (*pfn_cuLaunchKernel)(sp_function f, unsigned int gx, unsigned int gy, unsigned int gz,
	unsigned int bx, unsigned int by, unsigned int bz, unsigned int shared, sp_stream s, void **params, void **extra);
typedef sp_result (*pfn_cuGetErrorString)(sp_result r, const char **s);
typedef sp_result (*pfn_cuGetErrorName)(sp_result r, const char **s);

typedef sp_result (*pfn_cublasCreate)(sp_blas *h);
typedef sp_result (*pfn_cublasDestroy)(sp_blas h);
typedef sp_result (*pfn_cublasGetVersion)(sp_blas h, int *version);
typedef sp_result (*pfn_cublasGetProperty)(int type, int *value);
typedef sp_result (*pfn_cublasSetStream)(sp_blas h, sp_stream s);
typedef sp_result (*pfn_cublasSetMathMode)(sp_blas h, int mode);
typedef sp_result (*pfn_cublasSetWorkspace)(sp_blas h, void *ws, size_t bytes);
typedef sp_result (*pfn_cublasGemmEx)(sp_blas h, int transa, int transb, int m, int n, int k,
	const void *alpha, const void *A, int Atype, int lda, const void *B, int Btype, int ldb,
	const void *beta, void *C, int Ctype, int ldc, int computeType, int algo);
typedef sp_result (*pfn_cublasGemmStridedBatchedEx)(sp_blas h, int transa, int transb, int m, int n, int k,
	const void *alpha, const void *A, int Atype, int lda, long long strideA,
	const void *B, int Btype, int ldb, long long strideB,
	const void *beta, void *C, int Ctype, int ldc, long long strideC,
	int batch, int computeType, int algo);

typedef struct {
	pfn_cuInit cuInit;
	pfn_cuDriverGetVersion cuDriverGetVersion;
	pfn_cuDeviceGetCount cuDeviceGetCount;
	pfn_cuDeviceGet cuDeviceGet;
	pfn_cuDeviceGetName cuDeviceGetName;
	pfn_cuDeviceGetAttribute cuDeviceGetAttribute;
	pfn_cuDeviceTotalMem cuDeviceTotalMem;
	pfn_cuDevicePrimaryCtxRetain cuDevicePrimaryCtxRetain;
	pfn_cuDevicePrimaryCtxRelease cuDevicePrimaryCtxRelease;
	pfn_cuCtxSetCurrent cuCtxSetCurrent;
	pfn_cuCtxSynchronize cuCtxSynchronize;
	pfn_cuMemGetInfo cuMemGetInfo;
	pfn_cuMemAlloc cuMemAlloc;
	pfn_cuMemFree cuMemFree;
	pfn_cuMemHostAlloc cuMemHostAlloc;
	pfn_cuMemFreeHost cuMemFreeHost;
	pfn_cuMemcpyHtoDAsync cuMemcpyHtoDAsync;
	pfn_cuMemcpyDtoHAsync cuMemcpyDtoHAsync;
	pfn_cuMemcpyHtoD cuMemcpyHtoD;
	pfn_cuMemcpyDtoH cuMemcpyDtoH;
	pfn_cuMemsetD8Async cuMemsetD8Async;
	pfn_cuMemsetD32Async cuMemsetD32Async;
	pfn_cuStreamCreate cuStreamCreate;
	pfn_cuStreamSynchronize cuStreamSynchronize;
	pfn_cuStreamDestroy cuStreamDestroy;
	pfn_cuEventCreate cuEventCreate;
	pfn_cuEventRecord cuEventRecord;
	pfn_cuEventSynchronize cuEventSynchronize;
	pfn_cuEventElapsedTime cuEventElapsedTime;
	pfn_cuEventDestroy cuEventDestroy;
	pfn_cuModuleLoadDataEx cuModuleLoadDataEx;
	pfn_cuModuleUnload cuModuleUnload;
	pfn_cuModuleGetFunction cuModuleGetFunction;
	pfn_cuLaunchKernel cuLaunchKernel;
	pfn_cuGetErrorString cuGetErrorString;
	pfn_cuGetErrorName cuGetErrorName;
} sp_cu;

typedef struct {
	pfn_cublasCreate create;
	pfn_cublasDestroy destroy;
	pfn_cublasGetVersion getVersion;
	pfn_cublasGetProperty getProperty; // NULL where absent
	pfn_cublasSetStream setStream;
	pfn_cublasSetMathMode setMathMode;
	pfn_cublasSetWorkspace setWorkspace; // NULL where absent (before cuBLAS 11.2)
	pfn_cublasGemmEx gemmEx;
	pfn_cublasGemmStridedBatchedEx gemmStridedBatchedEx;
} sp_cublas;

typedef struct {
	const char *name, *alt; // alt: a fallback name, or NULL
	size_t off;
	int optional;
} sp_sym;

static const sp_sym sp_cu_syms[] = {
	{"cuInit", NULL, offsetof(sp_cu, cuInit), 0},
	{"cuDriverGetVersion", NULL, offsetof(sp_cu, cuDriverGetVersion), 0},
	{"cuDeviceGetCount", NULL, offsetof(sp_cu, cuDeviceGetCount), 0},
	{"cuDeviceGet", NULL, offsetof(sp_cu, cuDeviceGet), 0},
	{"cuDeviceGetName", NULL, offsetof(sp_cu, cuDeviceGetName), 0},
	{"cuDeviceGetAttribute", NULL, offsetof(sp_cu, cuDeviceGetAttribute), 0},
	{"cuDeviceTotalMem_v2", NULL, offsetof(sp_cu, cuDeviceTotalMem), 0},
	{"cuDevicePrimaryCtxRetain", NULL, offsetof(sp_cu, cuDevicePrimaryCtxRetain), 0},
	{"cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease", offsetof(sp_cu, cuDevicePrimaryCtxRelease), 0},
	{"cuCtxSetCurrent", NULL, offsetof(sp_cu, cuCtxSetCurrent), 0},
	{"cuCtxSynchronize", NULL, offsetof(sp_cu, cuCtxSynchronize), 0},
	{"cuMemGetInfo_v2", NULL, offsetof(sp_cu, cuMemGetInfo), 0},
	{"cuMemAlloc_v2", NULL, offsetof(sp_cu, cuMemAlloc), 0},
	{"cuMemFree_v2", NULL, offsetof(sp_cu, cuMemFree), 0},
	{"cuMemHostAlloc", NULL, offsetof(sp_cu, cuMemHostAlloc), 0},
	{"cuMemFreeHost", NULL, offsetof(sp_cu, cuMemFreeHost), 0},
	{"cuMemcpyHtoDAsync_v2", NULL, offsetof(sp_cu, cuMemcpyHtoDAsync), 0},
	{"cuMemcpyDtoHAsync_v2", NULL, offsetof(sp_cu, cuMemcpyDtoHAsync), 0},
	{"cuMemcpyHtoD_v2", NULL, offsetof(sp_cu, cuMemcpyHtoD), 0},
	{"cuMemcpyDtoH_v2", NULL, offsetof(sp_cu, cuMemcpyDtoH), 0},
	{"cuMemsetD8Async", NULL, offsetof(sp_cu, cuMemsetD8Async), 0},
	{"cuMemsetD32Async", NULL, offsetof(sp_cu, cuMemsetD32Async), 0},
	{"cuStreamCreate", NULL, offsetof(sp_cu, cuStreamCreate), 0},
	{"cuStreamSynchronize", NULL, offsetof(sp_cu, cuStreamSynchronize), 0},
	{"cuStreamDestroy_v2", NULL, offsetof(sp_cu, cuStreamDestroy), 0},
	{"cuEventCreate", NULL, offsetof(sp_cu, cuEventCreate), 0},
	{"cuEventRecord", NULL, offsetof(sp_cu, cuEventRecord), 0},
	{"cuEventSynchronize", NULL, offsetof(sp_cu, cuEventSynchronize), 0},
	{"cuEventElapsedTime", NULL, offsetof(sp_cu, cuEventElapsedTime), 0},
	{"cuEventDestroy_v2", NULL, offsetof(sp_cu, cuEventDestroy), 0},
	{"cuModuleLoadDataEx", NULL, offsetof(sp_cu, cuModuleLoadDataEx), 0},
	{"cuModuleUnload", NULL, offsetof(sp_cu, cuModuleUnload), 0},
	{"cuModuleGetFunction", NULL, offsetof(sp_cu, cuModuleGetFunction), 0},
	{"cuLaunchKernel", NULL, offsetof(sp_cu, cuLaunchKernel), 0},
	{"cuGetErrorString", NULL, offsetof(sp_cu, cuGetErrorString), 0},
	{"cuGetErrorName", NULL, offsetof(sp_cu, cuGetErrorName), 0},
};

static const sp_sym sp_cublas_syms[] = {
	{"cublasCreate_v2", NULL, offsetof(sp_cublas, create), 0},
	{"cublasDestroy_v2", NULL, offsetof(sp_cublas, destroy), 0},
	{"cublasGetVersion_v2", NULL, offsetof(sp_cublas, getVersion), 0},
	{"cublasGetProperty", NULL, offsetof(sp_cublas, getProperty), 1},
	{"cublasSetStream_v2", NULL, offsetof(sp_cublas, setStream), 0},
	{"cublasSetMathMode", NULL, offsetof(sp_cublas, setMathMode), 0},
	{"cublasSetWorkspace_v2", NULL, offsetof(sp_cublas, setWorkspace), 1},
	{"cublasGemmEx", NULL, offsetof(sp_cublas, gemmEx), 0},
	{"cublasGemmStridedBatchedEx", NULL, offsetof(sp_cublas, gemmStridedBatchedEx), 0},
};

// sp_open dlopens name; on failure it returns 0 and copies dlerror's text
// into err (dlerror's buffer belongs to this thread and is freed by its
// next dl call, which another goroutine may make).
static uintptr_t sp_open(const char *name, char *err, size_t errlen) {
	void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(err, errlen, "%s", e ? e : "");
	}
	return (uintptr_t)h;
}

// sp_resolve fills a table of size bytes (calloc'd, never freed: the
// library stays loaded) from lib; on a missing required symbol it returns
// 0 and the name in *missing.
static uintptr_t sp_resolve(uintptr_t lib, const sp_sym *syms, size_t nsyms, size_t size, const char **missing) {
	char *table = calloc(1, size);
	if (!table) {
		*missing = "(out of host memory)";
		return 0;
	}
	for (size_t i = 0; i < nsyms; i++) {
		void *p = dlsym((void *)lib, syms[i].name);
		if (!p && syms[i].alt) {
			p = dlsym((void *)lib, syms[i].alt);
		}
		if (!p && !syms[i].optional) {
			*missing = syms[i].name;
			free(table);
			return 0;
		}
		memcpy(table + syms[i].off, &p, sizeof p);
	}
	return (uintptr_t)table;
}

static uintptr_t sp_cu_resolve(uintptr_t lib, const char **missing) {
	return sp_resolve(lib, sp_cu_syms, sizeof sp_cu_syms / sizeof sp_cu_syms[0], sizeof(sp_cu), missing);
}

static uintptr_t sp_cublas_resolve(uintptr_t lib, const char **missing) {
	return sp_resolve(lib, sp_cublas_syms, sizeof sp_cublas_syms / sizeof sp_cublas_syms[0], sizeof(sp_cublas), missing);
}

// sp_path is the file a table's first entry point was loaded from.
static const char *sp_path(uintptr_t table) {
	void *fn;
	memcpy(&fn, (void *)table, sizeof fn);
	Dl_info info;
	if (!dladdr(fn, &info) || !info.dli_fname) {
		return "";
	}
	return info.dli_fname;
}

#define CU(api) ((const sp_cu *)(api))
#define BL(api) ((const sp_cublas *)(api))

// SP_BIND makes ctx current on this thread before a call that needs it, in
// the same C call, so the Go side need not lock the OS thread. A failure
// returns the negated CUresult of cuCtxSetCurrent.
#define SP_BIND(api, ctx) do { \
	if (ctx) { \
		sp_result r_ = CU(api)->cuCtxSetCurrent((sp_context)(ctx)); \
		if (r_ != 0) return -r_; \
	} \
} while (0)

static void sp_error_text(uintptr_t api, int r, const char **name, const char **text) {
	if (CU(api)->cuGetErrorName((sp_result)r, name) != 0) *name = NULL;
	if (CU(api)->cuGetErrorString((sp_result)r, text) != 0) *text = NULL;
}

static int sp_cuInit(uintptr_t api) { return CU(api)->cuInit(0); }
static int sp_cuDriverGetVersion(uintptr_t api, int *v) { return CU(api)->cuDriverGetVersion(v); }
static int sp_cuDeviceGetCount(uintptr_t api, int *n) { return CU(api)->cuDeviceGetCount(n); }
static int sp_cuDeviceGet(uintptr_t api, int ordinal, int *dev) { return CU(api)->cuDeviceGet(dev, ordinal); }
static int sp_cuDeviceGetName(uintptr_t api, int dev, char *name, int len) { return CU(api)->cuDeviceGetName(name, len, dev); }
static int sp_cuDeviceGetAttribute(uintptr_t api, int dev, int attr, int *v) { return CU(api)->cuDeviceGetAttribute(v, attr, dev); }
static int sp_cuDeviceTotalMem(uintptr_t api, int dev, size_t *bytes) { return CU(api)->cuDeviceTotalMem(bytes, dev); }
static int sp_cuDevicePrimaryCtxRetain(uintptr_t api, int dev, uintptr_t *ctx) {
	sp_context c = NULL;
	int r = CU(api)->cuDevicePrimaryCtxRetain(&c, dev);
	*ctx = (uintptr_t)c;
	return r;
}
static int sp_cuDevicePrimaryCtxRelease(uintptr_t api, int dev) { return CU(api)->cuDevicePrimaryCtxRelease(dev); }
static int sp_cuCtxSetCurrent(uintptr_t api, uintptr_t ctx) { return CU(api)->cuCtxSetCurrent((sp_context)ctx); }
static int sp_cuCtxSynchronize(uintptr_t api, uintptr_t ctx) { SP_BIND(api, ctx); return CU(api)->cuCtxSynchronize(); }
static int sp_cuMemGetInfo(uintptr_t api, uintptr_t ctx, size_t *free, size_t *total) {
	SP_BIND(api, ctx);
	return CU(api)->cuMemGetInfo(free, total);
}
static int sp_cuMemAlloc(uintptr_t api, uintptr_t ctx, size_t bytes, sp_dptr *p) {
	SP_BIND(api, ctx);
	return CU(api)->cuMemAlloc(p, bytes);
}
static int sp_cuMemFree(uintptr_t api, uintptr_t ctx, sp_dptr p) { SP_BIND(api, ctx); return CU(api)->cuMemFree(p); }
static void *sp_cuMemHostAlloc(uintptr_t api, uintptr_t ctx, size_t bytes, unsigned int flags, int *rc) {
	sp_result r = 0;
	if (ctx) {
		r = CU(api)->cuCtxSetCurrent((sp_context)ctx);
		if (r != 0) {
			*rc = -r;
			return NULL;
		}
	}
	void *q = NULL;
	*rc = CU(api)->cuMemHostAlloc(&q, bytes, flags);
	return q;
}
static int sp_cuMemFreeHost(uintptr_t api, uintptr_t ctx, void *p) { SP_BIND(api, ctx); return CU(api)->cuMemFreeHost(p); }
static int sp_cuMemcpyHtoD(uintptr_t api, uintptr_t ctx, sp_dptr dst, const void *src, size_t n) {
	SP_BIND(api, ctx);
	return CU(api)->cuMemcpyHtoD(dst, src, n);
}
static int sp_cuMemcpyDtoH(uintptr_t api, uintptr_t ctx, void *dst, sp_dptr src, size_t n) {
	SP_BIND(api, ctx);
	return CU(api)->cuMemcpyDtoH(dst, src, n);
}
static int sp_cuMemcpyHtoDAsync(uintptr_t api, uintptr_t ctx, sp_dptr dst, const void *src, size_t n, uintptr_t s) {
	SP_BIND(api, ctx);
	return CU(api)->cuMemcpyHtoDAsync(dst, src, n, (sp_stream)s);
}
static int sp_cuMemcpyDtoHAsync(uintptr_t api, uintptr_t ctx, void *dst, sp_dptr src, size_t n, uintptr_t s) {
	SP_BIND(api, ctx);
	return CU(api)->cuMemcpyDtoHAsync(dst, src, n, (sp_stream)s);
}
static int sp_cuMemsetD8Async(uintptr_t api, uintptr_t ctx, sp_dptr dst, unsigned char v, size_t n, uintptr_t s) {
	SP_BIND(api, ctx);
	return CU(api)->cuMemsetD8Async(dst, v, n, (sp_stream)s);
}
static int sp_cuMemsetD32Async(uintptr_t api, uintptr_t ctx, sp_dptr dst, unsigned int v, size_t n, uintptr_t s) {
	SP_BIND(api, ctx);
	return CU(api)->cuMemsetD32Async(dst, v, n, (sp_stream)s);
}
static int sp_cuStreamCreate(uintptr_t api, uintptr_t ctx, unsigned int flags, uintptr_t *s) {
	SP_BIND(api, ctx);
	sp_stream q = NULL;
	int r = CU(api)->cuStreamCreate(&q, flags);
	*s = (uintptr_t)q;
	return r;
}
static int sp_cuStreamSynchronize(uintptr_t api, uintptr_t ctx, uintptr_t s) {
	SP_BIND(api, ctx);
	return CU(api)->cuStreamSynchronize((sp_stream)s);
}
static int sp_cuStreamDestroy(uintptr_t api, uintptr_t ctx, uintptr_t s) {
	SP_BIND(api, ctx);
	return CU(api)->cuStreamDestroy((sp_stream)s);
}
static int sp_cuEventCreate(uintptr_t api, uintptr_t ctx, unsigned int flags, uintptr_t *e) {
	SP_BIND(api, ctx);
	sp_event q = NULL;
	int r = CU(api)->cuEventCreate(&q, flags);
	*e = (uintptr_t)q;
	return r;
}
static int sp_cuEventRecord(uintptr_t api, uintptr_t ctx, uintptr_t e, uintptr_t s) {
	SP_BIND(api, ctx);
	return CU(api)->cuEventRecord((sp_event)e, (sp_stream)s);
}
static int sp_cuEventSynchronize(uintptr_t api, uintptr_t ctx, uintptr_t e) {
	SP_BIND(api, ctx);
	return CU(api)->cuEventSynchronize((sp_event)e);
}
static int sp_cuEventElapsedTime(uintptr_t api, uintptr_t ctx, uintptr_t start, uintptr_t end, float *ms) {
	SP_BIND(api, ctx);
	return CU(api)->cuEventElapsedTime(ms, (sp_event)start, (sp_event)end);
}
static int sp_cuEventDestroy(uintptr_t api, uintptr_t ctx, uintptr_t e) {
	SP_BIND(api, ctx);
	return CU(api)->cuEventDestroy((sp_event)e);
}

// sp_cuModuleLoadDataEx JIT-loads a NUL-terminated PTX image with an error
// log buffer (log, logSize bytes; C memory) that the driver fills when the
// PTX does not compile.
static int sp_cuModuleLoadDataEx(uintptr_t api, uintptr_t ctx, const char *image, char *log, size_t logSize, uintptr_t *m) {
	SP_BIND(api, ctx);
	int options[2] = {5, 6}; // CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES
	void *values[2] = {log, (void *)(uintptr_t)logSize};
	sp_module q = NULL;
	int r = CU(api)->cuModuleLoadDataEx(&q, image, 2, options, values);
	*m = (uintptr_t)q;
	return r;
}
static int sp_cuModuleUnload(uintptr_t api, uintptr_t ctx, uintptr_t m) {
	SP_BIND(api, ctx);
	return CU(api)->cuModuleUnload((sp_module)m);
}
static int sp_cuModuleGetFunction(uintptr_t api, uintptr_t ctx, uintptr_t m, const char *name, uintptr_t *f) {
	SP_BIND(api, ctx);
	sp_function q = NULL;
	int r = CU(api)->cuModuleGetFunction(&q, (sp_module)m, name);
	*f = (uintptr_t)q;
	return r;
}

// sp_cuLaunchKernel builds the kernelParams array on the C stack: entry i
// points at blob + offsets[i]. The driver copies the parameters before it
// returns, so blob need only live for the call.
static int sp_cuLaunchKernel(uintptr_t api, uintptr_t ctx, uintptr_t f, const unsigned int *dims, unsigned int shared,
		uintptr_t s, const char *blob, const uint64_t *offsets, int n) {
	SP_BIND(api, ctx);
	void *params[256];
	if (n < 0 || n > 256) return 1; // CUDA_ERROR_INVALID_VALUE
	for (int i = 0; i < n; i++) {
		params[i] = (void *)(blob + offsets[i]);
	}
	return CU(api)->cuLaunchKernel((sp_function)f, dims[0], dims[1], dims[2], dims[3], dims[4], dims[5],
		shared, (sp_stream)s, n > 0 ? params : NULL, NULL);
}

// sp_cublasGetVersion asks cublasGetVersion_v2, which ignores its handle,
// and else cublasGetProperty (MAJOR_VERSION 0, MINOR_VERSION 1,
// PATCH_LEVEL 2), which takes none.
static int sp_cublasGetVersion(uintptr_t bl, int *v) {
	int r = BL(bl)->getVersion(NULL, v);
	if (r == 0 || !BL(bl)->getProperty) return r;
	int p[3];
	for (int i = 0; i < 3; i++) {
		r = BL(bl)->getProperty(i, &p[i]);
		if (r != 0) return r;
	}
	*v = p[0] * 10000 + p[1] * 100 + p[2];
	return 0;
}
static int sp_cublasCreate(uintptr_t api, uintptr_t ctx, uintptr_t bl, uintptr_t *h) {
	SP_BIND(api, ctx);
	sp_blas q = NULL;
	int r = BL(bl)->create(&q);
	*h = (uintptr_t)q;
	return r;
}
static int sp_cublasDestroy(uintptr_t api, uintptr_t ctx, uintptr_t bl, uintptr_t h) {
	SP_BIND(api, ctx);
	return BL(bl)->destroy((sp_blas)h);
}
static int sp_cublasSetStream(uintptr_t api, uintptr_t ctx, uintptr_t bl, uintptr_t h, uintptr_t s) {
	SP_BIND(api, ctx);
	return BL(bl)->setStream((sp_blas)h, (sp_stream)s);
}
static int sp_cublasSetMathMode(uintptr_t api, uintptr_t ctx, uintptr_t bl, uintptr_t h, int mode) {
	SP_BIND(api, ctx);
	return BL(bl)->setMathMode((sp_blas)h, mode);
}
static int sp_cublasHasWorkspace(uintptr_t bl) { return BL(bl)->setWorkspace != NULL; }
static int sp_cublasSetWorkspace(uintptr_t api, uintptr_t ctx, uintptr_t bl, uintptr_t h, sp_dptr ws, size_t bytes) {
	SP_BIND(api, ctx);
	return BL(bl)->setWorkspace((sp_blas)h, (void *)(uintptr_t)ws, bytes);
}

// sp_gemm is cublasGemmEx, or cublasGemmStridedBatchedEx when batch > 0,
// with float32 host scalars. dims: m, n, k, lda, ldb, ldc; types: A, B, C.
static int sp_gemm(uintptr_t api, uintptr_t ctx, uintptr_t bl, uintptr_t h, int transa, int transb, const int *dims,
		float alpha, sp_dptr A, sp_dptr B, float beta, sp_dptr C, const int *types,
		const long long *strides, int batch, int compute, int algo) {
	SP_BIND(api, ctx);
	if (batch == 0) {
		return BL(bl)->gemmEx((sp_blas)h, transa, transb, dims[0], dims[1], dims[2],
			&alpha, (const void *)(uintptr_t)A, types[0], dims[3],
			(const void *)(uintptr_t)B, types[1], dims[4],
			&beta, (void *)(uintptr_t)C, types[2], dims[5], compute, algo);
	}
	return BL(bl)->gemmStridedBatchedEx((sp_blas)h, transa, transb, dims[0], dims[1], dims[2],
		&alpha, (const void *)(uintptr_t)A, types[0], dims[3], strides[0],
		(const void *)(uintptr_t)B, types[1], dims[4], strides[1],
		&beta, (void *)(uintptr_t)C, types[2], dims[5], strides[2], batch, compute, algo);
}
*/
import "C"

import "unsafe"

// The raw layer: one Go function per C trampoline, handles as uintptr (C
// pointers, never Go ones), results as int (negative: cuCtxSetCurrent
// failed before the call; see SP_BIND). api.go builds the package's API on
// it; nocgo.go stands in for it without cgo.

const haveCgo = true

func dlOpen(name string) (lib uintptr, dlerr string) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var e [1024]C.char
	h := C.sp_open(cname, &e[0], C.size_t(len(e)))
	if h == 0 {
		return 0, C.GoString(&e[0])
	}
	return uintptr(h), ""
}

func resolveDriver(lib uintptr) (api uintptr, missing string) {
	var m *C.char
	t := C.sp_cu_resolve(C.uintptr_t(lib), &m)
	if t == 0 {
		return 0, C.GoString(m)
	}
	return uintptr(t), ""
}

func resolveCUBLAS(lib uintptr) (api uintptr, missing string) {
	var m *C.char
	t := C.sp_cublas_resolve(C.uintptr_t(lib), &m)
	if t == 0 {
		return 0, C.GoString(m)
	}
	return uintptr(t), ""
}

func tablePath(api uintptr) string { return C.GoString(C.sp_path(C.uintptr_t(api))) }

func cuErrorText(api uintptr, rc int) (name, text string) {
	var n, t *C.char
	C.sp_error_text(C.uintptr_t(api), C.int(rc), &n, &t)
	return C.GoString(n), C.GoString(t) // "" for NULL
}

func cuInit(api uintptr) int { return int(C.sp_cuInit(C.uintptr_t(api))) }

func cuDriverGetVersion(api uintptr) (int, int) {
	var v C.int
	rc := C.sp_cuDriverGetVersion(C.uintptr_t(api), &v)
	return int(v), int(rc)
}

func cuDeviceGetCount(api uintptr) (int, int) {
	var n C.int
	rc := C.sp_cuDeviceGetCount(C.uintptr_t(api), &n)
	return int(n), int(rc)
}

func cuDeviceGet(api uintptr, ordinal int) (int32, int) {
	var d C.int
	rc := C.sp_cuDeviceGet(C.uintptr_t(api), C.int(ordinal), &d)
	return int32(d), int(rc)
}

func cuDeviceGetName(api uintptr, dev int32) (string, int) {
	var buf [256]C.char
	rc := C.sp_cuDeviceGetName(C.uintptr_t(api), C.int(dev), &buf[0], C.int(len(buf)-1))
	if rc != 0 {
		return "", int(rc)
	}
	return C.GoString(&buf[0]), 0
}

func cuDeviceGetAttribute(api uintptr, dev int32, attr int) (int, int) {
	var v C.int
	rc := C.sp_cuDeviceGetAttribute(C.uintptr_t(api), C.int(dev), C.int(attr), &v)
	return int(v), int(rc)
}

func cuDeviceTotalMem(api uintptr, dev int32) (uint64, int) {
	var n C.size_t
	rc := C.sp_cuDeviceTotalMem(C.uintptr_t(api), C.int(dev), &n)
	return uint64(n), int(rc)
}

func cuDevicePrimaryCtxRetain(api uintptr, dev int32) (uintptr, int) {
	var c C.uintptr_t
	rc := C.sp_cuDevicePrimaryCtxRetain(C.uintptr_t(api), C.int(dev), &c)
	return uintptr(c), int(rc)
}

func cuDevicePrimaryCtxRelease(api uintptr, dev int32) int {
	return int(C.sp_cuDevicePrimaryCtxRelease(C.uintptr_t(api), C.int(dev)))
}

func cuCtxSetCurrent(api, ctx uintptr) int {
	return int(C.sp_cuCtxSetCurrent(C.uintptr_t(api), C.uintptr_t(ctx)))
}

func cuCtxSynchronize(api, ctx uintptr) int {
	return int(C.sp_cuCtxSynchronize(C.uintptr_t(api), C.uintptr_t(ctx)))
}

func cuMemGetInfo(api, ctx uintptr) (free, total uint64, rc int) {
	var f, t C.size_t
	r := C.sp_cuMemGetInfo(C.uintptr_t(api), C.uintptr_t(ctx), &f, &t)
	return uint64(f), uint64(t), int(r)
}

func cuMemAlloc(api, ctx uintptr, bytes int) (DevicePtr, int) {
	var p C.sp_dptr
	rc := C.sp_cuMemAlloc(C.uintptr_t(api), C.uintptr_t(ctx), C.size_t(bytes), &p)
	return DevicePtr(p), int(rc)
}

func cuMemFree(api, ctx uintptr, p DevicePtr) int {
	return int(C.sp_cuMemFree(C.uintptr_t(api), C.uintptr_t(ctx), C.sp_dptr(p)))
}

func cuMemHostAlloc(api, ctx uintptr, bytes int, flags uint32) (unsafe.Pointer, int) {
	var rc C.int
	p := C.sp_cuMemHostAlloc(C.uintptr_t(api), C.uintptr_t(ctx), C.size_t(bytes), C.uint(flags), &rc)
	return p, int(rc)
}

func cuMemFreeHost(api, ctx uintptr, p unsafe.Pointer) int {
	return int(C.sp_cuMemFreeHost(C.uintptr_t(api), C.uintptr_t(ctx), p))
}

func cuMemcpyHtoD(api, ctx uintptr, dst DevicePtr, src unsafe.Pointer, n int) int {
	return int(C.sp_cuMemcpyHtoD(C.uintptr_t(api), C.uintptr_t(ctx), C.sp_dptr(dst), src, C.size_t(n)))
}

func cuMemcpyDtoH(api, ctx uintptr, dst unsafe.Pointer, src DevicePtr, n int) int {
	return int(C.sp_cuMemcpyDtoH(C.uintptr_t(api), C.uintptr_t(ctx), dst, C.sp_dptr(src), C.size_t(n)))
}

func cuMemcpyHtoDAsync(api, ctx uintptr, dst DevicePtr, src unsafe.Pointer, n int, s uintptr) int {
	return int(C.sp_cuMemcpyHtoDAsync(C.uintptr_t(api), C.uintptr_t(ctx), C.sp_dptr(dst), src, C.size_t(n), C.uintptr_t(s)))
}

func cuMemcpyDtoHAsync(api, ctx uintptr, dst unsafe.Pointer, src DevicePtr, n int, s uintptr) int {
	return int(C.sp_cuMemcpyDtoHAsync(C.uintptr_t(api), C.uintptr_t(ctx), dst, C.sp_dptr(src), C.size_t(n), C.uintptr_t(s)))
}

func cuMemsetD8Async(api, ctx uintptr, dst DevicePtr, v byte, n int, s uintptr) int {
	return int(C.sp_cuMemsetD8Async(C.uintptr_t(api), C.uintptr_t(ctx), C.sp_dptr(dst), C.uchar(v), C.size_t(n), C.uintptr_t(s)))
}

func cuMemsetD32Async(api, ctx uintptr, dst DevicePtr, v uint32, n int, s uintptr) int {
	return int(C.sp_cuMemsetD32Async(C.uintptr_t(api), C.uintptr_t(ctx), C.sp_dptr(dst), C.uint(v), C.size_t(n), C.uintptr_t(s)))
}

func cuStreamCreate(api, ctx uintptr, flags uint32) (uintptr, int) {
	var s C.uintptr_t
	rc := C.sp_cuStreamCreate(C.uintptr_t(api), C.uintptr_t(ctx), C.uint(flags), &s)
	return uintptr(s), int(rc)
}

func cuStreamSynchronize(api, ctx, s uintptr) int {
	return int(C.sp_cuStreamSynchronize(C.uintptr_t(api), C.uintptr_t(ctx), C.uintptr_t(s)))
}

func cuStreamDestroy(api, ctx, s uintptr) int {
	return int(C.sp_cuStreamDestroy(C.uintptr_t(api), C.uintptr_t(ctx), C.uintptr_t(s)))
}

func cuEventCreate(api, ctx uintptr, flags uint32) (uintptr, int) {
	var e C.uintptr_t
	rc := C.sp_cuEventCreate(C.uintptr_t(api), C.uintptr_t(ctx), C.uint(flags), &e)
	return uintptr(e), int(rc)
}

func cuEventRecord(api, ctx, e, s uintptr) int {
	return int(C.sp_cuEventRecord(C.uintptr_t(api), C.uintptr_t(ctx), C.uintptr_t(e), C.uintptr_t(s)))
}

func cuEventSynchronize(api, ctx, e uintptr) int {
	return int(C.sp_cuEventSynchronize(C.uintptr_t(api), C.uintptr_t(ctx), C.uintptr_t(e)))
}

func cuEventElapsedTime(api, ctx, start, end uintptr) (float32, int) {
	var ms C.float
	rc := C.sp_cuEventElapsedTime(C.uintptr_t(api), C.uintptr_t(ctx), C.uintptr_t(start), C.uintptr_t(end), &ms)
	return float32(ms), int(rc)
}

func cuEventDestroy(api, ctx, e uintptr) int {
	return int(C.sp_cuEventDestroy(C.uintptr_t(api), C.uintptr_t(ctx), C.uintptr_t(e)))
}

// cuModuleLoadDataEx JIT-loads ptx; log is the JIT compiler's error log
// (empty when it wrote none).
func cuModuleLoadDataEx(api, ctx uintptr, ptx string) (mod uintptr, log string, rc int) {
	image := C.CString(ptx)
	defer C.free(unsafe.Pointer(image))
	buf := (*C.char)(C.calloc(1, jitLogSize+1))
	if buf == nil {
		return 0, "", cudaErrorOutOfMemory
	}
	defer C.free(unsafe.Pointer(buf))
	var m C.uintptr_t
	r := C.sp_cuModuleLoadDataEx(C.uintptr_t(api), C.uintptr_t(ctx), image, buf, jitLogSize, &m)
	return uintptr(m), C.GoString(buf), int(r)
}

func cuModuleUnload(api, ctx, m uintptr) int {
	return int(C.sp_cuModuleUnload(C.uintptr_t(api), C.uintptr_t(ctx), C.uintptr_t(m)))
}

func cuModuleGetFunction(api, ctx, m uintptr, name string) (uintptr, int) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var f C.uintptr_t
	rc := C.sp_cuModuleGetFunction(C.uintptr_t(api), C.uintptr_t(ctx), C.uintptr_t(m), cname, &f)
	return uintptr(f), int(rc)
}

// cuLaunchKernel launches f with the parameters kernelParams laid out.
// blob and offsets are Go memory without Go pointers, read by C only
// during the call (cgo's pointer rules allow that); the void*[] array the
// driver reads is built in C.
func cuLaunchKernel(api, ctx, f uintptr, grid, block [3]uint32, shared uint32, s uintptr, blob []byte, offsets []uint64) int {
	dims := [6]C.uint{C.uint(grid[0]), C.uint(grid[1]), C.uint(grid[2]), C.uint(block[0]), C.uint(block[1]), C.uint(block[2])}
	var offs *C.uint64_t
	if len(offsets) > 0 {
		offs = (*C.uint64_t)(unsafe.Pointer(&offsets[0]))
	}
	return int(C.sp_cuLaunchKernel(C.uintptr_t(api), C.uintptr_t(ctx), C.uintptr_t(f), &dims[0], C.uint(shared),
		C.uintptr_t(s), (*C.char)(unsafe.Pointer(&blob[0])), offs, C.int(len(offsets))))
}

func cublasGetVersion(bl uintptr) (int, int) {
	var v C.int
	rc := C.sp_cublasGetVersion(C.uintptr_t(bl), &v)
	return int(v), int(rc)
}

func cublasCreate(api, ctx, bl uintptr) (uintptr, int) {
	var h C.uintptr_t
	rc := C.sp_cublasCreate(C.uintptr_t(api), C.uintptr_t(ctx), C.uintptr_t(bl), &h)
	return uintptr(h), int(rc)
}

func cublasDestroy(api, ctx, bl, h uintptr) int {
	return int(C.sp_cublasDestroy(C.uintptr_t(api), C.uintptr_t(ctx), C.uintptr_t(bl), C.uintptr_t(h)))
}

func cublasSetStream(api, ctx, bl, h, s uintptr) int {
	return int(C.sp_cublasSetStream(C.uintptr_t(api), C.uintptr_t(ctx), C.uintptr_t(bl), C.uintptr_t(h), C.uintptr_t(s)))
}

func cublasSetMathMode(api, ctx, bl, h uintptr, mode MathMode) int {
	return int(C.sp_cublasSetMathMode(C.uintptr_t(api), C.uintptr_t(ctx), C.uintptr_t(bl), C.uintptr_t(h), C.int(mode)))
}

func cublasHasWorkspace(bl uintptr) bool { return C.sp_cublasHasWorkspace(C.uintptr_t(bl)) != 0 }

func cublasSetWorkspace(api, ctx, bl, h uintptr, ws DevicePtr, bytes int) int {
	return int(C.sp_cublasSetWorkspace(C.uintptr_t(api), C.uintptr_t(ctx), C.uintptr_t(bl), C.uintptr_t(h), C.sp_dptr(ws), C.size_t(bytes)))
}

func cublasGemm(api, ctx, bl, h uintptr, g *gemmArgs) int {
	dims := [6]C.int{C.int(g.m), C.int(g.n), C.int(g.k), C.int(g.lda), C.int(g.ldb), C.int(g.ldc)}
	types := [3]C.int{C.int(g.aType), C.int(g.bType), C.int(g.cType)}
	strides := [3]C.longlong{C.longlong(g.strideA), C.longlong(g.strideB), C.longlong(g.strideC)}
	return int(C.sp_gemm(C.uintptr_t(api), C.uintptr_t(ctx), C.uintptr_t(bl), C.uintptr_t(h),
		C.int(g.transA), C.int(g.transB), &dims[0], C.float(g.alpha), C.sp_dptr(g.a), C.sp_dptr(g.b),
		C.float(g.beta), C.sp_dptr(g.c), &types[0], &strides[0], C.int(g.batch), C.int(g.compute), C.int(gemmDefault)))
}
