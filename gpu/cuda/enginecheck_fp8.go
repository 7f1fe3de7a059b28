package cuda

import (
	"context"
	"errors"

	"github.com/splash-encode/splash/encode"
)

// compareDecoderFP8 is the fp8 case of the decoder engine check for one
// model and variant: the forward pass on the fp8 Ops made from newOps's
// bf16 Ops (fp8Ops; nothing for Ops that make none, one entry saying why
// on GPUs below compute capability 9.0), with the LM head in bf16
// (Net.KeepHeadBF16, as the backend runs it), against the oracle's rows
// want: OK with a mean top-20 overlap of at least EngineMinTopOverlap.
func compareDecoderFP8(ctx context.Context, newOps OpsFactory, w *Weights, att Attention, in Input, chunk int,
	want [][]float64, name string, tokens int) (res []EngineParity, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ops, release, skip, err := fp8Ops(newOps)
	switch {
	case err != nil:
		return nil, err
	case skip != nil:
		return []EngineParity{{Arch: name, Precision: "fp8", Skipped: skip.Error(), OK: true}}, nil
	case ops == nil:
		return nil, nil
	}
	defer func() { err = errors.Join(err, release()) }()
	net, err := NewNet(ops, w, chunk)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, net.Close()) }()
	if err := net.KeepHeadBF16(); err != nil {
		return nil, err
	}
	if err := net.SetAttention(att); err != nil {
		return nil, err
	}
	v := w.Arch.Vocab
	got := make([]float32, len(in.Docs)*v)
	if err := net.Forward(in, encode.PoolMax, got); err != nil {
		return nil, err
	}
	p := EngineParity{Arch: name, Precision: string(FP8), Docs: len(in.Docs), Tokens: tokens}
	scoreParity(&p, want[:len(in.Docs)], got, v, false)
	return []EngineParity{p}, nil
}
