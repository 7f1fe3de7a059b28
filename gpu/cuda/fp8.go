package cuda

import (
	"fmt"

	"github.com/splash-encode/splash/kernels"
)

// FP8 is --precision fp8, on GPUs of compute capability 9.0 and later
// (Hopper): activations stored as bf16; every GEMM with a weight matrix of
// the layers (attention QKV and output, the FFN or gate/up and down
// projections, the head transform) takes E4M3 operands with per-tensor
// scales through cuBLASLt and accumulates in float32: the weight quantized
// once at upload (scale amax/448), the activation quantized at every call
// from its own amax (kernels.AmaxTwin and kernels.QuantizeFP8Twin on the
// device), the product scaled by both scales and stored as bf16. The
// attention GEMMs (scores and context) stay bf16, as do the LM head
// (Net.KeepHeadBF16, which the backend applies) and the GEMMs whose shapes
// cuBLASLt's FP8 kernels do not take (FP8Eligible).
const FP8 Precision = "fp8"

// fp8MinCompute is the compute capability (major) of FP8 tensor cores
// with cuBLASLt's E4M3 GEMMs.
const fp8MinCompute = 9

// FP8Eligible reports whether LinearT(rows, n, k, ...) runs in FP8 under
// --precision fp8: cuBLASLt's FP8 kernels want the TN layout with every
// leading dimension a multiple of 16 bytes, so n (the weight's rows and the
// output's leading dimension) and k (the E4M3 operands' leading dimension)
// must be multiples of 16; the tokens (rows) may be anything. Other shapes
// (a 30,522-id BERT vocabulary, say) run in bf16, in the twin as on the
// device.
func FP8Eligible(n, k int) bool { return n > 0 && k > 0 && n%16 == 0 && k%16 == 0 }

// hostFP8 is a weight matrix quantized to E4M3 with one per-tensor scale:
// the codes (uploaded to the device as bytes), their values (for the twin's
// GEMM) and the scale.
type hostFP8 struct {
	codes  []uint8
	values []float32 // kernels.FromE4M3(codes[i]), exact
	scale  float32
}

// quantizeHostMatrix quantizes a weight matrix on the host, at upload: the
// same Go code for the twin and the device, so both hold identical codes.
func quantizeHostMatrix(data []float32) *hostFP8 {
	codes, scale := kernels.QuantizeFP8(data)
	values := make([]float32, len(codes))
	for i, c := range codes {
		values[i] = kernels.FromE4M3(c)
	}
	return &hostFP8{codes: codes, values: values, scale: scale}
}

// fp8Weights is implemented by the Ops of --precision fp8 (TwinOps from
// NewTwinFP8Ops, DeviceOps after EnableFP8).
type fp8Weights interface {
	// KeepBF16 drops the E4M3 copy of a weight matrix made by Matrix (a
	// no-op for any other buffer), so its GEMMs run in bf16.
	KeepBF16(b Buf) error
}

// KeepHeadBF16 makes the decoder GEMM of a Net on FP8 Ops (the LM head,
// [vocabulary][hidden], tied or not) run in bf16, the policy of
// --precision fp8: on the generated test models the E4M3 head alone costs
// 0.04 to 0.13 of the top-20 overlap with the float64 oracle, more than all
// the layers' E4M3 GEMMs together (fp8_test.go), since the head's logits
// are the term weights themselves; and it is a small share of the work
// (128,256 × 4,096 of Llama-3-8B's 8 billion weights). A no-op on other
// Ops. Call it before Share: lanes share the weights.
func (n *Net) KeepHeadBF16() error {
	k, ok := n.ops.(fp8Weights)
	if !ok || n.decoder == nil {
		return nil
	}
	if err := k.KeepBF16(n.decoder); err != nil {
		return fmt.Errorf("cuda engine: keep the LM head in bf16: %w", err)
	}
	return nil
}
