//go:build cuda

package cuda

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/gpu"
	"github.com/splash-encode/splash/kernels"
)

// Launch geometry. The pooling kernels take any block size; the sparsify
// kernels need a multiple of 32 up to 1024.
const (
	poolBlock     = 256
	sparsifyBlock = 512
	maxGridY      = 65535 // CUDA's limit on gridDim.y: the pooling batch size
)

// ErrClosed is returned by the methods of an Engine after Close.
var ErrClosed = errors.New("cuda: engine is closed")

// Devices lists the NVIDIA GPUs with their total and free memory. Reading the
// free memory retains each device's primary context for a moment.
func Devices() (devs []gpu.Device, err error) {
	defer recoverTo(&err, "list devices")
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("cuda: count devices: %w", err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for i := 0; i < n; i++ {
		d, err := cu.GetDevice(i)
		if err != nil {
			return nil, fmt.Errorf("cuda: device %d: %w", i, err)
		}
		name, err := d.Name()
		if err != nil {
			return nil, fmt.Errorf("cuda: device %d: name: %w", i, err)
		}
		total, err := d.TotalMem()
		if err != nil {
			return nil, fmt.Errorf("cuda: device %d (%s): total memory: %w", i, name, err)
		}
		free, err := freeMemory(d)
		if err != nil {
			return nil, fmt.Errorf("cuda: device %d (%s): free memory: %w", i, name, err)
		}
		devs = append(devs, gpu.Device{Index: i, Name: name, TotalMemory: uint64(total), FreeMemory: free})
	}
	return devs, nil
}

// freeMemory reads a device's free memory through its primary context. The
// caller has locked the OS thread.
func freeMemory(d cu.Device) (free uint64, err error) {
	pctx, err := d.RetainPrimaryCtx()
	if err != nil {
		return 0, fmt.Errorf("retain primary context: %w", err)
	}
	defer func() {
		if rerr := d.ReleasePrimaryCtx(); rerr != nil && err == nil {
			err = fmt.Errorf("release primary context: %w", rerr)
		}
	}()
	if err := cu.PushCurrentCtx(pctx); err != nil {
		return 0, fmt.Errorf("make primary context current: %w", err)
	}
	defer func() {
		if _, perr := cu.PopCurrentCtx(); perr != nil && err == nil {
			err = fmt.Errorf("pop primary context: %w", perr)
		}
	}()
	f, _, err := cu.MemInfo()
	if err != nil {
		return 0, err
	}
	return uint64(f), nil
}

// Engine runs splash's kernels on one GPU. It uses the device's primary
// context (the one the CUDA runtime, and so ONNX Runtime, uses too) and keeps
// its device buffers between calls, growing them when a batch needs more.
// Its methods are safe for concurrent use; calls run one at a time. Each call
// locks its goroutine to the OS thread and pushes the context for the call's
// duration, as the CUDA driver binds contexts to threads.
type Engine struct {
	mu     sync.Mutex
	index  int
	dev    cu.Device
	ctx    cu.CUContext
	closed bool

	modules                  []cu.Module
	poolMax, poolSum         cu.Function
	sparsifySel, sparsifyWri cu.Function

	// Device buffers, reused across calls.
	logits, mask, pooled                    buffer
	counts, thresh, tieKeep, offsets, terms buffer
	weights                                 buffer
}

// buffer is one device allocation that grows on demand.
type buffer struct {
	name string
	ptr  cu.DevicePtr
	size int64
}

// ensure makes the buffer hold at least n bytes (contents are not kept).
func (b *buffer) ensure(n int64) error {
	if n <= b.size {
		return nil
	}
	if err := b.free(); err != nil {
		return err
	}
	const grain = 1 << 16
	size := (n + grain - 1) / grain * grain
	p, err := cu.MemAlloc(size)
	if err != nil {
		return fmt.Errorf("cuda: allocate %s (%d bytes): %w", b.name, size, err)
	}
	b.ptr, b.size = p, size
	return nil
}

func (b *buffer) free() error {
	if b.size == 0 {
		return nil
	}
	err := cu.MemFree(b.ptr)
	b.ptr, b.size = 0, 0
	if err != nil {
		return fmt.Errorf("cuda: free %s: %w", b.name, err)
	}
	return nil
}

// Open makes an Engine on device deviceIndex: it retains the device's primary
// context and loads kernels.PoolPTX and kernels.SparsifyPTX (JIT-compiled by
// the driver for the device). ctx only bounds the start; the Engine lives
// until Close.
func Open(ctx context.Context, deviceIndex int) (e *Engine, err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cuda: open device %d: %w", deviceIndex, err)
	}
	defer recoverTo(&err, fmt.Sprintf("open device %d", deviceIndex))
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("cuda: open device %d: count devices: %w", deviceIndex, err)
	}
	if deviceIndex < 0 || deviceIndex >= n {
		return nil, fmt.Errorf("cuda: open device %d: no such device (%d present)", deviceIndex, n)
	}
	dev, err := cu.GetDevice(deviceIndex)
	if err != nil {
		return nil, fmt.Errorf("cuda: open device %d: %w", deviceIndex, err)
	}
	pctx, err := dev.RetainPrimaryCtx()
	if err != nil {
		return nil, fmt.Errorf("cuda: open device %d: retain primary context: %w", deviceIndex, err)
	}
	e = &Engine{
		index: deviceIndex, dev: dev, ctx: pctx,
		logits: buffer{name: "logits"}, mask: buffer{name: "mask"}, pooled: buffer{name: "pooled"},
		counts: buffer{name: "counts"}, thresh: buffer{name: "thresholds"}, tieKeep: buffer{name: "tie counts"},
		offsets: buffer{name: "offsets"}, terms: buffer{name: "terms"}, weights: buffer{name: "weights"},
	}
	if err := e.run("load kernels", e.load); err != nil {
		return nil, errors.Join(err, e.Close())
	}
	return e, nil
}

// load loads the modules and looks up the entry points; the context is current.
func (e *Engine) load() error {
	for _, m := range []struct {
		file, ptx string
		fns       map[string]*cu.Function
	}{
		{"pool.ptx", kernels.PoolPTX, map[string]*cu.Function{
			kernels.EntryPoolMax: &e.poolMax, kernels.EntryPoolSum: &e.poolSum,
		}},
		{"sparsify.ptx", kernels.SparsifyPTX, map[string]*cu.Function{
			kernels.EntrySparsifySelect: &e.sparsifySel, kernels.EntrySparsifyWrite: &e.sparsifyWri,
		}},
	} {
		mod, err := loadModule(m.ptx)
		if err != nil {
			return fmt.Errorf("cuda: load kernels/%s (%s) on device %d: %w", m.file, kernels.PTXArch, e.index, err)
		}
		e.modules = append(e.modules, mod)
		for name, fn := range m.fns {
			f, err := mod.Function(name)
			if err != nil {
				return fmt.Errorf("cuda: kernels/%s: entry %s: %w", m.file, name, err)
			}
			*fn = f
		}
	}
	return nil
}

// loadModule JIT-loads PTX; on failure it loads again with an error log
// buffer so that the error carries the JIT compiler's message.
func loadModule(ptx string) (cu.Module, error) {
	mod, err := cu.LoadData(ptx)
	if err == nil {
		return mod, nil
	}
	logBuf := &cu.JITErrorLogBuffer{Buffer: make([]byte, 4096)}
	if _, err2 := cu.LoadDataEx(ptx, logBuf); err2 != nil {
		if msg := string(bytes.TrimRight(logBuf.Buffer, "\x00")); msg != "" {
			return cu.Module{}, fmt.Errorf("%w: %s", err, msg)
		}
	}
	return cu.Module{}, err
}

// Close frees the device buffers, unloads the kernels and releases the
// primary context. It is safe to call more than once.
func (e *Engine) Close() (err error) {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	defer recoverTo(&err, "close")
	e.closed = true
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var errs []error
	if perr := cu.PushCurrentCtx(e.ctx); perr != nil {
		errs = append(errs, fmt.Errorf("cuda: close device %d: make context current: %w", e.index, perr))
	} else {
		for _, b := range []*buffer{&e.logits, &e.mask, &e.pooled, &e.counts, &e.thresh, &e.tieKeep, &e.offsets, &e.terms, &e.weights} {
			errs = append(errs, b.free())
		}
		for _, m := range e.modules {
			if uerr := m.Unload(); uerr != nil {
				errs = append(errs, fmt.Errorf("cuda: close device %d: unload module: %w", e.index, uerr))
			}
		}
		e.modules = nil
		if _, perr := cu.PopCurrentCtx(); perr != nil {
			errs = append(errs, fmt.Errorf("cuda: close device %d: pop context: %w", e.index, perr))
		}
	}
	if rerr := e.dev.ReleasePrimaryCtx(); rerr != nil {
		errs = append(errs, fmt.Errorf("cuda: close device %d: release primary context: %w", e.index, rerr))
	}
	return errors.Join(errs...)
}

// run executes fn with the engine's context current on a locked OS thread,
// one call at a time, turning a panic into an error.
func (e *Engine) run(op string, fn func() error) (err error) {
	if e == nil {
		return fmt.Errorf("cuda: %s: nil Engine", op)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("cuda: %s: %w", op, ErrClosed)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.PushCurrentCtx(e.ctx); err != nil {
		return fmt.Errorf("cuda: %s: make context of device %d current: %w", op, e.index, err)
	}
	defer func() {
		if _, perr := cu.PopCurrentCtx(); perr != nil && err == nil {
			err = fmt.Errorf("cuda: %s: pop context: %w", op, perr)
		}
	}()
	defer recoverTo(&err, op)
	return fn()
}

// recoverTo turns a panic (gorgonia.org/cu panics in a few places) into an error.
func recoverTo(err *error, op string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("cuda: %s: panic: %v", op, r)
	}
}

// PoolMax pools logits [b][t][v] (row-major) under mask [b][t] (0 = padding)
// into [b][v]: log1p(relu(max over unmasked positions)), as
// kernels.PoolMaxTwin (up to 1 ulp from CUDA's log1pf).
func (e *Engine) PoolMax(logits []float32, mask []int64, b, t, v int) ([]float32, error) {
	return e.pool(encode.PoolMax, logits, mask, b, t, v)
}

// PoolSum is PoolMax with sum pooling (SPLADE v1), as kernels.PoolSumTwin.
func (e *Engine) PoolSum(logits []float32, mask []int64, b, t, v int) ([]float32, error) {
	return e.pool(encode.PoolSum, logits, mask, b, t, v)
}

func (e *Engine) pool(p encode.Pooling, logits []float32, mask []int64, b, t, v int) ([]float32, error) {
	if err := checkPool(p, logits, mask, b, t, v); err != nil {
		return nil, err
	}
	out := make([]float32, b*v)
	err := e.run("pool "+p.String(), func() error {
		if err := e.uploadPoolInputs(logits, mask); err != nil {
			return err
		}
		if err := e.launchPool(p, b, t, v); err != nil {
			return err
		}
		return toHost(out, &e.pooled)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Sparsify turns pooled rows [b][v] into CSR on the device: document i owns
// terms[offsets[i]:offsets[i+1]] (ascending) and the aligned weights. It keeps
// weights > minWeight and > 0, and with topK > 0 the topK largest of them
// (ties: lower term id), exactly as kernels.SparsifyTwin.
func (e *Engine) Sparsify(pooled []float32, b, v int, minWeight float32, topK int) (offsets, terms []uint32, weights []float32, err error) {
	if err := kernels.CheckSparsify(len(pooled), b, v, minWeight, topK); err != nil {
		return nil, nil, nil, fmt.Errorf("cuda: sparsify: %w", err)
	}
	err = e.run("sparsify", func() error {
		if err := toDevice(&e.pooled, pooled); err != nil {
			return err
		}
		offsets, terms, weights, err = e.sparsifyPooled(b, v, minWeight, topK)
		return err
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return offsets, terms, weights, nil
}

// PoolSparsify pools and sparsifies in one call: the pooled [b][v] rows stay
// on the device and only the CSR comes back. Equal to pooling with p and
// then Sparsify.
func (e *Engine) PoolSparsify(p encode.Pooling, logits []float32, mask []int64, b, t, v int, minWeight float32, topK int) (offsets, terms []uint32, weights []float32, err error) {
	if err := checkPool(p, logits, mask, b, t, v); err != nil {
		return nil, nil, nil, err
	}
	if err := kernels.CheckSparsify(b*v, b, v, minWeight, topK); err != nil {
		return nil, nil, nil, fmt.Errorf("cuda: pool-sparsify: %w", err)
	}
	err = e.run("pool-sparsify "+p.String(), func() error {
		if err := e.uploadPoolInputs(logits, mask); err != nil {
			return err
		}
		if err := e.launchPool(p, b, t, v); err != nil {
			return err
		}
		offsets, terms, weights, err = e.sparsifyPooled(b, v, minWeight, topK)
		return err
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return offsets, terms, weights, nil
}

func checkPool(p encode.Pooling, logits []float32, mask []int64, b, t, v int) error {
	if p != encode.PoolMax && p != encode.PoolSum {
		return fmt.Errorf("cuda: pool: unknown pooling %v", p)
	}
	if err := kernels.CheckPool(len(logits), len(mask), -1, b, t, v); err != nil {
		return fmt.Errorf("cuda: pool %s: %w", p, err)
	}
	if b > maxGridY {
		return fmt.Errorf("cuda: pool %s: batch of %d documents: at most %d per call", p, b, maxGridY)
	}
	return nil
}

// uploadPoolInputs copies logits and mask to the device. Context is current.
func (e *Engine) uploadPoolInputs(logits []float32, mask []int64) error {
	if err := toDevice(&e.logits, logits); err != nil {
		return err
	}
	return toDevice(&e.mask, mask)
}

// launchPool pools the uploaded logits into e.pooled. Context is current.
func (e *Engine) launchPool(p encode.Pooling, b, t, v int) error {
	if err := e.pooled.ensure(int64(b) * int64(v) * 4); err != nil {
		return err
	}
	fn, name := e.poolMax, kernels.EntryPoolMax
	if p == encode.PoolSum {
		fn, name = e.poolSum, kernels.EntryPoolSum
	}
	grid := (v + poolBlock - 1) / poolBlock
	err := launch(fn, grid, b, poolBlock,
		ptrArg(e.logits.ptr), ptrArg(e.mask.ptr), ptrArg(e.pooled.ptr),
		intArg(b), intArg(t), intArg(v))
	if err != nil {
		return fmt.Errorf("cuda: launch %s (b=%d, t=%d, v=%d): %w", name, b, t, v, err)
	}
	return nil
}

// sparsifyPooled runs both sparsify passes on e.pooled ([b][v], on the
// device) and copies the CSR to the host. Context is current.
func (e *Engine) sparsifyPooled(b, v int, minWeight float32, topK int) (offsets, terms []uint32, weights []float32, err error) {
	for _, buf := range []*buffer{&e.counts, &e.thresh, &e.tieKeep} {
		if err := buf.ensure(int64(b) * 4); err != nil {
			return nil, nil, nil, err
		}
	}
	if err := e.offsets.ensure(int64(b+1) * 4); err != nil {
		return nil, nil, nil, err
	}
	err = launch(e.sparsifySel, b, 1, sparsifyBlock,
		ptrArg(e.pooled.ptr), intArg(b), intArg(v), f32Arg(minWeight), intArg(topK),
		ptrArg(e.counts.ptr), ptrArg(e.thresh.ptr), ptrArg(e.tieKeep.ptr))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cuda: launch %s (b=%d, v=%d, top-k=%d): %w", kernels.EntrySparsifySelect, b, v, topK, err)
	}
	counts := make([]uint32, b)
	if err := toHost(counts, &e.counts); err != nil {
		return nil, nil, nil, fmt.Errorf("after %s (b=%d, v=%d): %w", kernels.EntrySparsifySelect, b, v, err)
	}
	offsets = make([]uint32, b+1)
	var total uint64
	for i, c := range counts {
		if c > uint32(v) {
			return nil, nil, nil, fmt.Errorf("cuda: %s: document %d: count %d exceeds v=%d", kernels.EntrySparsifySelect, i, c, v)
		}
		total += uint64(c)
		offsets[i+1] = uint32(total) // b*v fits in uint32 (kernels.CheckSparsify)
	}
	if total == 0 {
		return offsets, []uint32{}, []float32{}, nil
	}
	if err := toDevice(&e.offsets, offsets); err != nil {
		return nil, nil, nil, err
	}
	if err := e.terms.ensure(int64(total) * 4); err != nil {
		return nil, nil, nil, err
	}
	if err := e.weights.ensure(int64(total) * 4); err != nil {
		return nil, nil, nil, err
	}
	err = launch(e.sparsifyWri, b, 1, sparsifyBlock,
		ptrArg(e.pooled.ptr), intArg(b), intArg(v), f32Arg(minWeight),
		ptrArg(e.thresh.ptr), ptrArg(e.tieKeep.ptr), ptrArg(e.offsets.ptr),
		ptrArg(e.terms.ptr), ptrArg(e.weights.ptr))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cuda: launch %s (b=%d, v=%d, nnz=%d): %w", kernels.EntrySparsifyWrite, b, v, total, err)
	}
	terms = make([]uint32, total)
	weights = make([]float32, total)
	if err := toHost(terms, &e.terms); err != nil {
		return nil, nil, nil, fmt.Errorf("after %s (b=%d, v=%d): %w", kernels.EntrySparsifyWrite, b, v, err)
	}
	if err := toHost(weights, &e.weights); err != nil {
		return nil, nil, nil, err
	}
	return offsets, terms, weights, nil
}

// Kernel arguments travel as 8-byte words (gorgonia.org/cu copies 8 bytes
// per parameter); the driver reads each parameter's own size from the low
// bytes (little-endian).
func ptrArg(p cu.DevicePtr) uint64 { return uint64(p) }
func intArg(n int) uint64          { return uint64(uint32(int32(n))) }
func f32Arg(f float32) uint64      { return uint64(math.Float32bits(f)) }

// launch starts fn on the default stream with grid (gx, gy) and a 1-D block.
func launch(fn cu.Function, gx, gy, block int, args ...uint64) error {
	words := make([]uint64, len(args))
	copy(words, args)
	params := make([]unsafe.Pointer, len(words))
	for i := range words {
		params[i] = unsafe.Pointer(&words[i])
	}
	return fn.Launch(gx, gy, 1, block, 1, 1, 0, cu.NoStream, params)
}

// toDevice copies src into buf, growing it first.
func toDevice[T uint32 | int64 | float32](buf *buffer, src []T) error {
	var zero T
	n := int64(len(src)) * int64(unsafe.Sizeof(zero))
	if err := buf.ensure(n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	if err := cu.MemcpyHtoD(buf.ptr, unsafe.Pointer(&src[0]), n); err != nil {
		return fmt.Errorf("cuda: copy %s to device (%d bytes): %w", buf.name, n, err)
	}
	return nil
}

// toHost fills dst from the start of buf. The copy waits for the kernels
// before it on the default stream, so asynchronous kernel faults surface here.
func toHost[T uint32 | float32](dst []T, buf *buffer) error {
	var zero T
	n := int64(len(dst)) * int64(unsafe.Sizeof(zero))
	if n == 0 {
		return nil
	}
	if n > buf.size {
		return fmt.Errorf("cuda: copy %s to host: %d bytes wanted, %d allocated", buf.name, n, buf.size)
	}
	if err := cu.MemcpyDtoH(unsafe.Pointer(&dst[0]), buf.ptr, n); err != nil {
		return fmt.Errorf("cuda: copy %s to host (%d bytes): %w", buf.name, n, err)
	}
	return nil
}
