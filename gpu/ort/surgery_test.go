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
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"github.com/splash-encode/splash/encode"
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
	dim := func(p string) *onnx.TensorShapeProto_Dimension {
		return &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimParam{DimParam: p}}
	}
	vi := func(name string, elem onnx.TensorProto_DataType, dims ...*onnx.TensorShapeProto_Dimension) *onnx.ValueInfoProto {
		return &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{
			TensorType: &onnx.TypeProto_Tensor{ElemType: int32(elem), Shape: &onnx.TensorShapeProto{Dim: dims}}}}}
	}
	outElem := onnx.TensorProto_FLOAT
	nodes := []*onnx.NodeProto{{Name: "gather", OpType: "Gather", Input: []string{"table", "input_ids"}, Output: []string{"gathered"}}}
	if fp16 {
		outElem = onnx.TensorProto_FLOAT16
		nodes = append(nodes, &onnx.NodeProto{Name: "cast", OpType: "Cast", Input: []string{"gathered"}, Output: []string{"logits"},
			Attribute: []*onnx.AttributeProto{{Name: "to", Type: onnx.AttributeProto_INT, I: int64(onnx.TensorProto_FLOAT16)}}})
	} else {
		nodes = append(nodes, &onnx.NodeProto{Name: "id", OpType: "Identity", Input: []string{"gathered"}, Output: []string{"logits"}})
	}
	m := &onnx.ModelProto{
		IrVersion:   8,
		OpsetImport: []*onnx.OperatorSetIdProto{{Domain: "", Version: opset}},
		Graph: &onnx.GraphProto{
			Name:        "lookup",
			Node:        nodes,
			Initializer: []*onnx.TensorProto{{Name: "table", DataType: int32(onnx.TensorProto_FLOAT), Dims: []int64{int64(len(table)), int64(v)}, RawData: raw}},
			Input: []*onnx.ValueInfoProto{
				vi("input_ids", onnx.TensorProto_INT64, dim("batch"), dim("seq")),
				vi("attention_mask", onnx.TensorProto_INT64, dim("batch"), dim("seq")),
				vi("token_type_ids", onnx.TensorProto_INT64, dim("batch"), dim("seq")),
			},
			Output: []*onnx.ValueInfoProto{vi("logits", outElem, dim("batch"), dim("seq"), dim("vocab"))},
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
	if _, err := ResolveLibrary(""); err != nil {
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
	for _, opset := range []int64{11, 13, 14, 17, 18} {
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
								x := table[id][j]
								if fp16 {
									x = roundFP16(x)
								}
								logits[i][j] = float64(x)
							}
						}
						want := encode.PoolReference(logits, nil, pooling)
						for j, w := range want {
							got := float64(out[r*vocab+j])
							tol := 2e-6 * math.Max(1, w)
							if fp16 {
								tol = 1e-3 * math.Max(1, w)
							}
							if math.Abs(got-w) > tol {
								t.Fatalf("row %d term %d: got %v want %v", r, j, got, w)
							}
							if w == 0 && got != 0 {
								t.Fatalf("row %d term %d: got %v, want exactly 0", r, j, got)
							}
						}
					}
				})
			}
		}
	}
}

// roundFP16 rounds x to the nearest float16 value (round half to even),
// enough for the test table's range.
func roundFP16(x float32) float32 {
	if x == 0 {
		return 0
	}
	e := math.Floor(math.Log2(math.Abs(float64(x))))
	ulp := math.Ldexp(1, int(e)-10)
	return float32(math.RoundToEven(float64(x)/ulp) * ulp)
}

func TestOpenRejectsModelsThatDoNotFit(t *testing.T) {
	requireLibrary(t)
	table := [][]float32{{1, 2}, {3, 4}}
	good := lookupModel(t, 14, table, false)
	var m onnx.ModelProto
	if err := proto.Unmarshal(good, &m); err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(m *onnx.ModelProto)) []byte {
		c := proto.Clone(&m).(*onnx.ModelProto)
		f(c)
		b, err := proto.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := map[string][]byte{
		"no input \"attention_mask\"": mutate(func(m *onnx.ModelProto) { m.Graph.Input = m.Graph.Input[:1] }),
		"no output \"logits\"":        mutate(func(m *onnx.ModelProto) { m.Graph.Output[0].Name = "scores"; m.Graph.Node[1].Output[0] = "scores" }),
		"has rank 2": mutate(func(m *onnx.ModelProto) {
			m.Graph.Output[0].Type.GetTensorType().Shape.Dim = m.Graph.Output[0].Type.GetTensorType().Shape.Dim[:2]
		}),
		"not a valid ONNX model": []byte("this is not protobuf \xff\xff\xff"),
		"is not one splash can feed": mutate(func(m *onnx.ModelProto) {
			m.Graph.Input = append(m.Graph.Input, &onnx.ValueInfoProto{Name: "pixel_values"})
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
	var orig, got onnx.ModelProto
	if err := proto.Unmarshal(model, &orig); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(rewritten, &got); err != nil {
		t.Fatalf("rewritten model does not decode: %v", err)
	}
	var ext *onnx.TensorProto
	for _, init := range got.Graph.Initializer {
		if init.Name == "table" {
			ext = init
		}
	}
	if ext == nil || len(ext.RawData) != 0 || ext.DataLocation != onnx.TensorProto_EXTERNAL {
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
