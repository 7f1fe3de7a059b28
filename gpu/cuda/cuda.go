package cuda

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/gpu"
	"github.com/splash-encode/splash/gpu/cuda/sys"
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

// Devices lists the NVIDIA GPUs with their total and free memory through
// the CUDA driver. Reading the free memory retains each device's primary
// context for a moment. Without a usable driver the error matches
// gpu.ErrNoDriver (see LoadDriver).
func Devices() ([]gpu.Device, error) {
	d, err := LoadDriver()
	if err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	n, err := d.DeviceCount()
	if err != nil {
		return nil, fmt.Errorf("cuda: count devices: %w", err)
	}
	devs := make([]gpu.Device, 0, n)
	for i := 0; i < n; i++ {
		info, err := d.Device(i)
		if err != nil {
			return nil, fmt.Errorf("cuda: device %d: %w", i, err)
		}
		free, err := freeMemory(d, i)
		if err != nil {
			return nil, fmt.Errorf("cuda: device %d (%s): free memory: %w", i, info.Name, err)
		}
		devs = append(devs, gpu.Device{Index: i, Name: info.Name, TotalMemory: info.TotalMemory, FreeMemory: free})
	}
	return devs, nil
}

// freeMemory reads device i's free memory through its primary context.
func freeMemory(d *sys.Driver, i int) (free uint64, err error) {
	c, err := d.Retain(i)
	if err != nil {
		return 0, err
	}
	defer func() {
		if rerr := c.Release(); rerr != nil && err == nil {
			err = rerr
		}
	}()
	free, _, err = c.MemInfo()
	return free, err
}

// Engine runs splash's kernels on one GPU. It uses the device's primary
// context (the one the CUDA runtime, and so ONNX Runtime, uses too) and one
// stream of its own, and keeps its device buffers between calls, growing
// them when a batch needs more. Its methods are safe for concurrent use;
// calls run one at a time.
type Engine struct {
	mu     sync.Mutex
	index  int
	ctx    *sys.Context
	stream *sys.Stream
	closed bool

	modules                  []*sys.Module
	poolMax, poolSum         sys.Function
	sparsifySel, sparsifyWri sys.Function

	// Device buffers, reused across calls.
	logits, mask, pooled                    buffer
	counts, thresh, tieKeep, offsets, terms buffer
	weights                                 buffer
}

// buffer is one device allocation that grows on demand.
type buffer struct {
	name string
	ptr  sys.DevicePtr
	size int
}

// ensure makes b hold at least n bytes (contents are not kept).
func (e *Engine) ensure(b *buffer, n int) error {
	if n <= b.size {
		return nil
	}
	if err := e.free(b); err != nil {
		return err
	}
	const grain = 1 << 16
	size := (n + grain - 1) / grain * grain
	p, err := e.ctx.Alloc(size)
	if err != nil {
		return fmt.Errorf("cuda: allocate %s: %w", b.name, err)
	}
	b.ptr, b.size = p, size
	return nil
}

func (e *Engine) free(b *buffer) error {
	if b.size == 0 {
		return nil
	}
	err := e.ctx.Free(b.ptr)
	b.ptr, b.size = 0, 0
	if err != nil {
		return fmt.Errorf("cuda: free %s: %w", b.name, err)
	}
	return nil
}

// Open makes an Engine on device deviceIndex: it retains the device's
// primary context, creates a stream and loads kernels.PoolPTX and
// kernels.SparsifyPTX (JIT-compiled by the driver for the device). ctx
// only bounds the start; the Engine lives until Close. Without a usable
// driver the error matches gpu.ErrNoDriver.
func Open(ctx context.Context, deviceIndex int) (*Engine, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cuda: open device %d: %w", deviceIndex, err)
	}
	d, err := LoadDriver()
	if err != nil {
		return nil, fmt.Errorf("cuda: open device %d: %w", deviceIndex, err)
	}
	n, err := d.DeviceCount()
	if err != nil {
		return nil, fmt.Errorf("cuda: open device %d: %w", deviceIndex, err)
	}
	if deviceIndex < 0 || deviceIndex >= n {
		return nil, fmt.Errorf("cuda: open device %d: no such device (%d present)", deviceIndex, n)
	}
	c, err := d.Retain(deviceIndex)
	if err != nil {
		return nil, fmt.Errorf("cuda: open device %d: %w", deviceIndex, err)
	}
	e := &Engine{
		index: deviceIndex, ctx: c,
		logits: buffer{name: "logits"}, mask: buffer{name: "mask"}, pooled: buffer{name: "pooled"},
		counts: buffer{name: "counts"}, thresh: buffer{name: "thresholds"}, tieKeep: buffer{name: "tie counts"},
		offsets: buffer{name: "offsets"}, terms: buffer{name: "terms"}, weights: buffer{name: "weights"},
	}
	if e.stream, err = c.NewStream(); err != nil {
		err = fmt.Errorf("cuda: open device %d: %w", deviceIndex, err)
		return nil, errors.Join(err, e.Close())
	}
	if err := e.load(); err != nil {
		return nil, errors.Join(err, e.Close())
	}
	return e, nil
}

// load loads the modules and looks up the entry points.
func (e *Engine) load() error {
	for _, m := range []struct {
		file, ptx string
		fns       map[string]*sys.Function
	}{
		{"pool.ptx", kernels.PoolPTX, map[string]*sys.Function{
			kernels.EntryPoolMax: &e.poolMax, kernels.EntryPoolSum: &e.poolSum,
		}},
		{"sparsify.ptx", kernels.SparsifyPTX, map[string]*sys.Function{
			kernels.EntrySparsifySelect: &e.sparsifySel, kernels.EntrySparsifyWrite: &e.sparsifyWri,
		}},
	} {
		mod, err := e.ctx.LoadModule(m.ptx)
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

// Close waits for the engine's work, frees the device buffers, unloads the
// kernels, destroys the stream and releases the primary context. It is
// safe to call more than once.
func (e *Engine) Close() error {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	var errs []error
	if e.stream != nil {
		errs = append(errs, e.stream.Sync())
	}
	for _, b := range []*buffer{&e.logits, &e.mask, &e.pooled, &e.counts, &e.thresh, &e.tieKeep, &e.offsets, &e.terms, &e.weights} {
		errs = append(errs, e.free(b))
	}
	for _, m := range e.modules {
		errs = append(errs, m.Unload())
	}
	e.modules = nil
	if e.stream != nil {
		errs = append(errs, e.stream.Destroy())
	}
	errs = append(errs, e.ctx.Release())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cuda: close device %d: %w", e.index, err)
	}
	return nil
}

// run executes fn, one call at a time. The sys package makes the
// engine's context current for each driver call, on whichever thread runs
// it.
func (e *Engine) run(op string, fn func() error) error {
	if e == nil {
		return fmt.Errorf("cuda: %s: nil Engine", op)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("cuda: %s: %w", op, ErrClosed)
	}
	return fn()
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
		return toHost(e, out, &e.pooled)
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
		if err := toDevice(e, &e.pooled, pooled); err != nil {
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
	if err := toDevice(e, &e.logits, logits); err != nil {
		return err
	}
	return toDevice(e, &e.mask, mask)
}

// launchPool pools the uploaded logits into e.pooled. Context is current.
func (e *Engine) launchPool(p encode.Pooling, b, t, v int) error {
	if err := e.ensure(&e.pooled, b*v*4); err != nil {
		return err
	}
	fn, name := e.poolMax, kernels.EntryPoolMax
	if p == encode.PoolSum {
		fn, name = e.poolSum, kernels.EntryPoolSum
	}
	grid := (v + poolBlock - 1) / poolBlock
	err := e.launch(fn, grid, b, poolBlock,
		e.logits.ptr, e.mask.ptr, e.pooled.ptr, int32(b), int32(t), int32(v))
	if err != nil {
		return fmt.Errorf("cuda: launch %s (b=%d, t=%d, v=%d): %w", name, b, t, v, err)
	}
	return nil
}

// sparsifyPooled runs both sparsify passes on e.pooled ([b][v], on the
// device) and copies the CSR to the host. Context is current.
func (e *Engine) sparsifyPooled(b, v int, minWeight float32, topK int) (offsets, terms []uint32, weights []float32, err error) {
	for _, buf := range []*buffer{&e.counts, &e.thresh, &e.tieKeep} {
		if err := e.ensure(buf, b*4); err != nil {
			return nil, nil, nil, err
		}
	}
	if err := e.ensure(&e.offsets, (b+1)*4); err != nil {
		return nil, nil, nil, err
	}
	err = e.launch(e.sparsifySel, b, 1, sparsifyBlock,
		e.pooled.ptr, int32(b), int32(v), minWeight, int32(topK),
		e.counts.ptr, e.thresh.ptr, e.tieKeep.ptr)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cuda: launch %s (b=%d, v=%d, top-k=%d): %w", kernels.EntrySparsifySelect, b, v, topK, err)
	}
	counts := make([]uint32, b)
	if err := toHost(e, counts, &e.counts); err != nil {
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
	if err := toDevice(e, &e.offsets, offsets); err != nil {
		return nil, nil, nil, err
	}
	if err := e.ensure(&e.terms, int(total)*4); err != nil {
		return nil, nil, nil, err
	}
	if err := e.ensure(&e.weights, int(total)*4); err != nil {
		return nil, nil, nil, err
	}
	err = e.launch(e.sparsifyWri, b, 1, sparsifyBlock,
		e.pooled.ptr, int32(b), int32(v), minWeight,
		e.thresh.ptr, e.tieKeep.ptr, e.offsets.ptr, e.terms.ptr, e.weights.ptr)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cuda: launch %s (b=%d, v=%d, nnz=%d): %w", kernels.EntrySparsifyWrite, b, v, total, err)
	}
	terms = make([]uint32, total)
	weights = make([]float32, total)
	if err := toHost(e, terms, &e.terms); err != nil {
		return nil, nil, nil, fmt.Errorf("after %s (b=%d, v=%d): %w", kernels.EntrySparsifyWrite, b, v, err)
	}
	if err := toHost(e, weights, &e.weights); err != nil {
		return nil, nil, nil, err
	}
	return offsets, terms, weights, nil
}

// launch queues fn on the engine's stream with grid (gx, gy) and a 1-D
// block. args are the kernel's parameters (int32, float32, DevicePtr).
func (e *Engine) launch(fn sys.Function, gx, gy, block int, args ...any) error {
	return e.stream.Launch(fn, [3]uint32{uint32(gx), uint32(gy), 1}, [3]uint32{uint32(block), 1, 1}, 0, args...)
}

// toDevice copies src into buf, growing it first. The copy is queued on
// the stream; the driver stages pageable memory before returning, so src
// may change afterwards.
func toDevice[T uint32 | int64 | float32](e *Engine, buf *buffer, src []T) error {
	var zero T
	n := len(src) * int(unsafe.Sizeof(zero))
	if err := e.ensure(buf, n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	if err := e.stream.CopyHtoD(buf.ptr, unsafe.Pointer(&src[0]), n); err != nil {
		return fmt.Errorf("cuda: copy %s to device: %w", buf.name, err)
	}
	return nil
}

// toHost fills dst from the start of buf and waits for the stream, so
// that faults of the kernels before it surface here.
func toHost[T uint32 | float32](e *Engine, dst []T, buf *buffer) error {
	var zero T
	n := len(dst) * int(unsafe.Sizeof(zero))
	if n == 0 {
		return nil
	}
	if n > buf.size {
		return fmt.Errorf("cuda: copy %s to host: %d bytes wanted, %d allocated", buf.name, n, buf.size)
	}
	if err := e.stream.CopyDtoH(unsafe.Pointer(&dst[0]), buf.ptr, n); err != nil {
		return fmt.Errorf("cuda: copy %s to host: %w", buf.name, err)
	}
	if err := e.stream.Sync(); err != nil {
		return fmt.Errorf("cuda: copy %s to host: %w", buf.name, err)
	}
	return nil
}
