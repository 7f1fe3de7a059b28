package cuda

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/safetensors"
	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/kernels"
)

// decoderCheckModel is one generated decoder of the decoder engine check.
type decoderCheckModel struct {
	name string
	cfg  testmodel.LlamaConfig
}

// decoderCheckConfig is what the decoder engine check generates and
// encodes.
type decoderCheckConfig struct {
	models  []decoderCheckModel
	lengths []int // text lengths in tokens (an echo document holds its text twice)
	chunk   int   // the head's token chunk
}

// checkLlama3Scaling reaches all three regimes of the llama3 rescaling at
// head_dim 16 and rope_theta 10000 (see smallLlama3Scaling in the tests).
var checkLlama3Scaling = testmodel.LlamaRopeScaling{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 128}

var defaultDecoderCheck = decoderCheckConfig{
	models: []decoderCheckModel{
		{"llama", testmodel.LlamaConfig{Family: testmodel.FamilyLlama, Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2,
			RopeScaling: &checkLlama3Scaling, Vocab: 128256, Seed: 13, Shards: 2, SafeTensorsDType: safetensors.BF16, SkipONNX: true}},
		{"mistral", testmodel.LlamaConfig{Family: testmodel.FamilyMistral, Layers: 2, Hidden: 64, Heads: 4, KVHeads: 1,
			Tied: true, Seed: 17, SkipONNX: true}},
	},
	lengths: []int{1, 9, 33, 64, 127, 17, 90, 5, 48, 12, 77, 30},
	chunk:   256,
}

// decoderVariants are the attention and input variants the check runs.
var decoderVariants = []struct {
	name string
	att  Attention
	echo bool
}{
	{"causal", AttentionCausal, false},
	{"bidirectional", AttentionBidirectional, false},
	{"echo", AttentionCausal, true},
}

// CompareDecoderEngine generates a Llama (grouped-query attention 4/2,
// llama3 rope scaling, untied head over 128,256 ids, two bf16 shards) and a
// Mistral (one KV head, tied head) into a temporary directory, encodes 12
// random documents of 1 to 127 text tokens in one batch with Net.Forward
// (max pooling, the head in chunks of 256 tokens) with causal attention,
// bidirectional attention and echo inputs ([BOS] text text, pooled over the
// second copy), on the Ops newOps makes for fp32, bf16 and fp16, and
// compares the vectors with testmodel.LlamaOracle: fp32 within
// EngineFP32Tolerance, bf16 and fp16 with a mean top-20 overlap of
// EngineMinTopOverlap. Each EngineParity's Arch is "model/variant".
func CompareDecoderEngine(ctx context.Context, newOps OpsFactory, seed uint64) ([]EngineParity, error) {
	return compareDecoderEngine(ctx, newOps, defaultDecoderCheck, seed)
}

func compareDecoderEngine(ctx context.Context, newOps OpsFactory, cfg decoderCheckConfig, seed uint64) (res []EngineParity, err error) {
	work, err := os.MkdirTemp("", "splash-decoder-check-")
	if err != nil {
		return nil, fmt.Errorf("decoder engine check: %w", err)
	}
	defer func() { err = errors.Join(err, os.RemoveAll(work)) }()
	tok := filepath.Join(work, testmodel.TokenizerFile)
	if err := os.WriteFile(tok, testmodel.SyntheticTokenizerJSON(), 0o644); err != nil {
		return nil, fmt.Errorf("decoder engine check: %w", err)
	}
	for _, m := range cfg.models {
		r, err := compareDecoderModel(ctx, newOps, cfg, m, filepath.Join(work, m.name), tok, seed)
		res = append(res, r...)
		if err != nil {
			return res, fmt.Errorf("decoder engine check (%s): %w", m.name, err)
		}
	}
	return res, nil
}

func compareDecoderModel(ctx context.Context, newOps OpsFactory, cfg decoderCheckConfig, m decoderCheckModel, dir, tok string, seed uint64) ([]EngineParity, error) {
	if err := testmodel.GenerateLlama(dir, m.cfg, tok); err != nil {
		return nil, err
	}
	arch, err := ReadArch(dir)
	if err != nil {
		return nil, err
	}
	oracle, err := testmodel.LoadLlamaOracle(dir)
	if err != nil {
		return nil, err
	}
	ckpt, err := OpenCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	w, err := BindWeights(arch, ckpt)
	ckpt.Close()
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, uint64(len(m.name))))
	texts := make([][]int32, len(cfg.lengths))
	for i, n := range cfg.lengths {
		texts[i] = make([]int32, n)
		for p := range texts[i] {
			texts[i][p] = int32(2 + rng.IntN(arch.Vocab-2)) // ids 0 and 1 are the BOS candidates
		}
	}
	var res []EngineParity
	for _, variant := range decoderVariants {
		in := Input{Docs: make([][]int32, len(texts)), PoolFrom: make([]int, len(texts))}
		tokens := 0
		want := make([][]float64, len(texts))
		for i, text := range texts {
			doc := append([]int32{1}, text...)
			if variant.echo {
				in.PoolFrom[i] = len(doc)
				doc = append(doc, text...)
			}
			in.Docs[i], tokens = doc, tokens+len(doc)
			if want[i] = oracle.PooledFrom(doc, in.PoolFrom[i], "max", variant.att == AttentionBidirectional); want[i] == nil {
				return res, fmt.Errorf("the oracle refuses document %d: %v", i, oracle.Validate(doc))
			}
		}
		for _, st := range storageTypes {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			got, err := decoderForwardOn(newOps, st.dt, w, variant.att, in, cfg.chunk)
			if err != nil {
				return res, fmt.Errorf("%s, %s: %w", variant.name, st.precision, err)
			}
			p := EngineParity{Arch: m.name + "/" + variant.name, Precision: string(st.precision), Docs: len(texts), Tokens: tokens}
			scoreParity(&p, want[:len(texts)], got, arch.Vocab, st.dt == kernels.F32)
			res = append(res, p)
		}
		// --precision fp8 (enginecheck_fp8.go): on compute capability 9.0
		// and later; an entry saying why elsewhere.
		r, err := compareDecoderFP8(ctx, newOps, w, variant.att, in, cfg.chunk, want, m.name+"/"+variant.name, tokens)
		res = append(res, r...)
		if err != nil {
			return res, fmt.Errorf("%s, fp8: %w", variant.name, err)
		}
	}
	return res, nil
}

// decoderForwardOn runs in through a Net of w with attention att on Ops of
// dt and returns the max-pooled rows.
func decoderForwardOn(newOps OpsFactory, dt kernels.DType, w *Weights, att Attention, in Input, chunk int) (out []float32, err error) {
	ops, release, err := newOps(dt)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, release()) }()
	net, err := NewNet(ops, w, chunk)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, net.Close()) }()
	if err := net.SetAttention(att); err != nil {
		return nil, err
	}
	out = make([]float32, len(in.Docs)*w.Arch.Vocab)
	if err := net.Forward(in, encode.PoolMax, out); err != nil {
		return nil, err
	}
	return out, nil
}

// CheckDecoderEngine runs CompareDecoderEngine on device deviceIndex
// (DeviceOps with fp32 GEMMs, no TF32). Without a usable driver or cuBLAS
// the error matches gpu.ErrUnavailable.
func CheckDecoderEngine(ctx context.Context, deviceIndex int, seed uint64) ([]EngineParity, error) {
	factory, release, err := deviceFactory(deviceIndex)
	if err != nil {
		return nil, err
	}
	factory, releaseOps := reuseOps(factory)
	res, err := CompareDecoderEngine(ctx, factory, seed)
	return res, errors.Join(err, releaseOps(), release())
}
