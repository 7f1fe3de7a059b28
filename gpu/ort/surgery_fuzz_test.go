package ort

// This file has no cgo build constraint: the graph surgery is pure Go, and
// its fuzz targets run in builds without cgo too.

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/onnxpb"
	"github.com/splash-encode/splash/encode/testmodel"
)

var updateFuzzSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite the generated (gen-*) seed corpora of FuzzInspectModel and FuzzAppendPooling under testdata/fuzz")

// FuzzInspectModel feeds arbitrary bytes to the shallow model reader
// (scanModel, which InspectModel calls under a recovery). It may refuse them,
// with an error that wraps ErrBadModel, and must not panic. It is checked
// against the full protobuf decoder: when that decodes a model with a graph
// and a default operator set, scanModel reads it too, with the same opset,
// inputs (initializers left out) and outputs.
func FuzzInspectModel(f *testing.F) {
	for _, m := range syntheticModels(f) {
		f.Add(m.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, _, err := scanModel(data)
		if err != nil {
			if !errors.Is(err, ErrBadModel) || info != nil {
				t.Fatalf("error %q does not wrap ErrBadModel (info %v)", err, info)
			}
		} else if info == nil || info.Opset == 0 {
			t.Fatalf("scanModel accepted a model without an operator set: %+v", info)
		}
		var m onnxpb.ModelProto
		if proto.Unmarshal(data, &m) != nil {
			return
		}
		want, ok := protoInfo(&m)
		if !ok {
			if err == nil {
				t.Fatalf("scanModel accepted a model without a graph or a default operator set: %+v", info)
			}
			return
		}
		if err != nil {
			t.Fatalf("scanModel refuses a model that the protobuf decoder reads: %v", err)
		}
		if !reflect.DeepEqual(info, want) {
			t.Fatalf("scanModel read\n%+v\nthe protobuf decoder\n%+v", info, want)
		}
	})
}

// protoInfo is what scanModel should read, from the full decode; ok is false
// when the model has no graph or no default operator set.
func protoInfo(m *onnxpb.ModelProto) (*GraphInfo, bool) {
	info := &GraphInfo{}
	for _, op := range m.GetOpsetImport() {
		if op.GetDomain() == "" || op.GetDomain() == "ai.onnx" {
			info.Opset = op.GetVersion()
		}
	}
	if m.Graph == nil || info.Opset == 0 {
		return nil, false
	}
	inits := map[string]bool{}
	for _, t := range m.Graph.GetInitializer() {
		inits[t.GetName()] = true
	}
	for _, vi := range m.Graph.GetInput() {
		if !inits[vi.GetName()] {
			info.Inputs = append(info.Inputs, valueInfo(vi))
		}
	}
	for _, vi := range m.Graph.GetOutput() {
		info.Outputs = append(info.Outputs, valueInfo(vi))
	}
	return info, true
}

// FuzzAppendPooling feeds arbitrary bytes to the graph surgery (without
// AppendPooling's recovery). It may refuse them, with an error that wraps
// ErrBadModel, and must not panic. What it rewrites is a model that
// scanModel reads back with the same operator set and inputs and the single
// [batch, vocab] float output PooledOutput, as the returned GraphInfo says;
// every top-level field but the graph, and every graph field but the
// outputs, is kept byte for byte and in order; pooling the result again is
// refused (its output has rank 2); and when the protobuf decoder reads the
// input it reads the output too, with the pooling nodes appended.
func FuzzAppendPooling(f *testing.F) {
	for _, m := range syntheticModels(f) {
		f.Add(m.data, false)
	}
	f.Fuzz(func(t *testing.T, data []byte, sum bool) {
		pooling := encode.PoolMax
		if sum {
			pooling = encode.PoolSum
		}
		out, info, err := appendPooling(data, "", "logits", pooling, false)
		// With external weights the rewrite accepts and refuses the same
		// models and describes the same graph.
		extOut, extInfo, extErr := appendPooling(data, "model.onnx", "logits", pooling, false)
		if (extErr == nil) != (err == nil) || !reflect.DeepEqual(extInfo, info) {
			t.Fatalf("external weights: error %v, info %+v; inline: error %v, info %+v", extErr, extInfo, err, info)
		}
		if extErr == nil {
			if _, _, err := scanModel(extOut); err != nil {
				t.Fatalf("the rewritten model with external weights cannot be read: %v", err)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrBadModel) || out != nil || info != nil {
				t.Fatalf("error %q does not wrap ErrBadModel (or comes with a result)", err)
			}
			return
		}
		before, _, err := scanModel(data)
		if err != nil {
			t.Fatalf("appendPooling accepted what scanModel refuses: %v", err)
		}
		after, _, err := scanModel(out)
		if err != nil {
			t.Fatalf("the rewritten model cannot be read: %v", err)
		}
		if !reflect.DeepEqual(after, info) {
			t.Fatalf("appendPooling says\n%+v\nthe rewritten model holds\n%+v", info, after)
		}
		if after.Opset != before.Opset || !reflect.DeepEqual(after.Inputs, before.Inputs) {
			t.Fatalf("opset or inputs changed: %+v -> %+v", before, after)
		}
		if len(after.Outputs) != 1 || after.Outputs[0].Name != PooledOutput || after.Outputs[0].ElemType != onnxpb.TensorProto_FLOAT || len(after.Outputs[0].Dims) != 2 {
			t.Fatalf("outputs after pooling: %+v", after.Outputs)
		}
		// Byte-for-byte: the fields of the model but its graph, and the
		// fields of the graph but its outputs, come first, in order.
		keep := func(msg []byte, drop protowire.Number) [][]byte {
			var raws [][]byte
			if err := forEachField(msg, func(num protowire.Number, _ protowire.Type, raw, _ []byte) error {
				if num != drop {
					raws = append(raws, raw)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			return raws
		}
		if a, b := keep(data, modelGraphField), keep(out, modelGraphField); !slices.EqualFunc(a, b, bytes.Equal) {
			t.Fatalf("the fields of the model other than the graph changed: %d fields -> %d", len(a), len(b))
		}
		_, g0, _ := scanModel(data)
		_, g1, _ := scanModel(out)
		a, b := keep(g0, graphOutputField), keep(g1, graphOutputField)
		if len(b) < len(a) || !slices.EqualFunc(a, b[:len(a)], bytes.Equal) {
			t.Fatalf("the fields of the graph other than the outputs changed")
		}
		if _, _, err := appendPooling(out, "", PooledOutput, pooling, false); !errors.Is(err, ErrBadModel) {
			t.Fatalf("pooling the pooled model again: %v", err)
		}
		var m0, m1 onnxpb.ModelProto
		if proto.Unmarshal(data, &m0) != nil {
			return
		}
		if err := proto.Unmarshal(out, &m1); err != nil {
			t.Fatalf("the protobuf decoder reads the model but not the rewritten one: %v", err)
		}
		n0, n1 := m0.GetGraph().GetNode(), m1.GetGraph().GetNode()
		if len(n1) <= len(n0) || n1[len(n1)-1].GetOutput()[0] != PooledOutput {
			t.Fatalf("%d nodes -> %d, the last does not compute %s", len(n0), len(n1), PooledOutput)
		}
	})
}

// TestSurgeryRecovers checks that the exported functions turn a panic into an
// error wrapping ErrBadModel (here: a nil model has no graph, a plain error).
func TestSurgeryRecovers(t *testing.T) {
	var err error
	func() {
		defer recoverBadModel(&err)
		var m map[string]int
		m["x"] = 1 // panics
	}()
	if !errors.Is(err, ErrBadModel) || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("recoverBadModel: %v", err)
	}
	if _, err := InspectModel(nil); !errors.Is(err, ErrBadModel) {
		t.Fatalf("InspectModel(nil): %v", err)
	}
	if _, _, err := AppendPooling([]byte{0xff}, "logits", encode.PoolMax); !errors.Is(err, ErrBadModel) {
		t.Fatalf("AppendPooling(garbage): %v", err)
	}
}

type namedModel struct {
	name string
	data []byte
}

// syntheticModels returns small models: masked-LM shaped ones that pooling
// accepts (opsets on both sides of the Unsqueeze, ReduceSum and ReduceMax
// changes, fp16 logits, with and without token_type_ids, fixed and symbolic
// dims, an initializer that is also a graph input, a custom-domain opset,
// a subgraph, external data) and ones it refuses for a reason.
func syntheticModels(tb testing.TB) []namedModel {
	tb.Helper()
	sym := func(p string) *onnxpb.TensorShapeProto_Dimension {
		return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: p}}
	}
	fixed := func(v int64) *onnxpb.TensorShapeProto_Dimension {
		return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: v}}
	}
	vi := func(name string, elem onnxpb.TensorProto_DataType, dims ...*onnxpb.TensorShapeProto_Dimension) *onnxpb.ValueInfoProto {
		return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32(elem), Shape: &onnxpb.TensorShapeProto{Dim: dims}}}}}
	}
	type opts struct {
		opset     int64
		fp16      bool
		typeIDs   bool
		logitsDim int
		idsElem   onnxpb.TensorProto_DataType
		extra     func(m *onnxpb.ModelProto)
	}
	build := func(o opts) []byte {
		if o.logitsDim == 0 {
			o.logitsDim = 3
		}
		if o.idsElem == 0 {
			o.idsElem = onnxpb.TensorProto_INT64
		}
		outElem := onnxpb.TensorProto_FLOAT
		if o.fp16 {
			outElem = onnxpb.TensorProto_FLOAT16
		}
		inputs := []*onnxpb.ValueInfoProto{
			vi("input_ids", o.idsElem, sym("batch"), sym("sequence")),
			vi("attention_mask", onnxpb.TensorProto_INT64, sym("batch"), sym("sequence")),
		}
		if o.typeIDs {
			inputs = append(inputs, vi("token_type_ids", onnxpb.TensorProto_INT64, sym("batch"), fixed(8)))
		}
		dims := []*onnxpb.TensorShapeProto_Dimension{sym("batch"), sym("sequence"), fixed(5)}[:o.logitsDim]
		m := &onnxpb.ModelProto{
			IrVersion:    8,
			ProducerName: "splash-fuzz-seed",
			OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: "", Version: o.opset}},
			Graph: &onnxpb.GraphProto{
				Name: "lookup",
				Node: []*onnxpb.NodeProto{
					{Name: "gather", OpType: "Gather", Input: []string{"table", "input_ids"}, Output: []string{"logits"}},
				},
				Initializer: []*onnxpb.TensorProto{{Name: "table", DataType: int32(outElem), Dims: []int64{3, 5}, RawData: make([]byte, 4*15)}},
				Input:       inputs,
				Output:      []*onnxpb.ValueInfoProto{vi("logits", outElem, dims...)},
			},
		}
		if o.extra != nil {
			o.extra(m)
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	models := []namedModel{
		{"opset11-max", build(opts{opset: 11})},
		{"opset13-fp16-types", build(opts{opset: 13, fp16: true, typeIDs: true})},
		{"opset17", build(opts{opset: 17, typeIDs: true})},
		{"opset18", build(opts{opset: 18})},
		{"opset21-fp16", build(opts{opset: 21, fp16: true})},
		{"opset10-too-old", build(opts{opset: 10})},
		{"logits-rank2", build(opts{opset: 14, logitsDim: 2})},
		{"ids-int32", build(opts{opset: 14, idsElem: onnxpb.TensorProto_INT32})},
		{"no-opset", build(opts{opset: 14, extra: func(m *onnxpb.ModelProto) { m.OpsetImport = nil }})},
		{"no-graph", build(opts{opset: 14, extra: func(m *onnxpb.ModelProto) { m.Graph = nil }})},
		{"custom-domain-and-metadata", build(opts{opset: 14, extra: func(m *onnxpb.ModelProto) {
			m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: "com.microsoft", Version: 1})
			m.MetadataProps = []*onnxpb.StringStringEntryProto{{Key: "k", Value: "v"}}
			m.DocString = "doc"
		}})},
		{"initializer-input", build(opts{opset: 14, extra: func(m *onnxpb.ModelProto) {
			m.Graph.Input = append(m.Graph.Input, vi("table", onnxpb.TensorProto_FLOAT, fixed(3), fixed(5)))
		}})},
		{"extra-input", build(opts{opset: 14, extra: func(m *onnxpb.ModelProto) {
			m.Graph.Input = append(m.Graph.Input, vi("cache_position", onnxpb.TensorProto_INT64, sym("batch"), sym("sequence")))
		}})},
		{"external-data-subgraph", build(opts{opset: 14, extra: func(m *onnxpb.ModelProto) {
			m.Graph.Initializer[0].RawData = nil
			m.Graph.Initializer[0].DataLocation = onnxpb.TensorProto_EXTERNAL
			m.Graph.Initializer[0].ExternalData = []*onnxpb.StringStringEntryProto{{Key: "location", Value: "model.onnx_data"}, {Key: "offset", Value: "0"}}
			m.Graph.Node = append(m.Graph.Node, &onnxpb.NodeProto{Name: "if", OpType: "If", Input: []string{"cond"}, Output: []string{"unused"},
				Attribute: []*onnxpb.AttributeProto{{Name: "then_branch", Type: onnxpb.AttributeProto_GRAPH, G: &onnxpb.GraphProto{Name: "then"}}}})
		}})},
		{"two-outputs-value-info", build(opts{opset: 14, extra: func(m *onnxpb.ModelProto) {
			m.Graph.Output = append(m.Graph.Output, vi("hidden", onnxpb.TensorProto_FLOAT, sym("batch"), sym("sequence"), fixed(4)))
			m.Graph.ValueInfo = []*onnxpb.ValueInfoProto{vi("gathered", onnxpb.TensorProto_FLOAT)}
		}})},
	}
	// Protobuf merges a message field that occurs twice: ONNX Runtime would
	// see one graph with the inputs, nodes and outputs of both.
	twice := slices.Concat(models[0].data, build(opts{opset: 13, extra: func(m *onnxpb.ModelProto) {
		m.Graph.Input = append(m.Graph.Input, vi("cache_position", onnxpb.TensorProto_INT64, sym("batch"), sym("sequence")))
		m.Graph.Output = nil
	}}))
	models = append(models, namedModel{"graph-twice", twice})
	var damaged []namedModel
	for _, m := range models[:3] {
		d := m.data
		damaged = append(damaged,
			namedModel{m.name + "-cut", d[:len(d)*2/3]},
			namedModel{m.name + "-flip", flipBit(d, len(d)/3)},
			namedModel{m.name + "-flip-tail", flipBit(d, len(d)-7)})
	}
	return append(models, damaged...)
}

func flipBit(data []byte, i int) []byte {
	c := slices.Clone(data)
	c[i] ^= 0x10
	return c
}

// TestWriteFuzzSeeds regenerates the gen-* seeds of FuzzInspectModel and
// FuzzAppendPooling with -update-fuzz-seeds: the synthetic models, and a
// small BERT masked-LM export of encode/testmodel (the graph torch.onnx
// writes, with a vocabulary of 12 tokens and hidden size 4).
//
//	go test ./gpu/ort -run TestWriteFuzzSeeds -args -update-fuzz-seeds
func TestWriteFuzzSeeds(t *testing.T) {
	if !*updateFuzzSeeds {
		t.Skip("run with -update-fuzz-seeds to rewrite the seed corpora")
	}
	models := syntheticModels(t)
	dir := t.TempDir()
	tok := filepath.Join(dir, "tokenizer.json")
	vocab := `{"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "wing": 5, "flow": 6, "##s": 7, "a": 8, "the": 9, "of": 10, ".": 11}`
	if err := os.WriteFile(tok, []byte(`{"version": "1.0", "model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": `+vocab+`}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, opset := range []int{14, 18} {
		md := filepath.Join(dir, fmt.Sprint("bert", opset))
		cfg := testmodel.Config{Layers: 1, Hidden: 4, Heads: 1, Intermediate: 4, MaxPositions: 8, TypeVocab: 2, Seed: 1, Opset: opset}
		if err := testmodel.Generate(md, cfg, tok); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(md, testmodel.ModelFile))
		if err != nil {
			t.Fatal(err)
		}
		models = append(models, namedModel{fmt.Sprint("testmodel-bert-opset", opset), data})
	}
	for _, target := range []string{"FuzzInspectModel", "FuzzAppendPooling"} {
		d := filepath.Join("testdata", "fuzz", target)
		old, err := filepath.Glob(filepath.Join(d, "gen-*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range old {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, m := range models {
			seed := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", m.data)
			if target == "FuzzAppendPooling" {
				seed += fmt.Sprintf("bool(%v)\n", i%2 == 1)
			}
			if err := os.WriteFile(filepath.Join(d, "gen-"+m.name), []byte(seed), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
