package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
)

// Tensor is one tensor to write: Data holds its elements, little-endian,
// row-major, DType.Size() bytes each.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// Write writes a safetensors file holding tensors (in any order; the file
// lays them out by name) and, when metadata is not nil, the "__metadata__"
// entry.
func Write(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	specs := make([]Info, len(tensors))
	byName := make(map[string][]byte, len(tensors))
	for i, t := range tensors {
		specs[i] = Info{Name: t.Name, DType: t.DType, Shape: t.Shape}
		byName[t.Name] = t.Data
	}
	sw, err := NewWriter(w, specs, metadata)
	if err != nil {
		return err
	}
	for _, info := range sw.Tensors() {
		if err := sw.WriteTensor(info.Name, byName[info.Name]); err != nil {
			return err
		}
	}
	return sw.Close()
}

// FromFloat32 returns a Tensor of dtype F32, F16 or BF16 holding data
// (rounded to nearest, ties to even, for F16 and BF16). len(data) must be
// the product of shape.
func FromFloat32(name string, dtype DType, shape []int, data []float32) (Tensor, error) {
	n, err := numElements(shape)
	if err != nil {
		return Tensor{}, fmt.Errorf("safetensors: tensor %s: %w", name, err)
	}
	if int64(len(data)) != n {
		return Tensor{}, fmt.Errorf("safetensors: tensor %s: %d values for shape %v", name, len(data), shape)
	}
	b, err := EncodeFloat32(dtype, data)
	if err != nil {
		return Tensor{}, fmt.Errorf("safetensors: tensor %s: %w", name, err)
	}
	return Tensor{Name: name, DType: dtype, Shape: slices.Clone(shape), Data: b}, nil
}

// EncodeFloat32 returns data as little-endian elements of dtype F32, F16
// or BF16 (rounded to nearest, ties to even).
func EncodeFloat32(dtype DType, data []float32) ([]byte, error) {
	switch dtype {
	case F32:
		b := make([]byte, 4*len(data))
		for i, v := range data {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		return b, nil
	case F16, BF16:
		conv := Float32ToFloat16
		if dtype == BF16 {
			conv = Float32ToBFloat16
		}
		b := make([]byte, 2*len(data))
		for i, v := range data {
			binary.LittleEndian.PutUint16(b[2*i:], conv(v))
		}
		return b, nil
	}
	return nil, fmt.Errorf("cannot encode float32 values as %q (F32, F16 or BF16): %w", dtype, ErrUnsupported)
}

// numElements is the product of shape, checked for negative dimensions and
// overflow.
func numElements(shape []int) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v has a negative dimension", shape)
		}
		if d != 0 && n > math.MaxInt64/int64(d) {
			return 0, fmt.Errorf("shape %v: element count overflows", shape)
		}
		n *= int64(d)
	}
	return n, nil
}

// Writer streams a safetensors file: NewWriter writes the header, then
// each tensor's data follows in the order of Tensors (sorted by name).
type Writer struct {
	w       io.Writer
	tensors []Info // in data order; Offset relative to the data section
	next    int
	err     error
}

// NewWriter checks the Name, DType and Shape of each spec (Offset and Size
// are computed), writes the header of a file that holds them and
// metadata (omitted when nil) to w, and returns the Writer that takes
// their data, one tensor at a time in the order of Tensors.
func NewWriter(w io.Writer, specs []Info, metadata map[string]string) (*Writer, error) {
	tensors := make([]Info, len(specs))
	seen := make(map[string]bool, len(specs))
	for i, s := range specs {
		switch {
		case s.Name == metadataKey:
			return nil, fmt.Errorf("safetensors: a tensor may not be named %s", metadataKey)
		case seen[s.Name]:
			return nil, fmt.Errorf("safetensors: tensor %s given twice", s.Name)
		case s.DType.Size() == 0:
			return nil, fmt.Errorf("safetensors: tensor %s: unknown dtype %q", s.Name, s.DType)
		}
		seen[s.Name] = true
		n, err := numElements(s.Shape)
		if err != nil {
			return nil, fmt.Errorf("safetensors: tensor %s: %w", s.Name, err)
		}
		if n > math.MaxInt64/int64(s.DType.Size()) {
			return nil, fmt.Errorf("safetensors: tensor %s: byte size overflows", s.Name)
		}
		tensors[i] = Info{Name: s.Name, DType: s.DType, Shape: slices.Clone(s.Shape), Size: n * int64(s.DType.Size())}
	}
	sort.Slice(tensors, func(a, b int) bool { return tensors[a].Name < tensors[b].Name })
	var off int64
	for i := range tensors {
		if tensors[i].Size > math.MaxInt64-off {
			return nil, errors.New("safetensors: total data size overflows")
		}
		tensors[i].Offset = off
		off += tensors[i].Size
	}
	hdr, err := encodeHeader(tensors, metadata)
	if err != nil {
		return nil, err
	}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hdr)))
	if _, err := w.Write(lenBuf[:]); err != nil {
		return nil, fmt.Errorf("safetensors: write header: %w", err)
	}
	if _, err := w.Write(hdr); err != nil {
		return nil, fmt.Errorf("safetensors: write header: %w", err)
	}
	return &Writer{w: w, tensors: tensors}, nil
}

// encodeHeader returns the JSON header, padded with spaces to a multiple
// of 8 bytes.
func encodeHeader(tensors []Info, metadata map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	if metadata != nil {
		m, err := json.Marshal(metadata) // keys sorted
		if err != nil {
			return nil, fmt.Errorf("safetensors: encode metadata: %w", err)
		}
		b.WriteString(`"` + metadataKey + `":`)
		b.Write(m)
	}
	for i, t := range tensors {
		if i > 0 || metadata != nil {
			b.WriteByte(',')
		}
		name, err := json.Marshal(t.Name)
		if err != nil {
			return nil, fmt.Errorf("safetensors: encode name %q: %w", t.Name, err)
		}
		b.Write(name)
		b.WriteString(`:{"dtype":"` + string(t.DType) + `","shape":[`)
		for k, d := range t.Shape {
			if k > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(d))
		}
		b.WriteString(`],"data_offsets":[` + strconv.FormatInt(t.Offset, 10) + "," + strconv.FormatInt(t.Offset+t.Size, 10) + "]}")
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	return b.Bytes(), nil
}

// Tensors returns the tensors in the order their data must be written;
// Offset is relative to the start of the data section.
func (w *Writer) Tensors() []Info {
	out := slices.Clone(w.tensors)
	for i := range out {
		out[i].Shape = slices.Clone(out[i].Shape)
	}
	return out
}

// WriteTensor writes the data of the next tensor, which must be name, as
// stored (Size bytes of little-endian elements).
func (w *Writer) WriteTensor(name string, data []byte) error {
	info, err := w.expect(name)
	if err != nil {
		return err
	}
	if int64(len(data)) != info.Size {
		w.err = fmt.Errorf("safetensors: tensor %s: %d bytes, want %d", name, len(data), info.Size)
		return w.err
	}
	if _, err := w.w.Write(data); err != nil {
		w.err = fmt.Errorf("safetensors: write tensor %s: %w", name, err)
		return w.err
	}
	w.next++
	return nil
}

// WriteFloat32 writes the data of the next tensor, which must be name and
// of dtype F32, F16 or BF16, converting data (rounding to nearest, ties to
// even).
func (w *Writer) WriteFloat32(name string, data []float32) error {
	info, err := w.expect(name)
	if err != nil {
		return err
	}
	b, err := EncodeFloat32(info.DType, data)
	if err != nil {
		w.err = fmt.Errorf("safetensors: tensor %s: %w", name, err)
		return w.err
	}
	return w.WriteTensor(name, b)
}

func (w *Writer) expect(name string) (Info, error) {
	if w.err != nil {
		return Info{}, w.err
	}
	if w.next >= len(w.tensors) {
		return Info{}, fmt.Errorf("safetensors: tensor %s: all %d tensors are written", name, len(w.tensors))
	}
	info := w.tensors[w.next]
	if info.Name != name {
		return Info{}, fmt.Errorf("safetensors: tensor %s written when %s is next", name, info.Name)
	}
	return info, nil
}

// Close checks that every tensor was written. It does not close the
// underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.next < len(w.tensors) {
		return fmt.Errorf("safetensors: %d of %d tensors written, %s is next", w.next, len(w.tensors), w.tensors[w.next].Name)
	}
	return nil
}
