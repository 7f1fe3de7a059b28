package cuda

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/splash-encode/splash/gpu/cuda/sys"
	"github.com/splash-encode/splash/kernels"
)

// fp8Workspace is the cuBLASLt workspace of the FP8 GEMMs (32 MiB, the
// size NVIDIA recommends for Hopper).
const fp8Workspace = 32 << 20

// devFP8 is a weight matrix's E4M3 copy on the device: the codes
// (quantized on the host by the code TwinOps uses) and its scale (one
// float32, a device pointer for cuBLASLt's A_SCALE_POINTER).
type devFP8 struct {
	codes, scale sys.DevicePtr
}

// deviceFP8 is DeviceOps' state under --precision fp8: the cuBLASLt
// handle on the Ops' stream, the fp8.cu kernels, the workspace, and the
// activation's scratch (grown, never shrunk: amax and scale, then the
// E4M3 codes of the largest activation quantized so far).
type deviceFP8 struct {
	lt     *sys.Lt
	module *sys.Module
	fns    map[string]sys.Function
	ws     sys.DevicePtr
	stats  sys.DevicePtr // [0] amax bits, [1] the activation's scale
	codes  sys.DevicePtr
	codesN int
}

// EnableFP8 switches o (made with kernels.BF16 storage on a GPU of compute
// capability 9.0 or later) to --precision fp8: Matrix uploads an E4M3 copy
// of each weight matrix besides its bf16 values, and LinearT with such a
// matrix runs through cuBLASLt's FP8 GEMM (see FP8). Call it before the
// first Matrix.
func (o *DeviceOps) EnableFP8(lib *sys.CUBLASLtLib) (err error) {
	if o.dt != kernels.BF16 {
		return fmt.Errorf("cuda: fp8 GEMMs store activations as bf16; these Ops store %s", o.dt)
	}
	if o.fp8 != nil {
		return nil
	}
	f := &deviceFP8{fns: map[string]sys.Function{}}
	o.fp8 = f
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("cuda: enable fp8: %w", err), o.closeFP8())
		}
	}()
	if f.lt, err = lib.NewHandle(o.stream); err != nil {
		return err
	}
	if f.module, err = o.ctx.LoadModule(kernels.FP8PTX); err != nil {
		return fmt.Errorf("loading the fp8 kernels (fp8.ptx): %w", err)
	}
	for _, e := range kernels.FP8Entries() {
		name := kernels.Entry(e, o.dt)
		if f.fns[name], err = f.module.Function(name); err != nil {
			return fmt.Errorf("fp8.ptx: %w", err)
		}
	}
	if f.ws, err = o.ctx.Alloc(fp8Workspace); err != nil {
		return fmt.Errorf("the cuBLASLt workspace (%d MiB): %w", fp8Workspace>>20, err)
	}
	if f.stats, err = o.ctx.Alloc(8); err != nil {
		return err
	}
	return nil
}

// closeFP8 releases the fp8 state (not the weights' copies: Free does).
func (o *DeviceOps) closeFP8() error {
	f := o.fp8
	o.fp8 = nil
	if f == nil {
		return nil
	}
	var errs []error
	for _, p := range []sys.DevicePtr{f.codes, f.stats, f.ws} {
		if p != 0 {
			errs = append(errs, o.ctx.Free(p))
		}
	}
	if f.module != nil {
		errs = append(errs, f.module.Unload())
	}
	if f.lt != nil {
		errs = append(errs, f.lt.Destroy())
	}
	return errors.Join(errs...)
}

// uploadFP8 quantizes a weight matrix on the host (kernels.QuantizeFP8,
// as TwinOps does) and uploads its codes and scale beside b.
func (o *DeviceOps) uploadFP8(b *devBuf, data []float32) error {
	q := quantizeHostMatrix(data)
	codes, err := o.upload(q.codes, len(q.codes), 1)
	if err != nil {
		return fmt.Errorf("cuda: fp8 copy of a %d-value matrix: %w", len(data), err)
	}
	scale, err := o.upload(encodeFloats([]float32{q.scale}, kernels.F32), 1, 4)
	if err != nil {
		return errors.Join(err, o.Free(codes))
	}
	b.fp8 = &devFP8{codes: codes.(*devBuf).ptr, scale: scale.(*devBuf).ptr}
	return nil
}

// freeFP8 frees d's E4M3 copy, if any.
func (o *DeviceOps) freeFP8(d *devBuf) error {
	if d.fp8 == nil {
		return nil
	}
	q := d.fp8
	d.fp8 = nil
	return errors.Join(o.ctx.Free(q.codes), o.ctx.Free(q.scale))
}

// KeepBF16 drops b's E4M3 copy (Net.KeepHeadBF16): its GEMMs run in bf16.
func (o *DeviceOps) KeepBF16(b Buf) error {
	d, ok := b.(*devBuf)
	if !ok {
		return nil
	}
	return o.freeFP8(d)
}

// linearFP8 is LinearT with an E4M3 weight: the activation's amax
// (EntryFP8Amax into a zeroed word), its codes and scale
// (EntryFP8Quantize), then cuBLASLt's FP8 GEMM with both scale pointers,
// bf16 out: TwinOps.linearFP8 on the device.
func (o *DeviceOps) linearFP8(rows, n, k int, x Buf, w *devFP8, y Buf) error {
	if err := o.quantizeActivation(x, rows*k); err != nil {
		return fmt.Errorf("cuda: fp8 linear %dx%dx%d: %w", rows, n, k, err)
	}
	f := o.fp8
	return f.lt.MatmulFP8(n, rows, k, w.codes, w.scale, f.codes, f.stats.Add(4), ptr(y), f.ws, fp8Workspace)
}

// quantizeActivation queues the amax and the E4M3 codes of the first count
// values of x into the fp8 scratch (codes, and the scale at stats[1]).
func (o *DeviceOps) quantizeActivation(x Buf, count int) error {
	f := o.fp8
	if count > math.MaxInt32 {
		return fmt.Errorf("%d activations do not fit int32", count)
	}
	if count > f.codesN {
		if f.codes != 0 {
			if err := o.ctx.Free(f.codes); err != nil {
				return err
			}
			f.codes, f.codesN = 0, 0
		}
		p, err := o.ctx.Alloc(count)
		if err != nil {
			return fmt.Errorf("the activation's E4M3 codes: %w", err)
		}
		f.codes, f.codesN = p, count
	}
	if err := o.stream.Memset32(f.stats, 0, 1); err != nil {
		return err
	}
	block := [3]uint32{elementBlock, 1, 1}
	amax, quant := kernels.Entry(kernels.EntryFP8Amax, o.dt), kernels.Entry(kernels.EntryFP8Quantize, o.dt)
	if err := o.stream.Launch(f.fns[amax], gridFor(count), block, 0, ptr(x), i32(count), f.stats); err != nil {
		return err
	}
	return o.stream.Launch(f.fns[quant], gridFor(count), block, 0, ptr(x), i32(count), f.stats, f.codes, f.stats.Add(4))
}

// quantizeFP8 runs the activation quantization on the first n values of x
// and returns the codes and the scale (the kernel check's view of
// EntryFP8Amax and EntryFP8Quantize), waiting for the work.
func (o *DeviceOps) quantizeFP8(x Buf, n int) ([]uint8, float32, error) {
	if o.fp8 == nil {
		return nil, 0, fmt.Errorf("cuda: fp8 quantize: these Ops are not fp8 (EnableFP8)")
	}
	if err := o.quantizeActivation(x, n); err != nil {
		return nil, 0, fmt.Errorf("cuda: fp8 quantize: %w", err)
	}
	st, err := o.download(&devBuf{ptr: o.fp8.stats, n: 2, size: 4}, 8)
	if err != nil {
		return nil, 0, err
	}
	scale := unsafe.Slice((*float32)(st), 2)[1]
	if n == 0 {
		return nil, scale, nil
	}
	st, err = o.download(&devBuf{ptr: o.fp8.codes, n: n, size: 1}, n)
	if err != nil {
		return nil, 0, err
	}
	return append([]uint8(nil), unsafe.Slice((*uint8)(st), n)...), scale, nil
}

// newFP8Ops makes DeviceOps of --precision fp8 on o's device (the kernel
// and engine checks' fp8 cases), or errFP8Unsupported below compute
// capability 9.0.
func (o *DeviceOps) newFP8Ops() (Ops, func() error, error) {
	info, err := o.ctx.Driver().Device(o.ctx.Device())
	if err != nil {
		return nil, nil, err
	}
	if info.ComputeMajor < fp8MinCompute {
		return nil, nil, fmt.Errorf("%w; cuda:%d (%s) is %d.%d", errFP8Unsupported, o.ctx.Device(), info.Name, info.ComputeMajor, info.ComputeMinor)
	}
	if cublas.lib == nil {
		return nil, nil, fmt.Errorf("cuda: fp8 Ops: cuBLAS is not loaded (loadLibraries)")
	}
	f, err := NewDeviceOps(o.ctx, cublas.lib, kernels.BF16, sys.Compute32F)
	if err != nil {
		return nil, nil, err
	}
	if err := enableFP8(f); err != nil {
		return nil, nil, errors.Join(err, f.Close())
	}
	return f, f.Close, nil
}

// cublasLt is the process's cuBLASLt, loaded on the first --precision fp8
// engine, as loadLibraries loads cuBLAS: process-wide, never closed.
var cublasLt struct {
	once sync.Once
	lib  *sys.CUBLASLtLib
	err  error
}

// enableFP8 loads cuBLASLt (once) and calls o.EnableFP8.
func enableFP8(o *DeviceOps) error {
	cublasLt.once.Do(func() { cublasLt.lib, cublasLt.err = sys.LoadCUBLASLt() })
	if cublasLt.err != nil {
		return fmt.Errorf("--precision fp8 needs cuBLASLt: %w", cublasLt.err)
	}
	return o.EnableFP8(cublasLt.lib)
}
