package safetensors

import (
	"bytes"
	"errors"
	"runtime"
	"testing"
)

// FuzzOpen opens arbitrary bytes as a safetensors file and reads every
// tensor: no panic, every error wraps ErrFormat (or, from Float32, the
// dtype is unsupported), and no input makes the reader allocate much more
// than its own size.
func FuzzOpen(f *testing.F) {
	for _, tensors := range [][]Tensor{
		nil,
		{{Name: "a", DType: F32, Shape: []int{2}, Data: make([]byte, 8)}},
		{{Name: "h", DType: F16, Shape: []int{2, 1}, Data: []byte{0, 0x3C, 1, 0x80}}, {Name: "b", DType: BF16, Shape: []int{}, Data: []byte{0x80, 0x3F}}},
		{{Name: "i", DType: I64, Shape: []int{1}, Data: make([]byte, 8)}, {Name: "e", DType: F32, Shape: []int{0}}},
	} {
		var buf bytes.Buffer
		if err := Write(&buf, tensors, map[string]string{"format": "pt"}); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add(rawFile(`{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, make([]byte, 8)))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'})
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		sf, err := NewReader(bytes.NewReader(data), int64(len(data)), "fuzz")
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		var total int64
		for _, name := range sf.Names() {
			info, ok := sf.Tensor(name)
			if !ok {
				t.Fatalf("Names lists %q but Tensor does not find it", name)
			}
			if info.Offset < 8 || info.Offset+info.Size > int64(len(data)) {
				t.Fatalf("tensor %q: bytes [%d, %d) outside the %d-byte file", name, info.Offset, info.Offset+info.Size, len(data))
			}
			total += info.Size
			vals, shape, err := sf.Float32(name)
			switch {
			case errors.Is(err, ErrUnsupported):
				raw, err := sf.Raw(name)
				if err != nil || int64(len(raw)) != info.Size {
					t.Fatalf("Raw(%q): %d bytes, %v", name, len(raw), err)
				}
			case err != nil:
				t.Fatalf("Float32(%q): %v", name, err)
			case int64(len(vals)) != info.NumElements() || len(shape) != len(info.Shape):
				t.Fatalf("Float32(%q): %d values of shape %v, info %+v", name, len(vals), shape, info)
			}
		}
		if total > int64(len(data)) {
			t.Fatalf("tensors hold %d bytes of a %d-byte file", total, len(data))
		}
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20+100*uint64(len(data)) {
			t.Fatalf("reading a %d-byte file allocated %d bytes", len(data), alloc)
		}
	})
}
