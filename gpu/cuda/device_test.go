package cuda

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/encode/weights"
	"github.com/splash-encode/splash/gpu/cuda/sys"
	"github.com/splash-encode/splash/kernels"
)

// The tests and benchmarks of this file run the engine on a GPU (device 0)
// and skip where the driver or cuBLAS do not load: scripts/gpu-check.sh
// runs them on the device machines, CI skips them.

// deviceOps opens DeviceOps of dt on GPU 0, or skips.
func deviceOps(tb testing.TB, dt kernels.DType, compute sys.ComputeType) *DeviceOps {
	tb.Helper()
	driver, lib, err := loadLibraries()
	if err != nil {
		tb.Skipf("skipping: no usable GPU: %v", err)
	}
	ctx, err := driver.Retain(0)
	if err != nil {
		tb.Fatal(err)
	}
	ops, err := NewDeviceOps(ctx, lib, dt, compute)
	if err != nil {
		ctx.Release()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := ops.Close(); err != nil {
			tb.Error(err)
		}
		if err := ctx.Release(); err != nil {
			tb.Error(err)
		}
	})
	return ops
}

// deviceNet binds a generated model to ops.
func deviceNet(tb testing.TB, ops Ops, dir string) *Net {
	tb.Helper()
	a, err := ReadArch(dir)
	if err != nil {
		tb.Fatal(err)
	}
	ckpt, err := weights.Open(dir)
	if err != nil {
		tb.Fatal(err)
	}
	w, err := BindWeights(a, ckpt)
	ckpt.Close()
	if err != nil {
		tb.Fatal(err)
	}
	n, err := NewNet(ops, w, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { n.Close() })
	return n
}

// TestDeviceForwardMatchesOracle is TestForwardMatchesOracle on the GPU:
// fp32 storage, CUBLAS_COMPUTE_32F without TF32, every pooled weight within
// 1e-4 of the float64 oracle, on BERT, DistilBERT and RoBERTa models over
// Cranfield documents. It also compares the device with the twins of the
// same precision, which must agree much more closely.
func TestDeviceForwardMatchesOracle(t *testing.T) {
	ops := deviceOps(t, kernels.F32, sys.Compute32F)
	texts := cranfieldTexts(t, 64)
	for _, arch := range []testmodel.Arch{testmodel.ArchBERT, testmodel.ArchDistilBERT, testmodel.ArchRoBERTa} {
		g := generateModel(t, testmodel.Config{Arch: arch, Layers: 2, Hidden: 64, Heads: 4, Seed: 7})
		oracle, err := testmodel.LoadOracle(g.dir)
		if err != nil {
			t.Fatal(err)
		}
		net := deviceNet(t, ops, g.dir)
		twin := loadNet(t, g.dir, kernels.F32, 0)
		docs := tokenize(g.tok, texts, oracle.MaxLength())
		v := net.Arch().Vocab
		worst, worstTwin := 0.0, 0.0
		for start := 0; start < len(docs); start += 16 {
			batch := docs[start:min(start+16, len(docs))]
			got, fromTwin := make([]float32, len(batch)*v), make([]float32, len(batch)*v)
			if err := net.Forward(Input{Docs: batch}, encode.PoolMax, got); err != nil {
				t.Fatal(err)
			}
			if err := twin.Forward(Input{Docs: batch}, encode.PoolMax, fromTwin); err != nil {
				t.Fatal(err)
			}
			for i, ids := range batch {
				for j, w := range oracle.Pooled(ids, "max") {
					worst = math.Max(worst, math.Abs(w-float64(got[i*v+j])))
					worstTwin = math.Max(worstTwin, math.Abs(float64(fromTwin[i*v+j]-got[i*v+j])))
				}
			}
		}
		t.Logf("%s fp32 on the GPU: %d documents, largest difference from the float64 oracle %.3g, from the twins %.3g", arch, len(docs), worst, worstTwin)
		if worst > 1e-4 {
			t.Errorf("%s: largest difference from the oracle %.3g > 1e-4", arch, worst)
		}
	}
}

// TestDeviceHalfPrecision runs bf16 and fp16 on the GPU against the float64
// oracle: the mean share of each document's top-20 terms that the oracle
// also has must be at least 0.95; the largest relative error of weights
// above 0.1 is reported.
func TestDeviceHalfPrecision(t *testing.T) {
	texts := cranfieldTexts(t, 64)
	g := generateModel(t, testmodel.Config{Layers: 4, Hidden: 128, Heads: 4, Seed: 11})
	oracle, err := testmodel.LoadOracle(g.dir)
	if err != nil {
		t.Fatal(err)
	}
	docs := tokenize(g.tok, texts, oracle.MaxLength())
	for _, dt := range []kernels.DType{kernels.BF16, kernels.F16} {
		net := deviceNet(t, deviceOps(t, dt, sys.Compute32F), g.dir)
		v := net.Arch().Vocab
		out := make([]float32, len(docs)*v)
		if err := net.Forward(Input{Docs: docs}, encode.PoolMax, out); err != nil {
			t.Fatal(err)
		}
		share, worstRel := reducedPrecisionError(oracle, docs, out, v)
		t.Logf("%s on the GPU: %d documents, mean top-20 overlap with the float64 oracle %.4f, largest relative error (weights > 0.1) %.3g", dt, len(docs), share, worstRel)
		if share < 0.95 {
			t.Errorf("%s: mean top-20 overlap %.4f < 0.95", dt, share)
		}
	}
}

// BenchmarkDeviceForward runs a BERT-base-sized model (12 layers × 768,
// bert-base-uncased's vocabulary) in bf16 on batches of 128 documents of
// 128 and 256 tokens, and reports tokens/s and model TFLOP/s (the GEMMs'
// multiply-adds × 2, attention included).
func BenchmarkDeviceForward(b *testing.B) {
	ops := deviceOps(b, kernels.BF16, sys.Compute32F)
	dir := filepath.Join(b.TempDir(), "bert-base")
	cfg := testmodel.Config{Layers: 12, Hidden: 768, Heads: 12, Seed: 1, SafeTensors: true, SafeTensorsDType: "BF16", SkipONNX: true}
	if err := testmodel.Generate(dir, cfg, bertTokenizer); err != nil {
		b.Fatal(err)
	}
	net := deviceNet(b, ops, dir)
	a := net.Arch()
	for _, l := range []int{128, 256} {
		b.Run(fmt.Sprintf("len%d", l), func(b *testing.B) {
			docs := make([][]int32, 128)
			for d := range docs {
				docs[d] = make([]int32, l)
				for i := range docs[d] {
					docs[d][i] = int32(1000 + (d*131+i*17)%20000)
				}
			}
			out := make([]float32, len(docs)*a.Vocab)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if err := net.Forward(Input{Docs: docs}, encode.PoolMax, out); err != nil {
					b.Fatal(err)
				}
			}
			secs := time.Since(start).Seconds()
			tokens := float64(b.N * len(docs) * l)
			b.ReportMetric(tokens/secs, "tokens/s")
			b.ReportMetric(tokens*ModelFLOPsPerToken(a, l)/secs/1e12, "TFLOP/s")
		})
	}
}

// BenchmarkDeviceGEMM is the card's ceiling for the model's largest GEMM:
// cuBLAS bf16 (fp32 accumulation) [16384 × 768] · [3072 × 768]ᵀ, the
// feed-forward input of BERT-base over a batch of 16k tokens.
func BenchmarkDeviceGEMM(b *testing.B) {
	ops := deviceOps(b, kernels.BF16, sys.Compute32F)
	const rows, n, k = 16384, 3072, 768
	x, _ := ops.Activations(rows * k)
	w, _ := ops.Activations(n * k)
	y, _ := ops.Activations(rows * n)
	defer func() { ops.Free(x); ops.Free(w); ops.Free(y) }()
	sync := func() {
		if err := ops.stream.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	if err := ops.LinearT(rows, n, k, x, w, y); err != nil {
		b.Fatal(err)
	}
	sync()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := ops.LinearT(rows, n, k, x, w, y); err != nil {
			b.Fatal(err)
		}
	}
	sync()
	secs := time.Since(start).Seconds()
	b.ReportMetric(2*rows*n*k*float64(b.N)/secs/1e12, "TFLOP/s")
}

// TestDeviceForwardSparse checks the sparsify kernels in the engine: the
// CSR made on the GPU holds exactly the positive weights of the dense rows
// the same GPU pools.
func TestDeviceForwardSparse(t *testing.T) {
	ops := deviceOps(t, kernels.BF16, sys.Compute32F)
	g := generateModel(t, testmodel.Config{Layers: 2, Hidden: 64, Heads: 4, Seed: 2})
	net := deviceNet(t, ops, g.dir)
	docs := tokenize(g.tok, cranfieldTexts(t, 40), 512)
	v := net.Arch().Vocab
	dense := make([]float32, len(docs)*v)
	if err := net.Forward(Input{Docs: docs}, encode.PoolMax, dense); err != nil {
		t.Fatal(err)
	}
	var csr encode.CSR
	if err := net.ForwardSparse(Input{Docs: docs}, encode.PoolMax, &csr); err != nil {
		t.Fatal(err)
	}
	if _, err := csrMatchesDense(&csr, dense, len(docs), v); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d documents, %d non-zeros: the CSR equals the dense rows", len(docs), len(csr.Terms))
}
