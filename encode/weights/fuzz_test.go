package weights

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/onnxpb"
)

// FuzzOpenONNX scans arbitrary bytes as an ONNX model and reads every
// tensor it lists: no panic, and every error is a bad-model error (or, for
// Float32, an unsupported type or a missing external file).
func FuzzOpenONNX(f *testing.F) {
	m := &onnxpb.ModelProto{IrVersion: 8, Graph: &onnxpb.GraphProto{
		Node: []*onnxpb.NodeProto{
			{OpType: "MatMul", Input: []string{"x", "onnx::MatMul_1"}, Output: []string{"mm"}},
			{OpType: "Add", Input: []string{"l.bias", "mm"}, Output: []string{"y"}},
			{OpType: "Gemm", Input: []string{"y", "onnx::Gemm_2", "g.bias"}, Output: []string{"z"},
				Attribute: []*onnxpb.AttributeProto{{Name: "transB", Type: onnxpb.AttributeProto_INT, I: 1}}},
		},
		Initializer: []*onnxpb.TensorProto{
			{Name: "onnx::MatMul_1", Dims: []int64{2, 2}, DataType: 1, RawData: make([]byte, 16)},
			{Name: "l.bias", Dims: []int64{2}, DataType: 1, FloatData: []float32{1, 2}},
			{Name: "onnx::Gemm_2", Dims: []int64{1, 2}, DataType: 16, Int32Data: []int32{0x3f80, 0x4000}},
			{Name: "g.bias", Dims: []int64{1}, DataType: 10, RawData: []byte{0, 0x3c}},
			{Name: "e.weight", Dims: []int64{1}, DataType: 1, DataLocation: onnxpb.TensorProto_EXTERNAL,
				ExternalData: []*onnxpb.StringStringEntryProto{{Key: "location", Value: "x.bin"}}},
		},
	}}
	b, err := proto.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{0x3a, 0x05, 0x2a, 0x03, 0x08, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := newONNXCheckpoint("/nonexistent/fuzz.onnx", bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if !errors.Is(err, encode.ErrBadModel) {
				t.Fatalf("error %v is not ErrBadModel", err)
			}
			return
		}
		for _, name := range c.Names() {
			shape, ok := c.Shape(name)
			vals, got, err := c.Float32(name)
			if err != nil {
				if !errors.Is(err, encode.ErrBadModel) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrMissing) {
					t.Fatalf("Float32(%q): %v", name, err)
				}
				continue
			}
			n := 1
			for _, d := range got {
				n *= d
			}
			if n != len(vals) || !ok || len(shape) != len(got) {
				t.Fatalf("Float32(%q): %d values, shape %v (Shape %v %v)", name, len(vals), got, shape, ok)
			}
		}
	})
}
