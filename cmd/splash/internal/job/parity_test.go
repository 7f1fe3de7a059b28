package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/gpu"
	"github.com/splash-encode/splash/gpu/ort"
	"github.com/splash-encode/splash/shards"
)

const (
	// testdataDir is the repository's test data (testdata/README.md).
	testdataDir   = "../../../../testdata"
	cranfieldGlob = testdataDir + "/cranfield/docs-*.parquet"
	bertTokenizer = testdataDir + "/tokenizers/bert-base-uncased/tokenizer.json"
)

// requireEnvironment skips when ONNX Runtime is missing and returns the
// Cranfield document shards.
func requireEnvironment(t *testing.T) []string {
	t.Helper()
	if err := ort.Usable(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	inputs, _ := filepath.Glob(cranfieldGlob)
	if len(inputs) == 0 {
		t.Fatalf("no Cranfield shards at %s", cranfieldGlob)
	}
	return inputs
}

func genModel(t *testing.T, cfg testmodel.Config) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	if err := testmodel.Generate(dir, cfg, bertTokenizer); err != nil {
		t.Fatal(err)
	}
	return dir
}

type inputDoc struct {
	id, text string
}

func readInputs(t *testing.T, paths []string, cols shards.Columns) []inputDoc {
	t.Helper()
	var docs []inputDoc
	for _, p := range paths {
		r, err := shards.OpenInput(p, cols)
		if err != nil {
			t.Fatal(err)
		}
		for {
			batch, err := r.Next(context.Background(), 512)
			for _, d := range batch {
				docs = append(docs, inputDoc{d.Doc.ID, d.Doc.Text})
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		r.Close()
	}
	return docs
}

func readOutputs(t *testing.T, dir string) map[string]shards.Row {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "[^_]*.parquet")) // not _vocabulary.parquet
	rows := map[string]shards.Row{}
	for _, p := range paths {
		err := shards.ReadShard(p, func(r shards.Row) error {
			if _, dup := rows[r.DocID]; dup {
				return fmt.Errorf("doc %s appears twice", r.DocID)
			}
			rows[r.DocID] = r
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return rows
}

// TestEncodingMatchesFloat64Oracle encodes every Cranfield document through
// the whole `splash encode` path (Parquet in, ONNX Runtime with the pooled
// graph, impact shards out) and compares each vector with the pure-Go
// float64 forward pass of the same model.
func TestEncodingMatchesFloat64Oracle(t *testing.T) {
	inputs := requireEnvironment(t)
	if testing.Short() {
		t.Skip("skipping the full-corpus parity run in -short mode")
	}
	// Every document is encoded by both models; the float64 oracle, the
	// slow part, checks all of them for the first model and every third
	// one for the bigger second model (CI time).
	configs := []struct {
		testmodel.Config
		stride int
	}{
		{testmodel.Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 11, Opset: 14}, 1},
		{testmodel.Config{Layers: 2, Hidden: 64, Heads: 4, Seed: 12, Opset: 18}, 3},
	}
	cols := shards.Columns{ID: "id", Text: "text", Title: "title"}
	docs := readInputs(t, inputs, cols)
	if len(docs) != 1400 {
		t.Fatalf("read %d Cranfield documents, want 1400", len(docs))
	}
	for _, mc := range configs {
		t.Run(fmt.Sprintf("layers%d_hidden%d_heads%d_opset%d", mc.Layers, mc.Hidden, mc.Heads, mc.Opset), func(t *testing.T) {
			modelDir := genModel(t, mc.Config)
			out := filepath.Join(t.TempDir(), "out")
			cfg := Config{
				ModelDir: modelDir, Inputs: inputs, OutputDir: out, Columns: cols, Format: shards.FormatParquet,
				Encode: encode.EncodeOptions{BatchTokens: 8192, MaxBatch: 64, Sparsify: encode.DefaultSparsifyOptions()},
			}
			sum, err := Run(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			rows := readOutputs(t, out)
			if len(rows) != len(docs) {
				t.Fatalf("output holds %d documents, input %d", len(rows), len(docs))
			}
			oracle, err := testmodel.LoadOracle(modelDir)
			if err != nil {
				t.Fatal(err)
			}
			m, err := OpenModel(context.Background(), modelDir, ModelOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()

			var (
				mu                     sync.Mutex
				maxDiff                float64
				borderline, termsTotal int
				failures               []string
				nnz                    []int
				empties                int
			)
			work := make(chan inputDoc)
			var wg sync.WaitGroup
			for w := 0; w < runtime.GOMAXPROCS(0); w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for d := range work {
						enc := m.Tokenizer.Encode(d.text, m.MaxLength)
						got := rows[d.id]
						if len(enc.IDs) <= m.Tokenizer.NumSpecialTokens() {
							// Empty document: an empty row, never a filler vector.
							mu.Lock()
							if got.Vec.Len() != 0 || got.NumTokens != 0 {
								failures = append(failures, fmt.Sprintf("%s: empty document has %d terms, %d tokens", d.id, got.Vec.Len(), got.NumTokens))
							}
							empties++
							mu.Unlock()
							continue
						}
						want := oracle.Pooled(enc.IDs, "max")
						diff, border, problems := compareVector(want, got, enc.IDs, enc.Truncated)
						mu.Lock()
						maxDiff = math.Max(maxDiff, diff)
						borderline += border
						termsTotal += got.Vec.Len()
						nnz = append(nnz, got.Vec.Len())
						for _, p := range problems {
							failures = append(failures, d.id+": "+p)
						}
						mu.Unlock()
					}
				}()
			}
			checked := 0
			for i, d := range docs {
				if i%mc.stride == 0 || d.id == "471" || d.id == "995" { // the two empty documents
					work <- d
					checked++
				}
			}
			close(work)
			wg.Wait()
			sort.Ints(nnz)
			// Cranfield documents 471 and 995 have empty title and text.
			if empties != 2 || sum.Counts.Empty != 2 {
				t.Errorf("%d empty documents seen by the test, %d counted by the run; Cranfield has 2", empties, sum.Counts.Empty)
			}
			t.Logf("%d documents encoded, %d checked against the oracle, %d terms, max |splash - oracle| = %.3g, non-zeros p50 %d (min %d, max %d), padding waste %.1f%%, terms within 1e-4 of the 1e-3 threshold: %d",
				len(docs), checked, termsTotal, maxDiff, nnz[len(nnz)/2], nnz[0], nnz[len(nnz)-1], 100*sum.Counts.PaddingWaste(), borderline)
			if len(failures) > 0 {
				t.Fatalf("%d problems, first: %v", len(failures), failures[:min(10, len(failures))])
			}
		})
	}
}

// compareVector checks one output row against the oracle's pooled vector:
// every weight within 1e-4, the same terms above 1e-3 (a term whose oracle
// weight lies within 1e-4 of 1e-3 may fall on either side and is counted as
// borderline), strictly ascending ids, impacts = round(100 w), and the token
// count and truncation flag.
func compareVector(want []float64, got shards.Row, ids []int32, truncated bool) (maxDiff float64, borderline int, problems []string) {
	const tol, threshold = 1e-4, 1e-3
	dense := make(map[uint32]float32, got.Vec.Len())
	for k, j := range got.Vec.Terms {
		if k > 0 && got.Vec.Terms[k-1] >= j {
			problems = append(problems, fmt.Sprintf("term ids not strictly ascending at %d", k))
		}
		w := got.Vec.Weights[k]
		if !(w > 0) {
			problems = append(problems, fmt.Sprintf("term %d has weight %v", j, w))
		}
		if q := encode.Quantize(w, 100); got.Vec.Impacts[k] != q {
			problems = append(problems, fmt.Sprintf("term %d impact %d, want round(100 × %v) = %d", j, got.Vec.Impacts[k], w, q))
		}
		dense[j] = w
	}
	for j, w := range want {
		g := float64(dense[uint32(j)])
		maxDiff = math.Max(maxDiff, math.Abs(g-w))
		if math.Abs(g-w) > tol {
			problems = append(problems, fmt.Sprintf("term %d: splash %.6g, oracle %.6g", j, g, w))
		}
		if (g > threshold) != (w > threshold) {
			if math.Abs(w-threshold) <= tol {
				borderline++
			} else {
				problems = append(problems, fmt.Sprintf("term %d on different sides of %g: splash %.6g, oracle %.6g", j, threshold, g, w))
			}
		}
		if w == 0 && g != 0 {
			problems = append(problems, fmt.Sprintf("term %d: splash %.6g where the oracle has exactly 0", j, g))
		}
	}
	if int(got.NumTokens) != len(ids) || got.Truncated != truncated {
		problems = append(problems, fmt.Sprintf("num_tokens %d truncated %v, want %d %v", got.NumTokens, got.Truncated, len(ids), truncated))
	}
	return maxDiff, borderline, problems
}

// TestVectorDoesNotDependOnBatch encodes documents alone and inside
// length-bucketed batches of different compositions: each document's vector
// must stay the same within 1e-5.
func TestVectorDoesNotDependOnBatch(t *testing.T) {
	inputs := requireEnvironment(t)
	modelDir := genModel(t, testmodel.Config{Layers: 2, Hidden: 64, Heads: 4, Seed: 5})
	m, err := OpenModel(context.Background(), modelDir, ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	docs := readInputs(t, inputs[:1], shards.Columns{Title: "title"})[:120]
	texts := make([]string, len(docs))
	for i, d := range docs {
		texts[i] = d.text
	}
	encodeWith := func(budget, maxBatch int, texts []string) []encode.Result {
		return encodeTexts(t, m, encode.EncodeOptions{BatchTokens: budget, MaxBatch: maxBatch, Sparsify: encode.DefaultSparsifyOptions()}, texts)
	}
	big := encodeWith(1<<16, 0, texts)
	medium := encodeWith(2048, 16, texts)
	// Reversed order changes every batch's neighbours.
	rev := make([]string, len(texts))
	for i := range texts {
		rev[len(texts)-1-i] = texts[i]
	}
	reversed := encodeWith(4096, 7, rev)
	worst := 0.0
	for i, text := range texts {
		alone := encodeWith(512, 1, []string{text})[0]
		for name, other := range map[string]encode.Result{"big": big[i], "medium": medium[i], "reversed": reversed[len(texts)-1-i]} {
			d := encode.MaxDiff(alone.Vec, other.Vec)
			worst = math.Max(worst, d)
			if d > 1e-5 {
				t.Fatalf("doc %s: alone vs %s batch differ by %g", docs[i].id, name, d)
			}
		}
	}
	t.Logf("%d documents: max difference between batch compositions %.3g", len(texts), worst)
}

// TestSumPoolingMatchesOracle checks --pooling sum (SPLADE v1) against the
// oracle on a sample of Cranfield documents. Sums over hundreds of
// positions accumulate float32 rounding, so the bound is relative.
func TestSumPoolingMatchesOracle(t *testing.T) {
	inputs := requireEnvironment(t)
	modelDir := genModel(t, testmodel.Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 21})
	m, err := OpenModel(context.Background(), modelDir, ModelOptions{Backend: gpu.Options{Pooling: encode.PoolSum}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	oracle, err := testmodel.LoadOracle(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	docs := readInputs(t, inputs[1:2], shards.Columns{Title: "title"})[:40]
	texts := make([]string, len(docs))
	for i, d := range docs {
		texts[i] = d.text
	}
	res := encodeTexts(t, m, encode.EncodeOptions{BatchTokens: 4096, Sparsify: encode.SparsifyOptions{Scale: 100}}, texts)
	worst := 0.0
	for i, text := range texts {
		ids := m.Tokenizer.Encode(text, m.MaxLength).IDs
		if len(ids) <= 2 {
			continue
		}
		want := oracle.Pooled(ids, "sum")
		got := make([]float64, len(want))
		for k, j := range res[i].Vec.Terms {
			got[j] = float64(res[i].Vec.Weights[k])
		}
		for j := range want {
			rel := math.Abs(got[j]-want[j]) / math.Max(1, want[j])
			worst = math.Max(worst, rel)
			if rel > 1e-5 {
				t.Fatalf("doc %s term %d: splash %v, oracle %v", docs[i].id, j, got[j], want[j])
			}
		}
	}
	t.Logf("sum pooling: worst relative difference %.3g over %d documents", worst, len(texts))
}

// encodeTexts runs texts through encode's stream from memory (one shard,
// the CPU session) and returns their results in order.
func encodeTexts(t *testing.T, m *Model, opts encode.EncodeOptions, texts []string) []encode.Result {
	t.Helper()
	if err := opts.Check(m.MaxLength); err != nil {
		t.Fatal(err)
	}
	res, _, err := encode.EncodeTexts(context.Background(), m.Model, texts, encode.StreamConfig{Options: opts, Workers: m.Workers(1)})
	if err != nil {
		t.Fatal(err)
	}
	return res
}
