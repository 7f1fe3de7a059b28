package cuda

import (
	"errors"
	"strconv"
	"time"
)

// ErrDisabled is returned by every entry point of a build without CUDA.
var ErrDisabled = errors.New("CUDA support is not compiled in: rebuild with `go build -tags cuda ./cmd/splash` on a machine with the CUDA toolkit headers and an NVIDIA driver")

// Device describes one NVIDIA GPU.
type Device struct {
	Index       int
	Name        string
	TotalMemory uint64
	FreeMemory  uint64
}

// Pooling selects the pooling kernel of PoolSparsify.
type Pooling int

const (
	// MaxPooling is SPLADE v2+ pooling: log1p(relu(max over unmasked positions)).
	MaxPooling Pooling = iota
	// SumPooling is SPLADE v1 pooling: the sum of log1p(relu(x)) over unmasked positions.
	SumPooling
)

// String names the pooling as the CLI flag does.
func (p Pooling) String() string {
	switch p {
	case MaxPooling:
		return "max"
	case SumPooling:
		return "sum"
	}
	return "Pooling(" + strconv.Itoa(int(p)) + ")"
}

// KernelCheck is what SelfCheck measured on one device.
type KernelCheck struct {
	Device  int
	B, T, V int
	// PoolMaxRel and PoolSumRel are the largest relative differences
	// between the pooling kernels and their twins.
	PoolMaxRel, PoolSumRel float64
	// SparsifyExact says the sparsify kernel's CSR equals the twin's.
	SparsifyExact bool
	// PoolSparsifyTime is one PoolSparsify call, host transfers included.
	PoolSparsifyTime time.Duration
	// OK: pooling within 1e-6 relative and sparsification exact.
	OK bool
}
