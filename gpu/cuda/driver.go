package cuda

import (
	"context"
	"sync"

	"github.com/splash-encode/splash/gpu"
	"github.com/splash-encode/splash/gpu/cuda/sys"
)

func init() { gpu.SetDriver(Driver{}) }

// Driver is this package as a gpu.Driver: Devices and SelfCheck.
type Driver struct{}

var _ gpu.Driver = Driver{}

// Devices implements gpu.Driver.
func (Driver) Devices() ([]gpu.Device, error) { return Devices() }

// SelfCheck implements gpu.Driver.
func (Driver) SelfCheck(ctx context.Context, deviceIndex, b, t, v int, seed uint64) (gpu.KernelCheck, error) {
	return SelfCheck(ctx, deviceIndex, b, t, v, seed)
}

// driver is the process's CUDA driver, loaded on first use. The driver
// library and its primary contexts are process-wide, so one sys.Driver
// serves the whole process; a failure is kept as well (a machine does not
// grow a GPU while splash runs).
var driver struct {
	once sync.Once
	d    *sys.Driver
	err  error
}

// LoadDriver returns the process's CUDA driver (libcuda.so.1, loaded at
// run time, initialised), loading it on the first call. When it cannot be
// used (no library, no device, a build without cgo) the error matches
// gpu.ErrNoDriver, so discovery asks nvidia-smi and --device auto falls
// back to the CPU, and says why.
func LoadDriver() (*sys.Driver, error) {
	driver.once.Do(func() {
		driver.d, driver.err = sys.LoadDriver()
		if driver.err != nil {
			driver.err = &noDriverError{driver.err}
		}
	})
	return driver.d, driver.err
}

// noDriverError is a CUDA driver that cannot be used: its text is the
// loader's (what was looked for and where, or the CUDA error of cuInit);
// it matches gpu.ErrNoDriver and whatever the loader's error matches
// (sys.ErrNotFound, sys.ErrNoCgo, a *sys.Error).
type noDriverError struct{ err error }

func (e *noDriverError) Error() string { return e.err.Error() }

func (e *noDriverError) Unwrap() error { return e.err }

func (e *noDriverError) Is(target error) bool { return target == gpu.ErrNoDriver }
