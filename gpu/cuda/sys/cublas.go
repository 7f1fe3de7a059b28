package sys

import (
	"fmt"
	"math"
	"os"
	"strings"
)

// CUBLASEnv names the environment variable that, when set, is the one
// cuBLAS library LoadCUBLAS opens (a path or a name for the loader).
const CUBLASEnv = "SPLASH_CUBLAS"

// cublasLibraries are the names LoadCUBLAS tries without $SPLASH_CUBLAS,
// newest first (cuBLAS 11 introduced the cublasComputeType_t that GemmEx
// takes).
var cublasLibraries = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11"}

// CUBLASLib is a loaded cuBLAS library. Its methods are safe for
// concurrent use.
type CUBLASLib struct {
	api     uintptr // C table of entry points (never freed: the library stays loaded)
	path    string
	version int
}

// LoadCUBLAS opens cuBLAS: the file $SPLASH_CUBLAS names when it is set
// (and only that), else the first of libcublas.so.13, libcublas.so.12 and
// libcublas.so.11 that loads. When none does, the error wraps ErrNotFound
// and lists every name tried with the loader's message. It needs no
// driver, but handles (NewHandle) do.
func LoadCUBLAS() (*CUBLASLib, error) {
	if p := os.Getenv(CUBLASEnv); p != "" {
		return loadCUBLAS([]string{p}, fmt.Sprintf("$%s=%s is the cuBLAS library to load", CUBLASEnv, p))
	}
	return loadCUBLAS(cublasLibraries, fmt.Sprintf("cuBLAS 11, 12 or 13 comes with the CUDA toolkit and the nvidia/cuda runtime images; set %s to its path if it is elsewhere", CUBLASEnv))
}

func loadCUBLAS(names []string, hint string) (*CUBLASLib, error) {
	api, err := openLibrary("cuBLAS", names, hint, "splash needs cuBLAS 11 or later", resolveCUBLAS)
	if err != nil {
		return nil, err
	}
	l := &CUBLASLib{api: api, path: tablePath(api)}
	if v, rc := cublasGetVersion(api); rc == 0 {
		l.version = v
	}
	return l, nil
}

// openLibrary dlopens the first of names that loads and resolves its
// entry points with resolve, returning the table it builds. A library that
// loads but lacks an entry point is an error naming it and needs; when
// none loads, the error wraps ErrNotFound, names what, lists every name
// tried with the loader's message, and gives hint.
func openLibrary(what string, names []string, hint, needs string, resolve func(lib uintptr) (api uintptr, missing string)) (uintptr, error) {
	if !haveCgo {
		return 0, ErrNoCgo
	}
	var tried []string
	search := false
	for _, name := range names {
		search = search || !strings.Contains(name, "/")
		lib, dlerr := dlOpen(name)
		if lib == 0 {
			tried = append(tried, dlerrorText(name, dlerr))
			continue
		}
		api, missing := resolve(lib)
		if api == 0 {
			return 0, fmt.Errorf("%s lacks the entry point %s: %s", name, missing, needs)
		}
		return api, nil
	}
	return 0, &notFoundError{what: what, tried: tried, search: search, hint: hint}
}

// Path is the file the library was loaded from.
func (l *CUBLASLib) Path() string { return l.path }

// Version is cuBLAS's version as 10000*major + 100*minor + patch
// (111103: 11.11.3); 0 when the library does not say.
func (l *CUBLASLib) Version() int { return l.version }

// NewHandle creates a cuBLAS handle on s's device (cublasCreate_v2, with
// s's context current) whose work goes to s (cublasSetStream_v2).
func (l *CUBLASLib) NewHandle(s *Stream) (*BLAS, error) {
	ctx, err := s.ctx("cublasCreate_v2")
	if err != nil {
		return nil, err
	}
	b := &BLAS{l: l, s: s}
	h, rc := cublasCreate(s.c.d.api, ctx, l.api)
	if rc != 0 {
		return nil, b.err(rc, fmt.Sprintf("cublasCreate_v2(device %d)", s.c.index))
	}
	b.h = h
	if rc := cublasSetStream(s.c.d.api, ctx, l.api, h, s.h); rc != 0 {
		err := b.err(rc, "cublasSetStream_v2")
		cublasDestroy(s.c.d.api, ctx, l.api, h)
		return nil, err
	}
	return b, nil
}

// BLAS is a cuBLAS handle bound to a stream. Use one handle per goroutine
// (cuBLAS handles are not for concurrent calls that share a workspace).
type BLAS struct {
	l *CUBLASLib
	s *Stream
	h uintptr
}

// Stream is the stream the handle's work goes to.
func (b *BLAS) Stream() *Stream { return b.s }

// err is the *Error of status rc (not 0); a negative rc is the failure of
// making the context current for it.
func (b *BLAS) err(rc int, call string) error {
	if rc < 0 {
		return b.s.c.d.err(rc, call)
	}
	return cublasError(call, rc)
}

func (b *BLAS) ctx(call string) (uintptr, error) {
	if b.h == 0 {
		return 0, fmt.Errorf("%s: the cuBLAS handle was destroyed", call)
	}
	return b.s.ctx(call)
}

// SetMathMode sets the handle's math mode (TF32TensorOpMath lets float32
// GEMMs use TF32 tensor cores).
func (b *BLAS) SetMathMode(mode MathMode) error {
	ctx, err := b.ctx("cublasSetMathMode")
	if err != nil {
		return err
	}
	if rc := cublasSetMathMode(b.s.c.d.api, ctx, b.l.api, b.h, mode); rc != 0 {
		return b.err(rc, fmt.Sprintf("cublasSetMathMode(%d)", mode))
	}
	return nil
}

// HasWorkspace says whether the library has cublasSetWorkspace_v2
// (cuBLAS 11.2 and later).
func (b *BLAS) HasWorkspace() bool { return cublasHasWorkspace(b.l.api) }

// SetWorkspace gives the handle bytes of device memory at p as its
// workspace, instead of the one cuBLAS allocates itself. Without
// cublasSetWorkspace_v2 (HasWorkspace false) it does nothing.
func (b *BLAS) SetWorkspace(p DevicePtr, bytes int) error {
	if !b.HasWorkspace() {
		return nil
	}
	ctx, err := b.ctx("cublasSetWorkspace_v2")
	if err != nil {
		return err
	}
	if rc := cublasSetWorkspace(b.s.c.d.api, ctx, b.l.api, b.h, p, bytes); rc != 0 {
		return b.err(rc, fmt.Sprintf("cublasSetWorkspace_v2(%d bytes)", bytes))
	}
	return nil
}

// Destroy destroys the handle. Later calls do nothing.
func (b *BLAS) Destroy() error {
	if b.h == 0 {
		return nil
	}
	ctx, err := b.s.c.ctx("cublasDestroy_v2")
	if err != nil {
		return err
	}
	rc := cublasDestroy(b.s.c.d.api, ctx, b.l.api, b.h)
	b.h = 0
	if rc != 0 {
		return b.err(rc, "cublasDestroy_v2")
	}
	return nil
}

// gemmArgs are the arguments of cublasGemmEx and
// cublasGemmStridedBatchedEx (batch 0: the former).
type gemmArgs struct {
	transA, transB      Op
	m, n, k             int32
	alpha, beta         float32
	a, b, c             DevicePtr
	aType, bType, cType DataType
	lda, ldb, ldc       int32
	strideA, strideB    int64
	strideC             int64
	batch               int32
	compute             ComputeType
}

func (g *gemmArgs) String() string {
	s := fmt.Sprintf("%s, %s, m=%d, n=%d, k=%d, A %s lda=%d", g.transA, g.transB, g.m, g.n, g.k, g.aType, g.lda)
	if g.batch > 0 {
		s += fmt.Sprintf(" stride %d", g.strideA)
	}
	s += fmt.Sprintf(", B %s ldb=%d", g.bType, g.ldb)
	if g.batch > 0 {
		s += fmt.Sprintf(" stride %d", g.strideB)
	}
	s += fmt.Sprintf(", C %s ldc=%d", g.cType, g.ldc)
	if g.batch > 0 {
		s += fmt.Sprintf(" stride %d, batch %d", g.strideC, g.batch)
	}
	return s + ", " + g.compute.String()
}

// int32s converts GEMM sizes for cuBLAS's int parameters.
func int32s(call string, vals ...int) ([]int32, error) {
	out := make([]int32, len(vals))
	for i, v := range vals {
		if v < 0 || v > math.MaxInt32 {
			return nil, fmt.Errorf("%s: size %d out of cuBLAS's range [0, %d]", call, v, math.MaxInt32)
		}
		out[i] = int32(v)
	}
	return out, nil
}

// GemmEx queues C = alpha·op(A)·op(B) + beta·C (cublasGemmEx, column-major,
// C is m×n, op(A) m×k, op(B) k×n) with float32 host scalars and
// CUBLAS_GEMM_DEFAULT. compute is Compute32F or Compute32FFastTF32.
func (b *BLAS) GemmEx(transA, transB Op, m, n, k int, alpha float32, a DevicePtr, aType DataType, lda int,
	bm DevicePtr, bType DataType, ldb int, beta float32, c DevicePtr, cType DataType, ldc int, compute ComputeType) error {
	v, err := int32s("cublasGemmEx", m, n, k, lda, ldb, ldc)
	if err != nil {
		return err
	}
	return b.gemm("cublasGemmEx", &gemmArgs{transA: transA, transB: transB, m: v[0], n: v[1], k: v[2], alpha: alpha, beta: beta,
		a: a, b: bm, c: c, aType: aType, bType: bType, cType: cType, lda: v[3], ldb: v[4], ldc: v[5], compute: compute})
}

// GemmStridedBatchedEx queues batch GEMMs as GemmEx, the i-th on the
// matrices at a + i·strideA, bm + i·strideB and c + i·strideC (strides in
// elements).
func (b *BLAS) GemmStridedBatchedEx(transA, transB Op, m, n, k int, alpha float32,
	a DevicePtr, aType DataType, lda int, strideA int64,
	bm DevicePtr, bType DataType, ldb int, strideB int64,
	beta float32, c DevicePtr, cType DataType, ldc int, strideC int64, batch int, compute ComputeType) error {
	const call = "cublasGemmStridedBatchedEx"
	v, err := int32s(call, m, n, k, lda, ldb, ldc, batch)
	if err != nil {
		return err
	}
	if batch == 0 {
		return nil
	}
	return b.gemm(call, &gemmArgs{transA: transA, transB: transB, m: v[0], n: v[1], k: v[2], alpha: alpha, beta: beta,
		a: a, b: bm, c: c, aType: aType, bType: bType, cType: cType, lda: v[3], ldb: v[4], ldc: v[5],
		strideA: strideA, strideB: strideB, strideC: strideC, batch: v[6], compute: compute})
}

func (b *BLAS) gemm(call string, g *gemmArgs) error {
	ctx, err := b.ctx(call)
	if err != nil {
		return err
	}
	if rc := cublasGemm(b.s.c.d.api, ctx, b.l.api, b.h, g); rc != 0 {
		return b.err(rc, call+"("+g.String()+")")
	}
	return nil
}
