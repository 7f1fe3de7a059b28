package cuda

import (
	"context"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode/testmodel"
)

// smallDecoderCheck is a quicker decoder engine check for CI: one layer,
// a vocabulary of the synthetic tokenizer's size, ten documents.
var smallDecoderCheck = decoderCheckConfig{
	models: []decoderCheckModel{
		{"llama", testmodel.LlamaConfig{Family: testmodel.FamilyLlama, Layers: 1, Hidden: 64, Heads: 4, KVHeads: 2,
			RopeScaling: &checkLlama3Scaling, Seed: 5, Shards: 2, SkipONNX: true}},
		{"mistral", testmodel.LlamaConfig{Family: testmodel.FamilyMistral, Layers: 1, Hidden: 64, Heads: 4, KVHeads: 1,
			Tied: true, Seed: 7, SkipONNX: true}},
	},
	lengths: []int{1, 30, 7, 18, 2, 41, 12, 25, 9, 33},
	chunk:   16,
}

// TestDecoderEngineCheckTwins runs the decoder engine check of the device
// with TwinOps: every model and variant within 1e-4 of the oracle in fp32,
// and bf16 and fp16 with a mean top-20 overlap of at least 0.95.
func TestDecoderEngineCheckTwins(t *testing.T) {
	res, err := compareDecoderEngine(context.Background(), twinFactory("", 0), smallDecoderCheck, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2*3*3 {
		t.Errorf("%d results, want 2 models × 3 variants × 3 precisions", len(res))
	}
	for _, p := range res {
		t.Logf("%+v", p)
		if !p.OK || p.Docs != len(smallDecoderCheck.lengths) || p.Tokens == 0 {
			t.Errorf("%+v: want OK", p)
		}
	}
}

// TestDecoderEngineCheckDetectsBrokenOps: GEMMs 5% off on one value fail
// the fp32 comparison with the oracle for causal and bidirectional
// attention. (With echo inputs the value it perturbs, the buffer's
// largest, may lie in a row of the first copy, which is not pooled and,
// under causal attention, may reach no pooled row: echo may pass.)
func TestDecoderEngineCheckDetectsBrokenOps(t *testing.T) {
	cfg := smallDecoderCheck
	cfg.models = cfg.models[:1]
	res, err := compareDecoderEngine(context.Background(), twinFactory("LinearT", 0.05), cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res {
		if p.Precision == "fp32" && !strings.HasSuffix(p.Arch, "/echo") && (p.OK || p.MaxAbs <= EngineFP32Tolerance) {
			t.Errorf("%+v: want fp32 not OK", p)
		}
		if !strings.HasPrefix(p.Arch, "llama/") {
			t.Errorf("arch %q", p.Arch)
		}
	}
}
