//go:build !cgo

package sys

import "unsafe"

// Without cgo the package cannot call C: LoadDriver and LoadCUBLAS fail
// with ErrNoCgo before any of the stand-ins below could be reached (no
// Driver or CUBLASLib exists to call them through). They fail with
// CUDA_ERROR_NOT_SUPPORTED (801), should that ever change.

const haveCgo = false

const rcNoCgo = 801 // CUDA_ERROR_NOT_SUPPORTED; CUBLAS_STATUS_NOT_SUPPORTED is 15

func dlOpen(name string) (uintptr, string)        { return 0, ErrNoCgo.Error() }
func resolveDriver(lib uintptr) (uintptr, string) { return 0, "(no cgo)" }
func resolveCUBLAS(lib uintptr) (uintptr, string) { return 0, "(no cgo)" }
func tablePath(api uintptr) string                { return "" }
func cuErrorText(api uintptr, rc int) (string, string) {
	return "", ErrNoCgo.Error()
}
func cuInit(api uintptr) int                               { return rcNoCgo }
func cuDriverGetVersion(api uintptr) (int, int)            { return 0, rcNoCgo }
func cuDeviceGetCount(api uintptr) (int, int)              { return 0, rcNoCgo }
func cuDeviceGet(api uintptr, ordinal int) (int32, int)    { return 0, rcNoCgo }
func cuDeviceGetName(api uintptr, dev int32) (string, int) { return "", rcNoCgo }
func cuDeviceGetAttribute(api uintptr, dev int32, attr int) (int, int) {
	return 0, rcNoCgo
}
func cuDeviceTotalMem(api uintptr, dev int32) (uint64, int)          { return 0, rcNoCgo }
func cuDevicePrimaryCtxRetain(api uintptr, dev int32) (uintptr, int) { return 0, rcNoCgo }
func cuDevicePrimaryCtxRelease(api uintptr, dev int32) int           { return rcNoCgo }
func cuCtxSetCurrent(api, ctx uintptr) int                           { return rcNoCgo }
func cuCtxSynchronize(api, ctx uintptr) int                          { return rcNoCgo }
func cuMemGetInfo(api, ctx uintptr) (uint64, uint64, int)            { return 0, 0, rcNoCgo }
func cuMemAlloc(api, ctx uintptr, bytes int) (DevicePtr, int)        { return 0, rcNoCgo }
func cuMemFree(api, ctx uintptr, p DevicePtr) int                    { return rcNoCgo }
func cuMemFreeHost(api, ctx uintptr, p unsafe.Pointer) int           { return rcNoCgo }
func cuStreamCreate(api, ctx uintptr, flags uint32) (uintptr, int)   { return 0, rcNoCgo }
func cuStreamSynchronize(api, ctx, s uintptr) int                    { return rcNoCgo }
func cuStreamDestroy(api, ctx, s uintptr) int                        { return rcNoCgo }
func cuEventCreate(api, ctx uintptr, flags uint32) (uintptr, int)    { return 0, rcNoCgo }
func cuEventRecord(api, ctx, e, s uintptr) int                       { return rcNoCgo }
func cuEventSynchronize(api, ctx, e uintptr) int                     { return rcNoCgo }
func cuEventElapsedTime(api, ctx, start, end uintptr) (float32, int) { return 0, rcNoCgo }
func cuEventDestroy(api, ctx, e uintptr) int                         { return rcNoCgo }
func cuModuleUnload(api, ctx, m uintptr) int                         { return rcNoCgo }
func cublasGetVersion(bl uintptr) (int, int)                         { return 0, rcNoCgo }
func cublasCreate(api, ctx, bl uintptr) (uintptr, int)               { return 0, rcNoCgo }
func cublasDestroy(api, ctx, bl, h uintptr) int                      { return rcNoCgo }
func cublasSetStream(api, ctx, bl, h, s uintptr) int                 { return rcNoCgo }
func cublasSetMathMode(api, ctx, bl, h uintptr, mode MathMode) int   { return rcNoCgo }
func cublasHasWorkspace(bl uintptr) bool                             { return false }
func cublasGemm(api, ctx, bl, h uintptr, g *gemmArgs) int            { return rcNoCgo }

func cuMemHostAlloc(api, ctx uintptr, bytes int, flags uint32) (unsafe.Pointer, int) {
	return nil, rcNoCgo
}

func cuMemcpyHtoD(api, ctx uintptr, dst DevicePtr, src unsafe.Pointer, n int) int { return rcNoCgo }

func cuMemcpyDtoH(api, ctx uintptr, dst unsafe.Pointer, src DevicePtr, n int) int { return rcNoCgo }

func cuMemcpyHtoDAsync(api, ctx uintptr, dst DevicePtr, src unsafe.Pointer, n int, s uintptr) int {
	return rcNoCgo
}

func cuMemcpyDtoHAsync(api, ctx uintptr, dst unsafe.Pointer, src DevicePtr, n int, s uintptr) int {
	return rcNoCgo
}

func cuMemsetD8Async(api, ctx uintptr, dst DevicePtr, v byte, n int, s uintptr) int {
	return rcNoCgo
}

func cuMemsetD32Async(api, ctx uintptr, dst DevicePtr, v uint32, n int, s uintptr) int {
	return rcNoCgo
}

func cuModuleLoadDataEx(api, ctx uintptr, ptx string) (uintptr, string, int) { return 0, "", rcNoCgo }

func cuModuleGetFunction(api, ctx, m uintptr, name string) (uintptr, int) { return 0, rcNoCgo }

func cuLaunchKernel(api, ctx, f uintptr, grid, block [3]uint32, shared uint32, s uintptr, blob []byte, offsets []uint64) int {
	return rcNoCgo
}

func cublasSetWorkspace(api, ctx, bl, h uintptr, ws DevicePtr, bytes int) int { return rcNoCgo }
