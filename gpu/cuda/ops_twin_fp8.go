package cuda

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/splash-encode/splash/kernels"
)

// twinFP8 configures TwinOps for --precision fp8. unscaled is a test hook
// that drops the scales from the product (a broken quantization the
// tests must catch); it is never set outside the package's tests.
type twinFP8 struct {
	unscaled bool
}

// NewTwinFP8Ops returns twin Ops of --precision fp8: activations stored
// as bf16, weight matrices quantized to E4M3 at upload (Matrix keeps the
// bf16 values too, for embedding look-ups and the GEMMs FP8Eligible
// refuses), and every LinearT with such a matrix computed as the device
// computes it: the activation quantized with its per-tensor scale
// (kernels.AmaxTwin, kernels.QuantizeFP8Twin), products of E4M3 values
// (exact in float32) accumulated in float32 in ascending k, the sum
// multiplied by the product of the two scales and rounded to bf16.
func NewTwinFP8Ops() *TwinOps { return &TwinOps{dt: kernels.BF16, fp8: &twinFP8{}} }

// linearFP8 is LinearT with an E4M3 weight w: y [rows][n] from x [rows][k].
func (o *TwinOps) linearFP8(rows, n, k int, xs []float32, w *hostFP8, ys []float32) error {
	if len(w.values) < n*k {
		return fmt.Errorf("twin: fp8 linear %dx%dx%d with a weight of %d values", rows, n, k, len(w.values))
	}
	x := xs[:rows*k]
	codes := make([]uint8, len(x))
	xScale, err := kernels.QuantizeFP8Twin(x, kernels.AmaxTwin(x), codes)
	if err != nil {
		return fmt.Errorf("twin: fp8 linear %dx%dx%d: %w", rows, n, k, err)
	}
	xq := make([]float32, len(codes))
	for i, c := range codes {
		xq[i] = kernels.FromE4M3(c)
	}
	scale := xScale * w.scale
	if o.fp8.unscaled {
		scale = 1
	}
	workers := min(runtime.GOMAXPROCS(0), max(rows/8, 1))
	var wg sync.WaitGroup
	for wk := 0; wk < workers; wk++ {
		wg.Add(1)
		go func(wk int) {
			defer wg.Done()
			for r := wk; r < rows; r += workers {
				xr := xq[r*k : r*k+k]
				for j := 0; j < n; j++ {
					wj := w.values[j*k : j*k+k]
					var acc float32
					for p, xv := range xr {
						acc += xv * wj[p]
					}
					ys[r*n+j] = o.dt.Round(scale * acc)
				}
			}
		}(wk)
	}
	wg.Wait()
	return nil
}

// KeepBF16 drops b's E4M3 copy (Net.KeepHeadBF16): its GEMMs run in bf16.
func (o *TwinOps) KeepBF16(b Buf) error {
	if h, ok := b.(*hostBuf); ok {
		h.fp8 = nil
	}
	return nil
}

// quantizeFP8 is the twin of DeviceOps.quantizeFP8: the codes and scale of
// the first n values of x (kernels.AmaxTwin, kernels.QuantizeFP8Twin).
func (o *TwinOps) quantizeFP8(x Buf, n int) ([]uint8, float32, error) {
	xs := floats(x)
	if n > len(xs) {
		return nil, 0, fmt.Errorf("twin: fp8 quantize %d values of %d", n, len(xs))
	}
	codes := make([]uint8, n)
	scale, err := kernels.QuantizeFP8Twin(xs[:n], kernels.AmaxTwin(xs[:n]), codes)
	return codes, scale, err
}
