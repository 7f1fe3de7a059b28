package cuda

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/gpu"
	"github.com/splash-encode/splash/kernels"
)

// SelfCheck runs splash's kernels on device deviceIndex over deterministic
// random logits of shape [b, t, v] (documents of random lengths, padding
// filled with values that must never count) and compares them with their
// pure-Go twins: pooling (max and sum) to a relative 1e-6, sparsification
// exactly. It reports the largest differences and the time of one
// PoolSparsify call, transfers included.
//
// It then checks the CUDA engine on the device: its kernels and GEMMs
// against the twins in f32, bf16 and f16 (CompareKernels, into
// Transformer) and its forward pass over generated BERT, DistilBERT and
// RoBERTa models (CompareEngine) and Llama and Mistral models, causal,
// bidirectional and echo (CompareDecoderEngine), against the float64
// oracles in fp32, bf16 and fp16, into Engine. Where cuBLAS does not load, or the GPU is
// older than the engine's kernels, EngineNote says so instead and only the
// pooling and sparsification kernels count.
func SelfCheck(ctx context.Context, deviceIndex, b, t, v int, seed uint64) (gpu.KernelCheck, error) {
	res := gpu.KernelCheck{Device: deviceIndex, B: b, T: t, V: v}
	e, err := Open(ctx, deviceIndex)
	if err != nil {
		return res, err
	}
	defer e.Close()
	logits, mask := randomLogits(seed, b, t, v)
	for _, p := range []encode.Pooling{encode.PoolMax, encode.PoolSum} {
		want := make([]float32, b*v)
		twin := kernels.PoolMaxTwin
		if p == encode.PoolSum {
			twin = kernels.PoolSumTwin
		}
		if err := twin(logits, mask, b, t, v, want); err != nil {
			return res, fmt.Errorf("%s pooling twin: %w", p, err)
		}
		got, err := e.pool(p, logits, mask, b, t, v)
		if err != nil {
			return res, err
		}
		worst := maxRelative(got, want)
		if p == encode.PoolMax {
			res.PoolMaxRel = worst
		} else {
			res.PoolSumRel = worst
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}
	pooled := make([]float32, b*v)
	if err := kernels.PoolMaxTwin(logits, mask, b, t, v, pooled); err != nil {
		return res, err
	}
	const minWeight, topK = 0.1, 64
	wo, wt, ww, err := kernels.SparsifyTwin(pooled, b, v, minWeight, topK)
	if err != nil {
		return res, err
	}
	go_, gt, gw, err := e.Sparsify(pooled, b, v, minWeight, topK)
	if err != nil {
		return res, err
	}
	res.SparsifyExact = slices.Equal(go_, wo) && slices.Equal(gt, wt) && slices.Equal(gw, ww)
	start := time.Now()
	if _, _, _, err := e.PoolSparsify(encode.PoolMax, logits, mask, b, t, v, minWeight, topK); err != nil {
		return res, err
	}
	res.PoolSparsifyTime = time.Since(start)
	res.OK = res.PoolMaxRel <= 1e-6 && res.PoolSumRel <= 1e-6 && res.SparsifyExact
	if err := checkEngineOn(ctx, deviceIndex, seed, &res); err != nil {
		return res, err
	}
	for _, k := range res.Transformer {
		res.OK = res.OK && k.OK
	}
	for _, e := range res.Engine {
		res.OK = res.OK && e.OK
	}
	return res, nil
}

// checkEngineOn runs CompareKernels, CompareEngine and
// CompareDecoderEngine on device
// deviceIndex into res, or sets res.EngineNote where the engine cannot run
// there (cuBLAS does not load, the GPU is too old).
func checkEngineOn(ctx context.Context, deviceIndex int, seed uint64, res *gpu.KernelCheck) (err error) {
	factory, release, err := deviceFactory(deviceIndex)
	var unavailable *gpu.UnavailableError
	switch {
	case errors.As(err, &unavailable):
		res.EngineNote = "splash's CUDA engine was not checked: " + unavailable.Reason + ": " + err.Error()
		return nil
	case errors.Is(err, errOldGPU):
		res.EngineNote = "splash's CUDA engine was not checked: " + err.Error()
		return nil
	case err != nil:
		return fmt.Errorf("engine check on cuda:%d: %w", deviceIndex, err)
	}
	defer func() { err = errors.Join(err, release()) }()
	factory, releaseOps := reuseOps(factory)
	defer func() { err = errors.Join(err, releaseOps()) }()
	if res.Transformer, err = CompareKernels(ctx, factory, seed); err != nil {
		return fmt.Errorf("cuda:%d: %w", deviceIndex, err)
	}
	if res.Engine, err = CompareEngine(ctx, factory, seed); err != nil {
		return fmt.Errorf("cuda:%d: %w", deviceIndex, err)
	}
	decoders, err := CompareDecoderEngine(ctx, factory, seed)
	if err != nil {
		return fmt.Errorf("cuda:%d: %w", deviceIndex, err)
	}
	res.Engine = append(res.Engine, decoders...)
	return nil
}

// randomLogits makes logits like the parity tests' (normal around -3 with
// ties), a mask of random lengths (some documents without tokens), and
// padding positions set to 1e4, which a kernel that ignores the mask would
// pick up.
func randomLogits(seed uint64, b, t, v int) ([]float32, []int64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	logits := make([]float32, b*t*v)
	mask := make([]int64, b*t)
	for i := 0; i < b; i++ {
		n := 1 + rng.IntN(t)
		if i > 0 && rng.IntN(8) == 0 {
			n = 0
		}
		for p := 0; p < n; p++ {
			mask[i*t+p] = 1
		}
	}
	for row := 0; row < b*t; row++ {
		xs := logits[row*v : (row+1)*v]
		for j := range xs {
			switch {
			case mask[row] == 0:
				xs[j] = 1e4
			case rng.IntN(16) == 0:
				xs[j] = float32(rng.IntN(4)) * 0.5
			default:
				xs[j] = float32(rng.NormFloat64()*2 - 3)
			}
		}
	}
	return logits, mask
}

// maxRelative is the largest |got - want| / max(|want|, 1e-30); a NaN
// counts as math.MaxFloat64 (which the selftest's JSON report can carry,
// unlike +Inf).
func maxRelative(got, want []float32) float64 {
	worst := 0.0
	for i := range want {
		d := math.Abs(float64(got[i])-float64(want[i])) / math.Max(math.Abs(float64(want[i])), 1e-30)
		if math.IsNaN(d) || math.IsInf(d, 0) {
			return math.MaxFloat64
		}
		worst = math.Max(worst, d)
	}
	return worst
}
