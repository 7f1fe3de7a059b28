//go:build cgo

package ort

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/encode/tokenizer"
)

// Real causal-LM tokenizers and text (the repository's test data,
// testdata/README.md).
var (
	causalTestdata   = filepath.Join("..", "..", "testdata")
	causalGPT2Tok    = filepath.Join(causalTestdata, "tokenizers", "gpt2", "tokenizer.json")
	causalMistralTok = filepath.Join(causalTestdata, "tokenizers", "mistral-7b", "tokenizer.json")
	causalCranfield  = filepath.Join(causalTestdata, "cranfield", "cran.all.1400")
)

// causalSequences tokenizes a few Cranfield documents, cut to different
// lengths, and a short query with the tokenizer at tokPath: real token ids
// of a right-padded batch whose rows differ in length.
func causalSequences(t *testing.T, tokPath string) [][]int32 {
	t.Helper()
	for _, p := range []string{tokPath, causalCranfield} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("test data missing (see testdata/README.md): %v", err)
		}
	}
	tk, err := tokenizer.Load(tokPath)
	if err != nil {
		t.Fatal(err)
	}
	cran, err := os.ReadFile(causalCranfield)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, doc := range strings.Split(string(cran), "\n.I ") {
		if _, text, ok := strings.Cut(doc, "\n.W\n"); ok {
			texts = append(texts, text)
		}
	}
	var seqs [][]int32
	for i, n := range []int{48, 31, 9} {
		seqs = append(seqs, tk.Encode(texts[1+i*500], n).IDs)
	}
	seqs = append(seqs, tk.Encode("lift and drag of a swept wing", 0).IDs)
	for i, s := range seqs {
		if len(s) < 3 {
			t.Fatalf("sequence %d has only %d tokens", i, len(s))
		}
	}
	return seqs
}

// causalRun runs the generated model's own graph (no pooling appended) on
// seqs, right-padded with id 0, feeding position_ids 0..L-1 on every row
// when the model declares them, and returns the logits [row][position][vocab]
// as float64 (float16 outputs decoded).
func causalRun(t *testing.T, dir string, seqs [][]int32, vocab int, positionIDs, fp16 bool) [][][]float64 {
	t.Helper()
	library, err := ResolveLibrary("")
	if err != nil {
		t.Fatal(err)
	}
	if err := acquireEnvironment(library); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := releaseEnvironment(); err != nil {
			t.Error(err)
		}
	}()
	so, err := ortgo.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(2); err != nil {
		t.Fatal(err)
	}
	names := []string{"input_ids", "attention_mask"}
	if positionIDs {
		names = append(names, "position_ids")
	}
	s, err := ortgo.NewDynamicAdvancedSession(filepath.Join(dir, testmodel.ModelFile), names, []string{"logits"}, so)
	if err != nil {
		t.Fatalf("create session: %v", err)
	}
	defer s.Destroy()

	rows, seqLen := len(seqs), 0
	for _, q := range seqs {
		seqLen = max(seqLen, len(q))
	}
	ids, mask, pos := make([]int64, rows*seqLen), make([]int64, rows*seqLen), make([]int64, rows*seqLen)
	for r, q := range seqs {
		for i := 0; i < seqLen; i++ {
			pos[r*seqLen+i] = int64(i)
			if i < len(q) {
				ids[r*seqLen+i], mask[r*seqLen+i] = int64(q[i]), 1
			}
		}
	}
	shape := ortgo.NewShape(int64(rows), int64(seqLen))
	var inputs []ortgo.Value
	defer func() { destroyAll(inputs) }()
	for _, data := range [][]int64{ids, mask, pos}[:len(names)] {
		v, err := ortgo.NewTensor(shape, data)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, v)
	}
	outShape := ortgo.NewShape(int64(rows), int64(seqLen), int64(vocab))
	n := rows * seqLen * vocab
	var out ortgo.Value
	var f32 []float32
	var f16 []byte
	if fp16 {
		f16 = make([]byte, 2*n)
		out, err = ortgo.NewCustomDataTensor(outShape, f16, ortgo.TensorElementDataTypeFloat16)
	} else {
		f32 = make([]float32, n)
		out, err = ortgo.NewTensor(outShape, f32)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer out.Destroy()
	if err := s.Run(inputs, []ortgo.Value{out}); err != nil {
		t.Fatalf("run: %v", err)
	}
	logits := make([][][]float64, rows)
	for r := range logits {
		logits[r] = make([][]float64, seqLen)
		for i := range logits[r] {
			row := make([]float64, vocab)
			base := (r*seqLen + i) * vocab
			for j := range row {
				if fp16 {
					row[j] = causalHalf(binary.LittleEndian.Uint16(f16[2*(base+j):]))
				} else {
					row[j] = float64(f32[base+j])
				}
			}
			logits[r][i] = row
		}
	}
	return logits
}

// causalHalf decodes an IEEE 754 binary16 bit pattern.
func causalHalf(bits uint16) float64 {
	sign := 1.0
	if bits&0x8000 != 0 {
		sign = -1
	}
	exp, frac := int(bits>>10)&0x1f, float64(bits&0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(frac, -24)
	case 0x1f:
		if frac != 0 {
			return math.NaN()
		}
		return sign * math.Inf(1)
	}
	return sign * math.Ldexp(1024+frac, exp-25)
}

// TestCausalTestModelMatchesOracle runs encode/testmodel's causal LM in ONNX
// Runtime on a right-padded batch of real token ids (GPT-2 and Mistral
// vocabularies, with and without a position_ids input, several opsets) and
// compares the logits of every unmasked position with the float64
// CausalOracle on the unpadded sequence. It then changes the last real
// token of every row: ONNX Runtime's logits at earlier positions must not
// move (causality), the last position's must.
func TestCausalTestModelMatchesOracle(t *testing.T) {
	requireLibrary(t)
	for _, tc := range []struct {
		tok string
		cfg testmodel.CausalConfig
	}{
		{causalGPT2Tok, testmodel.CausalConfig{Layers: 2, Hidden: 32, Heads: 2, Seed: 1}},
		{causalGPT2Tok, testmodel.CausalConfig{Layers: 1, Hidden: 64, Heads: 4, Seed: 2, PositionIDs: true, Opset: 18}},
		{causalMistralTok, testmodel.CausalConfig{Layers: 1, Hidden: 32, Heads: 4, Seed: 3, Opset: 17}},
		{causalMistralTok, testmodel.CausalConfig{Layers: 2, Hidden: 48, Heads: 3, Seed: 4, PositionIDs: true, Opset: 21}},
		{causalMistralTok, testmodel.CausalConfig{Layers: 1, Hidden: 32, Heads: 2, Seed: 5, PositionIDs: true, FP16: true}},
	} {
		name := fmt.Sprintf("%s/%dx%dx%d-opset%d-position_ids=%t-fp16=%t", filepath.Base(filepath.Dir(tc.tok)),
			tc.cfg.Layers, tc.cfg.Hidden, tc.cfg.Heads, max(tc.cfg.Opset, 14), tc.cfg.PositionIDs, tc.cfg.FP16)
		t.Run(name, func(t *testing.T) {
			seqs := causalSequences(t, tc.tok)
			dir := filepath.Join(t.TempDir(), "model")
			if err := testmodel.GenerateCausal(dir, tc.cfg, tc.tok); err != nil {
				t.Fatal(err)
			}
			oracle, err := testmodel.LoadCausalOracle(dir)
			if err != nil {
				t.Fatal(err)
			}
			vocab := oracle.VocabSize()
			// A last row of padding only: its queries see no key at all.
			got := causalRun(t, dir, append(seqs, nil), vocab, tc.cfg.PositionIDs, tc.cfg.FP16)
			for i, row := range got[len(seqs)] {
				for j, z := range row {
					if math.IsNaN(z) || math.IsInf(z, 0) {
						t.Fatalf("padding-only row, position %d term %d: %v", i, j, z)
					}
				}
			}
			var worst float64
			boundary := 0 // float16 logits that ONNX Runtime rounded the other way
			for r, s := range seqs {
				want := oracle.Float64Logits(s)
				for i := range s {
					for j, w := range want[i] {
						g := got[r][i][j]
						if tc.cfg.FP16 {
							// Either float16 neighbour of a logit within float32
							// error of a rounding boundary.
							lo, hi := testmodel.RoundToFloat16(w-2e-5), testmodel.RoundToFloat16(w+2e-5)
							if g < lo || g > hi {
								t.Fatalf("row %d position %d term %d: %v, oracle %v rounds to %v..%v", r, i, j, g, w, lo, hi)
							}
							if g != testmodel.RoundToFloat16(w) {
								boundary++
							}
							continue
						}
						d := math.Abs(g - w)
						worst = max(worst, d)
						if !(d <= 1e-4) {
							t.Fatalf("row %d (%d tokens) position %d term %d: ONNX Runtime %v, oracle %v", r, len(s), i, j, g, w)
						}
					}
				}
			}
			if tc.cfg.FP16 {
				t.Logf("%d rows of %v tokens: %d float16 logits rounded to the other neighbour of the oracle's", len(seqs), causalLengths(seqs), boundary)
			} else {
				t.Logf("%d rows of %v tokens: largest |ONNX Runtime - oracle| %.2g", len(seqs), causalLengths(seqs), worst)
			}

			// Causality in ONNX Runtime: a different last token changes no
			// earlier position.
			changed := make([][]int32, len(seqs))
			for r, s := range seqs {
				changed[r] = append([]int32(nil), s...)
				changed[r][len(s)-1] = (s[len(s)-1] + 1000) % int32(vocab)
			}
			again := causalRun(t, dir, changed, vocab, tc.cfg.PositionIDs, tc.cfg.FP16)
			for r, s := range seqs {
				last := len(s) - 1
				for i := 0; i < last; i++ {
					for j := range again[r][i] {
						if d := math.Abs(again[r][i][j] - got[r][i][j]); d > 1e-6 {
							t.Fatalf("row %d: changing the token at position %d moved position %d term %d by %v", r, last, i, j, d)
						}
					}
				}
				var moved float64
				for j := range again[r][last] {
					moved = max(moved, math.Abs(again[r][last][j]-got[r][last][j]))
				}
				if moved < 1e-2 {
					t.Errorf("row %d: changing the last token moved its own logits by only %v", r, moved)
				}
			}
		})
	}
}

func causalLengths(seqs [][]int32) []int {
	n := make([]int, len(seqs))
	for i, s := range seqs {
		n[i] = len(s)
	}
	return n
}

// TestCausalTestModelPooledMatchesOracle opens causal test models through
// Open, which appends SPLADE pooling to their graph, encodes a right-padded
// batch of real GPT-2 token ids with max and sum pooling, and compares the
// pooled vectors with CausalOracle.Pooled.
func TestCausalTestModelPooledMatchesOracle(t *testing.T) {
	requireLibrary(t)
	seqs := causalSequences(t, causalGPT2Tok)
	for _, cfg := range []testmodel.CausalConfig{
		{Layers: 1, Hidden: 32, Heads: 2, Seed: 6},
		{Layers: 1, Hidden: 32, Heads: 2, Seed: 6, PositionIDs: true, Opset: 18},
	} {
		t.Run(fmt.Sprintf("position_ids=%t", cfg.PositionIDs), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "model")
			if err := testmodel.GenerateCausal(dir, cfg, causalGPT2Tok); err != nil {
				t.Fatal(err)
			}
			oracle, err := testmodel.LoadCausalOracle(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, pooling := range []encode.Pooling{encode.PoolMax, encode.PoolSum} {
				b, err := Open(context.Background(), dir, Options{Pooling: pooling, IntraOpThreads: 2})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				vocab := b.VocabSize()
				out := make([]float32, len(seqs)*vocab)
				err = b.Encode(context.Background(), encode.NewBatch(seqs, 0), out)
				if cerr := b.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					t.Fatal(err)
				}
				if vocab != oracle.VocabSize() {
					t.Fatalf("pooled width %d, vocabulary %d", vocab, oracle.VocabSize())
				}
				var worst float64
				nonzero := 0
				for r, s := range seqs {
					want := oracle.Pooled(s, pooling.String())
					for j, w := range want {
						g := float64(out[r*vocab+j])
						if d := math.Abs(g - w); !(d <= 1e-4) {
							t.Fatalf("%v, row %d (%d tokens), term %d: got %v, oracle %v", pooling, r, len(s), j, g, w)
						} else {
							worst = max(worst, d)
						}
						if w > 0 {
							nonzero++
						}
					}
				}
				if nonzero == 0 {
					t.Fatalf("%v: every weight is zero", pooling)
				}
				t.Logf("%v: %d non-zero weights in %d rows, largest difference %.2g", pooling, nonzero, len(seqs), worst)
			}
		})
	}
}
