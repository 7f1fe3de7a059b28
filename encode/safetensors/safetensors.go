package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"unicode/utf8"
)

// MaxHeaderSize bounds the JSON header (100 MB, as the reference
// implementation does); a larger declared length is refused before
// anything is allocated.
const MaxHeaderSize = 100 << 20

// metadataKey is the header entry that holds the string-to-string metadata.
const metadataKey = "__metadata__"

// ErrFormat is wrapped by every error about a file that is not a valid
// safetensors file.
var ErrFormat = errors.New("invalid safetensors file")

// ErrMissing is wrapped by the error of a lookup of a tensor that the file
// does not hold.
var ErrMissing = errors.New("tensor is missing")

// ErrUnsupported is wrapped by the error of Float32 on a tensor whose
// (known) dtype it does not convert.
var ErrUnsupported = errors.New("dtype not convertible to float32")

// DType is a safetensors element type, as the header spells it.
type DType string

// The standard dtypes.
const (
	F64    DType = "F64"
	F32    DType = "F32"
	F16    DType = "F16"
	BF16   DType = "BF16"
	I64    DType = "I64"
	I32    DType = "I32"
	I16    DType = "I16"
	I8     DType = "I8"
	U64    DType = "U64"
	U32    DType = "U32"
	U16    DType = "U16"
	U8     DType = "U8"
	BOOL   DType = "BOOL"
	F8E4M3 DType = "F8_E4M3"
	F8E5M2 DType = "F8_E5M2"
	F8E8M0 DType = "F8_E8M0"
	C64    DType = "C64"
)

// Size returns the size of one element in bytes, 0 for an unknown dtype.
func (d DType) Size() int {
	switch d {
	case F64, I64, U64, C64:
		return 8
	case F32, I32, U32:
		return 4
	case F16, BF16, I16, U16:
		return 2
	case I8, U8, BOOL, F8E4M3, F8E5M2, F8E8M0:
		return 1
	}
	return 0
}

// Info describes one tensor of a file.
type Info struct {
	Name  string
	DType DType
	Shape []int
	// Offset is the absolute position of the tensor's first byte in the
	// file (8 + header length + data_offsets[0]); Size is its length in
	// bytes (element count times DType.Size()).
	Offset, Size int64
}

// NumElements is the product of the shape (1 for a scalar).
func (i Info) NumElements() int64 {
	n := int64(1)
	for _, d := range i.Shape {
		n *= int64(d)
	}
	return n
}

// File is an open safetensors file whose header has been read and checked.
// Its methods may be called concurrently.
type File struct {
	name    string // the path, for errors
	r       io.ReaderAt
	closer  io.Closer
	size    int64
	data    int64 // offset of the data section
	tensors map[string]Info
	names   []string
	meta    map[string]string
}

// Open opens a safetensors file and reads and checks its header. The data
// is read when asked for; Close closes the file.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("safetensors: %s is not a regular file: %w", path, ErrFormat)
	}
	sf, err := NewReader(f, st.Size(), path)
	if err != nil {
		f.Close()
		return nil, err
	}
	sf.closer = f
	return sf, nil
}

// NewReader reads and checks the header of the size bytes of a safetensors
// file that r reads; name stands for the file in errors. Close does not
// close r.
func NewReader(r io.ReaderAt, size int64, name string) (*File, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("safetensors: %s: %s: %w", name, fmt.Sprintf(format, args...), ErrFormat)
	}
	if size < 8 {
		return nil, bad("file is %d bytes, shorter than the 8-byte header length", size)
	}
	var lenBuf [8]byte
	if err := readFull(r, lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("safetensors: %s: read header length: %w", name, err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	switch {
	case n > uint64(size-8):
		return nil, bad("header length %d exceeds the %d bytes that follow it", n, size-8)
	case n > MaxHeaderSize:
		return nil, bad("header length %d exceeds the limit of %d bytes", n, MaxHeaderSize)
	case n < 2:
		return nil, bad("header length %d is too short for a JSON object", n)
	}
	hdr := make([]byte, n)
	if err := readFull(r, hdr, 8); err != nil {
		return nil, fmt.Errorf("safetensors: %s: read header: %w", name, err)
	}
	f := &File{name: name, r: r, size: size, data: 8 + int64(n)}
	if err := f.parseHeader(hdr, size-f.data); err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", name, err)
	}
	return f, nil
}

// rawInfo is a header entry as written; pointers tell missing fields.
type rawInfo struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets *[]int64 `json:"data_offsets"`
}

// parseHeader decodes and checks the JSON header; dataSize is the size of
// the data section. Errors wrap ErrFormat and do not name the file.
func (f *File) parseHeader(hdr []byte, dataSize int64) error {
	if hdr[0] != '{' {
		return fmt.Errorf("header does not start with a JSON object: %w", ErrFormat)
	}
	if !utf8.Valid(hdr) {
		return fmt.Errorf("header is not valid UTF-8: %w", ErrFormat)
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	if _, err := dec.Token(); err != nil { // '{'
		return fmt.Errorf("header is not valid JSON: %v: %w", err, ErrFormat)
	}
	f.tensors = map[string]Info{}
	seenMeta := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("header is not valid JSON: %v: %w", err, ErrFormat)
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("header is not valid JSON: key %v: %w", tok, ErrFormat)
		}
		if key == metadataKey {
			if seenMeta {
				return fmt.Errorf("header has %s twice: %w", metadataKey, ErrFormat)
			}
			seenMeta = true
			var m map[string]string
			if err := dec.Decode(&m); err != nil {
				return fmt.Errorf("%s is not an object of strings: %v: %w", metadataKey, err, ErrFormat)
			}
			f.meta = m
			continue
		}
		if _, dup := f.tensors[key]; dup {
			return fmt.Errorf("tensor %s appears twice in the header: %w", key, ErrFormat)
		}
		var ri rawInfo
		if err := dec.Decode(&ri); err != nil {
			return fmt.Errorf("tensor %s: bad header entry: %v: %w", key, err, ErrFormat)
		}
		info, err := checkInfo(key, ri, dataSize)
		if err != nil {
			return fmt.Errorf("tensor %s: %w", key, err)
		}
		info.Offset += f.data
		f.tensors[key] = info
	}
	if _, err := dec.Token(); err != nil { // '}'
		return fmt.Errorf("header is not valid JSON: %v: %w", err, ErrFormat)
	}
	// Only the spaces of the padding may follow the object.
	if rest := hdr[dec.InputOffset():]; len(bytes.Trim(rest, " \t\r\n")) != 0 {
		return fmt.Errorf("header has %d bytes after its JSON object: %w", len(rest), ErrFormat)
	}
	f.names = make([]string, 0, len(f.tensors))
	for name := range f.tensors {
		f.names = append(f.names, name)
	}
	sort.Strings(f.names)
	return f.checkOverlaps()
}

// checkInfo checks one header entry and returns its Info with Offset
// relative to the data section.
func checkInfo(name string, ri rawInfo, dataSize int64) (Info, error) {
	switch {
	case ri.DType == nil:
		return Info{}, fmt.Errorf("no dtype: %w", ErrFormat)
	case ri.Shape == nil:
		return Info{}, fmt.Errorf("no shape: %w", ErrFormat)
	case ri.DataOffsets == nil:
		return Info{}, fmt.Errorf("no data_offsets: %w", ErrFormat)
	}
	dt := DType(*ri.DType)
	es := dt.Size()
	if es == 0 {
		return Info{}, fmt.Errorf("unknown dtype %q: %w", *ri.DType, ErrFormat)
	}
	shape := make([]int, len(*ri.Shape))
	numel := int64(1)
	for i, d := range *ri.Shape {
		if d < 0 {
			return Info{}, fmt.Errorf("shape %v has a negative dimension: %w", *ri.Shape, ErrFormat)
		}
		if d > math.MaxInt || (d != 0 && numel > math.MaxInt64/d) {
			return Info{}, fmt.Errorf("shape %v: element count overflows: %w", *ri.Shape, ErrFormat)
		}
		numel *= d
		shape[i] = int(d)
	}
	if numel > math.MaxInt64/int64(es) {
		return Info{}, fmt.Errorf("shape %v: byte size overflows: %w", *ri.Shape, ErrFormat)
	}
	offs := *ri.DataOffsets
	if len(offs) != 2 {
		return Info{}, fmt.Errorf("data_offsets %v, want [begin, end]: %w", offs, ErrFormat)
	}
	begin, end := offs[0], offs[1]
	switch {
	case begin < 0 || begin > end:
		return Info{}, fmt.Errorf("data_offsets [%d, %d], want 0 <= begin <= end: %w", begin, end, ErrFormat)
	case end > dataSize:
		return Info{}, fmt.Errorf("data_offsets [%d, %d] end beyond the %d bytes of data: %w", begin, end, dataSize, ErrFormat)
	case end-begin != numel*int64(es):
		return Info{}, fmt.Errorf("data_offsets [%d, %d] hold %d bytes, but shape %v of %s needs %d: %w",
			begin, end, end-begin, *ri.Shape, dt, numel*int64(es), ErrFormat)
	}
	return Info{Name: name, DType: dt, Shape: shape, Offset: begin, Size: end - begin}, nil
}

// checkOverlaps refuses two non-empty tensors whose byte ranges overlap.
func (f *File) checkOverlaps() error {
	infos := make([]Info, 0, len(f.tensors))
	for _, name := range f.names {
		if info := f.tensors[name]; info.Size > 0 {
			infos = append(infos, info)
		}
	}
	slices.SortStableFunc(infos, func(a, b Info) int {
		if a.Offset != b.Offset {
			if a.Offset < b.Offset {
				return -1
			}
			return 1
		}
		return 0
	})
	for i := 1; i < len(infos); i++ {
		prev, cur := infos[i-1], infos[i]
		if cur.Offset < prev.Offset+prev.Size {
			return fmt.Errorf("tensor %s (bytes [%d, %d) of the data) overlaps tensor %s (bytes [%d, %d)): %w",
				cur.Name, cur.Offset-f.data, cur.Offset+cur.Size-f.data,
				prev.Name, prev.Offset-f.data, prev.Offset+prev.Size-f.data, ErrFormat)
		}
	}
	return nil
}

// readFull reads len(b) bytes at off.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// Name returns the path (or name) the file was opened with.
func (f *File) Name() string { return f.name }

// Names returns the tensor names, sorted.
func (f *File) Names() []string { return slices.Clone(f.names) }

// Tensor returns the description of a tensor.
func (f *File) Tensor(name string) (Info, bool) {
	info, ok := f.tensors[name]
	if ok {
		info.Shape = slices.Clone(info.Shape)
	}
	return info, ok
}

// Metadata returns a copy of the header's "__metadata__" (nil when absent).
func (f *File) Metadata() map[string]string {
	if f.meta == nil {
		return nil
	}
	m := make(map[string]string, len(f.meta))
	for k, v := range f.meta {
		m[k] = v
	}
	return m
}

// Close closes the file opened by Open.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	err := f.closer.Close()
	f.closer = nil
	return err
}

func (f *File) missing(name string) error { return &missingError{file: f.name, name: name} }

// missingError is the error of a lookup of a tensor the file lacks.
type missingError struct{ file, name string }

func (e *missingError) Error() string {
	return fmt.Sprintf("safetensors: %s: tensor %s is missing", e.file, e.name)
}

func (e *missingError) Is(target error) bool { return target == ErrMissing }

// Raw returns the bytes of a tensor as stored (little-endian elements of
// its dtype).
func (f *File) Raw(name string) ([]byte, error) {
	info, ok := f.tensors[name]
	if !ok {
		return nil, f.missing(name)
	}
	b := make([]byte, info.Size)
	if err := readFull(f.r, b, info.Offset); err != nil {
		return nil, fmt.Errorf("safetensors: %s: read tensor %s: %w", f.name, name, err)
	}
	return b, nil
}

// readChunk is the most data Float32 reads at once.
const readChunk = 1 << 20

// Float32 returns a tensor's values converted to float32 and its shape. It
// converts F32, F16 and BF16 (exactly); other dtypes give an error that
// wraps ErrUnsupported.
func (f *File) Float32(name string) ([]float32, []int, error) {
	info, ok := f.tensors[name]
	if !ok {
		return nil, nil, f.missing(name)
	}
	es := int64(info.DType.Size())
	switch info.DType {
	case F32, F16, BF16:
	default:
		return nil, nil, fmt.Errorf("safetensors: %s: tensor %s has dtype %s; Float32 converts F32, F16 and BF16: %w",
			f.name, name, info.DType, ErrUnsupported)
	}
	out := make([]float32, info.Size/es)
	buf := make([]byte, min(info.Size, readChunk))
	for done := int64(0); done < info.Size; {
		b := buf[:min(int64(len(buf)), info.Size-done)]
		if err := readFull(f.r, b, info.Offset+done); err != nil {
			return nil, nil, fmt.Errorf("safetensors: %s: read tensor %s: %w", f.name, name, err)
		}
		decode(info.DType, out[done/es:], b)
		done += int64(len(b))
	}
	return out, slices.Clone(info.Shape), nil
}

// decode converts the little-endian elements of src (F32, F16 or BF16) into dst.
func decode(dt DType, dst []float32, src []byte) {
	switch dt {
	case F32:
		for i := range len(src) / 4 {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		for i := range len(src) / 2 {
			dst[i] = Float16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case BF16:
		for i := range len(src) / 2 {
			dst[i] = BFloat16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	}
}
