package cuda

import (
	"context"
	"fmt"

	"github.com/splash-encode/splash/gpu"
)

// ErrDisabled is returned by every entry point of a build without CUDA. It
// wraps gpu.ErrNoDriver, on which discovery asks nvidia-smi instead.
var ErrDisabled = fmt.Errorf("%w: rebuild with `go build -tags cuda ./cmd/splash` on a machine with the CUDA toolkit headers and an NVIDIA driver", gpu.ErrNoDriver)

func init() { gpu.SetDriver(Driver{}) }

// Driver is this package as a gpu.Driver: Devices and SelfCheck. Builds
// without the cuda tag register it too; its methods then fail with
// ErrDisabled.
type Driver struct{}

var _ gpu.Driver = Driver{}

// Devices implements gpu.Driver.
func (Driver) Devices() ([]gpu.Device, error) { return Devices() }

// SelfCheck implements gpu.Driver.
func (Driver) SelfCheck(ctx context.Context, deviceIndex, b, t, v int, seed uint64) (gpu.KernelCheck, error) {
	return SelfCheck(ctx, deviceIndex, b, t, v, seed)
}
