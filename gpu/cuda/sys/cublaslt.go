package sys

import (
	"fmt"
	"os"
	"runtime"
)

// CUBLASLtEnv names the environment variable that, when set, is the one
// cuBLASLt library LoadCUBLASLt opens (a path or a name for the loader).
const CUBLASLtEnv = "SPLASH_CUBLASLT"

// cublasLtLibraries are the names LoadCUBLASLt tries without
// $SPLASH_CUBLASLT, newest first (FP8 GEMMs need cuBLASLt 11.8 or later).
var cublasLtLibraries = []string{"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11"}

// CUBLASLtLib is a loaded cuBLASLt library, for the FP8 GEMMs of
// --precision fp8. Its methods are safe for concurrent use.
type CUBLASLtLib struct {
	api     uintptr // C table of entry points (never freed: the library stays loaded)
	path    string
	version int
}

// LoadCUBLASLt opens cuBLASLt: the file $SPLASH_CUBLASLT names when it is
// set (and only that), else the first of libcublasLt.so.13, .12 and .11
// that loads. When none does, the error wraps ErrNotFound and lists every
// name tried with the loader's message.
func LoadCUBLASLt() (*CUBLASLtLib, error) {
	if p := os.Getenv(CUBLASLtEnv); p != "" {
		return loadCUBLASLt([]string{p}, fmt.Sprintf("$%s=%s is the cuBLASLt library to load", CUBLASLtEnv, p))
	}
	return loadCUBLASLt(cublasLtLibraries, fmt.Sprintf("cuBLASLt comes with cuBLAS (the CUDA toolkit, the nvidia/cuda runtime images, the nvidia-cublas wheels); set %s to its path if it is elsewhere", CUBLASLtEnv))
}

func loadCUBLASLt(names []string, hint string) (*CUBLASLtLib, error) {
	api, err := openLibrary("cuBLASLt", names, hint, "splash's FP8 GEMMs need cuBLASLt 11.8 or later", resolveCUBLASLt)
	if err != nil {
		return nil, err
	}
	return &CUBLASLtLib{api: api, path: tablePath(api), version: cublasLtVersion(api)}, nil
}

// Path is the file the library was loaded from.
func (l *CUBLASLtLib) Path() string { return l.path }

// Version is cuBLASLt's version (cublasLtGetVersion: 10000*major +
// 100*minor + patch).
func (l *CUBLASLtLib) Version() int { return l.version }

// NewHandle creates a cuBLASLt handle (cublasLtCreate, with s's context
// current) whose matmuls go to s.
func (l *CUBLASLtLib) NewHandle(s *Stream) (*Lt, error) {
	lt := &Lt{l: l, s: s, algos: map[[3]int]ltAlgoEntry{}}
	err := lt.bound("cublasLtCreate", func() int {
		h, rc := cublasLtCreate(l.api)
		lt.h = h
		return rc
	})
	if err != nil {
		return nil, err
	}
	return lt, nil
}

// Lt is a cuBLASLt handle bound to a stream, with the algorithms its
// heuristic chose per GEMM shape. Use one per goroutine.
type Lt struct {
	l     *CUBLASLtLib
	s     *Stream
	h     uintptr
	algos map[[3]int]ltAlgoEntry
}

type ltAlgoEntry struct {
	algo ltAlgo
	have int // 1: algo is the heuristic's; -1: none exists for the shape
}

// bound runs call with the stream's context current on a locked OS thread
// (cuBLASLt takes no context of its own).
func (lt *Lt) bound(name string, call func() int) error {
	ctx, err := lt.s.ctx(name)
	if err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if rc := cuCtxSetCurrent(lt.s.c.d.api, ctx); rc != 0 {
		return lt.s.c.d.err(rc, name+" (cuCtxSetCurrent)")
	}
	if rc := call(); rc != 0 {
		return cublasError(name, rc)
	}
	return nil
}

// Destroy releases the handle.
func (lt *Lt) Destroy() error {
	if lt.h == 0 {
		return nil
	}
	err := lt.bound("cublasLtDestroy", func() int { return cublasLtDestroy(lt.l.api, lt.h) })
	lt.h = 0
	return err
}

// MatmulFP8 queues, column-major, d[m×n] (bf16, leading dimension m) =
// aScale·bScale·aᵀ·b with a E4M3 [k×m] and b E4M3 [k×n] (leading dimension
// k each: cuBLASLt's "TN" FP8 layout), float32 accumulation; aScale and
// bScale are device pointers to one float32 each. For row-major y[rows][n]
// = x[rows][k]·w[n][k]ᵀ, pass m = n, n = rows, a = w, b = x. ws is a
// device workspace of wsBytes. The first call of a shape asks
// cublasLtMatmulAlgoGetHeuristic for an algorithm, which later calls
// reuse.
func (lt *Lt) MatmulFP8(m, n, k int, a, aScale, b, bScale, d, ws DevicePtr, wsBytes int) error {
	if lt.h == 0 {
		return fmt.Errorf("cublasLtMatmul: the cuBLASLt handle was destroyed")
	}
	if _, err := int32s("cublasLtMatmul", m, n, k); err != nil {
		return err
	}
	key := [3]int{m, n, k}
	e := lt.algos[key]
	if e.have < 0 {
		return fmt.Errorf("cublasLtMatmul(fp8 e4m3, TN, m=%d, n=%d, k=%d): the heuristic found no algorithm", m, n, k)
	}
	call := fmt.Sprintf("cublasLtMatmul(fp8 e4m3, TN, m=%d, n=%d, k=%d, bf16 out, workspace %d)", m, n, k, wsBytes)
	err := lt.bound(call, func() int {
		return cublasLtFP8(lt.l.api, lt.h, lt.s.h, m, n, k, a, aScale, b, bScale, d, ws, wsBytes, &e.algo, &e.have)
	})
	if e.have != 0 {
		lt.algos[key] = e
	}
	return err
}
