//go:build cgo

package testmodel

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/onnxpb"
	"github.com/splash-encode/splash/encode/tokenizer"
	"github.com/splash-encode/splash/gpu/ort"
)

// The generated Llama and Mistral models run through gpu/ort (graph
// surgery with SPLADE pooling, ONNX Runtime's CPU provider, the backend of
// splash's CPU path) on right-padded batches, compared with LlamaOracle.

// llamaLogitShift is added to every logit by shiftLogits: the generated
// models' logits stay within +-40, so relu is then the identity and the
// pooled weight log1p(z + shift) gives z back.
const llamaLogitShift = 48

// llamaRun opens dir through gpu/ort with pooling (poolMask: pooling reads
// batch.PoolMask) and encodes batch, returning one pooled row per batch row.
func llamaRun(t *testing.T, dir string, pooling encode.Pooling, poolMask bool, batch *encode.Batch) [][]float64 {
	t.Helper()
	b, err := ort.Open(context.Background(), dir, ort.Options{Pooling: pooling, IntraOpThreads: 2, PoolMask: poolMask})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	vocab := b.VocabSize()
	out := make([]float32, batch.Size*vocab)
	err = b.Encode(context.Background(), batch, out)
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	rows := make([][]float64, batch.Size)
	for r := range rows {
		rows[r] = make([]float64, vocab)
		for j := range rows[r] {
			rows[r][j] = float64(out[r*vocab+j])
		}
	}
	return rows
}

// shiftLogits copies dir's model.onnx with llamaLogitShift added to its
// logits output (the node that wrote logits now writes logits_unshifted).
func shiftLogits(t *testing.T, dir string) string {
	t.Helper()
	m := loadModel(t, dir)
	g := m.Graph
	found := false
	for _, n := range g.Node {
		for i, o := range n.Output {
			if o == OutputLogits {
				n.Output[i], found = "logits_unshifted", true
			}
		}
	}
	if !found {
		t.Fatalf("no node writes %s", OutputLogits)
	}
	g.Initializer = append(g.Initializer, &onnxpb.TensorProto{
		Name: "test_logit_shift", DataType: int32(onnxpb.TensorProto_FLOAT), FloatData: []float32{llamaLogitShift},
	})
	g.Node = append(g.Node, &onnxpb.NodeProto{
		Name: "/test/shift", OpType: "Add", Input: []string{"logits_unshifted", "test_logit_shift"}, Output: []string{OutputLogits},
	})
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "shifted")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, ModelFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// ortLogits returns ONNX Runtime's logits [row][position][vocab] of the
// real positions of seqs, run as one right-padded batch: for each position
// p, a run whose pool mask selects p in every row long enough, on the
// shifted model, gives log1p(z + shift), which is inverted.
func ortLogits(t *testing.T, dir string, seqs [][]int32) [][][]float64 {
	t.Helper()
	shifted := shiftLogits(t, dir)
	b, err := ort.Open(context.Background(), shifted, ort.Options{Pooling: encode.PoolMax, IntraOpThreads: 2, PoolMask: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	}()
	vocab := b.VocabSize()
	batch := encode.NewBatch(seqs, 0)
	out := make([]float32, batch.Size*vocab)
	logits := make([][][]float64, len(seqs))
	for p := 0; p < batch.SeqLen; p++ {
		batch.PoolMask = make([]int64, len(batch.AttentionMask))
		for r, s := range seqs {
			if p < len(s) {
				batch.PoolMask[r*batch.SeqLen+p] = 1
			}
		}
		if err := b.Encode(context.Background(), batch, out); err != nil {
			t.Fatal(err)
		}
		for r, s := range seqs {
			if p >= len(s) {
				continue
			}
			row := make([]float64, vocab)
			for j := range row {
				w := float64(out[r*vocab+j])
				if !(w > 0) {
					t.Fatalf("row %d position %d term %d: pooled %v, the shift of %d does not make the logit positive", r, p, j, w, llamaLogitShift)
				}
				row[j] = math.Expm1(w) - llamaLogitShift
			}
			logits[r] = append(logits[r], row)
		}
	}
	return logits
}

// llamaSequences tokenizes Cranfield documents cut to different lengths
// and a short query with Mistral's tokenizer (ids begin with <s>).
func llamaSequences(t *testing.T) [][]int32 {
	t.Helper()
	tk, err := tokenizer.Load(mistralTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	texts := cranfieldTexts(t, 0)
	var seqs [][]int32
	for i, n := range []int{40, 23, 9} {
		seqs = append(seqs, tk.Encode(texts[1+i*500], n).IDs)
	}
	seqs = append(seqs, tk.Encode("lift and drag of a swept wing", 0).IDs, []int32{1})
	return seqs
}

// compareLogits checks ONNX Runtime's logits against the oracle's, every
// real position of every row, and returns the largest difference.
func compareLogits(t *testing.T, o *LlamaOracle, seqs [][]int32, got [][][]float64, bidirectional bool) float64 {
	t.Helper()
	var worst float64
	for r, s := range seqs {
		want := o.Logits(s, bidirectional)
		if len(got[r]) != len(s) {
			t.Fatalf("row %d: %d positions from ONNX Runtime, %d tokens", r, len(got[r]), len(s))
		}
		for i := range s {
			for j, w := range want[i] {
				d := math.Abs(got[r][i][j] - w)
				if !(d <= 1e-4) {
					t.Fatalf("row %d (%d tokens) position %d term %d: ONNX Runtime %v, oracle %v", r, len(s), i, j, got[r][i][j], w)
				}
				worst = max(worst, d)
			}
		}
	}
	return worst
}

// comparePooled checks pooled rows against the oracle's PooledFrom and
// returns the largest difference and the number of non-zero weights.
func comparePooled(t *testing.T, o *LlamaOracle, seqs [][]int32, from []int, p encode.Pooling, got [][]float64, bidirectional bool) (float64, int) {
	t.Helper()
	var worst float64
	nonzero := 0
	for r, s := range seqs {
		want := o.PooledFrom(s, from[r], p.String(), bidirectional)
		if want == nil {
			t.Fatalf("oracle rejects row %d", r)
		}
		for j, w := range want {
			d := math.Abs(got[r][j] - w)
			if !(d <= 1e-4) {
				t.Fatalf("%v, row %d (%d tokens, pooled from %d), term %d: ONNX Runtime %v, oracle %v", p, r, len(s), from[r], j, got[r][j], w)
			}
			worst = max(worst, d)
			if w > 0 {
				nonzero++
			}
		}
	}
	return worst, nonzero
}

// TestLlamaMatchesONNXRuntime runs generated Llama and Mistral models in
// ONNX Runtime on a right-padded batch of real Mistral token ids (position
// ids 0..n-1 and 1 at padding, as splash feeds them) and compares with the
// float64 oracle: the logits of every real position, and the SPLADE
// vectors as splash computes them (max and sum pooling), within 1e-4.
// Cases: Llama with grouped-query attention (4 heads, 2 KV heads), llama3
// rope scaling and an untied head; Mistral with one KV head, rope_theta
// 1e6 and a tied head; the bidirectional graph against the oracle's
// bidirectional mode; bf16 weights in 3 shards.
func TestLlamaMatchesONNXRuntime(t *testing.T) {
	requireORT(t)
	scaling := LlamaRopeScaling{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 32}
	seqs := llamaSequences(t)
	for _, cfg := range []LlamaConfig{
		{Layers: 2, Hidden: 64, Heads: 4, KVHeads: 2, RopeScaling: &scaling, Seed: 1},
		{Family: FamilyMistral, Layers: 2, Hidden: 32, Heads: 4, KVHeads: 1, RopeTheta: 1e6, Tied: true, Seed: 2, Opset: 18},
		{Layers: 2, Hidden: 32, Heads: 4, KVHeads: 2, RopeScaling: &scaling, Bidirectional: true, Seed: 3},
		{Family: FamilyMistral, Layers: 1, Hidden: 32, Heads: 2, Shards: 3, SafeTensorsDType: "BF16", Seed: 4, Opset: 21},
	} {
		full, _ := cfg.withDefaults()
		name := fmt.Sprintf("%s-%dx%dx%d-kv%d-scaled=%t-tied=%t-bidirectional=%t-%s", full.Family, cfg.Layers, cfg.Hidden, cfg.Heads,
			full.KVHeads, cfg.RopeScaling != nil, cfg.Tied, cfg.Bidirectional, full.SafeTensorsDType)
		t.Run(name, func(t *testing.T) {
			dir := generateLlama(t, cfg)
			o := mustLlamaOracle(t, dir)
			worst := compareLogits(t, o, seqs, ortLogits(t, dir, seqs), cfg.Bidirectional)
			t.Logf("logits: largest |ONNX Runtime - oracle| %.2g", worst)
			batch := encode.NewBatch(seqs, 0)
			from := make([]int, len(seqs))
			for _, p := range []encode.Pooling{encode.PoolMax, encode.PoolSum} {
				d, nz := comparePooled(t, o, seqs, from, p, llamaRun(t, dir, p, false, batch), cfg.Bidirectional)
				if nz == 0 {
					t.Errorf("%v: every weight is zero", p)
				}
				t.Logf("%v: %d non-zero weights, largest difference %.2g", p, nz, d)
			}
			if cfg.Bidirectional {
				// The bidirectional graph is not the causal one: position 0
				// sees later tokens.
				if d := maxDiff(o.Logits(seqs[0], false)[0], o.Logits(seqs[0], true)[0]); d < 1e-3 {
					t.Errorf("causal and bidirectional logits at position 0 differ by only %v", d)
				}
			}
		})
	}
}

// TestLlamaEchoMatchesONNXRuntime mirrors the echo check of splash's
// end-to-end family test (cmd/splash/internal/job): the input is the
// tokenizer's prefix, the text twice, its suffix; pooling reads the second
// copy only (batch.SetPoolFrom, the PoolMask input splash's CPU path adds
// with --echo), and must equal the oracle's PooledFrom over that copy, for
// causal and bidirectional attention.
func TestLlamaEchoMatchesONNXRuntime(t *testing.T) {
	requireORT(t)
	tk, err := tokenizer.Load(mistralTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	texts := cranfieldTexts(t, 0)
	var seqs [][]int32
	var from []int
	for i, n := range []int{20, 12, 5, 1} {
		content := tk.Content(tk.Encode(texts[3+i*300], 0))
		text := content[:min(n, len(content))]
		seqs = append(seqs, slices.Concat(tk.Prefix(), text, text, tk.Suffix()))
		from = append(from, len(tk.Prefix())+len(text))
	}
	for _, bidirectional := range []bool{false, true} {
		t.Run(fmt.Sprintf("bidirectional=%t", bidirectional), func(t *testing.T) {
			dir := generateLlama(t, LlamaConfig{Layers: 2, Hidden: 32, Heads: 4, KVHeads: 2, Seed: 7, Bidirectional: bidirectional})
			o := mustLlamaOracle(t, dir)
			batch := encode.NewBatch(seqs, 0)
			batch.SetPoolFrom(from)
			for _, p := range []encode.Pooling{encode.PoolMax, encode.PoolSum} {
				got := llamaRun(t, dir, p, true, batch)
				d, nz := comparePooled(t, o, seqs, from, p, got, bidirectional)
				// Pooling over the whole input differs: the mask is honoured.
				whole := o.Pooled(seqs[0], p.String(), bidirectional)
				if maxDiff(whole, got[0]) < 1e-3 {
					t.Errorf("%v: pooling from %d equals pooling the whole input", p, from[0])
				}
				t.Logf("%v: %d non-zero weights, largest difference %.2g", p, nz, d)
			}
		})
	}
}

// TestLlamaLargeVocabONNXRuntime: a 128,256-id vocabulary (Llama 3's) with
// ids above 65,535 fed directly. The logits of ONNX Runtime and the oracle
// agree at every position, and the pooled vectors have non-zero terms above
// 65,535 (the model's own tokens), equal to the oracle's.
func TestLlamaLargeVocabONNXRuntime(t *testing.T) {
	requireORT(t)
	const vocab = 128256
	dir := generateLlama(t, LlamaConfig{Layers: 1, Hidden: 64, Heads: 4, KVHeads: 1, Vocab: vocab, Seed: 8})
	o := mustLlamaOracle(t, dir)
	if o.VocabSize() != vocab {
		t.Fatalf("vocabulary %d, want %d", o.VocabSize(), vocab)
	}
	seqs := [][]int32{{1, 70000, 100000, 128255, 65536, 500, 99999}, {1, 65535, 120001}, {1, 77777}}
	worst := compareLogits(t, o, seqs, ortLogits(t, dir, seqs), false)
	got := llamaRun(t, dir, encode.PoolMax, false, encode.NewBatch(seqs, 0))
	d, _ := comparePooled(t, o, seqs, make([]int, len(seqs)), encode.PoolMax, got, false)
	high := 0
	for r, s := range seqs {
		for _, id := range s {
			if id > 65535 && got[r][id] > 0 {
				high++
			}
		}
	}
	t.Logf("logits within %.2g, pooled within %.2g; %d of the ids above 65535 fed are non-zero terms", worst, d, high)
	if high < 6 {
		t.Errorf("only %d of the ids above 65535 in the input are non-zero terms of their own vector", high)
	}
}
