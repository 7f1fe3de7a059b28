//go:build !cuda

package cuda

import "errors"

// ErrDisabled is returned by every entry point of a build without CUDA.
var ErrDisabled = errors.New("CUDA support is not compiled in: rebuild with `go build -tags cuda ./cmd/splash` on a machine with the CUDA toolkit headers and an NVIDIA driver")

// Device describes one NVIDIA GPU.
type Device struct {
	Index       int
	Name        string
	TotalMemory uint64
	FreeMemory  uint64
}

// Devices lists the NVIDIA GPUs; without the cuda build tag it always fails.
func Devices() ([]Device, error) { return nil, ErrDisabled }
