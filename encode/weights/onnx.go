package weights

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/splash-encode/splash/encode/onnxpb"
	"github.com/splash-encode/splash/encode/safetensors"
)

// Field numbers of the ONNX messages read here.
const (
	fieldModelGraph       = 7
	fieldGraphNode        = 1
	fieldGraphInitializer = 5
	fieldTensorDims       = 1
	fieldTensorDataType   = 2
	fieldTensorFloatData  = 4
	fieldTensorInt32Data  = 5
	fieldTensorName       = 8
	fieldTensorRawData    = 9
	fieldTensorExternal   = 13
	fieldTensorLocation   = 14
)

// initializer is a graph initializer as scanned: its header, and where its
// data lies (raw_data's bytes in the file, typed fields to be decoded from
// the TensorProto's span, or an external file).
type initializer struct {
	name     string
	dims     []int64
	dtype    int32
	off, n   int64 // the TensorProto's bytes in the file
	rawOff   int64
	rawLen   int64
	hasRaw   bool
	typed    bool // float_data or int32_data present
	external bool // data_location EXTERNAL
	extKeys  map[string]string
}

// node is what binding needs of a graph node.
type node struct {
	op      string
	inputs  []string
	outputs []string
	transB  int64 // Gemm
}

// onnxFile is a scanned model.onnx: initializer headers and graph nodes,
// the data read on demand.
type onnxFile struct {
	path   string
	f      io.ReaderAt
	closer io.Closer // nil: nothing to close
	size   int64
	inits  map[string]*initializer
	nodes  []node

	mu  sync.Mutex
	ext map[string]*os.File // external data files, by path
}

// scanONNX reads the initializer headers and the nodes of the main graph
// of the model file f (size bytes), without reading weight data.
func scanONNX(path string, f io.ReaderAt, size int64) (*onnxFile, error) {
	o := &onnxFile{path: path, f: f, size: size, inits: map[string]*initializer{}, ext: map[string]*os.File{}}
	c := newCursor(f, size)
	graphs := 0
	for c.pos < c.end {
		num, typ, err := c.tag()
		if err != nil {
			return nil, err
		}
		if num != fieldModelGraph || typ != protowire.BytesType {
			if err := c.skipValue(typ); err != nil {
				return nil, err
			}
			continue
		}
		n, err := c.length()
		if err != nil {
			return nil, err
		}
		graphs++
		if err := c.sub(n, func() error { return o.scanGraph(c) }); err != nil {
			return nil, fmt.Errorf("graph: %w", err)
		}
	}
	if graphs == 0 {
		return nil, fmt.Errorf("no graph")
	}
	return o, nil
}

func (o *onnxFile) scanGraph(c *cursor) error {
	for c.pos < c.end {
		num, typ, err := c.tag()
		if err != nil {
			return err
		}
		if typ != protowire.BytesType || (num != fieldGraphNode && num != fieldGraphInitializer) {
			if err := c.skipValue(typ); err != nil {
				return err
			}
			continue
		}
		n, err := c.length()
		if err != nil {
			return err
		}
		if num == fieldGraphNode {
			b, err := c.bytes(n)
			if err != nil {
				return err
			}
			var np onnxpb.NodeProto
			if err := proto.Unmarshal(b, &np); err != nil {
				return fmt.Errorf("node %d: %w", len(o.nodes), err)
			}
			nd := node{op: np.OpType, inputs: np.Input, outputs: np.Output}
			for _, a := range np.Attribute {
				if a.Name == "transB" {
					nd.transB = a.I
				}
			}
			o.nodes = append(o.nodes, nd)
			continue
		}
		t := &initializer{off: c.pos, n: n}
		if err := c.sub(n, func() error { return scanTensor(c, t) }); err != nil {
			return fmt.Errorf("initializer %d (%q): %w", len(o.inits), t.name, err)
		}
		if _, dup := o.inits[t.name]; dup {
			return fmt.Errorf("initializer %s appears twice", t.name)
		}
		o.inits[t.name] = t
	}
	return nil
}

func scanTensor(c *cursor, t *initializer) error {
	for c.pos < c.end {
		num, typ, err := c.tag()
		if err != nil {
			return err
		}
		switch {
		case num == fieldTensorDims && typ == protowire.VarintType:
			v, err := c.varint()
			if err != nil {
				return err
			}
			t.dims = append(t.dims, int64(v))
		case num == fieldTensorDims && typ == protowire.BytesType: // packed
			n, err := c.length()
			if err != nil {
				return err
			}
			if err := c.sub(n, func() error {
				for c.pos < c.end {
					v, err := c.varint()
					if err != nil {
						return err
					}
					t.dims = append(t.dims, int64(v))
				}
				return nil
			}); err != nil {
				return err
			}
		case num == fieldTensorDataType && typ == protowire.VarintType:
			v, err := c.varint()
			if err != nil {
				return err
			}
			t.dtype = int32(v)
		case num == fieldTensorName && typ == protowire.BytesType:
			n, err := c.length()
			if err != nil {
				return err
			}
			b, err := c.bytes(n)
			if err != nil {
				return err
			}
			t.name = string(b)
		case num == fieldTensorRawData && typ == protowire.BytesType:
			n, err := c.length()
			if err != nil {
				return err
			}
			t.rawOff, t.rawLen, t.hasRaw = c.pos, n, true
			if err := c.skip(n); err != nil {
				return err
			}
		case num == fieldTensorExternal && typ == protowire.BytesType:
			n, err := c.length()
			if err != nil {
				return err
			}
			b, err := c.bytes(n)
			if err != nil {
				return err
			}
			var e onnxpb.StringStringEntryProto
			if err := proto.Unmarshal(b, &e); err != nil {
				return fmt.Errorf("external_data: %w", err)
			}
			if t.extKeys == nil {
				t.extKeys = map[string]string{}
			}
			t.extKeys[e.Key] = e.Value
		case num == fieldTensorLocation && typ == protowire.VarintType:
			v, err := c.varint()
			if err != nil {
				return err
			}
			t.external = v == uint64(onnxpb.TensorProto_EXTERNAL)
		default:
			if num == fieldTensorFloatData || num == fieldTensorInt32Data {
				t.typed = true
			}
			if err := c.skipValue(typ); err != nil {
				return err
			}
		}
	}
	return nil
}

// elemType maps the ONNX float types to the safetensors dtype of the same
// encoding; ok is false for the other types.
func elemType(dtype int32) (safetensors.DType, bool) {
	switch onnxpb.TensorProto_DataType(dtype) {
	case onnxpb.TensorProto_FLOAT:
		return safetensors.F32, true
	case onnxpb.TensorProto_FLOAT16:
		return safetensors.F16, true
	case onnxpb.TensorProto_BFLOAT16:
		return safetensors.BF16, true
	}
	return "", false
}

// dtypeName is the ONNX name of a data type.
func dtypeName(dtype int32) string {
	if s, ok := onnxpb.TensorProto_DataType_name[dtype]; ok {
		return s
	}
	return strconv.Itoa(int(dtype))
}

// shape checks dims and returns them as ints with the element count.
func (t *initializer) shape() ([]int, int64, error) {
	shape := make([]int, len(t.dims))
	n := int64(1)
	for i, d := range t.dims {
		if d < 0 || (d != 0 && n > math.MaxInt64/8/d) {
			return nil, 0, fmt.Errorf("bad dims %v", t.dims)
		}
		n *= d
		shape[i] = int(d)
	}
	return shape, n, nil
}

// read returns an initializer's values as float32 and its shape. Errors do
// not name the file or the tensor.
func (o *onnxFile) read(t *initializer) ([]float32, []int, error) {
	dt, ok := elemType(t.dtype)
	if !ok {
		return nil, nil, fmt.Errorf("data type %s; only FLOAT, FLOAT16 and BFLOAT16 convert to float32: %w",
			dtypeName(t.dtype), safetensors.ErrUnsupported)
	}
	shape, numel, err := t.shape()
	if err != nil {
		return nil, nil, err
	}
	size := numel * int64(dt.Size())
	switch {
	case t.external:
		r, off, err := o.externalData(t, size)
		if err != nil {
			return nil, nil, err
		}
		vals, err := readLE(r, off, size, dt)
		return vals, shape, err
	case t.hasRaw:
		if t.rawLen != size {
			return nil, nil, fmt.Errorf("raw_data holds %d bytes, dims %v of %s need %d", t.rawLen, t.dims, dtypeName(t.dtype), size)
		}
		vals, err := readLE(o.f, t.rawOff, size, dt)
		return vals, shape, err
	case t.typed:
		b := make([]byte, t.n)
		if _, err := o.f.ReadAt(b, t.off); err != nil {
			return nil, nil, err
		}
		var tp onnxpb.TensorProto
		if err := proto.Unmarshal(b, &tp); err != nil {
			return nil, nil, err
		}
		if dt == safetensors.F32 {
			if int64(len(tp.FloatData)) != numel {
				return nil, nil, fmt.Errorf("float_data holds %d values, dims %v need %d", len(tp.FloatData), t.dims, numel)
			}
			return tp.FloatData, shape, nil
		}
		// FLOAT16 and BFLOAT16 values are stored as their 16 bits in int32_data.
		if int64(len(tp.Int32Data)) != numel {
			return nil, nil, fmt.Errorf("int32_data holds %d values, dims %v need %d", len(tp.Int32Data), t.dims, numel)
		}
		conv := safetensors.Float16ToFloat32
		if dt == safetensors.BF16 {
			conv = safetensors.BFloat16ToFloat32
		}
		out := make([]float32, numel)
		for i, v := range tp.Int32Data {
			out[i] = conv(uint16(v))
		}
		return out, shape, nil
	case numel == 0:
		return []float32{}, shape, nil
	}
	return nil, nil, fmt.Errorf("no data (neither raw_data, typed data nor external data)")
}

// externalData resolves an initializer's external data: the file (opened
// once, relative to the model's directory, inside it) and the offset of
// size bytes in it.
func (o *onnxFile) externalData(t *initializer, size int64) (io.ReaderAt, int64, error) {
	loc := t.extKeys["location"]
	if loc == "" {
		return nil, 0, fmt.Errorf("external data without a location")
	}
	if !filepath.IsLocal(loc) {
		return nil, 0, fmt.Errorf("external data location %q is not a relative path inside the model's directory", loc)
	}
	var off int64
	if s, ok := t.extKeys["offset"]; ok {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return nil, 0, fmt.Errorf("external data offset %q", s)
		}
		off = v
	}
	if s, ok := t.extKeys["length"]; ok {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v != size {
			return nil, 0, fmt.Errorf("external data length %q, dims %v of %s need %d bytes", s, t.dims, dtypeName(t.dtype), size)
		}
	}
	path := filepath.Join(filepath.Dir(o.path), loc)
	o.mu.Lock()
	defer o.mu.Unlock()
	f, ok := o.ext[path]
	if !ok {
		var err error
		if f, err = os.Open(path); err != nil {
			return nil, 0, fmt.Errorf("external data: %w", err)
		}
		o.ext[path] = f
	}
	st, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("external data: %w", err)
	}
	if off > st.Size() || size > st.Size()-off {
		return nil, 0, fmt.Errorf("external data [%d, %d) beyond the %d bytes of %s", off, off+size, st.Size(), path)
	}
	return f, off, nil
}

func (o *onnxFile) close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var err error
	if o.closer != nil {
		err = o.closer.Close()
		o.closer = nil
	}
	for p, f := range o.ext {
		if e := f.Close(); e != nil && err == nil {
			err = e
		}
		delete(o.ext, p)
	}
	return err
}

// readChunk is the most data readLE reads at once.
const readChunk = 1 << 20

// readLE reads size bytes at off of little-endian F32, F16 or BF16
// elements and converts them to float32, a chunk at a time.
func readLE(r io.ReaderAt, off, size int64, dt safetensors.DType) ([]float32, error) {
	es := int64(dt.Size())
	out := make([]float32, size/es)
	buf := make([]byte, min(size, readChunk))
	for done := int64(0); done < size; {
		b := buf[:min(int64(len(buf)), size-done)]
		n, err := r.ReadAt(b, off+done)
		if n != len(b) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		dst := out[done/es:]
		switch dt {
		case safetensors.F32:
			for i := range len(b) / 4 {
				dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
		case safetensors.F16:
			for i := range len(b) / 2 {
				dst[i] = safetensors.Float16ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
			}
		case safetensors.BF16:
			for i := range len(b) / 2 {
				dst[i] = safetensors.BFloat16ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
			}
		}
		done += int64(len(b))
	}
	return out, nil
}
