package cuda

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/gpu/cuda/sys"
	"github.com/splash-encode/splash/kernels"
)

// bertBase is BERT-base's shape (bert-base-uncased's config.json).
var bertBase = Arch{Family: FamilyBERT, Vocab: 30522, Hidden: 768, Heads: 12, Layers: 12, Intermediate: 3072, MaxPositions: 512, TypeVocab: 2}

func TestBatchTokens(t *testing.T) {
	// Worked by hand for BERT-base in bf16 with documents of up to 512
	// tokens: (2·768 + 3072 + 3·768 + 12·512)·2 + 16 + 4·30522/16 bytes.
	if got := BytesPerToken(bertBase, kernels.BF16, 512); got != 26112+16+7630 {
		t.Errorf("BytesPerToken = %d, want %d", got, 26112+16+7630)
	}
	fixed := uint64(4096*30522*2) + memoryReserve
	for _, c := range []struct {
		free uint64
		want int
	}{
		{0, 2048},
		{fixed, 2048},
		{fixed + 2*33758*10000, 10000},
		{80 << 30, maxBatchTokens},
	} {
		if got := BatchTokens(c.free, bertBase, kernels.BF16, 512, 4096); got != c.want {
			t.Errorf("BatchTokens(%d free) = %d, want %d", c.free, got, c.want)
		}
	}
	if got := BatchTokens(0, bertBase, kernels.F32, 4096, 4096); got != 4096 {
		t.Errorf("the floor is the max length: got %d", got)
	}
}

func TestResolvePrecision(t *testing.T) {
	h100 := sys.DeviceInfo{Name: "H100", ComputeMajor: 9}
	t4 := sys.DeviceInfo{Name: "Tesla T4", ComputeMajor: 7, ComputeMinor: 5}
	for _, c := range []struct {
		p       string
		info    sys.DeviceInfo
		want    Precision
		dt      kernels.DType
		compute sys.ComputeType
	}{
		{"", h100, BF16, kernels.BF16, sys.Compute32F},
		{"", t4, FP16, kernels.F16, sys.Compute32F},
		{"fp32", t4, FP32, kernels.F32, sys.Compute32F},
		{"tf32", h100, TF32, kernels.F32, sys.Compute32FFastTF32},
		{"fp16", h100, FP16, kernels.F16, sys.Compute32F},
	} {
		p, dt, compute, err := resolvePrecision(c.p, c.info)
		if err != nil || p != c.want || dt != c.dt || compute != c.compute {
			t.Errorf("%q on %s: %v %v %v %v, want %v %v %v", c.p, c.info.Name, p, dt, compute, err, c.want, c.dt, c.compute)
		}
	}
	for _, bad := range []string{"bf16", "int8"} {
		if _, _, _, err := resolvePrecision(bad, t4); !errors.Is(err, encode.ErrSettings) {
			t.Errorf("%q on a T4: %v, want a settings error", bad, err)
		}
	}
}

// TestBackendLanes runs the engine's Backend over two twin lanes that share
// one set of weights (Net.Share), from four goroutines at once, dense and
// sparse: every batch equals the one-lane forward pass, and Close waits for
// the batches in flight.
func TestBackendLanes(t *testing.T) {
	g := generateModel(t, testmodel.Config{Layers: 1, Hidden: 16, Heads: 2, Seed: 6})
	owner := loadNet(t, g.dir, kernels.F32, 64)
	ref := loadNet(t, g.dir, kernels.F32, 64)
	second := NewTwinOps(kernels.F32)
	b := newBackend([]*lane{{ops: owner.ops, net: owner}, {ops: second, net: owner.Share(second)}}, encode.PoolMax, FP32, 4096)
	if b.Lanes() != 2 {
		t.Fatalf("%d lanes", b.Lanes())
	}
	docs := tokenize(g.tok, cranfieldTexts(t, 12), 96)
	v := b.VocabSize()
	wants := make([][]float32, 4) // a Net runs one batch at a time: the references first
	for w := range wants {
		wants[w] = make([]float32, 3*v)
		if err := ref.Forward(Input{Docs: docs[w*3 : w*3+3]}, encode.PoolMax, wants[w]); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			batch, want := docs[w*3:w*3+3], wants[w]
			eb := encode.NewBatch(batch, 0)
			got := make([]float32, len(batch)*v)
			if err := b.Encode(context.Background(), eb, got); err != nil {
				errs <- err
				return
			}
			var csr encode.CSR
			if err := b.EncodeSparse(context.Background(), eb, &csr); err != nil {
				errs <- err
				return
			}
			if !slices.Equal(got, want) {
				errs <- fmt.Errorf("worker %d: the lanes' rows differ from one lane's", w)
			}
			if n := csr.Rows(); n != len(batch) {
				errs <- fmt.Errorf("worker %d: %d sparse rows", w, n)
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Encode(context.Background(), encode.NewBatch(docs[:1], 0), make([]float32, v)); err == nil {
		t.Error("Encode after Close succeeded")
	}
}
