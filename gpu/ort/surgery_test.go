//go:build cgo

package ort

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/onnxpb"
	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/encode/tokenizer"
)

// lookupModel builds a tiny masked-LM-shaped model whose logits are rows of
// a table: logits[b, i, :] = table[input_ids[b, i], :], optionally cast to
// float16. Its pooled output can be computed exactly in Go.
func lookupModel(t *testing.T, opset int64, table [][]float32, fp16 bool) []byte {
	t.Helper()
	v := len(table[0])
	raw := make([]byte, 0, 4*len(table)*v)
	for _, row := range table {
		for _, x := range row {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(x))
		}
	}
	dim := func(p string) *onnxpb.TensorShapeProto_Dimension {
		return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: p}}
	}
	vi := func(name string, elem onnxpb.TensorProto_DataType, dims ...*onnxpb.TensorShapeProto_Dimension) *onnxpb.ValueInfoProto {
		return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32(elem), Shape: &onnxpb.TensorShapeProto{Dim: dims}}}}}
	}
	outElem := onnxpb.TensorProto_FLOAT
	nodes := []*onnxpb.NodeProto{{Name: "gather", OpType: "Gather", Input: []string{"table", "input_ids"}, Output: []string{"gathered"}}}
	if fp16 {
		outElem = onnxpb.TensorProto_FLOAT16
		nodes = append(nodes, &onnxpb.NodeProto{Name: "cast", OpType: "Cast", Input: []string{"gathered"}, Output: []string{"logits"},
			Attribute: []*onnxpb.AttributeProto{{Name: "to", Type: onnxpb.AttributeProto_INT, I: int64(onnxpb.TensorProto_FLOAT16)}}})
	} else {
		nodes = append(nodes, &onnxpb.NodeProto{Name: "id", OpType: "Identity", Input: []string{"gathered"}, Output: []string{"logits"}})
	}
	m := &onnxpb.ModelProto{
		IrVersion:   8,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: "", Version: opset}},
		Graph: &onnxpb.GraphProto{
			Name:        "lookup",
			Node:        nodes,
			Initializer: []*onnxpb.TensorProto{{Name: "table", DataType: int32(onnxpb.TensorProto_FLOAT), Dims: []int64{int64(len(table)), int64(v)}, RawData: raw}},
			Input: []*onnxpb.ValueInfoProto{
				vi("input_ids", onnxpb.TensorProto_INT64, dim("batch"), dim("seq")),
				vi("attention_mask", onnxpb.TensorProto_INT64, dim("batch"), dim("seq")),
				vi("token_type_ids", onnxpb.TensorProto_INT64, dim("batch"), dim("seq")),
			},
			Output: []*onnxpb.ValueInfoProto{vi("logits", outElem, dim("batch"), dim("seq"), dim("vocab"))},
		},
	}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeModel(t *testing.T, model []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), model, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func requireLibrary(t *testing.T) {
	t.Helper()
	if err := Usable(); err != nil {
		t.Skipf("skipping ONNX Runtime test: %v", err)
	}
}

// TestPoolingGraphMatchesReference runs the rewritten graph on random
// logits, masks and padding for every pooling, several opsets and float16,
// and compares with encode.PoolReference in float64.
func TestPoolingGraphMatchesReference(t *testing.T) {
	requireLibrary(t)
	rng := rand.New(rand.NewPCG(1, 2))
	const rows, vocab = 50, 64
	table := make([][]float32, rows)
	for i := range table {
		table[i] = make([]float32, vocab)
		for j := range table[i] {
			table[i][j] = float32(rng.NormFloat64() * 3)
		}
	}
	// A row that is negative everywhere: pooled weights must be exactly 0.
	for j := range table[7] {
		table[7][j] = -float32(1 + rng.Float64())
	}
	for _, opset := range []int64{11, 12, 13, 14, 17, 18, 21} {
		for _, fp16 := range []bool{false, true} {
			for _, pooling := range []encode.Pooling{encode.PoolMax, encode.PoolSum} {
				name := pooling.String() + "/opset" + string(rune('0'+opset/10)) + string(rune('0'+opset%10))
				if fp16 {
					name += "/fp16"
				}
				t.Run(name, func(t *testing.T) {
					dir := writeModel(t, lookupModel(t, opset, table, fp16))
					b, err := Open(context.Background(), dir, Options{Pooling: pooling, IntraOpThreads: 1})
					if err != nil {
						t.Fatal(err)
					}
					defer b.Close()
					if b.VocabSize() != vocab {
						t.Fatalf("VocabSize = %d, want %d", b.VocabSize(), vocab)
					}
					seqs := [][]int32{{1, 2, 3, 4, 5, 6}, {7}, {7, 7, 9}, {10, 11, 12, 13, 14, 15, 16, 17, 18}}
					for i := 0; i < 4; i++ {
						s := make([]int32, 1+rng.IntN(20))
						for k := range s {
							s[k] = int32(rng.IntN(rows))
						}
						seqs = append(seqs, s)
					}
					batch := encode.NewBatch(seqs, 0)
					out := make([]float32, batch.Size*vocab)
					if err := b.Encode(context.Background(), batch, out); err != nil {
						t.Fatal(err)
					}
					for r, s := range seqs {
						logits := make([][]float64, len(s))
						for i, id := range s {
							logits[i] = make([]float64, vocab)
							for j := range logits[i] {
								logits[i][j] = float64(table[id][j])
								if fp16 {
									logits[i][j] = testmodel.RoundToFloat16(logits[i][j])
								}
							}
						}
						want := encode.PoolReference(logits, nil, pooling)
						for j, w := range want {
							got := float64(out[r*vocab+j])
							// float16 logits are pooled exactly (max) or
							// in float32 (sum): the bound is float32's.
							if math.Abs(got-w) > 2e-6*math.Max(1, w) {
								t.Fatalf("row %d term %d: got %v want %v", r, j, got, w)
							}
							if w == 0 && got != 0 {
								t.Fatalf("row %d term %d: got %v, want exactly 0", r, j, got)
							}
						}
					}
					// A row without any token (which batches do not hold)
					// pools to zeros, not NaN, beside a row with padding
					// of positive logits.
					batch = encode.NewBatch([][]int32{{}, {1, 2}}, 0)
					if err := b.Encode(context.Background(), batch, out); err != nil {
						t.Fatal(err)
					}
					for j, got := range out[:vocab] {
						if got != 0 {
							t.Fatalf("empty row, term %d: got %v, want 0", j, got)
						}
					}
				})
			}
		}
	}
}

// TestFP16MaxPoolingStaysFloat16 checks the shape of the pooling appended to
// a model with float16 logits, by following element types and ranks through
// the appended nodes: for max pooling (opset 12 on) no Cast reads the
// logits, every [batch, sequence, vocab] tensor is float16, and the one Cast
// to float converts the [batch, vocab] ReduceMax result, after which Relu,
// Add and Log run in float32. Sum pooling, and max pooling at opset 11, cast
// the logits to float32 first (on purpose: see poolingNodes).
func TestFP16MaxPoolingStaysFloat16(t *testing.T) {
	table := [][]float32{{1, -2, 3}, {0.5, 4, -1}}
	// Every pooling, float32 logits too: one initializer per name.
	for _, fp16 := range []bool{false, true} {
		for _, pooling := range []encode.Pooling{encode.PoolMax, encode.PoolSum} {
			for _, opset := range []int64{11, 18} {
				rewritten, _, err := AppendPooling(lookupModel(t, opset, table, fp16), "logits", pooling)
				if err != nil {
					t.Fatal(err)
				}
				var m onnxpb.ModelProto
				if err := proto.Unmarshal(rewritten, &m); err != nil {
					t.Fatal(err)
				}
				names := map[string]bool{}
				for _, c := range m.Graph.Initializer {
					if names[c.Name] {
						t.Fatalf("%v, opset %d, fp16 %v: two initializers are called %q", pooling, opset, fp16, c.Name)
					}
					names[c.Name] = true
				}
			}
		}
	}
	for _, opset := range []int64{11, 12, 13, 17, 18, 21} {
		for _, pooling := range []encode.Pooling{encode.PoolMax, encode.PoolSum} {
			fp16Max := pooling == encode.PoolMax && opset >= 12
			t.Run(fmt.Sprintf("%v/opset%d", pooling, opset), func(t *testing.T) {
				model := lookupModel(t, opset, table, true)
				rewritten, _, err := AppendPooling(model, "logits", pooling)
				if err != nil {
					t.Fatal(err)
				}
				var m onnxpb.ModelProto
				if err := proto.Unmarshal(rewritten, &m); err != nil {
					t.Fatal(err)
				}
				type tensor struct {
					elem onnxpb.TensorProto_DataType
					rank int
				}
				known := map[string]tensor{
					"logits":         {onnxpb.TensorProto_FLOAT16, 3},
					"attention_mask": {onnxpb.TensorProto_INT64, 2},
				}
				for _, c := range m.Graph.Initializer {
					if _, dup := known[c.Name]; dup {
						t.Fatalf("two initializers are called %q", c.Name)
					}
					known[c.Name] = tensor{onnxpb.TensorProto_DataType(c.DataType), len(c.Dims)}
				}
				var order []string // op types of the appended nodes
				castOfLogits, reduceMaxAt, castToFloatAt := false, -1, -1
				for i, n := range m.Graph.Node {
					if !strings.HasPrefix(n.Name, "splash_pool/") {
						continue
					}
					order = append(order, n.OpType)
					var ins []tensor
					for _, in := range n.Input {
						ti, ok := known[in]
						if !ok {
							t.Fatalf("node %s reads %q, which nothing before it computes", n.Name, in)
						}
						ins = append(ins, ti)
					}
					out := ins[0]
					switch n.OpType {
					case "Cast":
						out.elem = onnxpb.TensorProto_DataType(n.Attribute[0].I)
						if n.Input[0] == "logits" {
							castOfLogits = true
						}
						if out.elem == onnxpb.TensorProto_FLOAT && ins[0].elem == onnxpb.TensorProto_FLOAT16 && n.Input[0] != "logits" {
							castToFloatAt = i
							if reduceMaxAt < 0 || m.Graph.Node[reduceMaxAt].Output[0] != n.Input[0] {
								t.Fatalf("the Cast to float reads %q, not the ReduceMax result", n.Input[0])
							}
						}
					case "Unsqueeze":
						out.rank++
					case "ReduceMax", "ReduceSum":
						out.rank--
						reduceMaxAt = i
					case "Where":
						out = tensor{ins[1].elem, max(ins[0].rank, ins[1].rank, ins[2].rank)}
					default: // elementwise, broadcasting
						for _, in := range ins[1:] {
							if in.elem != out.elem {
								t.Fatalf("%s mixes %v and %v", n.Name, out.elem, in.elem)
							}
							out.rank = max(out.rank, in.rank)
						}
					}
					known[n.Output[0]] = out
					if fp16Max && out.rank == 3 && out.elem != onnxpb.TensorProto_FLOAT16 {
						t.Errorf("%s computes a [batch, sequence, vocab] %v tensor", n.Name, out.elem)
					}
				}
				if got := known[PooledOutput]; got != (tensor{onnxpb.TensorProto_FLOAT, 2}) {
					t.Fatalf("pooled output is %v of rank %d", got.elem, got.rank)
				}
				if fp16Max {
					if castOfLogits || castToFloatAt < 0 || castToFloatAt < reduceMaxAt {
						t.Fatalf("appended %v: want no Cast of the logits and a Cast to float after ReduceMax", order)
					}
					if n := len(order); n < 3 || !slices.Equal(order[n-3:], []string{"Relu", "Add", "Log"}) {
						t.Fatalf("appended %v: want Relu, Add, Log last", order)
					}
				} else if !castOfLogits || castToFloatAt >= 0 {
					t.Fatalf("appended %v: want the logits cast to float32 first", order)
				}
			})
		}
	}
}

// TestFP16TestModelMatchesOracle encodes a handful of real token sequences
// (every 173rd Cranfield document, cut at 160 tokens, an empty text and a
// short one), padded into one batch, with an encode/testmodel BERT whose
// logits output is float16, and compares both poolings with the float64
// oracle, which rounds its logits to float16 as the model does.
//
// ONNX Runtime's float32 logits differ from the oracle's float64 ones by a
// few 1e-6, so a logit within that distance of a float16 rounding boundary
// may round the other way (one float16 step, 2^-9 between 2 and 4, moves a
// weight by about 5e-4). The bound is therefore 1e-4 around the range of
// what the oracle gives when every logit within 2e-5 of a boundary may round
// either way, and weights that differ by more than 1e-4 must be rare.
func TestFP16TestModelMatchesOracle(t *testing.T) {
	requireLibrary(t)
	testdata := filepath.Join("..", "..", "testdata")
	tokPath := filepath.Join(testdata, "tokenizers", "bert-base-uncased", "tokenizer.json")
	cranPath := filepath.Join(testdata, "cranfield", "cran.all.1400")
	for _, p := range []string{tokPath, cranPath} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("test data missing (see testdata/README.md): %v", err)
		}
	}
	tk, err := tokenizer.Load(tokPath)
	if err != nil {
		t.Fatal(err)
	}
	cran, err := os.ReadFile(cranPath)
	if err != nil {
		t.Fatal(err)
	}
	var seqs [][]int32
	for i, doc := range strings.Split(string(cran), "\n.I ") {
		if _, text, ok := strings.Cut(doc, "\n.W\n"); ok && i%173 == 0 {
			seqs = append(seqs, tk.Encode(text, 160).IDs)
		}
	}
	seqs = append(seqs, tk.Encode("", 512).IDs, tk.Encode("lift and drag of a wing", 512).IDs)
	if len(seqs) < 8 {
		t.Fatalf("only %d sequences", len(seqs))
	}
	const eps = 2e-5 // bound on |float32 logit - float64 logit|
	// One opset (ReduceMax with its axes as an input): the lookup-table tests
	// above cover every form of the pooling graph.
	for _, opset := range []int{18} {
		dir := filepath.Join(t.TempDir(), "model")
		cfg := testmodel.Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 41, Opset: opset, FP16: true}
		if err := testmodel.Generate(dir, cfg, tokPath); err != nil {
			t.Fatal(err)
		}
		oracle, err := testmodel.LoadOracle(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !oracle.Float16Logits() {
			t.Fatal("the oracle does not see float16 logits")
		}
		info, err := InspectModel(mustRead(t, filepath.Join(dir, testmodel.ModelFile)))
		if err != nil {
			t.Fatal(err)
		}
		if out, _ := info.Output("logits"); out.ElemType != onnxpb.TensorProto_FLOAT16 {
			t.Fatalf("logits output is %v", out.ElemType)
		}
		raw := make([][][]float64, len(seqs))
		for i, s := range seqs {
			raw[i] = oracle.Float64Logits(s)
		}
		for _, pooling := range []encode.Pooling{encode.PoolMax, encode.PoolSum} {
			b, err := Open(context.Background(), dir, Options{Pooling: pooling, IntraOpThreads: 2})
			if err != nil {
				t.Fatal(err)
			}
			vocab := b.VocabSize()
			batch := encode.NewBatch(seqs, 0)
			out := make([]float32, batch.Size*vocab)
			err = b.Encode(context.Background(), batch, out)
			if cerr := b.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			worst, flips, nonzero := 0.0, 0, 0
			for r, s := range seqs {
				want := oracle.Pooled(s, pooling.String())
				// The range of the pooled weights when logits near a
				// rounding boundary may round either way.
				los := encode.PoolReference(roundedFloat16(raw[r], -eps), nil, pooling)
				his := encode.PoolReference(roundedFloat16(raw[r], eps), nil, pooling)
				for j, w := range want {
					lo, hi := los[j], his[j]
					got := float64(out[r*vocab+j])
					if got < lo-1e-4 || got > hi+1e-4 || w < lo || w > hi {
						t.Fatalf("opset %d, %v, sequence %d (%d tokens), term %d: got %v, oracle %v (range %v..%v)",
							opset, pooling, r, len(s), j, got, w, lo, hi)
					}
					if d := math.Abs(got - w); d > 1e-4 {
						flips++
					} else {
						worst = max(worst, d)
					}
					if w > 0 {
						nonzero++
					}
					if w == 0 && got != 0 {
						t.Fatalf("opset %d, %v, sequence %d, term %d: got %v, want exactly 0", opset, pooling, r, j, got)
					}
				}
			}
			t.Logf("opset %d, %v: %d sequences, %d non-zero weights; %d differ from the oracle by more than 1e-4 "+
				"(a logit rounded the other way), the others by at most %.2g", opset, pooling, len(seqs), nonzero, flips, worst)
			if flips > nonzero/50 {
				t.Errorf("%d of %d non-zero weights differ from the oracle by more than 1e-4: more rounding disagreements than expected", flips, nonzero)
			}
		}
	}
}

// roundedFloat16 returns logits + d, every value rounded to float16.
func roundedFloat16(logits [][]float64, d float64) [][]float64 {
	out := make([][]float64, len(logits))
	for i, row := range logits {
		out[i] = make([]float64, len(row))
		for j, z := range row {
			out[i][j] = testmodel.RoundToFloat16(z + d)
		}
	}
	return out
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenRejectsModelsThatDoNotFit(t *testing.T) {
	requireLibrary(t)
	table := [][]float32{{1, 2}, {3, 4}}
	good := lookupModel(t, 14, table, false)
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(good, &m); err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(m *onnxpb.ModelProto)) []byte {
		c := proto.Clone(&m).(*onnxpb.ModelProto)
		f(c)
		b, err := proto.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := map[string][]byte{
		"no input \"attention_mask\"": mutate(func(m *onnxpb.ModelProto) { m.Graph.Input = m.Graph.Input[:1] }),
		"no output \"logits\"":        mutate(func(m *onnxpb.ModelProto) { m.Graph.Output[0].Name = "scores"; m.Graph.Node[1].Output[0] = "scores" }),
		"has rank 2": mutate(func(m *onnxpb.ModelProto) {
			m.Graph.Output[0].Type.GetTensorType().Shape.Dim = m.Graph.Output[0].Type.GetTensorType().Shape.Dim[:2]
		}),
		"not a valid ONNX model": []byte("this is not protobuf \xff\xff\xff"),
		"is not one splash can feed": mutate(func(m *onnxpb.ModelProto) {
			m.Graph.Input = append(m.Graph.Input, &onnxpb.ValueInfoProto{Name: "pixel_values"})
		}),
	}
	for want, model := range cases {
		t.Run(want, func(t *testing.T) {
			_, err := Open(context.Background(), writeModel(t, model), Options{})
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "model.onnx") {
				t.Fatalf("error %q does not name the problem %q and the file", err, want)
			}
		})
	}
	t.Run("missing model file", func(t *testing.T) {
		_, err := Open(context.Background(), t.TempDir(), Options{})
		if err == nil || !strings.Contains(err.Error(), "neither model.onnx nor onnx/model.onnx") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestEncodeHonoursCancelledContext(t *testing.T) {
	requireLibrary(t)
	dir := writeModel(t, lookupModel(t, 14, [][]float32{{1, 2}, {3, 4}}, false))
	b, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	batch := encode.NewBatch([][]int32{{0, 1}}, 0)
	if err := b.Encode(ctx, batch, make([]float32, 2)); err == nil {
		t.Fatal("Encode with a cancelled context succeeded")
	}
}

// TestExternalWeightsPointIntoTheModelFile checks AppendPoolingExternal's
// rewrite against the model it came from: the large initializer loses its
// raw_data and gains an external-data reference whose offset and length
// select exactly those bytes of the original file; the rewritten model is
// small; and the models' other fields read the same. (The pooling parity
// tests above run every model through Open, which loads this form.)
func TestExternalWeightsPointIntoTheModelFile(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	table := make([][]float32, 300)
	for i := range table {
		table[i] = make([]float32, 50)
		for j := range table[i] {
			table[i][j] = rng.Float32()
		}
	}
	model := lookupModel(t, 14, table, false)
	rewritten, info, err := AppendPoolingExternal(model, "model.onnx", "logits", encode.PoolMax)
	if err != nil {
		t.Fatal(err)
	}
	if len(rewritten) > 4096 || len(model) < 60000 {
		t.Fatalf("rewritten model is %d bytes (original %d): weights were copied", len(rewritten), len(model))
	}
	var orig, got onnxpb.ModelProto
	if err := proto.Unmarshal(model, &orig); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(rewritten, &got); err != nil {
		t.Fatalf("rewritten model does not decode: %v", err)
	}
	var ext *onnxpb.TensorProto
	for _, init := range got.Graph.Initializer {
		if init.Name == "table" {
			ext = init
		}
	}
	if ext == nil || len(ext.RawData) != 0 || ext.DataLocation != onnxpb.TensorProto_EXTERNAL {
		t.Fatalf("table initializer not externalized: %+v", ext)
	}
	entries := map[string]string{}
	for _, e := range ext.ExternalData {
		entries[e.Key] = e.Value
	}
	var off, n int
	if _, err := fmt.Sscan(entries["offset"], &off); err != nil {
		t.Fatalf("offset %q: %v", entries["offset"], err)
	}
	if _, err := fmt.Sscan(entries["length"], &n); err != nil {
		t.Fatalf("length %q: %v", entries["length"], err)
	}
	want := orig.Graph.Initializer[0].RawData
	if entries["location"] != "model.onnx" || off+n > len(model) || !bytes.Equal(model[off:off+n], want) {
		t.Fatalf("external reference %v does not select the table's %d bytes", entries, len(want))
	}
	if ext.Name != "table" || !reflect.DeepEqual(ext.Dims, orig.Graph.Initializer[0].Dims) || ext.DataType != orig.Graph.Initializer[0].DataType {
		t.Fatalf("externalized tensor lost its name, dims or type: %+v", ext)
	}
	if !reflect.DeepEqual(info.Inputs, mustInspect(t, model).Inputs) || got.IrVersion != orig.IrVersion {
		t.Fatal("rewrite changed the model's inputs or IR version")
	}
}

func mustInspect(t *testing.T, model []byte) *GraphInfo {
	t.Helper()
	info, err := InspectModel(model)
	if err != nil {
		t.Fatal(err)
	}
	return info
}
