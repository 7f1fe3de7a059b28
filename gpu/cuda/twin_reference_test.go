package cuda

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/kernels"
)

// TestPoolTwinsAgreeWithEncodeReference holds the kernels' twins (the
// oracle of the GPU parity tests) to the encoder's float64 definition of
// SPLADE pooling, encode.PoolReference, on random logits in the range real
// masked-LM heads give, with documents of random lengths, padding whose
// values must never count, and a document without tokens: max pooling to
// 1e-6 absolute, sum pooling (a float32 sum over up to 512 positions) to
// 1e-6 relative. It needs no GPU; it links the twins with the encoder's
// reference, which neither package may import.
func TestPoolTwinsAgreeWithEncodeReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, shape := range [][3]int{{1, 1, 1}, {3, 17, 1031}, {4, 512, 2048}, {2, 9, 30522}} {
		b, tl, v := shape[0], shape[1], shape[2]
		logits := make([]float32, b*tl*v)
		mask := make([]int64, b*tl)
		for i := 0; i < b; i++ {
			n := 1 + rng.IntN(tl)
			if i == 1 {
				n = 0 // a document without tokens pools to 0
			}
			for p := 0; p < tl; p++ {
				if p < n {
					mask[i*tl+p] = 1
				}
				row := logits[(i*tl+p)*v : (i*tl+p+1)*v]
				for j := range row {
					if p >= n {
						row[j] = 1e4 // padding
						continue
					}
					row[j] = float32(rng.NormFloat64()*3 - 2)
				}
			}
		}
		for _, pooling := range []encode.Pooling{encode.PoolMax, encode.PoolSum} {
			twin := kernels.PoolMaxTwin
			if pooling == encode.PoolSum {
				twin = kernels.PoolSumTwin
			}
			got := make([]float32, b*v)
			if err := twin(logits, mask, b, tl, v, got); err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for i := 0; i < b; i++ {
				doc := make([][]float64, tl)
				for p := range doc {
					doc[p] = make([]float64, v)
					for j, x := range logits[(i*tl+p)*v : (i*tl+p+1)*v] {
						doc[p][j] = float64(x)
					}
				}
				want := encode.PoolReference(doc, mask[i*tl:(i+1)*tl], pooling)
				for j, w := range want {
					d := math.Abs(float64(got[i*v+j]) - w)
					if pooling == encode.PoolSum {
						d /= math.Max(1, math.Abs(w))
					}
					worst = math.Max(worst, d)
					if d > 1e-6 {
						t.Fatalf("%v %v: doc %d term %d: twin %v, reference %v", shape, pooling, i, j, got[i*v+j], w)
					}
				}
			}
			t.Logf("%v %v: largest difference %.3g", shape, pooling, worst)
		}
	}
}
