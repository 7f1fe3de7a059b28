package testmodel

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/splash-encode/splash/encode/onnxpb"
)

// bindTransposedWeights adds to inits, for every dense layer whose weight
// the graph multiplies as a pre-transposed initializer with a made-up
// name, as optimum exports do (Add(P.bias, MatMul(x, onnx::MatMul_N)), the
// Add's inputs in either order), an initializer P.weight holding it
// transposed back to PyTorch's [out, in], so that the oracle reads
// Config.OptimumNames models by their Hugging Face names. A name that
// already has an initializer is left alone. This is the oracle's own
// reading of the graph, independent of the engines' (encode/weights).
func bindTransposedWeights(g *onnxpb.GraphProto, inits map[string]*onnxpb.TensorProto) error {
	producer := make(map[string]*onnxpb.NodeProto, len(g.Node))
	for _, n := range g.Node {
		for _, out := range n.Output {
			producer[out] = n
		}
	}
	for _, n := range g.Node {
		if n.OpType != "Add" || len(n.Input) != 2 {
			continue
		}
		for k := 0; k < 2; k++ {
			bias := n.Input[k]
			if _, ok := inits[bias]; !ok || !strings.HasSuffix(bias, ".bias") {
				continue
			}
			m := producer[n.Input[1-k]]
			if m == nil || m.OpType != "MatMul" || len(m.Input) != 2 {
				continue
			}
			w, ok := inits[m.Input[1]]
			if !ok || !strings.HasPrefix(w.Name, "onnx::") {
				continue
			}
			name := strings.TrimSuffix(bias, ".bias") + ".weight"
			if _, exists := inits[name]; exists {
				continue
			}
			t, err := transposedInitializer(w, name)
			if err != nil {
				return err
			}
			inits[name] = t
		}
	}
	return nil
}

// transposedInitializer returns the float32 matrix w ([in, out]) transposed
// to [out, in], named name.
func transposedInitializer(w *onnxpb.TensorProto, name string) (*onnxpb.TensorProto, error) {
	if w.DataType != int32(onnxpb.TensorProto_FLOAT) || len(w.Dims) != 2 || w.Dims[0] < 0 || w.Dims[1] < 0 {
		return nil, fmt.Errorf("initializer %q (the weight of %s): want a 2-D float matrix, have type %d dims %v",
			w.Name, name, w.DataType, w.Dims)
	}
	rows, cols := int(w.Dims[0]), int(w.Dims[1])
	vals := w.FloatData
	if len(w.RawData) > 0 {
		if len(w.RawData) != 4*rows*cols {
			return nil, fmt.Errorf("initializer %q: %d bytes of data for dims %v", w.Name, len(w.RawData), w.Dims)
		}
		vals = make([]float32, rows*cols)
		for i := range vals {
			vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(w.RawData[4*i:]))
		}
	}
	if len(vals) != rows*cols {
		return nil, fmt.Errorf("initializer %q: %d values for dims %v", w.Name, len(vals), w.Dims)
	}
	out := make([]float32, len(vals))
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			out[j*rows+i] = vals[i*cols+j]
		}
	}
	return &onnxpb.TensorProto{Name: name, Dims: []int64{w.Dims[1], w.Dims[0]}, DataType: w.DataType, FloatData: out}, nil
}
