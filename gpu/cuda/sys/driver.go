package sys

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"unsafe"
)

// ErrNoCgo is what LoadDriver and LoadCUBLAS fail with in a binary built
// without cgo, which cannot call C libraries.
var ErrNoCgo = errors.New("splash was built without cgo (CGO_ENABLED=0), so it cannot load the CUDA driver or cuBLAS: rebuild it with CGO_ENABLED=1 and a C compiler")

// DriverLibrary is the CUDA driver library LoadDriver opens: the NVIDIA
// driver installs it; the NVIDIA container toolkit mounts it into
// containers run with --gpus.
const DriverLibrary = "libcuda.so.1"

// Driver is the loaded CUDA driver library, initialised. Its methods are
// safe for concurrent use.
type Driver struct {
	api     uintptr // C table of entry points (never freed: the library stays loaded)
	path    string
	version int
}

// LoadDriver opens libcuda.so.1, looks up the entry points splash uses and
// initialises the driver (cuInit). When the library cannot be loaded the
// error wraps ErrNotFound and says what was looked for and where; when
// cuInit fails (no device, a driver too old for the library, ...) it names
// the CUDA error and the library's file and version, and wraps the *Error.
// Calling it again opens the same library again: callers keep the Driver.
func LoadDriver() (*Driver, error) { return loadDriver(DriverLibrary) }

func loadDriver(name string) (*Driver, error) {
	if !haveCgo {
		return nil, ErrNoCgo
	}
	lib, dlerr := dlOpen(name)
	if lib == 0 {
		return nil, &notFoundError{
			what:   name + " (the CUDA driver library)",
			tried:  []string{dlerrorText(name, dlerr)},
			search: !strings.Contains(name, "/"),
			hint:   "the NVIDIA driver installs it; a container gets it from the NVIDIA container toolkit when run with --gpus",
		}
	}
	api, missing := resolveDriver(lib)
	if api == 0 {
		return nil, fmt.Errorf("%s lacks the entry point %s: the NVIDIA driver is too old for splash (it needs one for CUDA 11 or later)", name, missing)
	}
	d := &Driver{api: api, path: tablePath(api)}
	d.version, _ = cuDriverGetVersion(api) // needs no cuInit
	if rc := cuInit(api); rc != 0 {
		return nil, fmt.Errorf("%s (%s) cannot be used: %w", name, d.describe(), d.err(rc, "cuInit(0)"))
	}
	return d, nil
}

// dlerrorText is dlerror's message, prefixed with name unless it says it.
func dlerrorText(name, dlerr string) string {
	if dlerr == "" {
		dlerr = "dlopen failed"
	}
	if strings.Contains(dlerr, name) {
		return dlerr
	}
	return name + ": " + dlerr
}

// describe is the library's file and the CUDA version its driver supports.
func (d *Driver) describe() string {
	s := d.path
	if s == "" {
		s = DriverLibrary
	}
	if d.version > 0 {
		s += ", driver for CUDA " + cudaVersion(d.version)
	}
	return s
}

// cudaVersion renders the driver's 12020 as "12.2".
func cudaVersion(v int) string { return fmt.Sprintf("%d.%d", v/1000, v%1000/10) }

// err is the *Error of CUresult rc (not 0) of call; a negative rc is the
// failure of making the context current for it.
func (d *Driver) err(rc int, call string) error {
	if rc < 0 {
		rc, call = -rc, "cuCtxSetCurrent (before "+call+")"
	}
	name, text := cuErrorText(d.api, rc)
	if name == "" {
		name = "CUresult " + strconv.Itoa(rc)
	}
	return &Error{Call: call, Library: CUDADriver, Code: rc, Name: name, Description: text}
}

// Path is the file the driver library was loaded from.
func (d *Driver) Path() string { return d.path }

// Version is the CUDA version the driver supports, as 1000*major +
// 10*minor (12020: CUDA 12.2).
func (d *Driver) Version() (int, error) {
	v, rc := cuDriverGetVersion(d.api)
	if rc != 0 {
		return 0, d.err(rc, "cuDriverGetVersion")
	}
	return v, nil
}

// DeviceCount is the number of devices the driver sees.
func (d *Driver) DeviceCount() (int, error) {
	n, rc := cuDeviceGetCount(d.api)
	if rc != 0 {
		return 0, d.err(rc, "cuDeviceGetCount")
	}
	return n, nil
}

// device is the CUdevice of ordinal i.
func (d *Driver) device(i int) (int32, error) {
	dev, rc := cuDeviceGet(d.api, i)
	if rc != 0 {
		return 0, d.err(rc, fmt.Sprintf("cuDeviceGet(%d)", i))
	}
	return dev, nil
}

// Device describes device i. It needs no context.
func (d *Driver) Device(i int) (DeviceInfo, error) {
	dev, err := d.device(i)
	if err != nil {
		return DeviceInfo{}, err
	}
	info := DeviceInfo{Index: i}
	var rc int
	if info.Name, rc = cuDeviceGetName(d.api, dev); rc != 0 {
		return info, d.err(rc, fmt.Sprintf("cuDeviceGetName(device %d)", i))
	}
	if info.TotalMemory, rc = cuDeviceTotalMem(d.api, dev); rc != 0 {
		return info, d.err(rc, fmt.Sprintf("cuDeviceTotalMem_v2(device %d)", i))
	}
	if info.ComputeMajor, rc = cuDeviceGetAttribute(d.api, dev, attrComputeCapabilityMajor); rc != 0 {
		return info, d.err(rc, fmt.Sprintf("cuDeviceGetAttribute(COMPUTE_CAPABILITY_MAJOR, device %d)", i))
	}
	if info.ComputeMinor, rc = cuDeviceGetAttribute(d.api, dev, attrComputeCapabilityMinor); rc != 0 {
		return info, d.err(rc, fmt.Sprintf("cuDeviceGetAttribute(COMPUTE_CAPABILITY_MINOR, device %d)", i))
	}
	return info, nil
}

// Retain retains device i's primary context (creating it on first use:
// some 100 ms and a few hundred MB of device memory). Release gives it
// back; the context lives while anyone in the process retains it.
func (d *Driver) Retain(i int) (*Context, error) {
	dev, err := d.device(i)
	if err != nil {
		return nil, err
	}
	h, rc := cuDevicePrimaryCtxRetain(d.api, dev)
	if rc != 0 {
		return nil, d.err(rc, fmt.Sprintf("cuDevicePrimaryCtxRetain(device %d)", i))
	}
	return &Context{d: d, index: i, dev: dev, h: h}, nil
}

// Context is a device's primary context, retained. Every method makes it
// current on the OS thread the call runs on, within the same C call, so
// it and what it made (streams, modules, events, BLAS handles) can be used
// from any goroutine. Its methods are safe for concurrent use; Release
// must come after every other use.
type Context struct {
	d        *Driver
	index    int
	dev      int32
	h        uintptr
	released atomic.Bool
}

// Driver is the driver the context belongs to.
func (c *Context) Driver() *Driver { return c.d }

// Device is the context's device ordinal.
func (c *Context) Device() int { return c.index }

// Handle is the CUcontext, for code that hands it to other CUDA libraries.
func (c *Context) Handle() uintptr { return c.h }

// ctx is the handle for a call, or an error once the context is released.
func (c *Context) ctx(call string) (uintptr, error) {
	if c.released.Load() {
		return 0, fmt.Errorf("%s: the primary context of device %d was released", call, c.index)
	}
	return c.h, nil
}

// Release releases the primary context. Later calls do nothing.
func (c *Context) Release() error {
	if c.released.Swap(true) {
		return nil
	}
	if rc := cuDevicePrimaryCtxRelease(c.d.api, c.dev); rc != 0 {
		return c.d.err(rc, fmt.Sprintf("cuDevicePrimaryCtxRelease_v2(device %d)", c.index))
	}
	return nil
}

// Bind makes the context current on the calling OS thread
// (cuCtxSetCurrent), for code that then calls CUDA libraries itself: lock
// the goroutine to its thread (runtime.LockOSThread) first. The package's
// own calls do not need it.
func (c *Context) Bind() error {
	h, err := c.ctx("cuCtxSetCurrent")
	if err != nil {
		return err
	}
	if rc := cuCtxSetCurrent(c.d.api, h); rc != 0 {
		return c.d.err(rc, fmt.Sprintf("cuCtxSetCurrent(device %d)", c.index))
	}
	return nil
}

// Sync waits for all work in the context (cuCtxSynchronize).
func (c *Context) Sync() error {
	h, err := c.ctx("cuCtxSynchronize")
	if err != nil {
		return err
	}
	if rc := cuCtxSynchronize(c.d.api, h); rc != 0 {
		return c.d.err(rc, "cuCtxSynchronize")
	}
	return nil
}

// MemInfo is the device's free and total memory in bytes.
func (c *Context) MemInfo() (free, total uint64, err error) {
	h, err := c.ctx("cuMemGetInfo_v2")
	if err != nil {
		return 0, 0, err
	}
	free, total, rc := cuMemGetInfo(c.d.api, h)
	if rc != 0 {
		return 0, 0, c.d.err(rc, "cuMemGetInfo_v2")
	}
	return free, total, nil
}

// Alloc allocates bytes (> 0) of device memory. Running out of memory
// fails with an error that matches ErrOutOfMemory.
func (c *Context) Alloc(bytes int) (DevicePtr, error) {
	call := func() string { return fmt.Sprintf("cuMemAlloc_v2(%d bytes)", bytes) }
	if bytes <= 0 {
		return 0, fmt.Errorf("%s: the size must be positive", call())
	}
	h, err := c.ctx("cuMemAlloc_v2")
	if err != nil {
		return 0, err
	}
	p, rc := cuMemAlloc(c.d.api, h, bytes)
	if rc != 0 {
		return 0, c.d.err(rc, call())
	}
	return p, nil
}

// Free frees device memory from Alloc; Free(0) does nothing.
func (c *Context) Free(p DevicePtr) error {
	if p == 0 {
		return nil
	}
	h, err := c.ctx("cuMemFree_v2")
	if err != nil {
		return err
	}
	if rc := cuMemFree(c.d.api, h, p); rc != 0 {
		return c.d.err(rc, fmt.Sprintf("cuMemFree_v2(%#x)", uintptr(p)))
	}
	return nil
}

// AllocHost allocates bytes (> 0) of pinned host memory, usable by every
// context (CU_MEMHOSTALLOC_PORTABLE): copies from and to it are truly
// asynchronous. It is C memory: free it with FreeHost, never let Go
// pointers be stored in it.
func (c *Context) AllocHost(bytes int) (unsafe.Pointer, error) {
	call := func() string { return fmt.Sprintf("cuMemHostAlloc(%d bytes, PORTABLE)", bytes) }
	if bytes <= 0 {
		return nil, fmt.Errorf("%s: the size must be positive", call())
	}
	h, err := c.ctx("cuMemHostAlloc")
	if err != nil {
		return nil, err
	}
	p, rc := cuMemHostAlloc(c.d.api, h, bytes, memHostAllocPortable)
	if rc != 0 {
		return nil, c.d.err(rc, call())
	}
	return p, nil
}

// FreeHost frees memory from AllocHost; FreeHost(nil) does nothing.
func (c *Context) FreeHost(p unsafe.Pointer) error {
	if p == nil {
		return nil
	}
	h, err := c.ctx("cuMemFreeHost")
	if err != nil {
		return err
	}
	if rc := cuMemFreeHost(c.d.api, h, p); rc != 0 {
		return c.d.err(rc, "cuMemFreeHost")
	}
	return nil
}

// CopyHtoD copies bytes from host memory to the device and returns when
// the copy is done (cuMemcpyHtoD_v2, on the legacy default stream: it
// waits for the work of the context's blocking streams).
func (c *Context) CopyHtoD(dst DevicePtr, src unsafe.Pointer, bytes int) error {
	if bytes == 0 {
		return nil
	}
	h, err := c.ctx("cuMemcpyHtoD_v2")
	if err != nil {
		return err
	}
	if rc := cuMemcpyHtoD(c.d.api, h, dst, src, bytes); rc != 0 {
		return c.d.err(rc, fmt.Sprintf("cuMemcpyHtoD_v2(%d bytes)", bytes))
	}
	return nil
}

// CopyDtoH copies bytes from the device to host memory and returns when
// the copy is done (cuMemcpyDtoH_v2, as CopyHtoD).
func (c *Context) CopyDtoH(dst unsafe.Pointer, src DevicePtr, bytes int) error {
	if bytes == 0 {
		return nil
	}
	h, err := c.ctx("cuMemcpyDtoH_v2")
	if err != nil {
		return err
	}
	if rc := cuMemcpyDtoH(c.d.api, h, dst, src, bytes); rc != 0 {
		return c.d.err(rc, fmt.Sprintf("cuMemcpyDtoH_v2(%d bytes)", bytes))
	}
	return nil
}

// NewStream creates a stream (CU_STREAM_DEFAULT: its work also orders
// with the legacy default stream's, which CopyHtoD and CopyDtoH use).
func (c *Context) NewStream() (*Stream, error) {
	h, err := c.ctx("cuStreamCreate")
	if err != nil {
		return nil, err
	}
	s, rc := cuStreamCreate(c.d.api, h, streamDefault)
	if rc != 0 {
		return nil, c.d.err(rc, "cuStreamCreate")
	}
	return &Stream{c: c, h: s}, nil
}

// Stream is a CUDA stream: its work runs in order, asynchronously to the
// host. Host memory given to its copies may be Go memory (pageable: the
// driver then stages a host-to-device copy before returning, and returns
// from a device-to-host one when it is done) or AllocHost memory (truly
// asynchronous: keep it until the stream is synchronised).
type Stream struct {
	c *Context
	h uintptr
}

// Context is the stream's context.
func (s *Stream) Context() *Context { return s.c }

// Handle is the CUstream (a cudaStream_t too).
func (s *Stream) Handle() uintptr { return s.h }

func (s *Stream) ctx(call string) (uintptr, error) {
	if s.h == 0 {
		return 0, fmt.Errorf("%s: the stream was destroyed", call)
	}
	return s.c.ctx(call)
}

// CopyHtoD queues a copy of bytes from host memory to the device.
func (s *Stream) CopyHtoD(dst DevicePtr, src unsafe.Pointer, bytes int) error {
	if bytes == 0 {
		return nil
	}
	h, err := s.ctx("cuMemcpyHtoDAsync_v2")
	if err != nil {
		return err
	}
	if rc := cuMemcpyHtoDAsync(s.c.d.api, h, dst, src, bytes, s.h); rc != 0 {
		return s.c.d.err(rc, fmt.Sprintf("cuMemcpyHtoDAsync_v2(%d bytes)", bytes))
	}
	return nil
}

// CopyDtoH queues a copy of bytes from the device to host memory.
func (s *Stream) CopyDtoH(dst unsafe.Pointer, src DevicePtr, bytes int) error {
	if bytes == 0 {
		return nil
	}
	h, err := s.ctx("cuMemcpyDtoHAsync_v2")
	if err != nil {
		return err
	}
	if rc := cuMemcpyDtoHAsync(s.c.d.api, h, dst, src, bytes, s.h); rc != 0 {
		return s.c.d.err(rc, fmt.Sprintf("cuMemcpyDtoHAsync_v2(%d bytes)", bytes))
	}
	return nil
}

// Memset8 queues setting bytes bytes at dst to v.
func (s *Stream) Memset8(dst DevicePtr, v byte, bytes int) error {
	if bytes == 0 {
		return nil
	}
	h, err := s.ctx("cuMemsetD8Async")
	if err != nil {
		return err
	}
	if rc := cuMemsetD8Async(s.c.d.api, h, dst, v, bytes, s.h); rc != 0 {
		return s.c.d.err(rc, fmt.Sprintf("cuMemsetD8Async(%d bytes)", bytes))
	}
	return nil
}

// Memset32 queues setting n 32-bit words at dst (4-byte aligned) to v.
func (s *Stream) Memset32(dst DevicePtr, v uint32, n int) error {
	if n == 0 {
		return nil
	}
	h, err := s.ctx("cuMemsetD32Async")
	if err != nil {
		return err
	}
	if rc := cuMemsetD32Async(s.c.d.api, h, dst, v, n, s.h); rc != 0 {
		return s.c.d.err(rc, fmt.Sprintf("cuMemsetD32Async(%d words)", n))
	}
	return nil
}

// Launch queues kernel f on a grid of blocks with sharedBytes of dynamic
// shared memory. args are the kernel's parameters in order, as Go values
// of the parameters' widths: int32, uint32, float32 (4 bytes); int64,
// uint64, uintptr, DevicePtr (8 bytes).
func (s *Stream) Launch(f Function, grid, block [3]uint32, sharedBytes uint32, args ...any) error {
	call := func() string {
		return fmt.Sprintf("cuLaunchKernel(%s, grid %v, block %v, %d shared bytes, %d arguments)", f.name, grid, block, sharedBytes, len(args))
	}
	if f.h == 0 {
		return fmt.Errorf("%s: the Function was not looked up (Module.Function)", call())
	}
	blob, offsets, err := kernelParams(args)
	if err != nil {
		return fmt.Errorf("%s: %w", call(), err)
	}
	h, err := s.ctx("cuLaunchKernel")
	if err != nil {
		return err
	}
	if rc := cuLaunchKernel(s.c.d.api, h, f.h, grid, block, sharedBytes, s.h, blob, offsets); rc != 0 {
		return s.c.d.err(rc, call())
	}
	return nil
}

// Sync waits for the stream's work. Errors of earlier asynchronous work
// (a kernel's fault) surface here.
func (s *Stream) Sync() error {
	h, err := s.ctx("cuStreamSynchronize")
	if err != nil {
		return err
	}
	if rc := cuStreamSynchronize(s.c.d.api, h, s.h); rc != 0 {
		return s.c.d.err(rc, "cuStreamSynchronize")
	}
	return nil
}

// Destroy destroys the stream (its queued work still completes). Later
// calls do nothing.
func (s *Stream) Destroy() error {
	if s.h == 0 {
		return nil
	}
	h, err := s.c.ctx("cuStreamDestroy_v2")
	if err != nil {
		return err
	}
	rc := cuStreamDestroy(s.c.d.api, h, s.h)
	s.h = 0
	if rc != 0 {
		return s.c.d.err(rc, "cuStreamDestroy_v2")
	}
	return nil
}

// NewEvent creates an event that records timing (CU_EVENT_DEFAULT).
func (c *Context) NewEvent() (*Event, error) {
	h, err := c.ctx("cuEventCreate")
	if err != nil {
		return nil, err
	}
	e, rc := cuEventCreate(c.d.api, h, eventDefault)
	if rc != 0 {
		return nil, c.d.err(rc, "cuEventCreate")
	}
	return &Event{c: c, h: e}, nil
}

// Event marks a point in a stream's work.
type Event struct {
	c *Context
	h uintptr
}

func (e *Event) ctx(call string) (uintptr, error) {
	if e.h == 0 {
		return 0, fmt.Errorf("%s: the event was destroyed", call)
	}
	return e.c.ctx(call)
}

// Record queues the event on s: it completes when the work queued on s
// before it has.
func (e *Event) Record(s *Stream) error {
	h, err := e.ctx("cuEventRecord")
	if err != nil {
		return err
	}
	if rc := cuEventRecord(e.c.d.api, h, e.h, s.h); rc != 0 {
		return e.c.d.err(rc, "cuEventRecord")
	}
	return nil
}

// Sync waits for the event to complete.
func (e *Event) Sync() error {
	h, err := e.ctx("cuEventSynchronize")
	if err != nil {
		return err
	}
	if rc := cuEventSynchronize(e.c.d.api, h, e.h); rc != 0 {
		return e.c.d.err(rc, "cuEventSynchronize")
	}
	return nil
}

// Destroy destroys the event. Later calls do nothing.
func (e *Event) Destroy() error {
	if e.h == 0 {
		return nil
	}
	h, err := e.c.ctx("cuEventDestroy_v2")
	if err != nil {
		return err
	}
	rc := cuEventDestroy(e.c.d.api, h, e.h)
	e.h = 0
	if rc != 0 {
		return e.c.d.err(rc, "cuEventDestroy_v2")
	}
	return nil
}

// Elapsed is the time in milliseconds between two completed events of one
// context (about 0.5 µs resolution).
func Elapsed(start, end *Event) (float32, error) {
	h, err := end.ctx("cuEventElapsedTime")
	if err != nil {
		return 0, err
	}
	if start.h == 0 {
		return 0, errors.New("cuEventElapsedTime: the start event was destroyed")
	}
	ms, rc := cuEventElapsedTime(end.c.d.api, h, start.h, end.h)
	if rc != 0 {
		return 0, end.c.d.err(rc, "cuEventElapsedTime")
	}
	return ms, nil
}

// LoadModule JIT-compiles PTX for the context's device and loads it
// (cuModuleLoadDataEx). When the PTX does not compile, the error carries
// the JIT compiler's log.
func (c *Context) LoadModule(ptx string) (*Module, error) {
	h, err := c.ctx("cuModuleLoadDataEx")
	if err != nil {
		return nil, err
	}
	m, log, rc := cuModuleLoadDataEx(c.d.api, h, ptx)
	if rc != 0 {
		err := c.d.err(rc, fmt.Sprintf("cuModuleLoadDataEx(%d bytes of PTX)", len(ptx)))
		if log = strings.TrimSpace(log); log != "" {
			err = fmt.Errorf("%w; JIT log: %s", err, log)
		}
		return nil, err
	}
	return &Module{c: c, h: m}, nil
}

// Module is a loaded PTX module.
type Module struct {
	c *Context
	h uintptr
}

// Function looks up a kernel (an extern "C" entry point) of the module.
func (m *Module) Function(name string) (Function, error) {
	if m.h == 0 {
		return Function{}, fmt.Errorf("cuModuleGetFunction(%s): the module was unloaded", name)
	}
	h, err := m.c.ctx("cuModuleGetFunction")
	if err != nil {
		return Function{}, err
	}
	f, rc := cuModuleGetFunction(m.c.d.api, h, m.h, name)
	if rc != 0 {
		return Function{}, m.c.d.err(rc, fmt.Sprintf("cuModuleGetFunction(%s)", name))
	}
	return Function{h: f, name: name}, nil
}

// Unload unloads the module; its Functions must not be launched after.
// Later calls do nothing.
func (m *Module) Unload() error {
	if m.h == 0 {
		return nil
	}
	h, err := m.c.ctx("cuModuleUnload")
	if err != nil {
		return err
	}
	rc := cuModuleUnload(m.c.d.api, h, m.h)
	m.h = 0
	if rc != 0 {
		return m.c.d.err(rc, "cuModuleUnload")
	}
	return nil
}

// Function is a kernel of a loaded Module. The zero Function is not one.
type Function struct {
	h    uintptr
	name string
}

// Name is the kernel's entry point name.
func (f Function) Name() string { return f.name }
