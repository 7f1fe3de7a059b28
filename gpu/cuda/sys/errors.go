package sys

import (
	"errors"
	"os"
	"strconv"
	"strings"
)

// ErrNotFound is what the errors of a library that cannot be loaded
// (libcuda.so.1, cuBLAS) match: absent, unreadable, or not a shared
// library for this machine.
var ErrNotFound = errors.New("library not found")

// ErrOutOfMemory is what the errors of running out of device (or pinned
// host) memory match: the driver's CUDA_ERROR_OUT_OF_MEMORY and cuBLAS's
// CUBLAS_STATUS_ALLOC_FAILED.
var ErrOutOfMemory = errors.New("out of device memory")

// Library names an *Error's origin.
type Library int

const (
	// CUDADriver: a CUresult of libcuda.
	CUDADriver Library = iota
	// CUBLAS: a cublasStatus_t.
	CUBLAS
)

// Driver result and cuBLAS status codes the package tells apart.
const (
	cudaErrorOutOfMemory    = 2
	cudaErrorNoDevice       = 100
	cublasStatusAllocFailed = 3
)

// Error is a failed call of the CUDA driver or of cuBLAS. Its text is
// "Call: Name: Description".
type Error struct {
	// Call is the entry point with what it was asked for:
	// "cuMemAlloc_v2(1073741824 bytes)".
	Call string
	// Library says whether Code is a CUresult or a cublasStatus_t.
	Library Library
	// Code is the CUresult or cublasStatus_t.
	Code int
	// Name is the code's name ("CUDA_ERROR_OUT_OF_MEMORY"); Description
	// says it in words ("out of memory"), when known.
	Name, Description string
}

func (e *Error) Error() string {
	s := e.Call + ": " + e.Name
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// Is makes the errors of running out of memory match ErrOutOfMemory.
func (e *Error) Is(target error) bool {
	return target == ErrOutOfMemory && e.OutOfMemory()
}

// OutOfMemory says whether the call ran out of memory.
func (e *Error) OutOfMemory() bool {
	switch e.Library {
	case CUDADriver:
		return e.Code == cudaErrorOutOfMemory
	case CUBLAS:
		return e.Code == cublasStatusAllocFailed
	}
	return false
}

// NoDevice says whether the driver reported CUDA_ERROR_NO_DEVICE.
func (e *Error) NoDevice() bool { return e.Library == CUDADriver && e.Code == cudaErrorNoDevice }

// cublasStatuses names cuBLAS's status codes (cublas_api.h, stable since
// CUDA 6) with the descriptions of cublasGetStatusString.
var cublasStatuses = map[int][2]string{
	1:  {"CUBLAS_STATUS_NOT_INITIALIZED", "the library was not initialized"},
	3:  {"CUBLAS_STATUS_ALLOC_FAILED", "the resource allocation failed"},
	7:  {"CUBLAS_STATUS_INVALID_VALUE", "an invalid numeric value was used as an argument"},
	8:  {"CUBLAS_STATUS_ARCH_MISMATCH", "an absent device architectural feature is required"},
	11: {"CUBLAS_STATUS_MAPPING_ERROR", "an access to GPU memory space failed"},
	13: {"CUBLAS_STATUS_EXECUTION_FAILED", "the GPU program failed to execute"},
	14: {"CUBLAS_STATUS_INTERNAL_ERROR", "an internal operation failed"},
	15: {"CUBLAS_STATUS_NOT_SUPPORTED", "the functionality requested is not supported"},
	16: {"CUBLAS_STATUS_LICENSE_ERROR", "the functionality requested requires some license"},
}

// cublasError is the *Error of status (not 0) of call.
func cublasError(call string, status int) *Error {
	e := &Error{Call: call, Library: CUBLAS, Code: status}
	if n, ok := cublasStatuses[status]; ok {
		e.Name, e.Description = n[0], n[1]
	} else {
		e.Name = "CUBLAS_STATUS_" + strconv.Itoa(status)
	}
	return e
}

// notFoundError is a library that did not load: what was tried, each with
// dlerror's text, and where the loader looks.
type notFoundError struct {
	what   string   // "libcuda.so.1 (the CUDA driver library)"
	tried  []string // "name: dlerror text"
	search bool     // some name was bare: the loader searched its path
	hint   string
}

func (e *notFoundError) Error() string {
	var b strings.Builder
	b.WriteString(e.what)
	b.WriteString(" not found: ")
	b.WriteString(strings.Join(e.tried, "; "))
	if e.search {
		b.WriteString(" (the loader looked in ")
		b.WriteString(searchPath())
		b.WriteString(")")
	}
	if e.hint != "" {
		b.WriteString("; ")
		b.WriteString(e.hint)
	}
	return b.String()
}

func (e *notFoundError) Is(target error) bool { return target == ErrNotFound }

// searchPath says where dlopen looks for a bare library name.
func searchPath() string {
	ld := "LD_LIBRARY_PATH (unset)"
	if v, ok := os.LookupEnv("LD_LIBRARY_PATH"); ok {
		ld = "LD_LIBRARY_PATH=" + strconv.Quote(v)
	}
	return ld + ", /etc/ld.so.cache, /lib and /usr/lib"
}
