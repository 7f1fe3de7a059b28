package weights

import (
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// cursor reads protobuf wire format from an io.ReaderAt through a small
// window, so that a model file is scanned without being held in memory.
// pos is the next byte; end bounds the message being parsed (set and
// restored around sub-messages).
type cursor struct {
	r        io.ReaderAt
	pos, end int64
	buf      []byte // file bytes [bufOff, bufOff+len(buf))
	bufOff   int64
	window   []byte
}

func newCursor(r io.ReaderAt, size int64) *cursor {
	return &cursor{r: r, end: size, window: make([]byte, 64<<10)}
}

var errTruncated = errors.New("truncated protobuf")

// fill makes buf hold pos (and as much after it as the window allows,
// up to end).
func (c *cursor) fill() error {
	if c.pos >= c.end {
		return errTruncated
	}
	n := min(int64(len(c.window)), c.end-c.pos)
	got, err := c.r.ReadAt(c.window[:n], c.pos)
	if got == 0 {
		if err == nil || err == io.EOF {
			err = errTruncated
		}
		return err
	}
	c.buf, c.bufOff = c.window[:got], c.pos
	return nil
}

func (c *cursor) readByte() (byte, error) {
	if c.pos >= c.end {
		return 0, errTruncated
	}
	if c.pos < c.bufOff || c.pos >= c.bufOff+int64(len(c.buf)) {
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
	b := c.buf[c.pos-c.bufOff]
	c.pos++
	return b, nil
}

func (c *cursor) varint() (uint64, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		b, err := c.readByte()
		if err != nil {
			return 0, err
		}
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return v, nil
		}
	}
	return 0, errors.New("varint overflows 64 bits")
}

// length reads the length of a bytes field and checks that it fits in the
// current message.
func (c *cursor) length() (int64, error) {
	n, err := c.varint()
	if err != nil {
		return 0, err
	}
	if n > uint64(c.end-c.pos) {
		return 0, fmt.Errorf("field of %d bytes exceeds its message (%d bytes left)", n, c.end-c.pos)
	}
	return int64(n), nil
}

func (c *cursor) skip(n int64) error {
	if n < 0 || n > c.end-c.pos {
		return errTruncated
	}
	c.pos += n
	return nil
}

// bytes reads n bytes (n already checked against the message's end).
func (c *cursor) bytes(n int64) ([]byte, error) {
	if n < 0 || n > c.end-c.pos {
		return nil, errTruncated
	}
	b := make([]byte, n)
	got, err := c.r.ReadAt(b, c.pos)
	if int64(got) != n {
		if err == nil || err == io.EOF {
			err = errTruncated
		}
		return nil, err
	}
	c.pos += n
	return b, nil
}

// tag reads a field's number and wire type.
func (c *cursor) tag() (protowire.Number, protowire.Type, error) {
	v, err := c.varint()
	if err != nil {
		return 0, 0, err
	}
	num, typ := protowire.DecodeTag(v)
	if num < protowire.MinValidNumber {
		return 0, 0, fmt.Errorf("invalid field number %d", num)
	}
	return num, typ, nil
}

// skipValue skips the value of a field of wire type typ.
func (c *cursor) skipValue(typ protowire.Type) error {
	switch typ {
	case protowire.VarintType:
		_, err := c.varint()
		return err
	case protowire.Fixed32Type:
		return c.skip(4)
	case protowire.Fixed64Type:
		return c.skip(8)
	case protowire.BytesType:
		n, err := c.length()
		if err != nil {
			return err
		}
		return c.skip(n)
	}
	return fmt.Errorf("unsupported wire type %d", typ)
}

// sub parses the n bytes at pos as a sub-message with fn.
func (c *cursor) sub(n int64, fn func() error) error {
	saved := c.end
	c.end = c.pos + n
	if err := fn(); err != nil {
		return err
	}
	if c.pos != c.end {
		return fmt.Errorf("sub-message parsed %d of %d bytes", n-(c.end-c.pos), n)
	}
	c.end = saved
	return nil
}
