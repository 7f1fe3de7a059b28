package shards

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// The Arrow IPC reader of arrow-go trusts the lengths of the flatbuffer
// vectors in a file's footer and messages: it makes a slice of that length
// before reading the elements. A corrupt shard can claim billions of schema
// fields or metadata entries, and the allocation then kills the process
// ("fatal error: runtime: out of memory"), which no recover can catch. So
// checkArrowFile walks the flatbuffers that the reader decodes (the footer,
// its schema, every record batch and dictionary message) and checks that
// each vector fits in its buffer, before arrow-go sees the file. Found by
// FuzzReadShard. Arrow IPC layout: https://arrow.apache.org/docs/format/Columnar.html
// (Footer, Schema, Field, KeyValue, Message, RecordBatch in File.fbs,
// Schema.fbs and Message.fbs).

// Limits of checkArrowFile: far beyond an impact shard (six fields, three
// of them lists), small enough to bound what arrow-go builds.
const (
	maxArrowFields = 10000 // fields in the schema, children included
	maxArrowDepth  = 64    // nesting of fields
)

// checkArrowFile checks the structure of the Arrow IPC file r of size bytes
// (see above). It reads the footer and the metadata of every message, not
// the bodies.
func checkArrowFile(r io.ReaderAt, size int64) error {
	const magic = 8 // "ARROW1" and padding at the start
	var tail [10]byte
	if size < magic+int64(len(tail)) {
		return errors.New("too short for an Arrow IPC file")
	}
	if _, err := r.ReadAt(tail[:], size-int64(len(tail))); err != nil {
		return err
	}
	n := int64(int32(binary.LittleEndian.Uint32(tail[:4])))
	if n <= 0 || n > size-magic-int64(len(tail)) {
		return fmt.Errorf("footer length %d in a file of %d bytes", n, size)
	}
	footer := make(fbuf, n)
	if _, err := r.ReadAt(footer, size-int64(len(tail))-n); err != nil {
		return err
	}
	root, err := footer.root()
	if err != nil {
		return fmt.Errorf("footer: %w", err)
	}
	schema, ok, err := root.table(1)
	if err != nil || !ok {
		return fmt.Errorf("footer: schema: %w", orMissing(err))
	}
	c := &arrowChecker{}
	if err := c.schema(schema); err != nil {
		return fmt.Errorf("footer: schema: %w", err)
	}
	if err := c.keyValues(root, 4); err != nil {
		return fmt.Errorf("footer: custom metadata: %w", err)
	}
	for _, slot := range []int{2, 3} { // dictionaries, record batches
		const blockSize = 24 // struct Block {offset: long; metaDataLength: int; bodyLength: long}
		start, count, _, err := root.vector(slot, blockSize)
		if err != nil {
			return fmt.Errorf("footer: blocks: %w", err)
		}
		for i := 0; i < count; i++ {
			b := footer[start+i*blockSize:]
			offset := int64(binary.LittleEndian.Uint64(b))
			meta := int64(int32(binary.LittleEndian.Uint32(b[8:])))
			if offset < magic || meta < 8 || meta > size-offset {
				return fmt.Errorf("footer: block %d: metadata of %d bytes at %d in a file of %d bytes", i, meta, offset, size)
			}
			buf := make(fbuf, meta)
			if _, err := r.ReadAt(buf, offset); err != nil {
				return fmt.Errorf("block %d: %w", i, err)
			}
			if err := c.message(buf); err != nil {
				return fmt.Errorf("block %d: message: %w", i, err)
			}
		}
	}
	return nil
}

func orMissing(err error) error {
	if err == nil {
		return errors.New("missing")
	}
	return err
}

type arrowChecker struct {
	fields int
}

func (c *arrowChecker) schema(t fbTable) error {
	fields, err := t.tables(1)
	if err != nil {
		return fmt.Errorf("fields: %w", err)
	}
	for i, f := range fields {
		if err := c.field(f, 1); err != nil {
			return fmt.Errorf("field %d: %w", i, err)
		}
	}
	if err := c.keyValues(t, 2); err != nil {
		return fmt.Errorf("custom metadata: %w", err)
	}
	if _, _, _, err := t.vector(3, 8); err != nil { // features
		return fmt.Errorf("features: %w", err)
	}
	return nil
}

func (c *arrowChecker) field(t fbTable, depth int) error {
	if c.fields++; c.fields > maxArrowFields {
		return fmt.Errorf("more than %d fields", maxArrowFields)
	}
	if depth > maxArrowDepth {
		return fmt.Errorf("fields nested deeper than %d", maxArrowDepth)
	}
	if _, _, _, err := t.vector(0, 1); err != nil { // name
		return fmt.Errorf("name: %w", err)
	}
	if pos, ok, err := t.slot(2, 1); err != nil {
		return err
	} else if ok && t.b[pos] == 14 { // type_type Union: typeIds
		typ, ok, err := t.table(3)
		if err != nil {
			return fmt.Errorf("type: %w", err)
		}
		if ok {
			if _, _, _, err := typ.vector(1, 4); err != nil {
				return fmt.Errorf("union type ids: %w", err)
			}
		}
	}
	if _, _, err := t.table(4); err != nil { // dictionary
		return fmt.Errorf("dictionary: %w", err)
	}
	children, err := t.tables(5)
	if err != nil {
		return fmt.Errorf("children: %w", err)
	}
	for i, ch := range children {
		if err := c.field(ch, depth+1); err != nil {
			return fmt.Errorf("child %d: %w", i, err)
		}
	}
	if err := c.keyValues(t, 6); err != nil {
		return fmt.Errorf("custom metadata: %w", err)
	}
	return nil
}

// keyValues checks a vector of KeyValue {key: string; value: string}.
func (c *arrowChecker) keyValues(t fbTable, slot int) error {
	kvs, err := t.tables(slot)
	if err != nil {
		return err
	}
	for i, kv := range kvs {
		for s := 0; s < 2; s++ {
			if _, _, _, err := kv.vector(s, 1); err != nil {
				return fmt.Errorf("entry %d: %w", i, err)
			}
		}
	}
	return nil
}

// message checks the metadata of one IPC message: its prefix (the
// continuation marker and the length, or a length alone before Arrow 0.15),
// then the Message table, its custom metadata and its header.
func (c *arrowChecker) message(buf fbuf) error {
	prefix := 4
	if binary.LittleEndian.Uint32(buf) == math.MaxUint32 {
		prefix = 8
	}
	n, err := buf.u32(prefix - 4)
	if err != nil {
		return err
	}
	if int64(n) > int64(len(buf)-prefix) {
		return fmt.Errorf("length %d in a block of %d bytes", n, len(buf))
	}
	msg, err := buf[prefix : prefix+int(n)].root()
	if err != nil {
		return err
	}
	if err := c.keyValues(msg, 4); err != nil {
		return fmt.Errorf("custom metadata: %w", err)
	}
	typ, _, err := msg.slot(1, 1)
	if err != nil {
		return err
	}
	header, ok, err := msg.table(2)
	if err != nil || !ok || typ == 0 {
		return err
	}
	switch msg.b[typ] {
	case 1: // Schema
		return c.schema(header)
	case 2: // DictionaryBatch {id, data: RecordBatch, isDelta}
		rb, ok, err := header.table(1)
		if err != nil || !ok {
			return err
		}
		return recordBatch(rb)
	case 3: // RecordBatch
		return recordBatch(header)
	}
	return nil
}

// recordBatch checks RecordBatch {length; nodes: [FieldNode]; buffers:
// [Buffer]; compression; variadicBufferCounts: [long]}.
func recordBatch(t fbTable) error {
	for _, v := range []struct {
		slot, size int
		what       string
	}{{1, 16, "nodes"}, {2, 16, "buffers"}, {4, 8, "variadic buffer counts"}} {
		if _, _, _, err := t.vector(v.slot, v.size); err != nil {
			return fmt.Errorf("%s: %w", v.what, err)
		}
	}
	_, _, err := t.table(3) // compression
	return err
}

// fbuf is a flatbuffer; its methods check every offset and length against
// its size and return errors, where the flatbuffers library would panic or
// trust them.
type fbuf []byte

// fbTable is a table at pos of b, with its vtable at vt of vtSize bytes.
type fbTable struct {
	b              fbuf
	pos, vt, vtLen int
}

func (b fbuf) u32(pos int) (uint32, error) {
	if pos < 0 || pos > len(b)-4 {
		return 0, fmt.Errorf("offset %d outside %d bytes", pos, len(b))
	}
	return binary.LittleEndian.Uint32(b[pos:]), nil
}

func (b fbuf) u16(pos int) (int, error) {
	if pos < 0 || pos > len(b)-2 {
		return 0, fmt.Errorf("offset %d outside %d bytes", pos, len(b))
	}
	return int(binary.LittleEndian.Uint16(b[pos:])), nil
}

// root returns the root table.
func (b fbuf) root() (fbTable, error) { return b.tableAt(0) }

// tableAt returns the table that the offset stored at pos points to.
func (b fbuf) tableAt(pos int) (fbTable, error) {
	off, err := b.u32(pos)
	if err != nil {
		return fbTable{}, err
	}
	t := fbTable{b: b, pos: pos + int(off)}
	if int64(pos)+int64(off) > int64(len(b)-4) {
		return fbTable{}, fmt.Errorf("table at %d outside %d bytes", int64(pos)+int64(off), len(b))
	}
	soff, err := b.u32(t.pos)
	if err != nil {
		return fbTable{}, err
	}
	vt := int64(t.pos) - int64(int32(soff))
	if vt < 0 || vt > int64(len(b)-4) {
		return fbTable{}, fmt.Errorf("vtable at %d outside %d bytes", vt, len(b))
	}
	t.vt = int(vt)
	if t.vtLen, err = b.u16(t.vt); err != nil {
		return fbTable{}, err
	}
	if t.vtLen < 4 || t.vtLen%2 != 0 || t.vt+t.vtLen > len(b) {
		return fbTable{}, fmt.Errorf("vtable of %d bytes at %d in %d bytes", t.vtLen, t.vt, len(b))
	}
	return t, nil
}

// slot returns the position of field i, which must hold size bytes; ok is
// false when the field is absent.
func (t fbTable) slot(i, size int) (pos int, ok bool, err error) {
	o := 4 + 2*i
	if o+2 > t.vtLen {
		return 0, false, nil
	}
	fo, err := t.b.u16(t.vt + o)
	if err != nil || fo == 0 {
		return 0, false, err
	}
	pos = t.pos + fo
	if pos > len(t.b)-size {
		return 0, false, fmt.Errorf("field %d at %d outside %d bytes", i, pos, len(t.b))
	}
	return pos, true, nil
}

// table returns the table field i points to.
func (t fbTable) table(i int) (fbTable, bool, error) {
	pos, ok, err := t.slot(i, 4)
	if err != nil || !ok {
		return fbTable{}, false, err
	}
	sub, err := t.b.tableAt(pos)
	return sub, err == nil, err
}

// vector returns the start and the length of the vector (or string) field i
// points to, checking that its elements of size bytes fit in the buffer.
func (t fbTable) vector(i, size int) (start, n int, ok bool, err error) {
	pos, ok, err := t.slot(i, 4)
	if err != nil || !ok {
		return 0, 0, false, err
	}
	off, err := t.b.u32(pos)
	if err != nil {
		return 0, 0, false, err
	}
	vpos := int64(pos) + int64(off)
	count, err := t.b.u32(int(min(vpos, math.MaxInt32)))
	if err != nil {
		return 0, 0, false, fmt.Errorf("vector: %w", err)
	}
	if end := vpos + 4 + int64(count)*int64(size); end > int64(len(t.b)) {
		return 0, 0, false, fmt.Errorf("vector of %d elements of %d bytes at %d in %d bytes", count, size, vpos, len(t.b))
	}
	return int(vpos) + 4, int(count), true, nil
}

// tables returns the tables of the vector of tables field i points to.
func (t fbTable) tables(i int) ([]fbTable, error) {
	start, n, ok, err := t.vector(i, 4)
	if err != nil || !ok {
		return nil, err
	}
	out := make([]fbTable, n)
	for k := range out {
		if out[k], err = t.b.tableAt(start + 4*k); err != nil {
			return nil, fmt.Errorf("element %d: %w", k, err)
		}
	}
	return out, nil
}

// limitedAllocator refuses, by panicking (the reads run under safely, and
// arrow-go's IPC reader recovers too), an allocation larger than max:
// arrow-go allocates the decompressed size that a compressed buffer of an
// Arrow IPC file claims. It is not used for Parquet shards: pqarrow reads
// some columns on goroutines of its own, where a panic could not be
// recovered.
type limitedAllocator struct {
	memory.Allocator
	max int
}

// newLimitedAllocator bounds single allocations for reading a file of size
// bytes: 64 MiB, or 256 bytes per byte of the file when that is more (far
// beyond what compression achieves on impact shards).
func newLimitedAllocator(mem memory.Allocator, size int64) memory.Allocator {
	return &limitedAllocator{Allocator: mem, max: int(min(max(64<<20, 256*size), math.MaxInt))}
}

func (a *limitedAllocator) check(size int) {
	if size > a.max {
		panic(fmt.Sprintf("the file asks for a buffer of %d bytes (limit %d)", size, a.max))
	}
}

func (a *limitedAllocator) Allocate(size int) []byte {
	a.check(size)
	return a.Allocator.Allocate(size)
}

func (a *limitedAllocator) Reallocate(size int, b []byte) []byte {
	a.check(size)
	return a.Allocator.Reallocate(size, b)
}
