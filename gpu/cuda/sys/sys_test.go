package sys

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKernelParams(t *testing.T) {
	blob, offsets, err := kernelParams([]any{
		DevicePtr(0x7f0000001000), int32(-3), float32(1.5), uint32(7), uintptr(0xdead), int64(-1), uint64(1 << 40),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []uint64{0, 8, 12, 16, 24, 32, 40}
	if len(offsets) != len(want) {
		t.Fatalf("offsets %v, want %v", offsets, want)
	}
	for i := range want {
		if offsets[i] != want[i] {
			t.Fatalf("offsets %v, want %v (natural alignment)", offsets, want)
		}
	}
	if len(blob) != 48 {
		t.Fatalf("blob of %d bytes, want 48", len(blob))
	}
	ne := binary.NativeEndian
	if ne.Uint64(blob[0:]) != 0x7f0000001000 || int32(ne.Uint32(blob[8:])) != -3 ||
		math.Float32frombits(ne.Uint32(blob[12:])) != 1.5 || ne.Uint32(blob[16:]) != 7 ||
		ne.Uint64(blob[24:]) != 0xdead || int64(ne.Uint64(blob[32:])) != -1 || ne.Uint64(blob[40:]) != 1<<40 {
		t.Fatalf("blob % x holds other values", blob)
	}

	// A 4-byte value after 4 bytes stays packed; an 8-byte one is aligned.
	_, offsets, err = kernelParams([]any{int32(1), int32(2), DevicePtr(3)})
	if err != nil || offsets[0] != 0 || offsets[1] != 4 || offsets[2] != 8 {
		t.Fatalf("offsets %v, %v", offsets, err)
	}
	_, offsets, err = kernelParams([]any{int32(1), DevicePtr(3)})
	if err != nil || offsets[1] != 8 {
		t.Fatalf("offsets %v, %v: the pointer must be 8-byte aligned", offsets, err)
	}

	blob, offsets, err = kernelParams(nil)
	if err != nil || len(offsets) != 0 || len(blob) == 0 {
		t.Fatalf("no arguments: blob %v offsets %v err %v (want a non-empty blob for C)", blob, offsets, err)
	}

	for _, bad := range []any{7, 1.5, "x", &blob, []float32{1}} {
		_, _, err := kernelParams([]any{int32(0), bad})
		if err == nil || !strings.Contains(err.Error(), "kernel argument 1") {
			t.Errorf("argument %T: error %v, want one naming argument 1", bad, err)
		}
	}
	if _, _, err := kernelParams(make([]any, maxKernelParams+1)); err == nil {
		t.Error("too many arguments accepted")
	}
}

func TestLaunchRefusesAnUnresolvedFunction(t *testing.T) {
	err := (&Stream{}).Launch(Function{}, [3]uint32{1, 1, 1}, [3]uint32{32, 1, 1}, 0, int32(1))
	if err == nil || !strings.Contains(err.Error(), "not looked up") {
		t.Fatalf("Launch of the zero Function: %v", err)
	}
}

func TestErrors(t *testing.T) {
	oom := &Error{Call: "cuMemAlloc_v2(1073741824 bytes)", Library: CUDADriver, Code: 2, Name: "CUDA_ERROR_OUT_OF_MEMORY", Description: "out of memory"}
	if got := oom.Error(); got != "cuMemAlloc_v2(1073741824 bytes): CUDA_ERROR_OUT_OF_MEMORY: out of memory" {
		t.Errorf("text %q", got)
	}
	wrapped := errors.Join(errors.New("upload weights"), oom)
	if !errors.Is(wrapped, ErrOutOfMemory) {
		t.Error("CUDA_ERROR_OUT_OF_MEMORY does not match ErrOutOfMemory")
	}
	if errors.Is(&Error{Library: CUDADriver, Code: 1}, ErrOutOfMemory) {
		t.Error("CUDA_ERROR_INVALID_VALUE matches ErrOutOfMemory")
	}
	alloc := cublasError("cublasCreate_v2(device 0)", 3)
	if !errors.Is(alloc, ErrOutOfMemory) || alloc.Error() != "cublasCreate_v2(device 0): CUBLAS_STATUS_ALLOC_FAILED: the resource allocation failed" {
		t.Errorf("cuBLAS ALLOC_FAILED: %q (matches ErrOutOfMemory: %v)", alloc, errors.Is(alloc, ErrOutOfMemory))
	}
	for code, name := range map[int]string{1: "NOT_INITIALIZED", 7: "INVALID_VALUE", 8: "ARCH_MISMATCH", 11: "MAPPING_ERROR",
		13: "EXECUTION_FAILED", 14: "INTERNAL_ERROR", 15: "NOT_SUPPORTED", 16: "LICENSE_ERROR", 99: "99"} {
		e := cublasError("cublasGemmEx", code)
		if e.Name != "CUBLAS_STATUS_"+name || errors.Is(e, ErrOutOfMemory) {
			t.Errorf("status %d: %q", code, e)
		}
	}
	nf := &notFoundError{what: "cuBLAS", tried: []string{"a: x", "b: y"}, search: true, hint: "h"}
	if !errors.Is(nf, ErrNotFound) || !strings.HasPrefix(nf.Error(), "cuBLAS not found: a: x; b: y (the loader looked in LD_LIBRARY_PATH") {
		t.Errorf("not found: %q", nf)
	}
}

// TestLoadDriver loads libcuda.so.1 as it is on this machine: with a GPU
// it lists the devices; without one the error must say what failed.
func TestLoadDriver(t *testing.T) {
	d, err := LoadDriver()
	if err != nil {
		t.Logf("LoadDriver: %v", err)
		var cerr *Error
		switch {
		case !haveCgo:
			if !errors.Is(err, ErrNoCgo) {
				t.Fatalf("without cgo: %v, want ErrNoCgo", err)
			}
		case errors.Is(err, ErrNotFound):
			for _, want := range []string{"libcuda.so.1", "LD_LIBRARY_PATH", "NVIDIA driver"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("library missing: %q does not say %q", err, want)
				}
			}
		case errors.As(err, &cerr):
			if !strings.Contains(err.Error(), "libcuda.so.1 (") || cerr.Call != "cuInit(0)" || !strings.HasPrefix(cerr.Name, "CUDA_ERROR_") {
				t.Errorf("cuInit failure: %q (%+v), want the library's file and cuInit's CUDA error name", err, cerr)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
		return
	}
	v, err := d.Version()
	if err != nil {
		t.Fatal(err)
	}
	n, err := d.DeviceCount()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: CUDA %s, %d devices", d.Path(), cudaVersion(v), n)
	for i := 0; i < n; i++ {
		info, err := d.Device(i)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("device %d: %+v", i, info)
		if info.Name == "" || info.TotalMemory == 0 || info.ComputeMajor == 0 {
			t.Errorf("implausible device %+v", info)
		}
	}
	if _, err := d.Device(n); err == nil {
		t.Errorf("Device(%d) of %d devices succeeded", n, n)
	}
}

// TestLoadConcurrently loads the driver and cuBLAS from several goroutines
// at once: every call gives the same answer.
func TestLoadConcurrently(t *testing.T) {
	t.Setenv(CUBLASEnv, "")
	_, wantErr := LoadDriver()
	_, wantBLASErr := LoadCUBLAS()
	errs := make(chan [2]error, 8)
	for range 8 {
		go func() {
			_, err := LoadDriver()
			_, berr := LoadCUBLAS()
			errs <- [2]error{err, berr}
		}()
	}
	for range 8 {
		got := <-errs
		if fmt.Sprint(got[0]) != fmt.Sprint(wantErr) || fmt.Sprint(got[1]) != fmt.Sprint(wantBLASErr) {
			t.Errorf("concurrent load: %v / %v, want %v / %v", got[0], got[1], wantErr, wantBLASErr)
		}
	}
}

func TestLoadDriverMissingLibrary(t *testing.T) {
	if !haveCgo {
		t.Skip("no cgo")
	}
	_, err := loadDriver("libcuda-splash-absent.so.1")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "libcuda-splash-absent.so.1") ||
		!strings.Contains(err.Error(), "cannot open shared object file") || !strings.Contains(err.Error(), "LD_LIBRARY_PATH") {
		t.Fatalf("error %v, want ErrNotFound naming the library, dlerror's text and the search path", err)
	}
	t.Log(err)
}

func TestLoadCUBLASFromEnv(t *testing.T) {
	if !haveCgo {
		t.Setenv(CUBLASEnv, "")
		if _, err := LoadCUBLAS(); !errors.Is(err, ErrNoCgo) {
			t.Fatalf("without cgo: %v, want ErrNoCgo", err)
		}
		return
	}
	dir := t.TempDir()
	missing := filepath.Join(dir, "libcublas.so.99")
	t.Setenv(CUBLASEnv, missing)
	_, err := LoadCUBLAS()
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "$SPLASH_CUBLAS") {
		t.Fatalf("missing file: %v, want ErrNotFound naming %s and $SPLASH_CUBLAS", err, missing)
	}
	t.Log(err)
	if strings.Contains(err.Error(), "libcublas.so.12") || strings.Contains(err.Error(), "loader looked in") {
		t.Errorf("with $SPLASH_CUBLAS set to a path, only that file is tried, without a search: %v", err)
	}

	text := filepath.Join(dir, "not-a-library.so")
	if err := os.WriteFile(text, []byte("not ELF\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(CUBLASEnv, text)
	_, err = LoadCUBLAS()
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), text) {
		t.Fatalf("not a library: %v, want ErrNotFound naming %s", err, text)
	}
	t.Log(err)

	// A shared library that is not cuBLAS: found, but lacking the entry points.
	t.Setenv(CUBLASEnv, "libdl.so.2")
	_, err = LoadCUBLAS()
	if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "cublasCreate_v2") {
		t.Fatalf("libdl as cuBLAS: %v, want an error naming the missing cublasCreate_v2", err)
	}
}

// TestLoadCUBLAS loads the cuBLAS of this machine, if any, and creates a
// handle without a GPU: cuBLAS must answer with a status that the package
// names.
func TestLoadCUBLAS(t *testing.T) {
	t.Setenv(CUBLASEnv, "")
	l, err := LoadCUBLAS()
	if err != nil {
		t.Logf("LoadCUBLAS: %v", err)
		if !haveCgo {
			return
		}
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("%v, want ErrNotFound", err)
		}
		for _, name := range cublasLibraries {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("%q does not list %s", err, name)
			}
		}
		return
	}
	t.Logf("cuBLAS %d at %s (cublasSetWorkspace_v2: %v)", l.Version(), l.Path(), cublasHasWorkspace(l.api))
	if l.Version() < 110000 || l.Path() == "" {
		t.Errorf("version %d, path %q", l.Version(), l.Path())
	}
	if _, err := LoadDriver(); err == nil {
		return // a GPU: the handle tests need a stream (see gpu/cuda)
	}
	h, rc := cublasCreate(0, 0, l.api) // no context to make current
	if rc == 0 {
		cublasDestroy(0, 0, l.api, h)
		return
	}
	err = cublasError("cublasCreate_v2", rc)
	t.Logf("without a GPU: %v", err)
	if !strings.HasPrefix(err.(*Error).Name, "CUBLAS_STATUS_") {
		t.Errorf("unnamed status: %v", err)
	}
}
