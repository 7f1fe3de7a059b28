package cuda

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/encode/tokenizer"
	"github.com/splash-encode/splash/encode/weights"
	"github.com/splash-encode/splash/kernels"
)

// Test data in the repository (see testdata/README.md).
const (
	bertTokenizer  = "../../testdata/tokenizers/bert-base-uncased/tokenizer.json"
	gpt2Tokenizer  = "../../testdata/tokenizers/gpt2/tokenizer.json"
	cranfieldShard = "../../testdata/cranfield/docs-00000.parquet"
)

// generated is a test model generated into dir, with its tokenizer.
type generated struct {
	dir string
	tok *tokenizer.Tokenizer
}

// generateModel writes a small masked LM of cfg.Arch over a real vocabulary.
func generateModel(t testing.TB, cfg testmodel.Config) generated {
	t.Helper()
	tokPath := bertTokenizer
	if cfg.Arch == testmodel.ArchRoBERTa {
		gpt2, err := os.ReadFile(gpt2Tokenizer)
		if err != nil {
			t.Fatal(err)
		}
		b, err := testmodel.RobertaTokenizerJSON(gpt2)
		if err != nil {
			t.Fatal(err)
		}
		tokPath = filepath.Join(t.TempDir(), "roberta-tokenizer.json")
		if err := os.WriteFile(tokPath, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "model")
	if err := testmodel.Generate(dir, cfg, tokPath); err != nil {
		t.Fatalf("generate %+v: %v", cfg, err)
	}
	tok, err := tokenizer.Load(tokPath)
	if err != nil {
		t.Fatal(err)
	}
	return generated{dir: dir, tok: tok}
}

// cranfieldTexts reads the texts of the first n documents of the Cranfield
// shard in testdata. It reads the file with parquet-go rather than splash's
// reader (package shards), which would link the object-store clients into
// the test binary that scripts/gpu-check.sh carries to GPU machines.
func cranfieldTexts(t testing.TB, n int) []string {
	t.Helper()
	type doc struct {
		Text *string `parquet:"text,optional"`
	}
	docs, err := parquet.ReadFile[doc](cranfieldShard)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, d := range docs {
		if d.Text != nil && len(texts) < n {
			texts = append(texts, *d.Text)
		}
	}
	return texts
}

// loadNet binds the weights of a generated model to twin Ops of dt.
func loadNet(t testing.TB, dir string, dt kernels.DType, headChunk int) *Net {
	t.Helper()
	arch, err := ReadArch(dir)
	if err != nil {
		t.Fatal(err)
	}
	ckpt, err := weights.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ckpt.Close()
	w, err := BindWeights(arch, ckpt)
	if err != nil {
		t.Fatal(err)
	}
	n, err := NewNet(NewTwinOps(dt), w, headChunk)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// tokenize encodes texts with the model's maximum length, dropping
// documents without content tokens.
func tokenize(tok *tokenizer.Tokenizer, texts []string, maxLen int) [][]int32 {
	var docs [][]int32
	for _, text := range texts {
		ids := tok.Encode(text, maxLen).IDs
		if len(ids) > tok.NumSpecialTokens() {
			docs = append(docs, ids)
		}
	}
	return docs
}

// TestForwardMatchesOracle is the engine's forward pass, composed of the
// kernels' Go twins and a plain Go GEMM in fp32, against the float64 oracle
// of encode/testmodel on BERT, DistilBERT and RoBERTa models over Cranfield
// documents: every pooled weight within 1e-4. Batches mix lengths, and the
// head chunk is smaller than a batch, so documents span chunks.
func TestForwardMatchesOracle(t *testing.T) {
	texts := cranfieldTexts(t, 24)
	for _, tc := range []struct {
		arch    testmodel.Arch
		pooling encode.Pooling
	}{
		{testmodel.ArchBERT, encode.PoolMax},
		{testmodel.ArchDistilBERT, encode.PoolMax},
		{testmodel.ArchRoBERTa, encode.PoolMax},
		{testmodel.ArchBERT, encode.PoolSum},
	} {
		t.Run(string(tc.arch)+"-"+tc.pooling.String(), func(t *testing.T) {
			t.Parallel()
			g := generateModel(t, testmodel.Config{Arch: tc.arch, Layers: 2, Hidden: 32, Heads: 4, Seed: 7})
			oracle, err := testmodel.LoadOracle(g.dir)
			if err != nil {
				t.Fatal(err)
			}
			net := loadNet(t, g.dir, kernels.F32, 300)
			docs := tokenize(g.tok, texts, oracle.MaxLength())
			worst := 0.0
			v := net.Arch().Vocab
			for start := 0; start < len(docs); start += 8 {
				batch := docs[start:min(start+8, len(docs))]
				out := make([]float32, len(batch)*v)
				if err := net.Forward(Input{Docs: batch}, tc.pooling, out); err != nil {
					t.Fatal(err)
				}
				for i, ids := range batch {
					want := oracle.Pooled(ids, tc.pooling.String())
					for j, w := range want {
						worst = math.Max(worst, math.Abs(w-float64(out[i*v+j])))
					}
				}
			}
			t.Logf("%d documents, largest difference from the float64 oracle %.3g", len(docs), worst)
			if worst > 1e-4 {
				t.Errorf("largest difference %.3g > 1e-4", worst)
			}
		})
	}
}

// TestForwardPoolFrom checks that PoolFrom pools only the suffix of each
// document: the forward pass over a document with PoolFrom p equals pooling
// the oracle's logits from p on.
func TestForwardPoolFrom(t *testing.T) {
	g := generateModel(t, testmodel.Config{Layers: 1, Hidden: 16, Heads: 2, Seed: 3})
	oracle, err := testmodel.LoadOracle(g.dir)
	if err != nil {
		t.Fatal(err)
	}
	net := loadNet(t, g.dir, kernels.F32, 0)
	docs := tokenize(g.tok, cranfieldTexts(t, 3), 64)
	from := []int{0, 5, len(docs[2]) - 1}
	v := net.Arch().Vocab
	out := make([]float32, len(docs)*v)
	if err := net.Forward(Input{Docs: docs, PoolFrom: from}, encode.PoolMax, out); err != nil {
		t.Fatal(err)
	}
	for i, ids := range docs {
		logits := oracle.Logits(ids)
		mask := make([]int64, len(ids))
		for p := from[i]; p < len(ids); p++ {
			mask[p] = 1
		}
		want := encode.PoolReference(logits, mask, encode.PoolMax)
		for j := range want {
			if d := math.Abs(want[j] - float64(out[i*v+j])); d > 1e-4 {
				t.Fatalf("document %d (pooled from %d), term %d: got %g, want %g", i, from[i], j, out[i*v+j], want[j])
			}
		}
	}
}

// TestForwardBF16TopTerms runs the forward pass with bf16 activations and
// weights (the twins round every stored value as the GPU does) and reports
// how far it is from the float64 oracle: the largest relative error of the
// weights and the mean share of each document's top-20 terms that the
// oracle's top 20 also have. The share must be at least 0.9 on these small
// models (the GPU check measures it on larger ones).
func TestForwardBF16TopTerms(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a model and runs it in bf16 through the twins (pure Go: the full run covers it)")
	}
	g := generateModel(t, testmodel.Config{Layers: 2, Hidden: 64, Heads: 4, Seed: 11})
	oracle, err := testmodel.LoadOracle(g.dir)
	if err != nil {
		t.Fatal(err)
	}
	net := loadNet(t, g.dir, kernels.BF16, 0)
	docs := tokenize(g.tok, cranfieldTexts(t, 16), oracle.MaxLength())
	v := net.Arch().Vocab
	out := make([]float32, len(docs)*v)
	if err := net.Forward(Input{Docs: docs}, encode.PoolMax, out); err != nil {
		t.Fatal(err)
	}
	share, worstRel := reducedPrecisionError(oracle, docs, out, v)
	t.Logf("bf16: %d documents, mean top-20 overlap %.3f, largest relative error (weights > 0.1) %.3g", len(docs), share, worstRel)
	if share < 0.9 {
		t.Errorf("mean top-20 overlap %.3f < 0.9", share)
	}
}

// TestInputFromBatch checks the unpacking of a padded encode.Batch.
func TestInputFromBatch(t *testing.T) {
	b := encode.NewBatch([][]int32{{101, 7, 8, 102}, {101, 9, 102}}, 0)
	b.SetPoolFrom([]int{1, 2})
	in, err := InputFromBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(in.Docs[0], []int32{101, 7, 8, 102}) || !slices.Equal(in.Docs[1], []int32{101, 9, 102}) {
		t.Errorf("docs %v", in.Docs)
	}
	if !slices.Equal(in.PoolFrom, []int{1, 2}) {
		t.Errorf("pool from %v", in.PoolFrom)
	}
	b.AttentionMask[1] = 0 // a gap inside row 0
	if _, err := InputFromBatch(b); err == nil {
		t.Error("a gap in the attention mask was accepted")
	}
}

// TestForwardDetectsWrongBinding shows that the oracle comparison can fail:
// the same weights with the two layers swapped, or RoBERTa's position
// offset forgotten, are far from the oracle.
func TestForwardDetectsWrongBinding(t *testing.T) {
	texts := cranfieldTexts(t, 4)
	for _, arch := range []testmodel.Arch{testmodel.ArchBERT, testmodel.ArchRoBERTa} {
		g := generateModel(t, testmodel.Config{Arch: arch, Layers: 2, Hidden: 16, Heads: 2, Seed: 5})
		oracle, err := testmodel.LoadOracle(g.dir)
		if err != nil {
			t.Fatal(err)
		}
		a, err := ReadArch(g.dir)
		if err != nil {
			t.Fatal(err)
		}
		ckpt, err := weights.Open(g.dir)
		if err != nil {
			t.Fatal(err)
		}
		w, err := BindWeights(a, ckpt)
		ckpt.Close()
		if err != nil {
			t.Fatal(err)
		}
		if arch == testmodel.ArchRoBERTa {
			w.Arch.PositionOffset = 0
		} else {
			w.Layers[0], w.Layers[1] = w.Layers[1], w.Layers[0]
		}
		net, err := NewNet(NewTwinOps(kernels.F32), w, 0)
		if err != nil {
			t.Fatal(err)
		}
		docs := tokenize(g.tok, texts, 128)
		out := make([]float32, len(docs)*a.Vocab)
		if err := net.Forward(Input{Docs: docs}, encode.PoolMax, out); err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for i, ids := range docs {
			for j, want := range oracle.Pooled(ids, "max") {
				worst = math.Max(worst, math.Abs(want-float64(out[i*a.Vocab+j])))
			}
		}
		if worst < 1e-3 {
			t.Errorf("%s: a wrong binding is within %.3g of the oracle", arch, worst)
		}
	}
}

// TestForwardSparse checks ForwardSparse against Forward: the CSR holds
// exactly the positive pooled weights of each document, for both poolings.
func TestForwardSparse(t *testing.T) {
	g := generateModel(t, testmodel.Config{Layers: 1, Hidden: 16, Heads: 2, Seed: 4})
	net := loadNet(t, g.dir, kernels.F32, 100)
	docs := tokenize(g.tok, cranfieldTexts(t, 6), 128)
	v := net.Arch().Vocab
	for _, pooling := range []encode.Pooling{encode.PoolMax, encode.PoolSum} {
		dense := make([]float32, len(docs)*v)
		if err := net.Forward(Input{Docs: docs}, pooling, dense); err != nil {
			t.Fatal(err)
		}
		var csr encode.CSR
		if err := net.ForwardSparse(Input{Docs: docs}, pooling, &csr); err != nil {
			t.Fatal(err)
		}
		nnz, err := csrMatchesDense(&csr, dense, len(docs), v)
		if err != nil {
			t.Fatalf("%v: %v", pooling, err)
		}
		if nnz == 0 {
			t.Fatalf("%v: no positive weight at all: the comparison proves nothing", pooling)
		}
	}
}

// reducedPrecisionError compares max-pooled rows out ([docs][v]) with the
// float64 oracle: the mean share of each document's top-20 terms that the
// oracle's top 20 also have, and the largest relative error of the
// weights above 0.1.
func reducedPrecisionError(oracle *testmodel.Oracle, docs [][]int32, out []float32, v int) (share, worstRel float64) {
	for i, ids := range docs {
		want := oracle.Pooled(ids, "max")
		got := make([]float64, v)
		for j := range got {
			got[j] = float64(out[i*v+j])
		}
		share += TopOverlap(want, got, 20)
		for j, w := range want {
			if w > 0.1 {
				worstRel = math.Max(worstRel, math.Abs(got[j]-w)/w)
			}
		}
	}
	return share / float64(len(docs)), worstRel
}

// csrMatchesDense checks that csr holds exactly the positive weights of the
// dense rows ([rows][v]), and returns their number.
func csrMatchesDense(csr *encode.CSR, dense []float32, rows, v int) (int, error) {
	if err := csr.Check(rows, v); err != nil {
		return 0, err
	}
	for d := 0; d < rows; d++ {
		terms, weights := csr.Row(d)
		k := 0
		for j, w := range dense[d*v : (d+1)*v] {
			if w <= 0 {
				continue
			}
			if k >= len(terms) || terms[k] != uint32(j) || weights[k] != w {
				return 0, fmt.Errorf("document %d: term %d (%g) missing or different in the CSR", d, j, w)
			}
			k++
		}
		if k != len(terms) {
			return 0, fmt.Errorf("document %d: %d CSR terms, %d positive weights", d, len(terms), k)
		}
	}
	return len(csr.Terms), nil
}
