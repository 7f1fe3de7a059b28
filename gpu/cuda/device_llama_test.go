package cuda

import (
	"context"
	"errors"
	"testing"

	"github.com/splash-encode/splash/gpu"
)

// TestDeviceDecoderEngine runs the decoder engine check (CompareDecoderEngine:
// generated Llama and Mistral models, causal, bidirectional and echo, in
// fp32, bf16 and fp16) on GPU 0 with DeviceOps; it skips where the driver
// or cuBLAS do not load. CI runs the same check on TwinOps
// (TestDecoderEngineCheckTwins).
func TestDeviceDecoderEngine(t *testing.T) {
	res, err := CheckDecoderEngine(context.Background(), 0, 1)
	if errors.Is(err, gpu.ErrUnavailable) {
		t.Skipf("skipping: no usable GPU: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2*3*4 {
		t.Errorf("%d results, want 2 models × 3 variants × 4 precisions (fp8 skipped below compute capability 9.0)", len(res))
	}
	for _, p := range res {
		t.Logf("%+v", p)
		if !p.OK {
			t.Errorf("%+v: not OK", p)
		}
	}
}
