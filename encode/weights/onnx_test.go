package weights_test

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/onnxpb"
	"github.com/splash-encode/splash/encode/weights"
)

func rawF32(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func rawU16(v ...uint16) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	return b
}

func f32Init(name string, dims []int64, v ...float32) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{Name: name, Dims: dims, DataType: int32(onnxpb.TensorProto_FLOAT), RawData: rawF32(v...)}
}

func node(op string, in []string, out string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{OpType: op, Input: in, Output: []string{out}, Name: out, Attribute: attrs}
}

// writeONNX writes a model whose graph holds inits and nodes to dir/model.onnx.
func writeONNX(t *testing.T, dir string, inits []*onnxpb.TensorProto, nodes []*onnxpb.NodeProto) string {
	t.Helper()
	m := &onnxpb.ModelProto{IrVersion: 8, OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 14}},
		Graph: &onnxpb.GraphProto{Name: "g", Node: nodes, Initializer: inits}}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// The storage forms of the ONNX specification, and the graph bindings.
func TestONNXStorageAndBinding(t *testing.T) {
	dir := t.TempDir()
	ext := make([]byte, 16) // 4 bytes of padding, then 3 float32
	copy(ext[4:], rawF32(0.25, -0.5, 8))
	if err := os.WriteFile(filepath.Join(dir, "model.onnx_data"), ext, 0o644); err != nil {
		t.Fatal(err)
	}
	extEntry := func(k, v string) *onnxpb.StringStringEntryProto {
		return &onnxpb.StringStringEntryProto{Key: k, Value: v}
	}
	inits := []*onnxpb.TensorProto{
		f32Init("raw.weight", []int64{2, 2}, 1, 2, 3, 4),
		{Name: "typed.weight", Dims: []int64{3}, DataType: int32(onnxpb.TensorProto_FLOAT), FloatData: []float32{-1, 0.5, 7}},
		// float16 1.0, smallest subnormal, -inf in int32_data, one value per int32.
		{Name: "half.weight", Dims: []int64{3}, DataType: int32(onnxpb.TensorProto_FLOAT16), Int32Data: []int32{0x3C00, 0x0001, 0xFC00}},
		{Name: "halfraw.weight", Dims: []int64{2}, DataType: int32(onnxpb.TensorProto_FLOAT16), RawData: rawU16(0xC000, 0x7BFF)},
		{Name: "bf.weight", Dims: []int64{2}, DataType: int32(onnxpb.TensorProto_BFLOAT16), Int32Data: []int32{0x3F80, 0xC040}},
		{Name: "bfraw.weight", Dims: []int64{1}, DataType: int32(onnxpb.TensorProto_BFLOAT16), RawData: rawU16(0x4049)},
		{Name: "ext.weight", Dims: []int64{3}, DataType: int32(onnxpb.TensorProto_FLOAT), DataLocation: onnxpb.TensorProto_EXTERNAL,
			ExternalData: []*onnxpb.StringStringEntryProto{extEntry("location", "model.onnx_data"), extEntry("offset", "4"), extEntry("length", "12")}},
		{Name: "double.weight", Dims: []int64{1}, DataType: int32(onnxpb.TensorProto_DOUBLE), DoubleData: []float64{1}},
		{Name: "empty.weight", Dims: []int64{0, 3}, DataType: int32(onnxpb.TensorProto_FLOAT)},
		{Name: "position_ids.buffer", Dims: []int64{2}, DataType: int32(onnxpb.TensorProto_INT64), Int64Data: []int64{0, 1}},
		{Name: "const_two", DataType: int32(onnxpb.TensorProto_FLOAT), FloatData: []float32{2}},
		// Optimum's dense layers: [in, out] = [3, 2], bias [2].
		f32Init("onnx::MatMul_1", []int64{3, 2}, 1, 2, 3, 4, 5, 6),
		f32Init("enc.dense.bias", []int64{2}, 0, 0),
		f32Init("onnx::MatMul_2", []int64{2, 3}, 1, 2, 3, 4, 5, 6),
		f32Init("enc.out.bias", []int64{3}, 0, 0, 0),
		// Gemm with transB = 1: stored [out, in] = [2, 3].
		f32Init("onnx::Gemm_3", []int64{2, 3}, 1, 2, 3, 4, 5, 6),
		f32Init("pool.dense.bias", []int64{2}, 0, 0),
		// Decoder: its bias is the head's.
		f32Init("onnx::MatMul_4", []int64{2, 4}, 1, 2, 3, 4, 5, 6, 7, 8),
		f32Init("cls.predictions.bias", []int64{4}, 0, 0, 0, 0),
		// A name that an initializer has already is not bound.
		f32Init("onnx::MatMul_5", []int64{2, 2}, 9, 9, 9, 9),
		f32Init("raw.bias", []int64{2}, 0, 0),
		// Two different weights for one bias: ambiguous.
		f32Init("onnx::MatMul_6", []int64{2, 2}, 1, 1, 1, 1),
		f32Init("onnx::MatMul_7", []int64{2, 2}, 2, 2, 2, 2),
		f32Init("dup.bias", []int64{2}, 0, 0),
		// A bias whose size does not match the MatMul's output: not bound.
		f32Init("onnx::MatMul_8", []int64{2, 3}, 1, 2, 3, 4, 5, 6),
		f32Init("odd.bias", []int64{2}, 0, 0),
	}
	nodes := []*onnxpb.NodeProto{
		node("MatMul", []string{"x", "onnx::MatMul_1"}, "mm1"),
		node("Add", []string{"enc.dense.bias", "mm1"}, "y1"),
		node("MatMul", []string{"y1", "onnx::MatMul_2"}, "mm2"),
		node("Add", []string{"mm2", "enc.out.bias"}, "y2"), // bias second
		node("Gemm", []string{"x2", "onnx::Gemm_3", "pool.dense.bias"}, "g", &onnxpb.AttributeProto{Name: "transB", Type: onnxpb.AttributeProto_INT, I: 1}),
		node("MatMul", []string{"y2", "onnx::MatMul_4"}, "mm4"),
		node("Add", []string{"cls.predictions.bias", "mm4"}, "logits"),
		node("MatMul", []string{"x", "onnx::MatMul_5"}, "mm5"),
		node("Add", []string{"raw.bias", "mm5"}, "y5"),
		node("MatMul", []string{"x", "onnx::MatMul_6"}, "mm6"),
		node("Add", []string{"dup.bias", "mm6"}, "y6"),
		node("MatMul", []string{"x", "onnx::MatMul_7"}, "mm7"),
		node("Add", []string{"dup.bias", "mm7"}, "y7"),
		node("MatMul", []string{"x", "onnx::MatMul_8"}, "mm8"),
		node("Add", []string{"odd.bias", "mm8"}, "y8"),
	}
	path := writeONNX(t, dir, inits, nodes)
	c := open(t, path)

	wantNames := []string{"bf.weight", "bfraw.weight", "cls.predictions.bias", "cls.predictions.decoder.weight", "dup.bias",
		"empty.weight", "enc.dense.bias", "enc.dense.weight", "enc.out.bias", "enc.out.weight", "ext.weight", "half.weight",
		"halfraw.weight", "odd.bias", "pool.dense.bias", "pool.dense.weight", "raw.bias", "raw.weight", "typed.weight"}
	if !slices.Equal(c.Names(), wantNames) {
		t.Errorf("names\n%v\nwant\n%v", c.Names(), wantNames)
	}
	for _, tc := range []struct {
		name  string
		shape []int
		vals  []float32
	}{
		{"raw.weight", []int{2, 2}, []float32{1, 2, 3, 4}},
		{"typed.weight", []int{3}, []float32{-1, 0.5, 7}},
		{"half.weight", []int{3}, []float32{1, float32(math.Ldexp(1, -24)), float32(math.Inf(-1))}},
		{"halfraw.weight", []int{2}, []float32{-2, 65504}},
		{"bf.weight", []int{2}, []float32{1, -3}},
		{"bfraw.weight", []int{1}, []float32{3.140625}},
		{"ext.weight", []int{3}, []float32{0.25, -0.5, 8}},
		{"empty.weight", []int{0, 3}, []float32{}},
		{"enc.dense.weight", []int{2, 3}, []float32{1, 3, 5, 2, 4, 6}},  // [3, 2] transposed
		{"enc.out.weight", []int{3, 2}, []float32{1, 4, 2, 5, 3, 6}},    // [2, 3] transposed
		{"pool.dense.weight", []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}}, // Gemm transB: as stored
		{"cls.predictions.decoder.weight", []int{4, 2}, []float32{1, 5, 2, 6, 3, 7, 4, 8}},
		{"onnx::MatMul_1", []int{3, 2}, []float32{1, 2, 3, 4, 5, 6}}, // by its own name, as stored
	} {
		vals, shape, err := c.Float32(tc.name)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !slices.Equal(shape, tc.shape) || !slices.Equal(vals, tc.vals) {
			t.Errorf("%s: %v %v, want %v %v", tc.name, shape, vals, tc.shape, tc.vals)
		}
	}
	if !c.Has("onnx::MatMul_5") || c.Has("raw.weight.x") {
		t.Error("Has")
	}
	_, _, err := c.Float32("dup.weight")
	if !errors.Is(err, weights.ErrMissing) || !strings.Contains(err.Error(), "two initializers") {
		t.Errorf("ambiguous binding: %v", err)
	}
	if c.Has("odd.weight") {
		t.Error("odd.weight bound despite the size mismatch")
	}
	_, _, err = c.Float32("double.weight")
	if !errors.Is(err, weights.ErrUnsupported) || !strings.Contains(err.Error(), "DOUBLE") || !strings.Contains(err.Error(), path) {
		t.Errorf("DOUBLE initializer: %v", err)
	}
	_, _, err = c.Float32("position_ids.buffer")
	if !errors.Is(err, weights.ErrUnsupported) {
		t.Errorf("INT64 initializer: %v", err)
	}
	_, _, err = c.Float32("bert.encoder.layer.3.attention.self.query.weight")
	if !errors.Is(err, weights.ErrMissing) || err.Error() != "weights: "+path+": tensor bert.encoder.layer.3.attention.self.query.weight is missing" {
		t.Errorf("missing: %v", err)
	}
}

// Malformed initializers: errors name the file and the tensor and wrap
// encode.ErrBadModel.
func TestONNXBadInitializers(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.bin"), make([]byte, 8), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(dir), "outside.bin"), make([]byte, 64), 0o644); err != nil {
		t.Fatal(err)
	}
	extern := func(name string, n int64, kv ...string) *onnxpb.TensorProto {
		t := &onnxpb.TensorProto{Name: name, Dims: []int64{n}, DataType: int32(onnxpb.TensorProto_FLOAT), DataLocation: onnxpb.TensorProto_EXTERNAL}
		for i := 0; i+1 < len(kv); i += 2 {
			t.ExternalData = append(t.ExternalData, &onnxpb.StringStringEntryProto{Key: kv[i], Value: kv[i+1]})
		}
		return t
	}
	cases := map[string]*onnxpb.TensorProto{
		"short.weight":      {Name: "short.weight", Dims: []int64{3}, DataType: int32(onnxpb.TensorProto_FLOAT), RawData: rawF32(1, 2)},
		"shorttyped.weight": {Name: "shorttyped.weight", Dims: []int64{3}, DataType: int32(onnxpb.TensorProto_FLOAT16), Int32Data: []int32{1}},
		"nodata.weight":     {Name: "nodata.weight", Dims: []int64{3}, DataType: int32(onnxpb.TensorProto_FLOAT)},
		"negdim.weight":     {Name: "negdim.weight", Dims: []int64{-3}, DataType: int32(onnxpb.TensorProto_FLOAT)},
		"huge.weight":       {Name: "huge.weight", Dims: []int64{1 << 40, 1 << 20}, DataType: int32(onnxpb.TensorProto_FLOAT), FloatData: []float32{1}},
		"escape.weight":     extern("escape.weight", 2, "location", "../outside.bin"),
		"abs.weight":        extern("abs.weight", 2, "location", filepath.Join(filepath.Dir(dir), "outside.bin")),
		"noloc.weight":      extern("noloc.weight", 2),
		"beyond.weight":     extern("beyond.weight", 2, "location", "data.bin", "offset", "4"),
		"badlen.weight":     extern("badlen.weight", 2, "location", "data.bin", "length", "4"),
		"nofile.weight":     extern("nofile.weight", 2, "location", "absent.bin"),
	}
	var inits []*onnxpb.TensorProto
	for _, in := range cases {
		inits = append(inits, in)
	}
	path := writeONNX(t, dir, inits, nil)
	c := open(t, path)
	for name := range cases {
		_, _, err := c.Float32(name)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "tensor "+name) {
			t.Errorf("%s: error %q does not name the file and the tensor", name, err)
		}
		if !errors.Is(err, encode.ErrBadModel) {
			t.Errorf("%s: error %v does not wrap ErrBadModel", name, err)
		}
	}
	// External data is looked for beside the model that names it.
	good := extern("good.weight", 2, "location", "data.bin")
	c2 := open(t, writeONNX(t, t.TempDir(), []*onnxpb.TensorProto{good}, nil))
	if _, _, err := c2.Float32("good.weight"); err == nil || !strings.Contains(err.Error(), "data.bin") {
		t.Errorf("external file absent beside this model: %v", err)
	}
}

// Truncated model files are refused at Open, naming the file.
func TestONNXTruncated(t *testing.T) {
	dir := t.TempDir()
	path := writeONNX(t, dir, []*onnxpb.TensorProto{f32Init("a.weight", []int64{4}, 1, 2, 3, 4)},
		[]*onnxpb.NodeProto{node("Add", []string{"a.weight", "a.weight"}, "y")})
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for cut := 1; cut < len(full); cut++ {
		p := filepath.Join(dir, "cut"+strconv.Itoa(cut)+".onnx")
		if err := os.WriteFile(p, full[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := weights.Open(p)
		if err == nil {
			// A cut at a field boundary is a valid (smaller) model: its
			// tensors must then read or fail cleanly.
			for _, name := range c.Names() {
				c.Float32(name)
			}
			c.Close()
			continue
		}
		if !errors.Is(err, encode.ErrBadModel) || !strings.Contains(err.Error(), p) {
			t.Errorf("cut at %d: %v", cut, err)
		}
	}
}
