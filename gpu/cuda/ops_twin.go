package cuda

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/splash-encode/splash/kernels"
)

// hostBuf is a buffer of TwinOps: float values (already rounded to the
// buffer's DType) or int32 values.
type hostBuf struct {
	f   []float32
	i   []int32
	fp8 *hostFP8 // a weight matrix's E4M3 copy under --precision fp8 (ops_twin_fp8.go)
}

func (b *hostBuf) Len() int {
	if b.i != nil {
		return len(b.i)
	}
	return len(b.f)
}

// TwinOps implements Ops on the CPU with the kernels' pure-Go twins and a
// plain Go GEMM that accumulates in float32, as cuBLAS does with
// CUBLAS_COMPUTE_32F, and rounds its outputs to DType. It is the reference
// the device implementation is held to, and it lets CI run the engine's
// forward pass without a GPU. It is safe for one goroutine at a time.
type TwinOps struct {
	dt  kernels.DType
	fp8 *twinFP8 // nil unless FP8 GEMMs (NewTwinFP8Ops)
}

// NewTwinOps returns twin Ops whose activations are stored as dt.
func NewTwinOps(dt kernels.DType) *TwinOps { return &TwinOps{dt: dt} }

var _ Ops = (*TwinOps)(nil)

func (o *TwinOps) DType() kernels.DType { return o.dt }

func (o *TwinOps) Matrix(data []float32) (Buf, error) {
	f := make([]float32, len(data))
	for i, x := range data {
		f[i] = o.dt.Round(x)
	}
	if o.fp8 != nil {
		return &hostBuf{f: f, fp8: quantizeHostMatrix(data)}, nil
	}
	return &hostBuf{f: f}, nil
}

func (o *TwinOps) Vector(data []float32) (Buf, error) {
	return &hostBuf{f: append(make([]float32, 0, len(data)), data...)}, nil
}

func (o *TwinOps) Activations(n int) (Buf, error) { return &hostBuf{f: make([]float32, n)}, nil }
func (o *TwinOps) Floats(n int) (Buf, error)      { return &hostBuf{f: make([]float32, n)}, nil }
func (o *TwinOps) Ints(n int) (Buf, error)        { return &hostBuf{i: make([]int32, n)}, nil }

func (o *TwinOps) SetInts(dst Buf, src []int32) error {
	d := ints(dst)
	if len(src) > len(d) {
		return fmt.Errorf("twin: %d ints into a buffer of %d", len(src), len(d))
	}
	copy(d, src)
	return nil
}

func (o *TwinOps) Fill(dst Buf, n int, v float32) error {
	d := floats(dst)
	if n > len(d) {
		return fmt.Errorf("twin: fill %d values of %d", n, len(d))
	}
	for i := range d[:n] {
		d[i] = v
	}
	return nil
}

func (o *TwinOps) Slice(b Buf, off, n int) Buf {
	h := b.(*hostBuf)
	if h.i != nil {
		return &hostBuf{i: h.i[off : off+n]}
	}
	return &hostBuf{f: h.f[off : off+n]}
}

func (o *TwinOps) Download(dst []float32, b Buf) error {
	src := floats(b)
	if len(dst) > len(src) {
		return fmt.Errorf("twin: download %d values of %d", len(dst), len(src))
	}
	copy(dst, src)
	return nil
}

func (o *TwinOps) Free(Buf) error { return nil }

// floats and ints return a buffer's storage; nil for a nil Buf.
func floats(b Buf) []float32 {
	if b == nil {
		return nil
	}
	return b.(*hostBuf).f
}

func ints(b Buf) []int32 {
	if b == nil {
		return nil
	}
	return b.(*hostBuf).i
}

// gemm computes y[r][j] = alpha·Σ_p a(r, p)·b(p, j) over p < k, in float32
// in ascending p, rounded to dt; rows are split across goroutines.
func (o *TwinOps) gemm(rows, n, k int, alpha float32, a func(r, p int) float32, b func(p, j int) float32, y []float32) {
	workers := min(runtime.GOMAXPROCS(0), max(rows/16, 1))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for r := w; r < rows; r += workers {
				for j := 0; j < n; j++ {
					var acc float32
					for p := 0; p < k; p++ {
						acc += a(r, p) * b(p, j)
					}
					y[r*n+j] = o.dt.Round(alpha * acc)
				}
			}
		}(w)
	}
	wg.Wait()
}

func (o *TwinOps) LinearT(rows, n, k int, x, w, y Buf) error {
	xs, ws, ys := floats(x), floats(w), floats(y)
	if len(xs) < rows*k || len(ws) < n*k || len(ys) < rows*n {
		return fmt.Errorf("twin: linear %dx%dx%d with buffers of %d, %d, %d", rows, n, k, len(xs), len(ws), len(ys))
	}
	if q := w.(*hostBuf).fp8; q != nil && o.fp8 != nil && FP8Eligible(n, k) {
		return o.linearFP8(rows, n, k, xs, q, ys)
	}
	workers := min(runtime.GOMAXPROCS(0), max(rows/8, 1))
	var wg sync.WaitGroup
	for wk := 0; wk < workers; wk++ {
		wg.Add(1)
		go func(wk int) {
			defer wg.Done()
			for r := wk; r < rows; r += workers {
				xr := xs[r*k : r*k+k]
				for j := 0; j < n; j++ {
					wj := ws[j*k : j*k+k]
					var acc float32
					for p, xv := range xr {
						acc += xv * wj[p]
					}
					ys[r*n+j] = o.dt.Round(acc)
				}
			}
		}(wk)
	}
	wg.Wait()
	return nil
}

func (o *TwinOps) Scores(batch, l, d int, alpha float32, q, k, s Buf) error {
	qs, ks, ss := floats(q), floats(k), floats(s)
	if len(qs) < batch*l*d || len(ks) < batch*l*d || len(ss) < batch*l*l {
		return fmt.Errorf("twin: scores of %d blocks %dx%d with buffers of %d, %d, %d", batch, l, d, len(qs), len(ks), len(ss))
	}
	for i := 0; i < batch; i++ {
		qi, ki := qs[i*l*d:(i+1)*l*d], ks[i*l*d:(i+1)*l*d]
		o.gemm(l, l, d, alpha,
			func(r, p int) float32 { return qi[r*d+p] },
			func(p, j int) float32 { return ki[j*d+p] },
			ss[i*l*l:(i+1)*l*l])
	}
	return nil
}

func (o *TwinOps) Context(batch, l, d int, p, v, c Buf) error {
	ps, vs, cs := floats(p), floats(v), floats(c)
	if len(ps) < batch*l*l || len(vs) < batch*l*d || len(cs) < batch*l*d {
		return fmt.Errorf("twin: context of %d blocks %dx%d with buffers of %d, %d, %d", batch, l, d, len(ps), len(vs), len(cs))
	}
	for i := 0; i < batch; i++ {
		pi, vi := ps[i*l*l:(i+1)*l*l], vs[i*l*d:(i+1)*l*d]
		o.gemm(l, d, l, 1,
			func(r, q int) float32 { return pi[r*l+q] },
			func(q, j int) float32 { return vi[q*d+j] },
			cs[i*l*d:(i+1)*l*d])
	}
	return nil
}

func (o *TwinOps) EmbedLN(tokens, h int, ids, pos, types Buf, word, posEmb, typeEmb, gamma, beta Buf, eps float32, out Buf) error {
	return kernels.EmbedLNTwin(o.dt, ints(ids)[:tokens], ints(pos)[:tokens], prefixInts(ints(types), tokens),
		floats(word), floats(posEmb), floats(typeEmb), floats(gamma), floats(beta), h, eps, floats(out)[:tokens*h])
}

func (o *TwinOps) BiasGELU(rows, n int, x, bias Buf, act kernels.Activation) error {
	return kernels.BiasGELUTwin(o.dt, floats(x)[:rows*n], floats(bias), n, act)
}

func (o *TwinOps) BiasResidualLN(rows, h int, y, bias, residual, gamma, beta Buf, eps float32, out Buf) error {
	return kernels.BiasResidualLNTwin(o.dt, floats(y)[:rows*h], floats(bias), prefixFloats(floats(residual), rows*h),
		floats(gamma), floats(beta), h, eps, floats(out)[:rows*h])
}

func (o *TwinOps) QKVScatter(b, heads, d, l int, qkv, bias, offsets Buf, q, k, v Buf) error {
	off := ints(offsets)[:b+1]
	n := b * heads * l * d
	return kernels.QKVScatterTwin(o.dt, floats(qkv)[:int(off[b])*3*heads*d], floats(bias), off, heads, d, l,
		floats(q)[:n], floats(k)[:n], floats(v)[:n])
}

func (o *TwinOps) MaskedSoftmax(b, heads, l int, s, offsets Buf) error {
	return kernels.MaskedSoftmaxTwin(o.dt, floats(s)[:b*heads*l*l], ints(offsets)[:b+1], heads, l)
}

func (o *TwinOps) AttnGather(b, heads, d, l int, c, offsets, out Buf) error {
	off := ints(offsets)[:b+1]
	return kernels.AttnGatherTwin(o.dt, floats(c)[:b*heads*l*d], off, heads, d, l, floats(out)[:int(off[b])*heads*d])
}

func (o *TwinOps) PoolChunk(rows, v int, sum bool, z, bias, tokenDoc, pooled Buf) error {
	return kernels.PoolChunkTwin(o.dt, sum, floats(z)[:rows*v], floats(bias), ints(tokenDoc)[:rows], v, floats(pooled))
}

func (o *TwinOps) ActivateMax(n int, pooled Buf) error {
	kernels.ActivateMaxTwin(floats(pooled)[:n])
	return nil
}

func (o *TwinOps) SparsifyRows(pooled Buf, b, v int) (offsets, terms []uint32, weights []float32, err error) {
	return kernels.SparsifyTwin(floats(pooled)[:b*v], b, v, 0, 0)
}

func prefixInts(s []int32, n int) []int32 {
	if s == nil {
		return nil
	}
	return s[:n]
}

func prefixFloats(s []float32, n int) []float32 {
	if s == nil {
		return nil
	}
	return s[:n]
}
