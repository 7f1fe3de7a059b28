//go:build !cgo

package sys

func resolveCUBLASLt(lib uintptr) (uintptr, string) { return 0, "(no cgo)" }
func cublasLtVersion(lt uintptr) int                { return 0 }
func cublasLtCreate(lt uintptr) (uintptr, int)      { return 0, rcNoCgo }
func cublasLtDestroy(lt, h uintptr) int             { return rcNoCgo }

// ltAlgo is a cublasLtMatmulAlgo_t (8 uint64 words, opaque).
type ltAlgo [8]uint64

func cublasLtFP8(lt, h, stream uintptr, m, n, k int, a, aScale, b, bScale, d, ws DevicePtr, wsBytes int, algo *ltAlgo, have *int) int {
	return rcNoCgo
}
