// The kernel tests need an NVIDIA GPU: without a usable CUDA driver
// (libcuda.so.1 missing, or no device) they skip, saying why. On a GPU
// machine, build them with `go test -c -o bin/cuda.test ./gpu/cuda` and run
// the binary there (scripts/gpu-check.sh).

package cuda

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/gpu"
	"github.com/splash-encode/splash/gpu/cuda/sys"
	"github.com/splash-encode/splash/kernels"
)

// TestWithoutDriver checks, where the CUDA driver cannot be used, that
// every entry point says why and that the error matches gpu.ErrNoDriver,
// on which discovery asks nvidia-smi and --device auto encodes on the CPU.
func TestWithoutDriver(t *testing.T) {
	if _, err := LoadDriver(); err == nil {
		t.Skip("the CUDA driver works here")
	}
	_, err := Devices()
	t.Logf("Devices: %v", err)
	if !errors.Is(err, gpu.ErrNoDriver) {
		t.Fatalf("Devices() error = %v, want one matching gpu.ErrNoDriver", err)
	}
	if !errors.Is(err, sys.ErrNoCgo) && !strings.Contains(err.Error(), sys.DriverLibrary) {
		t.Errorf("Devices() error = %v, want it to name %s", err, sys.DriverLibrary)
	}
	if _, err := Open(context.Background(), 0); !errors.Is(err, gpu.ErrNoDriver) {
		t.Errorf("Open() error = %v, want gpu.ErrNoDriver", err)
	}
	if _, err := SelfCheck(context.Background(), 0, 1, 1, 1, 1); !errors.Is(err, gpu.ErrNoDriver) {
		t.Errorf("SelfCheck() error = %v, want gpu.ErrNoDriver", err)
	}
	var e *Engine
	if _, err := e.PoolMax(make([]float32, 1), make([]int64, 1), 1, 1, 1); err == nil {
		t.Error("PoolMax on a nil Engine succeeded")
	}
	if err := e.Close(); err != nil {
		t.Errorf("Close of a nil Engine: %v", err)
	}
	// Discovery through this driver, with no nvidia-smi either.
	found := gpu.Discoverer{Driver: Driver{}.Devices, SMI: "/nonexistent/nvidia-smi"}.Discover(context.Background())
	t.Logf("discovery note: %s", found.Note)
	if len(found.Devices) != 0 || !strings.Contains(found.Note, "nvidia-smi") ||
		(!errors.Is(err, sys.ErrNoCgo) && !strings.Contains(found.Note, sys.DriverLibrary)) {
		t.Errorf("discovery without driver and nvidia-smi: %+v, want a note naming %s and nvidia-smi", found, sys.DriverLibrary)
	}
}

// skipWithoutDriver skips a test or benchmark when the CUDA driver cannot be
// used here.
func skipWithoutDriver(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, gpu.ErrNoDriver) {
		tb.Skip(err)
	}
}

func TestDevicesListsGPUs(t *testing.T) {
	devs, err := Devices()
	skipWithoutDriver(t, err)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) == 0 {
		t.Skip("no NVIDIA GPU visible to the driver")
	}
	for _, d := range devs {
		t.Logf("device %d: %s, %.1f GiB total, %.1f GiB free", d.Index, d.Name,
			float64(d.TotalMemory)/(1<<30), float64(d.FreeMemory)/(1<<30))
		if d.TotalMemory == 0 || d.FreeMemory > d.TotalMemory || d.Name == "" {
			t.Errorf("implausible device %+v", d)
		}
	}
}

func openEngine(tb testing.TB) *Engine {
	tb.Helper()
	devs, err := Devices()
	skipWithoutDriver(tb, err)
	if err != nil {
		tb.Fatal(err)
	}
	if len(devs) == 0 {
		tb.Skip("no NVIDIA GPU visible to the driver")
	}
	e, err := Open(context.Background(), 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := e.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return e
}

// parallel runs fn(lo, hi) over [0, n) split into GOMAXPROCS parts.
func parallel(n int, fn func(lo, hi int)) {
	parts := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for p := 0; p < parts; p++ {
		lo, hi := n*p/parts, n*(p+1)/parts
		if lo == hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

type poolInput struct {
	b, t, v int
	logits  []float32
	mask    []int64
}

func (in poolInput) String() string { return fmt.Sprintf("B%d_T%d_V%d", in.b, in.t, in.v) }

// makePoolInput makes logits (mostly negative, as a masked-LM's are, with
// ties and, when odd is set, NaN and ±Inf) and masks with random lengths,
// some documents fully padded and padding holding large values.
func makePoolInput(seed uint64, b, t, v int, odd bool) poolInput {
	in := poolInput{b: b, t: t, v: v, logits: make([]float32, b*t*v), mask: make([]int64, b*t)}
	rng := rand.New(rand.NewPCG(seed, 99))
	for i := 0; i < b; i++ {
		n := 1 + rng.IntN(t)
		if i > 0 && rng.IntN(8) == 0 {
			n = 0 // a document without tokens
		}
		for p := 0; p < n; p++ {
			in.mask[i*t+p] = 1 + rng.Int64N(2)
		}
	}
	parallel(b*t, func(lo, hi int) {
		r := rand.New(rand.NewPCG(seed, uint64(lo)))
		for row := lo; row < hi; row++ {
			xs := in.logits[row*v : (row+1)*v]
			if in.mask[row] == 0 {
				for j := range xs {
					xs[j] = 1e4 // padding must never count
				}
				continue
			}
			for j := range xs {
				x := float32(r.NormFloat64()*2 - 3)
				if r.IntN(16) == 0 {
					x = float32(r.IntN(4)) * 0.5 // ties
				}
				if odd {
					switch r.IntN(512) {
					case 0:
						x = float32(math.NaN())
					case 1:
						x = float32(math.Inf(1))
					case 2:
						x = float32(math.Inf(-1))
					}
				}
				xs[j] = x
			}
		}
	})
	return in
}

// twinPool runs the kernels twin over documents in parallel.
func twinPool(tb testing.TB, p encode.Pooling, in poolInput) []float32 {
	tb.Helper()
	out := make([]float32, in.b*in.v)
	errs := make([]error, in.b)
	parallel(in.b, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			lg := in.logits[i*in.t*in.v : (i+1)*in.t*in.v]
			mk := in.mask[i*in.t : (i+1)*in.t]
			o := out[i*in.v : (i+1)*in.v]
			if p == encode.PoolSum {
				errs[i] = kernels.PoolSumTwin(lg, mk, 1, in.t, in.v, o)
			} else {
				errs[i] = kernels.PoolMaxTwin(lg, mk, 1, in.t, in.v, o)
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		tb.Fatal(err)
	}
	return out
}

// comparePooled checks got against the twin within rel (relative); it
// reports the largest relative difference and how many outputs differ.
func comparePooled(t *testing.T, in poolInput, got, want []float32, rel float64) {
	t.Helper()
	var worst float64
	differ := 0
	for i := range want {
		g, w := got[i], want[i]
		if math.Float32bits(g) == math.Float32bits(w) {
			continue
		}
		differ++
		d := math.Abs(float64(g)-float64(w)) / math.Max(math.Abs(float64(w)), math.SmallestNonzeroFloat32)
		if math.IsNaN(d) || d > rel {
			t.Fatalf("%v: out[%d][%d] = %v, twin %v (relative difference %g > %g)", in, i/in.v, i%in.v, g, w, d, rel)
		}
		worst = math.Max(worst, d)
	}
	t.Logf("%v: %d of %d outputs differ from the twin, largest relative difference %.3g", in, differ, len(want), worst)
}

func poolInputs() []poolInput {
	return []poolInput{
		makePoolInput(1, 1, 1, 1, true),
		makePoolInput(2, 1, 7, 300, true),
		makePoolInput(3, 3, 17, 1031, true),
		makePoolInput(4, 7, 64, 30527, true),
		makePoolInput(5, 2, 9, 128257, false),
		makePoolInput(6, 64, 512, 30522, false),
	}
}

func TestPoolParity(t *testing.T) {
	e := openEngine(t)
	for _, in := range poolInputs() {
		t.Run(in.String(), func(t *testing.T) {
			got, err := e.PoolMax(in.logits, in.mask, in.b, in.t, in.v)
			if err != nil {
				t.Fatal(err)
			}
			// One log1pf per output: CUDA's 1 ulp is below 1.2e-7 relative.
			comparePooled(t, in, got, twinPool(t, encode.PoolMax, in), 1e-6)

			got, err = e.PoolSum(in.logits, in.mask, in.b, in.t, in.v)
			if err != nil {
				t.Fatal(err)
			}
			// A float32 sum of up to t terms, each possibly 1 ulp apart:
			// roundings can diverge once partial sums differ.
			comparePooled(t, in, got, twinPool(t, encode.PoolSum, in), 1e-5)
		})
	}
}

// makePooled makes pooled rows with ties, zeros, negatives, NaN, +Inf,
// denormals and empty rows.
func makePooled(seed uint64, b, v int) []float32 {
	rng := rand.New(rand.NewPCG(seed, 7))
	p := make([]float32, b*v)
	for i := 0; i < b; i++ {
		kind, density := rng.IntN(5), rng.Float64()
		for j := 0; j < v; j++ {
			if rng.Float64() >= density {
				continue
			}
			var w float32
			switch kind {
			case 0:
				w = rng.Float32() * 3
			case 1:
				w = float32(rng.IntN(4)) * 0.25
			case 2: // empty
			case 3:
				switch rng.IntN(6) {
				case 0:
					w = float32(math.NaN())
				case 1:
					w = float32(math.Inf(1))
				case 2:
					w = -rng.Float32()
				case 3:
					w = math.Float32frombits(1 + rng.Uint32N(100))
				default:
					w = rng.Float32()
				}
			default:
				w = []float32{0.1, 0.7, 0.7, 2}[rng.IntN(4)]
			}
			p[i*v+j] = w
		}
	}
	return p
}

// diffCSR describes the first difference between two CSR results, "" when equal.
func diffCSR(gotO, gotT []uint32, gotW []float32, wantO, wantT []uint32, wantW []float32) string {
	if len(gotO) != len(wantO) || len(gotT) != len(wantT) || len(gotW) != len(wantW) {
		return fmt.Sprintf("lengths offsets/terms/weights = %d/%d/%d, twin %d/%d/%d",
			len(gotO), len(gotT), len(gotW), len(wantO), len(wantT), len(wantW))
	}
	for i := range wantO {
		if gotO[i] != wantO[i] {
			return fmt.Sprintf("offsets[%d] = %d, twin %d", i, gotO[i], wantO[i])
		}
	}
	for i := range wantT {
		if gotT[i] != wantT[i] || math.Float32bits(gotW[i]) != math.Float32bits(wantW[i]) {
			return fmt.Sprintf("entry %d = (%d, %v), twin (%d, %v)", i, gotT[i], gotW[i], wantT[i], wantW[i])
		}
	}
	return ""
}

func sameCSR(t *testing.T, label string, gotO, gotT []uint32, gotW []float32, wantO, wantT []uint32, wantW []float32) {
	t.Helper()
	if d := diffCSR(gotO, gotT, gotW, wantO, wantT, wantW); d != "" {
		t.Fatalf("%s: %s", label, d)
	}
}

type sparsifySetting struct {
	minWeight float32
	topK      int
}

func sparsifySettings(v int) []sparsifySetting {
	return []sparsifySetting{{0, 0}, {0, 1}, {0, 3}, {0, 64}, {0.5, 0}, {0.5, 128}, {0.1, 256}, {0, v}, {0, v + 1}, {5, 10}}
}

func TestSparsifyParity(t *testing.T) {
	e := openEngine(t)
	shapes := []struct{ b, v int }{{1, 1}, {1, 5}, {3, 31}, {7, 257}, {4, 1000}, {64, 30522}, {5, 30527}, {2, 128257}}
	for n, sh := range shapes {
		pooled := makePooled(uint64(n+1), sh.b, sh.v)
		for _, s := range sparsifySettings(sh.v) {
			label := fmt.Sprintf("b=%d v=%d min-weight=%v top-k=%d", sh.b, sh.v, s.minWeight, s.topK)
			o, tm, w, err := e.Sparsify(pooled, sh.b, sh.v, s.minWeight, s.topK)
			if err != nil {
				t.Fatalf("%s: %v", label, err)
			}
			wo, wt, ww, err := kernels.SparsifyTwin(pooled, sh.b, sh.v, s.minWeight, s.topK)
			if err != nil {
				t.Fatal(err)
			}
			sameCSR(t, label, o, tm, w, wo, wt, ww)
		}
	}
}

// TestPoolSparsifyParity checks the fused call against the device's own
// pooled rows sparsified by the twin: equal bit for bit.
func TestPoolSparsifyParity(t *testing.T) {
	e := openEngine(t)
	for _, in := range poolInputs() {
		for _, p := range []encode.Pooling{encode.PoolMax, encode.PoolSum} {
			pooled, err := e.pool(p, in.logits, in.mask, in.b, in.t, in.v)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []sparsifySetting{{0, 0}, {0, 1}, {0, 128}, {0.3, 64}} {
				label := fmt.Sprintf("%v %s min-weight=%v top-k=%d", in, p, s.minWeight, s.topK)
				o, tm, w, err := e.PoolSparsify(p, in.logits, in.mask, in.b, in.t, in.v, s.minWeight, s.topK)
				if err != nil {
					t.Fatalf("%s: %v", label, err)
				}
				wo, wt, ww, err := kernels.SparsifyTwin(pooled, in.b, in.v, s.minWeight, s.topK)
				if err != nil {
					t.Fatal(err)
				}
				sameCSR(t, label, o, tm, w, wo, wt, ww)
				if s.topK == 0 && s.minWeight == 0 {
					t.Logf("%s: %d non-zeros (%.1f per document)", label, len(tm), float64(len(tm))/float64(in.b))
				}
			}
		}
	}
}

func TestEngineErrors(t *testing.T) {
	e := openEngine(t)
	if _, err := e.PoolMax(make([]float32, 5), make([]int64, 2), 1, 2, 3); err == nil {
		t.Error("PoolMax accepted 5 logits for 1x2x3")
	}
	if _, _, _, err := e.Sparsify(make([]float32, 4), 2, 2, 0, -1); err == nil {
		t.Error("Sparsify accepted top-k -1")
	}
	if _, _, _, err := e.PoolSparsify(encode.Pooling(9), make([]float32, 6), make([]int64, 2), 1, 2, 3, 0, 0); err == nil {
		t.Error("PoolSparsify accepted an unknown pooling")
	}
	if _, err := Open(context.Background(), 1<<20); err == nil {
		t.Error("Open accepted device 1<<20")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Open(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled context: %v", err)
	}

	e2, err := Open(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e2.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := e2.PoolMax(make([]float32, 6), make([]int64, 2), 1, 2, 3); !errors.Is(err, ErrClosed) {
		t.Errorf("PoolMax after Close: %v, want ErrClosed", err)
	}
}

// TestEngineConcurrentUse runs calls from several goroutines on one engine.
func TestEngineConcurrentUse(t *testing.T) {
	e := openEngine(t)
	in := makePoolInput(11, 4, 32, 1031, false)
	// The reference is one call made alone: concurrent calls must give
	// bit-identical results (the parity tests compare the device with the
	// twin, whose log1p may differ from log1pf by an ulp).
	want, err := e.PoolMax(in.logits, in.mask, in.b, in.t, in.v)
	if err != nil {
		t.Fatal(err)
	}
	comparePooled(t, in, want, twinPool(t, encode.PoolMax, in), 1e-6)
	wo, wt, ww, err := e.Sparsify(want, in.b, in.v, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 10; n++ {
				pooled, err := e.PoolMax(in.logits, in.mask, in.b, in.t, in.v)
				if err != nil {
					errs <- err
					return
				}
				o, tm, w, err := e.Sparsify(pooled, in.b, in.v, 0, 0)
				if err != nil {
					errs <- err
					return
				}
				if d := diffCSR(o, tm, w, wo, wt, ww); d != "" {
					errs <- fmt.Errorf("concurrent call: %s", d)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkPoolSparsify measures max pooling plus sparsification of a batch
// of 64 documents x 256 positions x 30522 (BERT vocabulary), every position
// unmasked, and reports the rate at which logits are read in GB/s.
//   - device/pool-only: logits already on the GPU; the pooling kernel alone.
//   - device: logits already on the GPU (as an encoder's output would be);
//     pooling, both sparsify passes and the CSR copy to the host.
//   - host: the whole PoolSparsify call, including copying 2 GB of logits
//     over PCIe from pageable memory.
func BenchmarkPoolSparsify(b *testing.B) {
	const nb, nt, nv = 64, 256, 30522
	e := openEngine(b)
	logits := make([]float32, nb*nt*nv)
	mask := make([]int64, nb*nt)
	for i := range mask {
		mask[i] = 1
	}
	parallel(nb*nt, func(lo, hi int) {
		r := rand.New(rand.NewPCG(42, uint64(lo)))
		for i := lo * nv; i < hi*nv; i++ {
			// About 1e-5 of the logits are positive: some 80 non-zeros
			// per document, the sparsity of SPLADE document vectors.
			logits[i] = float32(r.NormFloat64()*2 - 8.5)
		}
	})
	bytes := int64(len(logits)) * 4
	report := func(b *testing.B) {
		b.ReportMetric(float64(bytes)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
	}
	b.Run("device/pool-only", func(b *testing.B) {
		err := e.run("upload", func() error { return e.uploadPoolInputs(logits, mask) })
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(bytes)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			err := e.run("bench", func() error {
				if err := e.launchPool(encode.PoolMax, nb, nt, nv); err != nil {
					return err
				}
				return e.stream.Sync()
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	for _, topK := range []int{0, 128} {
		b.Run(fmt.Sprintf("device/top-k=%d", topK), func(b *testing.B) {
			err := e.run("upload", func() error { return e.uploadPoolInputs(logits, mask) })
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(bytes)
			b.ResetTimer()
			var nnz int
			for i := 0; i < b.N; i++ {
				err := e.run("bench", func() error {
					if err := e.launchPool(encode.PoolMax, nb, nt, nv); err != nil {
						return err
					}
					_, terms, _, err := e.sparsifyPooled(nb, nv, 0, topK)
					nnz = len(terms)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			report(b)
			b.ReportMetric(float64(nnz)/nb, "nnz/doc")
		})
	}
	b.Run("host/top-k=0", func(b *testing.B) {
		b.SetBytes(bytes)
		for i := 0; i < b.N; i++ {
			if _, _, _, err := e.PoolSparsify(encode.PoolMax, logits, mask, nb, nt, nv, 0, 0); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
}

// TestSelfCheck runs what `splash selftest` runs on each GPU.
func TestSelfCheck(t *testing.T) {
	openEngine(t) // skips without a GPU
	res, err := SelfCheck(context.Background(), 0, 8, 64, 30522, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if !res.OK {
		t.Errorf("kernels disagree with their twins: %+v", res)
	}
}
