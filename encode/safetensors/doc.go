// Package safetensors reads and writes the safetensors format, the
// model.safetensors file of a Hugging Face model page.
//
// A file is an 8-byte little-endian header length N, N bytes of JSON and
// the tensor data:
//
//	{"__metadata__": {"format": "pt"},
//	 "bert.embeddings.word_embeddings.weight": {"dtype": "F32", "shape": [30522, 768], "data_offsets": [0, 93763584]},
//	 ...}
//
// data_offsets are [begin, end) byte offsets relative to the end of the
// header; the data is little-endian and row-major.
//
// Open reads and checks the header only; tensor data is read on demand
// with ReadAt (no mmap), so a reader of a BERT-base checkpoint holds only
// the tensors it asks for. Float32 converts F32, F16 and BF16 tensors to
// float32 exactly (Float16ToFloat32, BFloat16ToFloat32: subnormals,
// infinities and NaNs included). The other standard dtypes (F64, I64, I32,
// I16, I8, U64, U32, U16, U8, BOOL, F8_E4M3, F8_E5M2, F8_E8M0, C64) are
// accepted in the header and readable with Raw, but Float32 refuses them.
//
// # Checks
//
// A file is refused, with an error that names it (and the tensor where one
// is at fault) and wraps ErrFormat, when it is shorter than 8 bytes, its
// header length exceeds the file or MaxHeaderSize, the header is not a
// UTF-8 JSON object (or has duplicate names, or trailing bytes other than the spaces
// of the reference writer's padding), a dtype is unknown, a shape has a
// negative dimension or a product that overflows, data_offsets is not
// [begin, end] with begin <= end <= the size of the data section, end -
// begin differs from the element count times the dtype size, or two
// tensors' byte ranges overlap. Holes between tensors and bytes after the
// last one are allowed (the reference implementation refuses them; some
// writers align tensors, and a hole does no harm to a reader). Nothing is
// allocated from the header's numbers before they are checked against the
// file's size, so a lying header cannot make Open or Float32 allocate more
// than about the file's size.
//
// # Writing
//
// Write (and NewWriter, which streams the data tensor by tensor) writes
// what the reference implementation writes: the header JSON with
// "__metadata__" first, then the tensors in data order, padded with
// spaces to a multiple of 8 bytes so that the data starts 8-byte aligned.
// Tensors are laid out in the order of their names. FromFloat32 and
// Writer.WriteFloat32 convert float32 values to F32, F16 or BF16, rounding
// to nearest, ties to even (Float32ToFloat16, Float32ToBFloat16).
package safetensors
