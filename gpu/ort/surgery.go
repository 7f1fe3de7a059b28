package ort

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/onnxpb"
)

// PooledOutput is the name of the graph output that AppendPooling adds.
const PooledOutput = "splash_pooled"

// Field numbers of onnx.proto3 used by the shallow rewrite below.
const (
	modelGraphField  protowire.Number = 7
	modelOpsetField  protowire.Number = 8
	graphNodeField   protowire.Number = 1
	graphInitField   protowire.Number = 5
	graphInputField  protowire.Number = 11
	graphOutputField protowire.Number = 12
	tensorNameField  protowire.Number = 8
	tensorRawField   protowire.Number = 9
	tensorExtField   protowire.Number = 13
	tensorLocField   protowire.Number = 14
	entryKeyField    protowire.Number = 1
	entryValueField  protowire.Number = 2
)

// minExternalBytes is the smallest initializer payload that
// AppendPoolingExternal leaves in the model file rather than copying.
const minExternalBytes = 1024

// ErrBadModel marks models whose graph does not fit what splash needs. It
// is encode.ErrBadModel, so that callers need not import this package to
// tell bad model files from other failures.
var ErrBadModel = encode.ErrBadModel

// ValueInfo describes one graph input or output.
type ValueInfo struct {
	Name     string
	ElemType onnxpb.TensorProto_DataType
	// Dims holds each dimension as a number or a symbolic name ("" when unknown).
	Dims []string
}

// GraphInfo is what splash reads of a model before rewriting it.
type GraphInfo struct {
	// Opset is the version of the default ("" or "ai.onnx") operator set.
	Opset int64
	// Inputs are the graph inputs that are not initializers.
	Inputs  []ValueInfo
	Outputs []ValueInfo
}

// Input returns the input called name.
func (g *GraphInfo) Input(name string) (ValueInfo, bool) { return findValue(g.Inputs, name) }

// Output returns the output called name.
func (g *GraphInfo) Output(name string) (ValueInfo, bool) { return findValue(g.Outputs, name) }

func findValue(vs []ValueInfo, name string) (ValueInfo, bool) {
	for _, v := range vs {
		if v.Name == name {
			return v, true
		}
	}
	return ValueInfo{}, false
}

// InspectModel reads the operator set, inputs and outputs of a serialized
// ONNX model without decoding its weights. Errors wrap ErrBadModel; it
// never panics, whatever the bytes.
func InspectModel(model []byte) (info *GraphInfo, err error) {
	defer recoverBadModel(&err)
	info, _, err = scanModel(model)
	return info, err
}

// recoverBadModel, deferred by the functions that read model bytes, turns a
// panic into an error that wraps ErrBadModel: a model file is foreign bytes
// and must not crash the process. The fuzz tests call the functions below
// it, where a panic is a crash to fix.
func recoverBadModel(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: reading the model panicked (a bug of splash, please report it): %v", ErrBadModel, r)
	}
}

// scanModel walks the model's top-level fields and its graph's fields
// shallowly (initializer payloads are never decoded).
func scanModel(model []byte) (*GraphInfo, []byte, error) {
	info, graph, _, err := scanModelFields(model)
	return info, graph, err
}

// scanModelFields is scanModel that also says whether the graph had to be
// merged from several fields (it is then a copy, no longer inside model).
func scanModelFields(model []byte) (*GraphInfo, []byte, bool, error) {
	info := &GraphInfo{}
	merged := false
	var graph []byte
	haveGraph := false
	err := forEachField(model, func(num protowire.Number, typ protowire.Type, raw, payload []byte) error {
		switch {
		case num == modelGraphField && typ == protowire.BytesType:
			// A message field that occurs twice is merged, which for its
			// encoding is a concatenation: ONNX Runtime reads one graph
			// with the fields of both. (A copy only then: graph aliases
			// model, which append must not overwrite.)
			if haveGraph {
				graph = append(slices.Clip(graph), payload...)
				merged = true
			} else {
				graph, haveGraph = payload, true
			}
		case num == modelOpsetField && typ == protowire.BytesType:
			var op onnxpb.OperatorSetIdProto
			if err := proto.Unmarshal(payload, &op); err != nil {
				return fmt.Errorf("opset_import: %w", err)
			}
			if op.GetDomain() == "" || op.GetDomain() == "ai.onnx" {
				info.Opset = op.GetVersion()
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, false, fmt.Errorf("%w: not a valid ONNX model: %v", ErrBadModel, err)
	}
	if !haveGraph {
		return nil, nil, false, fmt.Errorf("%w: ONNX model has no graph", ErrBadModel)
	}
	if info.Opset == 0 {
		return nil, nil, false, fmt.Errorf("%w: ONNX model imports no default operator set", ErrBadModel)
	}
	initializers := map[string]bool{}
	var inputs []ValueInfo
	err = forEachField(graph, func(num protowire.Number, typ protowire.Type, raw, payload []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case graphInitField:
			name, err := tensorName(payload)
			if err != nil {
				return fmt.Errorf("initializer: %w", err)
			}
			initializers[name] = true
		case graphInputField, graphOutputField:
			var vi onnxpb.ValueInfoProto
			if err := proto.Unmarshal(payload, &vi); err != nil {
				return fmt.Errorf("graph input/output: %w", err)
			}
			v := valueInfo(&vi)
			if num == graphInputField {
				inputs = append(inputs, v)
			} else {
				info.Outputs = append(info.Outputs, v)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, false, fmt.Errorf("%w: not a valid ONNX graph: %v", ErrBadModel, err)
	}
	for _, in := range inputs {
		if !initializers[in.Name] {
			info.Inputs = append(info.Inputs, in)
		}
	}
	return info, graph, merged, nil
}

func valueInfo(vi *onnxpb.ValueInfoProto) ValueInfo {
	v := ValueInfo{Name: vi.GetName()}
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return v
	}
	v.ElemType = onnxpb.TensorProto_DataType(tt.GetElemType())
	for _, d := range tt.GetShape().GetDim() {
		switch {
		case d.GetDimParam() != "":
			v.Dims = append(v.Dims, d.GetDimParam())
		case d.GetDimValue() > 0:
			v.Dims = append(v.Dims, fmt.Sprint(d.GetDimValue()))
		default:
			v.Dims = append(v.Dims, "")
		}
	}
	return v
}

// tensorName reads only the name field of a serialized TensorProto.
func tensorName(tensor []byte) (string, error) {
	name := ""
	err := forEachField(tensor, func(num protowire.Number, typ protowire.Type, raw, payload []byte) error {
		if num == tensorNameField && typ == protowire.BytesType {
			name = string(payload)
		}
		return nil
	})
	return name, err
}

// forEachField calls fn for every top-level field of a serialized message.
// raw is the whole field (tag included); payload is the content of a
// length-delimited field.
func forEachField(msg []byte, fn func(num protowire.Number, typ protowire.Type, raw, payload []byte) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, msg[n:])
		if m < 0 {
			return protowire.ParseError(m)
		}
		raw := msg[:n+m]
		var payload []byte
		if typ == protowire.BytesType {
			payload, _ = protowire.ConsumeBytes(msg[n:])
		}
		if err := fn(num, typ, raw, payload); err != nil {
			return err
		}
		msg = msg[n+m:]
	}
	return nil
}

// AppendPooling rewrites a serialized ONNX model so that its only output is
// the SPLADE-pooled [batch, vocab] float32 tensor PooledOutput, computed from
// the [batch, sequence, vocab] output logits and the attention_mask input:
//
//	max: log(1 + relu(max_i (z_i + (1 - mask_i) * -1e9)))
//	sum: sum_i mask_i * log(1 + relu(z_i))
//
// Max pooling reduces the raw logits first and activates the [batch, vocab]
// result (exact because relu and log1p are monotone). Float16 logits are
// max-pooled in float16 and only the [batch, vocab] result is converted to
// float32 (from opset 12; sum pooling and older opsets convert the logits
// first): see poolingNodes. The operators follow the model's opset
// (ReduceMax takes axes as an attribute up to opset 17 and as an input from
// 18; Unsqueeze and ReduceSum from 13). Initializers, external-data
// references and every other field are kept byte for byte. Errors about the
// model wrap ErrBadModel; it never panics, whatever the bytes.
func AppendPooling(model []byte, logits string, pooling encode.Pooling) (rewritten []byte, info *GraphInfo, err error) {
	defer recoverBadModel(&err)
	return appendPooling(model, "", logits, pooling, false)
}

// AppendPoolingExternal is AppendPooling for a model that ONNX Runtime will
// load with its external-data folder set to the folder of modelFile, whose
// exact contents model must be. Instead of copying the weights, every
// initializer's raw_data of at least 1 KiB becomes an external-data
// reference to the same bytes of modelFile (location: its base name, offset,
// length), so the rewritten model is a few kilobytes and ONNX Runtime reads
// the weights straight from the file: loading holds one copy of the weights
// instead of three. Initializers that are already external or hold their
// values in typed fields stay as they are.
func AppendPoolingExternal(model []byte, modelFile, logits string, pooling encode.Pooling) (rewritten []byte, info *GraphInfo, err error) {
	defer recoverBadModel(&err)
	if modelFile == "" {
		return nil, nil, errors.New("AppendPoolingExternal: no model file name")
	}
	return appendPooling(model, modelFile, logits, pooling, false)
}

// PoolMaskInput is the input that AppendPoolingExternalMasked adds: an int64
// [batch, sequence] mask of the positions to pool (encode.Batch.PoolMask).
const PoolMaskInput = "splash_pool_mask"

// AppendPoolingExternalMasked is AppendPoolingExternal with pooling over the
// positions of a new graph input, PoolMaskInput, instead of the attention
// mask: the echo variant of causal encoders attends to the whole sequence
// but pools only the second copy of the text.
func AppendPoolingExternalMasked(model []byte, modelFile, logits string, pooling encode.Pooling) (rewritten []byte, info *GraphInfo, err error) {
	defer recoverBadModel(&err)
	if modelFile == "" {
		return nil, nil, errors.New("AppendPoolingExternalMasked: no model file name")
	}
	return appendPooling(model, modelFile, logits, pooling, true)
}

// appendPooling is AppendPooling without the recovery; a non-empty
// weightsFile externalizes the weights as AppendPoolingExternal says, and
// poolMask adds the PoolMaskInput input that the pooling then reads.
func appendPooling(model []byte, weightsFile, logits string, pooling encode.Pooling, poolMask bool) ([]byte, *GraphInfo, error) {
	info, graph, merged, err := scanModelFields(model)
	if err != nil {
		return nil, nil, err
	}
	if merged {
		weightsFile = "" // the graph is a copy: offsets into model are unknown
	}
	if err := checkSpladeIO(info, logits); err != nil {
		return nil, nil, err
	}
	if info.Opset < 11 {
		return nil, nil, fmt.Errorf("%w: opset %d is older than 11", ErrBadModel, info.Opset)
	}
	out, _ := info.Output(logits)
	maskName := "attention_mask"
	var maskInput *onnxpb.ValueInfoProto
	if poolMask {
		if _, ok := info.Input(PoolMaskInput); ok {
			return nil, nil, fmt.Errorf("%w: the model already has an input %q", ErrBadModel, PoolMaskInput)
		}
		ids, _ := info.Input("input_ids")
		maskName = PoolMaskInput
		maskInput = &onnxpb.ValueInfoProto{
			Name: PoolMaskInput,
			Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
				ElemType: int32(onnxpb.TensorProto_INT64),
				Shape:    &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{dimFrom(ids.Dims, 0), dimFrom(ids.Dims, 1)}},
			}}},
		}
	}
	nodes, consts, err := poolingNodes(info.Opset, logits, out.ElemType, pooling, maskName)
	if err != nil {
		return nil, nil, err
	}

	// Rebuild the graph: every field except the outputs, then the new
	// constants, nodes and the single pooled output.
	// The rewritten graph holds the whole graph unless the weights stay in
	// the file; appends then grow it.
	newCap := len(graph) + 4096
	if weightsFile != "" {
		newCap = min(len(graph), 1<<20) + 4096
	}
	newGraph := make([]byte, 0, newCap)
	err = forEachField(graph, func(num protowire.Number, typ protowire.Type, raw, payload []byte) error {
		switch {
		case num == graphOutputField:
		case num == graphInitField && typ == protowire.BytesType && weightsFile != "":
			newGraph = appendExternalized(newGraph, raw, payload, weightsFile, int64(cap(model)-cap(payload)))
		default:
			newGraph = append(newGraph, raw...)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadModel, err)
	}
	for _, c := range consts {
		if newGraph, err = appendMessage(newGraph, graphInitField, c); err != nil {
			return nil, nil, err
		}
	}
	for _, n := range nodes {
		if newGraph, err = appendMessage(newGraph, graphNodeField, n); err != nil {
			return nil, nil, err
		}
	}
	if maskInput != nil {
		if newGraph, err = appendMessage(newGraph, graphInputField, maskInput); err != nil {
			return nil, nil, err
		}
	}
	pooled := &onnxpb.ValueInfoProto{
		Name: PooledOutput,
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: int32(onnxpb.TensorProto_FLOAT),
			Shape: &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{
				dimFrom(out.Dims, 0), dimFrom(out.Dims, 2),
			}},
		}}},
	}
	if newGraph, err = appendMessage(newGraph, graphOutputField, pooled); err != nil {
		return nil, nil, err
	}

	rewritten := make([]byte, 0, len(model)+len(newGraph)-len(graph)+16)
	wroteGraph := false
	err = forEachField(model, func(num protowire.Number, typ protowire.Type, raw, payload []byte) error {
		if num == modelGraphField {
			// The (merged) graph once, where the first one was.
			if !wroteGraph {
				rewritten = protowire.AppendTag(rewritten, modelGraphField, protowire.BytesType)
				rewritten = protowire.AppendBytes(rewritten, newGraph)
				wroteGraph = true
			}
			return nil
		}
		rewritten = append(rewritten, raw...)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadModel, err)
	}
	newInfo := *info
	// What the rewritten graph says, by construction (an unknown dim is
	// "splash_dim" there, not "").
	newInfo.Outputs = []ValueInfo{valueInfo(pooled)}
	if maskInput != nil {
		newInfo.Inputs = append(slices.Clone(info.Inputs), valueInfo(maskInput))
	}
	return rewritten, &newInfo, nil
}

// appendExternalized appends the graph initializer field raw, whose
// serialized TensorProto is payload and starts at byte offset base of the
// model file, with its raw_data replaced by a reference to those bytes of
// file. A tensor without raw_data of at least minExternalBytes, or one that
// is already external, is appended unchanged.
func appendExternalized(dst, raw, payload []byte, file string, base int64) []byte {
	var rawData []byte
	var rawStart int64
	external := false
	err := forEachField(payload, func(num protowire.Number, typ protowire.Type, f, p []byte) error {
		switch {
		case num == tensorRawField && typ == protowire.BytesType:
			rawData, rawStart = p, int64(cap(payload)-cap(p))
		case num == tensorLocField || num == tensorExtField:
			external = true
		}
		return nil
	})
	if err != nil || external || len(rawData) < minExternalBytes {
		return append(dst, raw...)
	}
	// Only now copy the other fields: a tensor kept inline (values in
	// float_data, say) may be large.
	var t []byte
	_ = forEachField(payload, func(num protowire.Number, typ protowire.Type, f, p []byte) error {
		if num != tensorRawField {
			t = append(t, f...)
		}
		return nil
	})
	entry := func(key, value string) {
		var e []byte
		e = protowire.AppendTag(e, entryKeyField, protowire.BytesType)
		e = protowire.AppendString(e, key)
		e = protowire.AppendTag(e, entryValueField, protowire.BytesType)
		e = protowire.AppendString(e, value)
		t = protowire.AppendTag(t, tensorExtField, protowire.BytesType)
		t = protowire.AppendBytes(t, e)
	}
	entry("location", file)
	entry("offset", strconv.FormatInt(base+rawStart, 10))
	entry("length", strconv.Itoa(len(rawData)))
	t = protowire.AppendTag(t, tensorLocField, protowire.VarintType)
	t = protowire.AppendVarint(t, uint64(onnxpb.TensorProto_EXTERNAL))
	dst = protowire.AppendTag(dst, graphInitField, protowire.BytesType)
	return protowire.AppendBytes(dst, t)
}

// checkSpladeIO verifies that the model looks like a masked-LM export.
func checkSpladeIO(info *GraphInfo, logits string) error {
	for _, name := range []string{"input_ids", "attention_mask"} {
		in, ok := info.Input(name)
		if !ok {
			return fmt.Errorf("%w: model has no input %q (inputs: %s)", ErrBadModel, name, valueNames(info.Inputs))
		}
		if in.ElemType != onnxpb.TensorProto_INT64 {
			return fmt.Errorf("%w: input %q is %v, want int64", ErrBadModel, name, in.ElemType)
		}
		if len(in.Dims) != 2 {
			return fmt.Errorf("%w: input %q has rank %d, want 2 [batch, sequence]", ErrBadModel, name, len(in.Dims))
		}
	}
	for _, in := range info.Inputs {
		switch in.Name {
		case "input_ids", "attention_mask":
		case "token_type_ids", "position_ids":
			if in.ElemType != onnxpb.TensorProto_INT64 || len(in.Dims) != 2 {
				return fmt.Errorf("%w: input %s is %v of rank %d, want int64 [batch, sequence]", ErrBadModel, in.Name, in.ElemType, len(in.Dims))
			}
		default:
			return fmt.Errorf("%w: model input %q is not one splash can feed (it feeds input_ids, attention_mask, token_type_ids, position_ids)", ErrBadModel, in.Name)
		}
	}
	out, ok := info.Output(logits)
	if !ok {
		return fmt.Errorf("%w: model has no output %q (outputs: %s)", ErrBadModel, logits, valueNames(info.Outputs))
	}
	if out.ElemType != onnxpb.TensorProto_FLOAT && out.ElemType != onnxpb.TensorProto_FLOAT16 {
		return fmt.Errorf("%w: output %q is %v, want float or float16", ErrBadModel, logits, out.ElemType)
	}
	if len(out.Dims) != 3 {
		return fmt.Errorf("%w: output %q has rank %d, want 3 [batch, sequence, vocab]", ErrBadModel, logits, len(out.Dims))
	}
	return nil
}

func valueNames(vs []ValueInfo) string {
	s := ""
	for i, v := range vs {
		if i > 0 {
			s += ", "
		}
		s += v.Name
	}
	if s == "" {
		return "none"
	}
	return s
}

func dimName(dims []string, i int) string {
	if i < len(dims) {
		return dims[i]
	}
	return ""
}

func dimFrom(dims []string, i int) *onnxpb.TensorShapeProto_Dimension {
	d := dimName(dims, i)
	var v int64
	if _, err := fmt.Sscan(d, &v); err == nil && v > 0 {
		return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: v}}
	}
	if d == "" {
		d = "splash_dim"
	}
	return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d}}
}

func appendMessage(b []byte, field protowire.Number, m proto.Message) ([]byte, error) {
	enc, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", m, err)
	}
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendBytes(b, enc), nil
}

// poolingNodes builds the pooling subgraph. Every name is prefixed with
// "splash_pool/" so that it cannot clash with the exporter's names.
//
// Float32 logits:
//
//	max: Log(Relu(ReduceMax(z + Unsqueeze((1 - mask) * -1e9), axis 1)) + 1)
//	sum: ReduceSum(Log(Relu(z) + 1) * Unsqueeze(mask), axis 1)
//
// Float16 logits, max pooling, opset 12 and later: the [batch, sequence,
// vocab] tensor is masked and reduced in float16 and only the [batch, vocab]
// maximum is converted:
//
//	bound  = Where(Cast(mask, bool), +inf, -inf)        float16 [batch, sequence]
//	masked = Min(z, Unsqueeze(bound, axis 2))           float16, z where kept, -inf where padded
//	pooled = Log(Relu(Cast(ReduceMax(masked, axis 1), float)) + 1)
//
// This is exact, not an approximation: Min(z, +inf) is z for every float16 z
// (±inf included) and Min(z, -inf) is -inf, so ReduceMax returns the largest
// logit of the kept positions, a float16 value, whatever its magnitude (no
// finite penalty can be outbid); the float16 -> float32 Cast is exact and
// monotone, so it commutes with the maximum; Relu and log1p then run in
// float32 as for float32 logits. A row whose logits at every kept position
// are -inf reduces to -inf, which Relu maps to 0. A row without any kept
// position would do the same (pooled weights 0), but does not occur: every
// sequence of a batch has at least one token.
//
// A Where on the 3-D logits would do as well as Min; Min is used because
// ONNX Runtime's CPU provider (1.30, x86-64) has a float16 kernel for Min
// from opset 12 on, and none for Where, Add, Sub or Mul. It has none for
// ReduceMax either (nor ReduceMin, ReduceSum, MaxPool or TopK): for a node
// without a float16 kernel ONNX Runtime inserts Casts to float32 around it,
// so on the CPU the masked logits are converted before the ReduceMax, about
// the work of the float32 formulation. Providers with float16 kernels (CUDA)
// run it all in float16.
//
// Float16 logits before opset 12, and sum pooling: the logits are cast to
// float32 first and pooled as float32 logits. Before opset 12 the CPU
// provider has no float16 Min (nor Max; Where has none at any opset), and
// its optimizer removes the Casts it inserts around such a node together
// with a float32 -> float16 Cast that ends the model, so the pooled weights
// would come from the logits before their rounding to float16, not from the
// model's output.
// For sum pooling float16 arithmetic would not be exact: each log1p(relu(z))
// would be rounded to float16 (relative error up to 2^-11) and the sum over
// up to 512 positions, which reaches hundreds, too (a step of 0.25 above
// 256).
func poolingNodes(opset int64, logits string, elem onnxpb.TensorProto_DataType, pooling encode.Pooling, maskName string) ([]*onnxpb.NodeProto, []*onnxpb.TensorProto, error) {
	const p = "splash_pool/"
	var nodes []*onnxpb.NodeProto
	var consts []*onnxpb.TensorProto
	node := func(op string, inputs []string, output string, attrs ...*onnxpb.AttributeProto) string {
		nodes = append(nodes, &onnxpb.NodeProto{
			Name: p + op + "_" + fmt.Sprint(len(nodes)), OpType: op,
			Input: inputs, Output: []string{output}, Attribute: attrs,
		})
		return output
	}
	// constant adds an initializer once; a name always means one value.
	constant := func(t *onnxpb.TensorProto) string {
		t.Name = p + t.Name
		if !slices.ContainsFunc(consts, func(c *onnxpb.TensorProto) bool { return c.Name == t.Name }) {
			consts = append(consts, t)
		}
		return t.Name
	}
	floatConst := func(name string, v float32) string {
		return constant(&onnxpb.TensorProto{Name: name, DataType: int32(onnxpb.TensorProto_FLOAT), RawData: le32(math.Float32bits(v))})
	}
	halfConst := func(name string, bits uint16) string {
		return constant(&onnxpb.TensorProto{Name: name, DataType: int32(onnxpb.TensorProto_FLOAT16), RawData: []byte{byte(bits), byte(bits >> 8)}})
	}
	intsConst := func(name string, vs ...int64) string {
		raw := make([]byte, 0, 8*len(vs))
		for _, v := range vs {
			raw = le64(raw, uint64(v))
		}
		return constant(&onnxpb.TensorProto{Name: name, DataType: int32(onnxpb.TensorProto_INT64), Dims: []int64{int64(len(vs))}, RawData: raw})
	}
	unsqueeze2 := func(in, out string) string {
		if opset < 13 {
			return node("Unsqueeze", []string{in}, out, intsAttr("axes", 2))
		}
		return node("Unsqueeze", []string{in, intsConst("axis2", 2)}, out)
	}
	reduceMax1 := func(in, out string) string {
		if opset < 18 {
			return node("ReduceMax", []string{in}, out, intsAttr("axes", 1), intAttr("keepdims", 0))
		}
		return node("ReduceMax", []string{in, intsConst("axis1", 1)}, out, intAttr("keepdims", 0))
	}
	castTo := func(in, out string, to onnxpb.TensorProto_DataType) string {
		return node("Cast", []string{in}, out, intAttr("to", int64(to)))
	}
	// log1p(relu(x)) of a float32 tensor.
	activate := func(x, out string) string {
		relu := node("Relu", []string{x}, p+"relu")
		plus1 := node("Add", []string{relu, floatConst("one", 1)}, p+"plus1")
		return node("Log", []string{plus1}, out)
	}

	z := logits
	fp16Max := pooling == encode.PoolMax && elem == onnxpb.TensorProto_FLOAT16 && opset >= 12
	if elem == onnxpb.TensorProto_FLOAT16 && !fp16Max {
		z = castTo(logits, p+"logits_f32", onnxpb.TensorProto_FLOAT)
	}
	switch {
	case fp16Max:
		keep := castTo(maskName, p+"keep", onnxpb.TensorProto_BOOL)
		bound := node("Where", []string{keep, halfConst("pos_inf_f16", 0x7c00), halfConst("neg_inf_f16", 0xfc00)}, p+"bound_f16")
		bound3 := unsqueeze2(bound, p+"bound3_f16")
		masked := node("Min", []string{logits, bound3}, p+"masked_logits_f16")
		maxed := reduceMax1(masked, p+"max_f16")
		activate(castTo(maxed, p+"max", onnxpb.TensorProto_FLOAT), PooledOutput)
	case pooling == encode.PoolMax:
		mask := castTo(maskName, p+"mask_f32", onnxpb.TensorProto_FLOAT)
		inv := node("Sub", []string{floatConst("one", 1), mask}, p+"inv_mask")
		penalty := node("Mul", []string{inv, floatConst("neg_big", -1e9)}, p+"penalty")
		penalty3 := unsqueeze2(penalty, p+"penalty3")
		masked := node("Add", []string{z, penalty3}, p+"masked_logits")
		activate(reduceMax1(masked, p+"max"), PooledOutput)
	case pooling == encode.PoolSum:
		act := activate(z, p+"log1p")
		mask := castTo(maskName, p+"mask_f32", onnxpb.TensorProto_FLOAT)
		mask3 := unsqueeze2(mask, p+"mask3")
		kept := node("Mul", []string{act, mask3}, p+"masked_act")
		if opset < 13 {
			node("ReduceSum", []string{kept}, PooledOutput, intsAttr("axes", 1), intAttr("keepdims", 0))
		} else {
			node("ReduceSum", []string{kept, intsConst("axis1", 1)}, PooledOutput, intAttr("keepdims", 0))
		}
	default:
		return nil, nil, fmt.Errorf("pooling %v is not supported", pooling)
	}
	return nodes, consts, nil
}

func intAttr(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_INT, I: v}
}

func intsAttr(name string, vs ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_INTS, Ints: vs}
}

func le32(v uint32) []byte {
	return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
}

func le64(b []byte, v uint64) []byte {
	for i := 0; i < 8; i++ {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}
