package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeFile writes raw bytes to a file in a temporary directory.
func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// rawFile assembles a file from a header string and data bytes.
func rawFile(header string, data []byte) []byte {
	b := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func encode(t *testing.T, tensors []Tensor, meta map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, tensors, meta); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func open(t *testing.T, b []byte) *File {
	t.Helper()
	f, err := Open(writeFile(t, "model.safetensors", b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestRoundTripFloat(t *testing.T) {
	vals := []float32{0, 1, -2.5, 0.1, 3.14159, -65504, 1e-6, float32(math.Inf(1)), 7, 8, 9, 10}
	for _, dt := range []DType{F32, F16, BF16} {
		t.Run(string(dt), func(t *testing.T) {
			tn, err := FromFloat32("w", dt, []int{3, 4}, vals)
			if err != nil {
				t.Fatal(err)
			}
			scalar, err := FromFloat32("s", dt, nil, []float32{0.5})
			if err != nil {
				t.Fatal(err)
			}
			empty, err := FromFloat32("e", dt, []int{0, 5}, nil)
			if err != nil {
				t.Fatal(err)
			}
			f := open(t, encode(t, []Tensor{tn, scalar, empty}, map[string]string{"format": "pt"}))
			got, shape, err := f.Float32("w")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(shape, []int{3, 4}) {
				t.Errorf("shape %v", shape)
			}
			for i, v := range vals {
				want := v
				switch dt {
				case F16:
					want = Float16ToFloat32(Float32ToFloat16(v))
				case BF16:
					want = BFloat16ToFloat32(Float32ToBFloat16(v))
				}
				if got[i] != want {
					t.Errorf("value %d: %g, want %g", i, got[i], want)
				}
			}
			if s, shape, err := f.Float32("s"); err != nil || len(shape) != 0 || len(s) != 1 || s[0] != 0.5 {
				t.Errorf("scalar: %v %v %v", s, shape, err)
			}
			if e, shape, err := f.Float32("e"); err != nil || !slices.Equal(shape, []int{0, 5}) || len(e) != 0 {
				t.Errorf("empty: %v %v %v", e, shape, err)
			}
			if m := f.Metadata(); len(m) != 1 || m["format"] != "pt" {
				t.Errorf("metadata %v", m)
			}
			if !slices.Equal(f.Names(), []string{"e", "s", "w"}) {
				t.Errorf("names %v", f.Names())
			}
			info, ok := f.Tensor("w")
			if !ok || info.DType != dt || info.Size != int64(12*dt.Size()) || info.NumElements() != 12 {
				t.Errorf("info %+v", info)
			}
		})
	}
}

func TestRoundTripRaw(t *testing.T) {
	var tensors []Tensor
	for _, dt := range []DType{F64, I64, I32, I16, I8, U64, U32, U16, U8, BOOL, F8E4M3, F8E5M2, F8E8M0, C64} {
		data := make([]byte, 6*dt.Size())
		for i := range data {
			data[i] = byte(i*7 + dt.Size())
		}
		tensors = append(tensors, Tensor{Name: "t_" + string(dt), DType: dt, Shape: []int{2, 3}, Data: data})
	}
	f := open(t, encode(t, tensors, nil))
	if f.Metadata() != nil {
		t.Errorf("metadata %v, want nil", f.Metadata())
	}
	for _, tn := range tensors {
		raw, err := f.Raw(tn.Name)
		if err != nil || !bytes.Equal(raw, tn.Data) {
			t.Errorf("%s: Raw = %v, %v", tn.Name, raw, err)
		}
		_, _, err = f.Float32(tn.Name)
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tn.Name) || !strings.Contains(err.Error(), string(tn.DType)) {
			t.Errorf("%s: Float32 error %v, want ErrUnsupported naming the tensor and dtype", tn.Name, err)
		}
	}
}

// The header as the reference implementation writes it: compact JSON,
// __metadata__ first, tensors in data order, padded with spaces to a
// multiple of 8, data aligned.
func TestHeaderLayout(t *testing.T) {
	a, _ := FromFloat32("b", F32, []int{2}, []float32{1, 2})
	b, _ := FromFloat32("a", F16, []int{1}, []float32{1})
	got := encode(t, []Tensor{a, b}, map[string]string{"format": "pt"})
	hdr := `{"__metadata__":{"format":"pt"},"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},"b":{"dtype":"F32","shape":[2],"data_offsets":[2,10]}}`
	for len(hdr)%8 != 0 {
		hdr += " "
	}
	want := rawFile(hdr, []byte{0x00, 0x3C, 0, 0, 0x80, 0x3F, 0, 0, 0, 0x40})
	if !bytes.Equal(got, want) {
		t.Errorf("file\n%q\nwant\n%q", got, want)
	}
}

func TestKnownBits(t *testing.T) {
	// Tensors written by hand: fp16 1.0, smallest subnormal, -inf, NaN;
	// bf16 1.0, -2, +inf.
	data := []byte{0x00, 0x3C, 0x01, 0x00, 0x00, 0xFC, 0x00, 0x7E, 0x80, 0x3F, 0x00, 0xC0, 0x80, 0x7F}
	hdr := `{"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]}}`
	f := open(t, rawFile(hdr, data))
	h, _, err := f.Float32("h")
	if err != nil {
		t.Fatal(err)
	}
	if h[0] != 1 || float64(h[1]) != math.Ldexp(1, -24) || !math.IsInf(float64(h[2]), -1) || !math.IsNaN(float64(h[3])) {
		t.Errorf("F16 values %v", h)
	}
	b, _, err := f.Float32("b")
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 1 || b[1] != -2 || !math.IsInf(float64(b[2]), 1) {
		t.Errorf("BF16 values %v", b)
	}
}

// A tensor larger than a read chunk is converted across chunk boundaries.
func TestLargeTensor(t *testing.T) {
	n := readChunk/2 + 3
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = float32(i%2048) - 1024
	}
	for _, dt := range []DType{F32, F16} {
		tn, err := FromFloat32("x", dt, []int{n}, vals)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := open(t, encode(t, []Tensor{tn}, nil)).Float32("x")
		if err != nil || !slices.Equal(got, vals) {
			t.Errorf("%s: values differ (%v)", dt, err)
		}
	}
}

func TestMissingTensor(t *testing.T) {
	tn, _ := FromFloat32("a", F32, []int{1}, []float32{1})
	f := open(t, encode(t, []Tensor{tn}, nil))
	for _, call := range []func() error{
		func() error { _, _, err := f.Float32("bert.encoder.layer.3.attention.self.query.weight"); return err },
		func() error { _, err := f.Raw("bert.encoder.layer.3.attention.self.query.weight"); return err },
	} {
		err := call()
		if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "model.safetensors: tensor bert.encoder.layer.3.attention.self.query.weight is missing") {
			t.Errorf("error %v, want ErrMissing naming file and tensor", err)
		}
	}
	if _, ok := f.Tensor("b"); ok {
		t.Error("Tensor(b) found")
	}
}

// Holes between tensors and trailing bytes are allowed.
func TestHolesAllowed(t *testing.T) {
	hdr := `{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}`
	data := make([]byte, 20)
	binary.LittleEndian.PutUint32(data[4:], math.Float32bits(1.5))
	binary.LittleEndian.PutUint32(data[12:], math.Float32bits(-3))
	f := open(t, rawFile(hdr, data))
	a, _, errA := f.Float32("a")
	b, _, errB := f.Float32("b")
	if errA != nil || errB != nil || a[0] != 1.5 || b[0] != -3 {
		t.Errorf("a=%v %v b=%v %v", a, errA, b, errB)
	}
}

func TestBadFiles(t *testing.T) {
	f32 := func(name string, begin, end int) string {
		return `"` + name + `":{"dtype":"F32","shape":[2],"data_offsets":[` + itoa(begin) + `,` + itoa(end) + `]}`
	}
	data8 := make([]byte, 8)
	huge := make([]byte, 8)
	binary.LittleEndian.PutUint64(huge, 1<<62)
	longHdr := make([]byte, 8, 16)
	binary.LittleEndian.PutUint64(longHdr, 9)
	longHdr = append(longHdr, "{}"...)
	overCap := make([]byte, 8)
	binary.LittleEndian.PutUint64(overCap, MaxHeaderSize+8)
	for _, tc := range []struct {
		name   string
		file   []byte
		tensor string // named in the error when not empty
		want   string // in the error
	}{
		{"empty", nil, "", "shorter than the 8-byte header length"},
		{"seven bytes", []byte{1, 2, 3, 4, 5, 6, 7}, "", "shorter than the 8-byte header length"},
		{"header length beyond file", huge, "", "exceeds"},
		{"header length one past file", longHdr, "", "exceeds the 2 bytes"},
		{"header length over the cap", append(overCap, bytes.Repeat([]byte{' '}, 64)...), "", "exceeds"},
		{"header too short", rawFile("{", nil), "", "too short"},
		{"not an object", rawFile(`["a"]   `, nil), "", "JSON object"},
		{"invalid JSON", rawFile(`{"a":{"dtype":"F32",}}`, nil), "", "a"},
		{"truncated JSON", rawFile(`{"a":{"dtype":"F32"`, nil), "", "JSON"},
		{"invalid UTF-8", rawFile("{\"a\xff\":1}", nil), "", "UTF-8"},
		{"trailing garbage", rawFile(`{}xyz`, nil), "", "after its JSON object"},
		{"two objects", rawFile(`{}{}`, nil), "", "after its JSON object"},
		{"duplicate tensor", rawFile(`{`+f32("a", 0, 8)+`,`+f32("a", 0, 8)+`}`, data8), "a", "twice"},
		{"duplicate metadata", rawFile(`{"__metadata__":{},"__metadata__":{}}`, nil), "", "twice"},
		{"metadata not strings", rawFile(`{"__metadata__":{"a":1}}`, nil), "", "__metadata__"},
		{"unknown dtype", rawFile(`{"w":{"dtype":"F7","shape":[1],"data_offsets":[0,1]}}`, data8), "w", `unknown dtype "F7"`},
		{"lower-case dtype", rawFile(`{"w":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}`, data8), "w", `unknown dtype "f32"`},
		{"no dtype", rawFile(`{"w":{"shape":[1],"data_offsets":[0,4]}}`, data8), "w", "no dtype"},
		{"no shape", rawFile(`{"w":{"dtype":"F32","data_offsets":[0,4]}}`, data8), "w", "no shape"},
		{"no offsets", rawFile(`{"w":{"dtype":"F32","shape":[1]}}`, data8), "w", "no data_offsets"},
		{"entry not an object", rawFile(`{"w":[1,2]}`, data8), "w", "bad header entry"},
		{"negative dim", rawFile(`{"w":{"dtype":"F32","shape":[-1,2],"data_offsets":[0,8]}}`, data8), "w", "negative"},
		{"fractional dim", rawFile(`{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}`, data8), "w", "bad header entry"},
		{"shape overflow", rawFile(`{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, data8), "w", "overflows"},
		{"byte size overflow", rawFile(`{"w":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}}`, data8), "w", "overflows"},
		{"offsets of three", rawFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}}`, data8), "w", "want [begin, end]"},
		{"begin after end", rawFile(`{`+f32("w", 8, 0)+`}`, data8), "w", "begin <= end"},
		{"negative begin", rawFile(`{`+f32("w", -8, 0)+`}`, data8), "w", "begin <= end"},
		{"end beyond data", rawFile(`{`+f32("w", 4, 12)+`}`, data8), "w", "beyond the 8 bytes"},
		{"size mismatch", rawFile(`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, data8), "w", "needs 12"},
		{"overlap", rawFile(`{`+f32("a", 0, 8)+`,`+f32("b", 4, 12)+`}`, make([]byte, 12)), "b", "overlaps tensor a"},
		{"same range", rawFile(`{`+f32("a", 0, 8)+`,`+f32("b", 0, 8)+`}`, data8), "b", "overlaps tensor a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "bad.safetensors", tc.file)
			f, err := Open(path)
			if err == nil {
				f.Close()
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			if !errors.Is(err, ErrFormat) {
				t.Errorf("error %v does not wrap ErrFormat", err)
			}
			if !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the file", msg)
			}
			if tc.tensor != "" && !strings.Contains(msg, "tensor "+tc.tensor) {
				t.Errorf("error %q does not name tensor %s", msg, tc.tensor)
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not say %q", msg, tc.want)
			}
		})
	}
}

func itoa(i int) string {
	if i < 0 {
		return "-" + itoa(-i)
	}
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func TestOpenNotAFile(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "nope.safetensors")); err == nil || !strings.Contains(err.Error(), "nope.safetensors") {
		t.Errorf("Open(missing) = %v", err)
	}
	dir := t.TempDir()
	if _, err := Open(dir); !errors.Is(err, ErrFormat) {
		t.Errorf("Open(directory) = %v, want ErrFormat", err)
	}
}

func TestWriterErrors(t *testing.T) {
	var buf bytes.Buffer
	for _, specs := range [][]Info{
		{{Name: "a", DType: "F7", Shape: []int{1}}},
		{{Name: "a", DType: F32, Shape: []int{-1}}},
		{{Name: "a", DType: F32}, {Name: "a", DType: F32}},
		{{Name: "__metadata__", DType: F32}},
		{{Name: "a", DType: F64, Shape: []int{1 << 62, 4}}},
	} {
		if _, err := NewWriter(&buf, specs, nil); err == nil {
			t.Errorf("NewWriter(%+v) succeeded", specs)
		}
	}
	w, err := NewWriter(&buf, []Info{{Name: "b", DType: F16, Shape: []int{2}}, {Name: "a", DType: F32, Shape: []int{1}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFloat32("b", []float32{1, 2}); err == nil {
		t.Error("writing b before a succeeded")
	}
	if err := w.WriteTensor("a", []byte{1, 2}); err == nil {
		t.Error("writing 2 bytes for a 4-byte tensor succeeded")
	}
	w, _ = NewWriter(&buf, []Info{{Name: "b", DType: I8, Shape: []int{2}}, {Name: "a", DType: F32, Shape: []int{1}}}, nil)
	if err := w.WriteFloat32("a", []float32{1}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "b is next") {
		t.Errorf("Close with b unwritten = %v", err)
	}
	if err := w.WriteFloat32("b", []float32{1, 2}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("WriteFloat32 to I8 = %v, want ErrUnsupported", err)
	}
	if _, err := FromFloat32("x", F32, []int{3}, []float32{1}); err == nil {
		t.Error("FromFloat32 with 1 value for shape [3] succeeded")
	}
	if err := Write(&buf, []Tensor{{Name: "x", DType: F32, Shape: []int{2}, Data: []byte{1}}}, nil); err == nil {
		t.Error("Write with short data succeeded")
	}
}
