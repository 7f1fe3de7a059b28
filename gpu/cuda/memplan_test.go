package cuda

import (
	"errors"
	"strings"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/kernels"
)

// TestPlanMemoryLlama8B checks the memory plan on Llama 3 8B's shape. Its
// parameter count, 8,030,261,248, is the one published for the model; all
// but the 32·2 + 1 RMSNorm gains (266,240 values, float32 on the device,
// with the 64 rotary frequencies) are bf16 matrices: about 16 GB.
func TestPlanMemoryLlama8B(t *testing.T) {
	a, err := ParseArch([]byte(llama3Config))
	if err != nil {
		t.Fatal(err)
	}
	const params, norms = 8_030_261_248, 32*2*4096 + 4096
	want := uint64((params-norms)*2 + (norms+64)*4)
	if got := WeightBytes(a, false, kernels.BF16); got != want {
		t.Errorf("WeightBytes(bf16) = %d, want %d", got, want)
	}
	if got, want := WeightBytes(a, false, kernels.F32), uint64((params+64)*4); got != want {
		t.Errorf("WeightBytes(fp32) = %d, want %d", got, want)
	}
	// Tied embeddings: the head is stored once.
	tied := a
	tied.TiedEmbeddings = true
	if got, want := WeightBytes(a, false, kernels.BF16)-WeightBytes(tied, true, kernels.BF16), uint64(128256*4096*2); got != want {
		t.Errorf("tying saves %d bytes, want %d", got, want)
	}

	// The workspace of one lane for 2048 tokens in documents of 512: per
	// token x, xn (2·4096), y (max(6144, 2·14336)), c (max(4096, 14336)),
	// q (4096), k and v (2·1024), scores (32·512) in bf16, 4 int32; a
	// logits chunk of 2048 × 128256 bf16; 4 pooled rows of 128256 float32.
	p := PlanMemory(a, false, kernels.BF16, 512, DefaultHeadChunk, 2)
	perToken := 2*4096 + 2*14336 + 14336 + 4096 + 2*1024 + 32*512
	wantWS := uint64(2048*perToken*2 + 2048*16 + 2048*128256*2 + 4*128256*4)
	if p.Workspace != wantWS || p.Tokens != 2048 || p.Weights != want {
		t.Errorf("plan %+v, want workspace %d", p, wantWS)
	}
	if p.Total() != p.Weights+2*wantWS+memoryReserve {
		t.Errorf("total %d", p.Total())
	}
	// An 80 GB GPU holds it; 16 GiB free does not, and the refusal gives
	// the figures.
	if err := p.Check(79 << 30); err != nil {
		t.Errorf("80 GB: %v", err)
	}
	err = p.Check(16 << 30)
	if !errors.Is(err, ErrDoesNotFit) || !errors.Is(err, encode.ErrSettings) {
		t.Fatalf("16 GiB free: %v", err)
	}
	for _, s := range []string{"model 14.96 GiB", "16.00 GiB free", "2 lanes", "batches of 2048 tokens"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("refusal %q does not say %q", err, s)
		}
	}
}

// TestBytesPerTokenDecoder checks that BatchTokens sizes decoder batches
// with the decoder's buffers, not BERT's: for Llama 3 8B at 512 tokens a
// token costs 73,728 activation values.
func TestBytesPerTokenDecoder(t *testing.T) {
	a, err := ParseArch([]byte(llama3Config))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := BytesPerToken(a, kernels.BF16, 512), 73728*2+16+4*128256/16; got != want {
		t.Errorf("BytesPerToken = %d, want %d", got, want)
	}
	if got := BytesPerToken(bertBase, kernels.BF16, 512); got != 26112+16+7630 {
		t.Errorf("BERT's BytesPerToken changed: %d", got)
	}
}

// TestModelFLOPsLlama8B: two FLOPs per weight of every GEMM a token goes
// through (Llama 3 8B's 8,030,261,248 parameters less the embedding table
// it only indexes, 525,336,576, and the RMSNorm gains, 266,240), plus the
// attention's 4·l·heads·d per layer at l = 512.
func TestModelFLOPsLlama8B(t *testing.T) {
	a, err := ParseArch([]byte(llama3Config))
	if err != nil {
		t.Fatal(err)
	}
	want := 2*float64(8_030_261_248-525_336_576-266_240) + 32*4*512*4096
	if got := ModelFLOPsPerToken(a, 512); got != want {
		t.Errorf("ModelFLOPsPerToken = %g, want %g", got, want)
	}
}

// TestMemoryPlanFP8 checks what --precision fp8 adds to the plan of a
// Llama-3-8B-shaped model: one byte for each value of the layers' weight
// matrices (the head and embeddings stay bf16) and per lane the cuBLASLt
// workspace and the quantized activations, and that Check names it.
func TestMemoryPlanFP8(t *testing.T) {
	a := Arch{Family: FamilyLlama, Vocab: 128256, Hidden: 4096, Heads: 32, KVHeads: 8, Layers: 32, Intermediate: 14336, MaxPositions: 131072}
	p := PlanMemory(a, false, kernels.BF16, 512, DefaultHeadChunk, DefaultLanes)
	f := p.WithFP8(a)
	// Per layer: q 4096², k and v 2·1024·4096, o 4096², gate, up and down
	// 3·14336·4096 = 218,103,808 values; 32 layers.
	const layerValues = 32 * 218103808
	perLane := uint64(fp8Workspace) + uint64(p.Tokens)*14336 + 64
	if f.FP8 != layerValues+uint64(DefaultLanes)*perLane {
		t.Fatalf("fp8 bytes %d, want %d", f.FP8, layerValues+uint64(DefaultLanes)*perLane)
	}
	if f.Total() != p.Total()+f.FP8 {
		t.Fatalf("total %d, want %d", f.Total(), p.Total()+f.FP8)
	}
	err := f.Check(p.Total())
	if err == nil || !strings.Contains(err.Error(), "fp8 weights and buffers") {
		t.Fatalf("check with room for bf16 only: %v", err)
	}
}
