package job

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/encode/tokenizer"
	"github.com/splash-encode/splash/shards"
)

// weightsDiff compares an output row with a dense reference: the largest
// |splash - reference| over the vocabulary, and what is wrong besides (ids
// not ascending, impacts not round(100 w)).
func weightsDiff(want []float64, got shards.Row) (float64, []string) {
	var problems []string
	dense := make(map[uint32]float32, got.Vec.Len())
	for k, j := range got.Vec.Terms {
		if k > 0 && got.Vec.Terms[k-1] >= j {
			problems = append(problems, fmt.Sprintf("term ids not strictly ascending at %d", k))
		}
		if q := encode.Quantize(got.Vec.Weights[k], 100); got.Vec.Impacts[k] != q {
			problems = append(problems, fmt.Sprintf("term %d impact %d, want %d", j, got.Vec.Impacts[k], q))
		}
		dense[j] = got.Vec.Weights[k]
	}
	maxDiff := 0.0
	for j, w := range want {
		maxDiff = math.Max(maxDiff, math.Abs(float64(dense[uint32(j)])-w))
	}
	for j := range dense {
		if int(j) >= len(want) {
			problems = append(problems, fmt.Sprintf("term %d outside the vocabulary of %d", j, len(want)))
		}
	}
	return maxDiff, problems
}

// referenceWindows cuts n text tokens the way the README describes --window
// and --stride, written out independently of encode.Windows: windows of
// size tokens starting at 0, stride, 2·stride, ..., until one reaches the
// end; at most maxWindows.
func referenceWindows(n, size, stride, maxWindows int) (spans [][2]int, truncated bool) {
	for start := 0; ; start += stride {
		if maxWindows > 0 && len(spans) == maxWindows {
			return spans, true
		}
		end := start + size
		if end >= n {
			return append(spans, [2]int{start, n}), false
		}
		spans = append(spans, [2]int{start, end})
	}
}

// TestWindowsCombineSeparatelyEncodedWindows encodes Cranfield documents
// with --long-docs window (a window of 32 tokens, stride 12, at most 12 windows) and checks that
// each document's vector equals the max (and, in a second run, the sum) of
// the float64 oracle's vectors of its windows encoded one by one, that
// num_windows and num_tokens count them, and that --emit passages writes
// exactly those windows' vectors as rows DOCID#K.
func TestWindowsCombineSeparatelyEncodedWindows(t *testing.T) {
	inputs := requireEnvironment(t)
	modelDir := genModel(t, testmodel.Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 31})
	oracle, err := testmodel.LoadOracle(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(filepath.Join(modelDir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	const window, stride, maxWindows = 32, 12, 12
	cols := shards.Columns{ID: "id", Text: "text", Title: "title"}
	docs := readInputs(t, inputs[:1], cols)
	type run struct {
		name     string
		agg      encode.WindowAgg
		passages bool
	}
	for _, r := range []run{{"max", encode.AggMax, false}, {"sum", encode.AggSum, false}, {"passages", encode.AggMax, true}} {
		t.Run(r.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			cfg := baseConfig(modelDir, out, inputs[0])
			cfg.MaxLength = 64
			cfg.LongDocs = encode.LongDocs{Mode: encode.LongDocsWindow, Window: window, Stride: stride, MaxWindows: maxWindows, Agg: r.agg, Passages: r.passages}
			if _, err := Run(context.Background(), cfg, quietLog()); err != nil {
				t.Fatal(err)
			}
			base := strings.TrimSuffix(filepath.Base(inputs[0]), ".parquet")
			rows := shardRows(t, filepath.Join(out, base+".parquet"))
			md, err := shards.ShardMetadata(filepath.Join(out, base+".parquet"))
			if err != nil {
				t.Fatal(err)
			}
			if md["splash.long_docs"] != "window" || md["splash.window"] != "32" || md["splash.stride"] != "12" {
				t.Errorf("metadata does not record the windows: %v", md)
			}
			byID := map[string]shards.Row{}
			for _, row := range rows {
				byID[row.DocID] = row
			}
			var maxDiff float64
			var problems []string
			checked, multi, truncatedDocs, passageRows := 0, 0, 0, 0
			for i, d := range docs {
				content := tok.Content(tok.Encode(d.text, 0))
				spans, truncated := referenceWindows(len(content), window-2, stride, maxWindows)
				if len(content) == 0 {
					spans = nil
				}
				passageRows += max(len(spans), 1)
				if i%14 != 0 { // the oracle is slow: a sample
					continue
				}
				checked++
				if len(spans) > 1 {
					multi++
				}
				if truncated {
					truncatedDocs++
				}
				var vecs [][]float64
				tokens := 0
				for _, sp := range spans {
					ids := slices.Concat(tok.Prefix(), content[sp[0]:sp[1]], tok.Suffix())
					tokens += len(ids)
					vecs = append(vecs, oracle.Pooled(ids, "max"))
				}
				if r.passages {
					for k := range max(len(spans), 1) {
						row, ok := byID[d.id+"#"+strconv.Itoa(k)]
						if !ok {
							problems = append(problems, fmt.Sprintf("%s: no row %s#%d", d.id, d.id, k))
							continue
						}
						if len(spans) == 0 {
							if row.Vec.Len() != 0 || row.NumWindows != 0 {
								problems = append(problems, d.id+": empty document's passage is not empty")
							}
							continue
						}
						diff, p := weightsDiff(vecs[k], row)
						maxDiff = math.Max(maxDiff, diff)
						problems = append(problems, p...)
						if int(row.NumWindows) != len(spans) || row.Truncated != truncated {
							problems = append(problems, fmt.Sprintf("%s#%d: num_windows %d truncated %v, want %d %v", d.id, k, row.NumWindows, row.Truncated, len(spans), truncated))
						}
					}
					continue
				}
				row, ok := byID[d.id]
				if !ok {
					problems = append(problems, d.id+": missing")
					continue
				}
				want := make([]float64, oracle.VocabSize())
				for _, v := range vecs {
					for j, w := range v {
						if r.agg == encode.AggSum {
							want[j] += w
						} else {
							want[j] = math.Max(want[j], w)
						}
					}
				}
				diff, p := weightsDiff(want, row)
				maxDiff = math.Max(maxDiff, diff)
				problems = append(problems, p...)
				if int(row.NumWindows) != len(spans) || int(row.NumTokens) != tokens || row.Truncated != truncated {
					problems = append(problems, fmt.Sprintf("%s: num_windows %d num_tokens %d truncated %v, want %d %d %v",
						d.id, row.NumWindows, row.NumTokens, row.Truncated, len(spans), tokens, truncated))
				}
			}
			wantRows := len(docs)
			if r.passages {
				wantRows = passageRows
			}
			if len(rows) != wantRows {
				t.Errorf("%d rows, want %d", len(rows), wantRows)
			}
			t.Logf("%d documents checked (%d with several windows, %d past %d windows), max |splash - oracle| = %.3g", checked, multi, truncatedDocs, maxWindows, maxDiff)
			if multi == 0 || truncatedDocs == 0 {
				t.Fatalf("the sample has %d documents with several windows and %d truncated ones: the test checks nothing", multi, truncatedDocs)
			}
			if maxDiff > 1e-4 || len(problems) > 0 {
				t.Fatalf("max diff %.3g; %d problems, first: %v", maxDiff, len(problems), problems[:min(len(problems), 8)])
			}
		})
	}
}

// TestHugeDocumentMemoryStaysBounded encodes one 10 MB document with
// windows: the run must neither hold the document's tokens many times over
// nor a vector per window, so the heap stays far below the text's size
// times the vocabulary.
func TestHugeDocumentMemoryStaysBounded(t *testing.T) {
	requireEnvironment(t)
	modelDir := genModel(t, testmodel.Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 32})
	words := strings.Fields("the boundary layer of a flat plate in supersonic flow shows heat transfer rates that depend on the mach number")
	var sb strings.Builder
	for i := 0; sb.Len() < 10<<20; i++ {
		sb.WriteString(words[i%len(words)])
		sb.WriteByte(' ')
	}
	text := sb.String()
	in := filepath.Join(t.TempDir(), "huge.parquet")
	writeDocs(t, in, []string{"huge", "small"}, []string{text, "a short one"})
	out := filepath.Join(t.TempDir(), "out")
	cfg := baseConfig(modelDir, out, in)
	cfg.Columns = shards.Columns{}
	cfg.MaxLength = 128
	cfg.LongDocs = encode.LongDocs{Mode: encode.LongDocsWindow, MaxWindows: 8}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := Run(context.Background(), cfg, quietLog()); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	rows := shardRows(t, filepath.Join(out, "huge.parquet"))
	if len(rows) != 2 || rows[0].NumWindows != 8 || !rows[0].Truncated || rows[1].NumWindows != 1 || rows[1].Truncated {
		t.Fatalf("rows: %+v", rows)
	}
	// Allocated in all (not live): the text read from Parquet and copied a
	// few times, 8 windows' batches and ONNX Runtime's arena are tens of
	// MB; tokenizing the whole text into 2 M ids and more would add far more.
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("10 MB document, 8 windows: %d MB allocated by Go in the run", alloc>>20)
	if alloc > 400<<20 {
		t.Fatalf("the run allocated %d MB for one 10 MB document", alloc>>20)
	}
}

// writeDocs writes a Parquet input shard with id and text columns.
func writeDocs(t *testing.T, path string, ids, texts []string) {
	t.Helper()
	type doc struct {
		ID   string `parquet:"id"`
		Text string `parquet:"text"`
	}
	docs := make([]doc, len(ids))
	for i := range ids {
		docs[i] = doc{ids[i], texts[i]}
	}
	if err := parquet.WriteFile(path, docs); err != nil {
		t.Fatal(err)
	}
}
