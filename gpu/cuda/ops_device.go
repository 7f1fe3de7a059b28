package cuda

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/splash-encode/splash/gpu/cuda/sys"
	"github.com/splash-encode/splash/kernels"
)

// Launch geometry of the transformer kernels (see kernels/embed.go).
const (
	rowBlock       = 256 // block-per-row kernels: a multiple of 32
	elementBlock   = 256 // grid-stride kernels
	poolChunkBlock = 256 // pool chunks: threads per block over the vocabulary
	maxGridBlocks  = 1 << 20
)

// devBuf is a buffer of DeviceOps: device memory of n elements of size
// bytes each.
type devBuf struct {
	ptr  sys.DevicePtr
	n    int
	size int
	own  bool    // allocated (not a slice): Free releases it
	fp8  *devFP8 // a weight matrix's E4M3 copy under --precision fp8 (ops_device_fp8.go)
}

func (b *devBuf) Len() int { return b.n }

// DeviceOps implements Ops on one CUDA device: cuBLAS for the GEMMs and the
// PTX kernels of package kernels, all on one stream. Methods queue work on
// the stream; Download waits for it. It is safe for one goroutine at a time.
type DeviceOps struct {
	ctx     *sys.Context
	stream  *sys.Stream
	blas    *sys.BLAS
	module  *sys.Module
	llama   *sys.Module // the Llama-family kernels (llama.cu)
	sparse  *sys.Module // the sparsify kernels
	fns     map[string]sys.Function
	dt      kernels.DType
	compute sys.ComputeType
	staging unsafe.Pointer // pinned host buffer for uploads and downloads
	stageN  int
	fp8     *deviceFP8 // nil unless EnableFP8 (ops_device_fp8.go)
}

var _ Ops = (*DeviceOps)(nil)

// NewDeviceOps makes Ops on ctx's device with activations stored as dt and
// GEMMs computed with compute (Compute32F: the parity mode; with F32,
// Compute32FFastTF32 is TF32).
func NewDeviceOps(ctx *sys.Context, lib *sys.CUBLASLib, dt kernels.DType, compute sys.ComputeType) (o *DeviceOps, err error) {
	o = &DeviceOps{ctx: ctx, dt: dt, compute: compute, fns: map[string]sys.Function{}}
	defer func() {
		if err != nil {
			o.Close()
			o = nil
		}
	}()
	if o.stream, err = ctx.NewStream(); err != nil {
		return nil, err
	}
	if o.blas, err = lib.NewHandle(o.stream); err != nil {
		return nil, err
	}
	mode := sys.MathMode(sys.DefaultMath)
	if compute == sys.Compute32FFastTF32 {
		mode = sys.TF32TensorOpMath
	}
	if err = o.blas.SetMathMode(mode); err != nil {
		return nil, err
	}
	if o.module, err = ctx.LoadModule(kernels.TransformerPTX); err != nil {
		return nil, err
	}
	names := []string{kernels.EntryActivateMax}
	for _, e := range kernels.TransformerEntries() {
		names = append(names, kernels.Entry(e, dt))
	}
	for _, name := range names {
		f, err := o.module.Function(name)
		if err != nil {
			return nil, err
		}
		o.fns[name] = f
	}
	if o.llama, err = loadLlamaModule(ctx, dt, o.fns); err != nil {
		return nil, err
	}
	if o.sparse, err = ctx.LoadModule(kernels.SparsifyPTX); err != nil {
		return nil, err
	}
	for _, name := range []string{kernels.EntrySparsifySelect, kernels.EntrySparsifyWrite} {
		f, err := o.sparse.Function(name)
		if err != nil {
			return nil, err
		}
		o.fns[name] = f
	}
	return o, nil
}

// Close releases the stream, the cuBLAS handle, the module and the staging
// buffer.
func (o *DeviceOps) Close() error {
	var errs []error
	if o.fp8 != nil {
		errs = append(errs, o.closeFP8())
	}
	if o.staging != nil {
		errs = append(errs, o.ctx.FreeHost(o.staging))
		o.staging = nil
	}
	if o.blas != nil {
		errs = append(errs, o.blas.Destroy())
		o.blas = nil
	}
	if o.module != nil {
		errs = append(errs, o.module.Unload())
		o.module = nil
	}
	if o.llama != nil {
		errs = append(errs, o.llama.Unload())
		o.llama = nil
	}
	if o.sparse != nil {
		errs = append(errs, o.sparse.Unload())
		o.sparse = nil
	}
	if o.stream != nil {
		errs = append(errs, o.stream.Destroy())
		o.stream = nil
	}
	return errors.Join(errs...)
}

func (o *DeviceOps) DType() kernels.DType { return o.dt }

// stage returns the pinned staging buffer, grown to at least bytes. The
// stream is synchronized first: an earlier asynchronous copy may still read
// or write it.
func (o *DeviceOps) stage(bytes int) (unsafe.Pointer, error) {
	if err := o.stream.Sync(); err != nil {
		return nil, err
	}
	if bytes <= o.stageN {
		return o.staging, nil
	}
	if o.staging != nil {
		if err := o.ctx.FreeHost(o.staging); err != nil {
			return nil, err
		}
		o.staging, o.stageN = nil, 0
	}
	n := max(bytes, 1<<20)
	p, err := o.ctx.AllocHost(n)
	if err != nil {
		return nil, err
	}
	o.staging, o.stageN = p, n
	return p, nil
}

func (o *DeviceOps) alloc(n, size int) (Buf, error) {
	p, err := o.ctx.Alloc(max(n*size, 1))
	if err != nil {
		return nil, err
	}
	return &devBuf{ptr: p, n: n, size: size, own: true}, nil
}

// upload copies raw bytes (already in the device format) into a new buffer.
func (o *DeviceOps) upload(src []byte, n, size int) (Buf, error) {
	b, err := o.alloc(n, size)
	if err != nil {
		return nil, err
	}
	if len(src) == 0 {
		return b, nil
	}
	st, err := o.stage(len(src))
	if err != nil {
		return nil, errors.Join(err, o.Free(b))
	}
	copy(unsafe.Slice((*byte)(st), len(src)), src)
	if err := o.stream.CopyHtoD(b.(*devBuf).ptr, st, len(src)); err != nil {
		return nil, errors.Join(err, o.Free(b))
	}
	return b, nil
}

// encodeFloats converts data to dt's bytes (little-endian).
func encodeFloats(data []float32, dt kernels.DType) []byte {
	out := make([]byte, len(data)*dt.Size())
	for i, x := range data {
		switch dt {
		case kernels.BF16:
			h := kernels.ToBF16Bits(x)
			out[2*i], out[2*i+1] = byte(h), byte(h>>8)
		case kernels.F16:
			h := kernels.ToF16Bits(x)
			out[2*i], out[2*i+1] = byte(h), byte(h>>8)
		default:
			u := math.Float32bits(x)
			out[4*i], out[4*i+1], out[4*i+2], out[4*i+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
		}
	}
	return out
}

func (o *DeviceOps) Matrix(data []float32) (Buf, error) {
	b, err := o.upload(encodeFloats(data, o.dt), len(data), o.dt.Size())
	if err != nil || o.fp8 == nil {
		return b, err
	}
	if err := o.uploadFP8(b.(*devBuf), data); err != nil {
		return nil, errors.Join(err, o.Free(b))
	}
	return b, nil
}

func (o *DeviceOps) Vector(data []float32) (Buf, error) {
	return o.upload(encodeFloats(data, kernels.F32), len(data), 4)
}

func (o *DeviceOps) Activations(n int) (Buf, error) { return o.alloc(n, o.dt.Size()) }
func (o *DeviceOps) Floats(n int) (Buf, error)      { return o.alloc(n, 4) }
func (o *DeviceOps) Ints(n int) (Buf, error)        { return o.alloc(n, 4) }

func (o *DeviceOps) SetInts(dst Buf, src []int32) error {
	d := dst.(*devBuf)
	if len(src) > d.n {
		return fmt.Errorf("cuda: %d ints into a buffer of %d", len(src), d.n)
	}
	if len(src) == 0 {
		return nil
	}
	st, err := o.stage(4 * len(src))
	if err != nil {
		return err
	}
	copy(unsafe.Slice((*int32)(st), len(src)), src)
	return o.stream.CopyHtoD(d.ptr, st, 4*len(src))
}

func (o *DeviceOps) Fill(dst Buf, n int, v float32) error {
	d := dst.(*devBuf)
	if n > d.n || d.size != 4 {
		return fmt.Errorf("cuda: fill %d float32 values of a buffer of %d", n, d.n)
	}
	return o.stream.Memset32(d.ptr, math.Float32bits(v), n)
}

func (o *DeviceOps) Slice(b Buf, off, n int) Buf {
	d := b.(*devBuf)
	return &devBuf{ptr: d.ptr.Add(off * d.size), n: n, size: d.size}
}

func (o *DeviceOps) Download(dst []float32, b Buf) error {
	d := b.(*devBuf)
	if len(dst) > d.n || d.size != 4 {
		return fmt.Errorf("cuda: download %d float32 values of a buffer of %d", len(dst), d.n)
	}
	st, err := o.download(d, 4*len(dst))
	if err != nil || len(dst) == 0 {
		return err
	}
	copy(dst, unsafe.Slice((*float32)(st), len(dst)))
	return nil
}

// download copies the first bytes bytes of d into the pinned staging
// buffer and waits for the stream (the work before the copy included); it
// returns the staging buffer, valid until the next staged copy. With
// bytes 0 it only waits.
func (o *DeviceOps) download(d *devBuf, bytes int) (unsafe.Pointer, error) {
	if bytes == 0 {
		return nil, o.stream.Sync()
	}
	st, err := o.stage(bytes)
	if err != nil {
		return nil, err
	}
	if err := o.stream.CopyDtoH(st, d.ptr, bytes); err != nil {
		return nil, err
	}
	if err := o.stream.Sync(); err != nil {
		return nil, err
	}
	return st, nil
}

func (o *DeviceOps) Free(b Buf) error {
	d, ok := b.(*devBuf)
	if !ok || !d.own {
		return nil
	}
	d.own = false
	return errors.Join(o.freeFP8(d), o.ctx.Free(d.ptr))
}

// ptr is a buffer's device pointer, 0 for a nil Buf (a null argument).
func ptr(b Buf) sys.DevicePtr {
	if b == nil {
		return 0
	}
	return b.(*devBuf).ptr
}

func (o *DeviceOps) dataType() sys.DataType {
	switch o.dt {
	case kernels.BF16:
		return sys.R16BF
	case kernels.F16:
		return sys.R16F
	}
	return sys.R32F
}

// LinearT: row-major y = x·wᵀ is, in cuBLAS's column-major terms,
// yᵀ[n×rows] = w[k×n]ᵀ · xᵀ[k×rows]: the operands swap, nothing is copied.
func (o *DeviceOps) LinearT(rows, n, k int, x, w, y Buf) error {
	if q := w.(*devBuf).fp8; q != nil && o.fp8 != nil && FP8Eligible(n, k) {
		return o.linearFP8(rows, n, k, x, q, y)
	}
	t := o.dataType()
	return o.blas.GemmEx(sys.OpT, sys.OpN, n, rows, k, 1, ptr(w), t, k, ptr(x), t, k, 0, ptr(y), t, n, o.compute)
}

// Scores: s_i = alpha·q_i·k_iᵀ, the LinearT pattern per block.
func (o *DeviceOps) Scores(batch, l, d int, alpha float32, q, k, s Buf) error {
	t := o.dataType()
	return o.blas.GemmStridedBatchedEx(sys.OpT, sys.OpN, l, l, d, alpha,
		ptr(k), t, d, int64(l*d), ptr(q), t, d, int64(l*d), 0, ptr(s), t, l, int64(l*l), batch, o.compute)
}

// Context: row-major c_i = p_i·v_i is c_iᵀ[d×l] = v_iᵀ[d×l] · p_iᵀ[l×l],
// both already column-major as stored.
func (o *DeviceOps) Context(batch, l, d int, p, v, c Buf) error {
	t := o.dataType()
	return o.blas.GemmStridedBatchedEx(sys.OpN, sys.OpN, d, l, l, 1,
		ptr(v), t, d, int64(l*d), ptr(p), t, l, int64(l*l), 0, ptr(c), t, d, int64(l*d), batch, o.compute)
}

// launch runs the kernel name (suffixed with the activation type when
// typed) on the stream.
func (o *DeviceOps) launch(name string, typed bool, grid, block [3]uint32, args ...any) error {
	if typed {
		name = kernels.Entry(name, o.dt)
	}
	f, ok := o.fns[name]
	if !ok {
		return fmt.Errorf("cuda: kernel %s is not loaded", name)
	}
	return o.stream.Launch(f, grid, block, 0, args...)
}

// gridFor is the grid of a grid-stride kernel over n elements.
func gridFor(n int) [3]uint32 {
	return [3]uint32{uint32(min(max((n+elementBlock-1)/elementBlock, 1), maxGridBlocks)), 1, 1}
}

func i32(n int) int32 { return int32(n) }

func (o *DeviceOps) EmbedLN(tokens, h int, ids, pos, types Buf, word, posEmb, typeEmb, gamma, beta Buf, eps float32, out Buf) error {
	return o.launch(kernels.EntryEmbedLN, true, [3]uint32{uint32(tokens), 1, 1}, [3]uint32{rowBlock, 1, 1},
		ptr(ids), ptr(pos), ptr(types), ptr(word), ptr(posEmb), ptr(typeEmb), ptr(gamma), ptr(beta), ptr(out), i32(tokens), i32(h), eps)
}

func (o *DeviceOps) BiasGELU(rows, n int, x, bias Buf, act kernels.Activation) error {
	return o.launch(kernels.EntryBiasGELU, true, gridFor(rows*n), [3]uint32{elementBlock, 1, 1},
		ptr(x), ptr(bias), i32(rows), i32(n), int32(act))
}

func (o *DeviceOps) BiasResidualLN(rows, h int, y, bias, residual, gamma, beta Buf, eps float32, out Buf) error {
	return o.launch(kernels.EntryBiasResidualLN, true, [3]uint32{uint32(rows), 1, 1}, [3]uint32{rowBlock, 1, 1},
		ptr(y), ptr(bias), ptr(residual), ptr(gamma), ptr(beta), ptr(out), i32(rows), i32(h), eps)
}

func (o *DeviceOps) QKVScatter(b, heads, d, l int, qkv, bias, offsets Buf, q, k, v Buf) error {
	return o.launch(kernels.EntryQKVScatter, true, gridFor(b*l*heads*d), [3]uint32{elementBlock, 1, 1},
		ptr(qkv), ptr(bias), ptr(offsets), ptr(q), ptr(k), ptr(v), i32(b), i32(heads), i32(d), i32(l))
}

func (o *DeviceOps) MaskedSoftmax(b, heads, l int, s, offsets Buf) error {
	return o.launch(kernels.EntryMaskedSoftmax, true, [3]uint32{uint32(b * heads * l), 1, 1}, [3]uint32{rowBlock, 1, 1},
		ptr(s), ptr(offsets), i32(b), i32(heads), i32(l))
}

func (o *DeviceOps) AttnGather(b, heads, d, l int, c, offsets, out Buf) error {
	return o.launch(kernels.EntryAttnGather, true, gridFor(b*l*heads*d), [3]uint32{elementBlock, 1, 1},
		ptr(c), ptr(offsets), ptr(out), i32(b), i32(heads), i32(d), i32(l))
}

// PoolChunk splits the chunk's rows into segments (the grid's y) for
// parallelism over short documents; the result does not depend on their
// number.
func (o *DeviceOps) PoolChunk(rows, v int, sum bool, z, bias, tokenDoc, pooled Buf) error {
	name := kernels.EntryPoolChunkMax
	if sum {
		name = kernels.EntryPoolChunkSum
	}
	segments := min(max(rows/64, 1), 65535)
	grid := [3]uint32{uint32((v + poolChunkBlock - 1) / poolChunkBlock), uint32(segments), 1}
	return o.launch(name, true, grid, [3]uint32{poolChunkBlock, 1, 1},
		ptr(z), ptr(bias), ptr(tokenDoc), ptr(pooled), i32(rows), i32(v))
}

func (o *DeviceOps) ActivateMax(n int, pooled Buf) error {
	return o.launch(kernels.EntryActivateMax, false, gridFor(n), [3]uint32{elementBlock, 1, 1}, ptr(pooled), i32(n))
}

// SparsifyRows runs the two sparsify passes (kernels.EntrySparsifySelect:
// each row's count of positive weights; then, after the host's exclusive
// scan of the counts, kernels.EntrySparsifyWrite: the CSR) and copies the
// CSR to the host: b row counts, b+1 offsets up, and the non-zeros.
func (o *DeviceOps) SparsifyRows(pooled Buf, b, v int) (offsets, terms []uint32, weights []float32, err error) {
	if err := kernels.CheckSparsify(b*v, b, v, 0, 0); err != nil {
		return nil, nil, nil, err
	}
	if pooled.Len() < b*v {
		return nil, nil, nil, fmt.Errorf("cuda: sparsify %d rows of %d from a buffer of %d", b, v, pooled.Len())
	}
	var bufs []Buf
	defer func() {
		for _, x := range bufs {
			err = errors.Join(err, o.Free(x))
		}
	}()
	ints := func(n int) Buf {
		if err != nil {
			return nil
		}
		var x Buf
		if x, err = o.Ints(n); err == nil {
			bufs = append(bufs, x)
		}
		return x
	}
	counts, thresh, tieKeep, offs := ints(b), ints(b), ints(b), ints(b+1)
	if err != nil {
		return nil, nil, nil, err
	}
	grid, block := [3]uint32{uint32(b), 1, 1}, [3]uint32{sparsifyBlock, 1, 1}
	err = o.launch(kernels.EntrySparsifySelect, false, grid, block,
		ptr(pooled), i32(b), i32(v), float32(0), int32(0), ptr(counts), ptr(thresh), ptr(tieKeep))
	if err != nil {
		return nil, nil, nil, err
	}
	host, err := o.downloadU32(counts, b)
	if err != nil {
		return nil, nil, nil, err
	}
	offsets = make([]uint32, b+1)
	for r, c := range host {
		if c > uint32(v) {
			return nil, nil, nil, fmt.Errorf("cuda: %s: row %d counts %d of %d terms", kernels.EntrySparsifySelect, r, c, v)
		}
		offsets[r+1] = offsets[r] + c
	}
	nnz := int(offsets[b])
	if nnz == 0 {
		return offsets, []uint32{}, []float32{}, nil
	}
	asInts := make([]int32, b+1)
	for i, x := range offsets {
		asInts[i] = int32(x)
	}
	if err = o.SetInts(offs, asInts); err != nil {
		return nil, nil, nil, err
	}
	termBuf, weightBuf := ints(nnz), ints(nnz)
	if err != nil {
		return nil, nil, nil, err
	}
	err = o.launch(kernels.EntrySparsifyWrite, false, grid, block,
		ptr(pooled), i32(b), i32(v), float32(0), ptr(thresh), ptr(tieKeep), ptr(offs), ptr(termBuf), ptr(weightBuf))
	if err != nil {
		return nil, nil, nil, err
	}
	if terms, err = o.downloadU32(termBuf, nnz); err != nil {
		return nil, nil, nil, err
	}
	raw, err := o.downloadU32(weightBuf, nnz)
	if err != nil {
		return nil, nil, nil, err
	}
	weights = make([]float32, nnz)
	for i, u := range raw {
		weights[i] = math.Float32frombits(u)
	}
	return offsets, terms, weights, nil
}

// downloadU32 copies the first n 32-bit values of b to the host, waiting
// for the work before it.
func (o *DeviceOps) downloadU32(b Buf, n int) ([]uint32, error) {
	st, err := o.download(b.(*devBuf), 4*n)
	if err != nil || n == 0 {
		return nil, err
	}
	return append([]uint32(nil), unsafe.Slice((*uint32)(st), n)...), nil
}
