package ciff

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"google.golang.org/protobuf/proto"

	"github.com/splash-encode/splash/shards/ciff/ciffpb"
)

// ErrInvalidCIFF marks a stream that is not a well-formed CIFF file: bad
// framing, a message that does not parse, negative counts, fewer messages
// than the header announces or bytes after the last one.
var ErrInvalidCIFF = errors.New("invalid CIFF stream")

// Reader reads a CIFF stream message by message, in the order of the
// format: Header (read by NewReader), the postings lists, the doc records.
// It checks the framing and that the stream holds exactly the messages the
// header counts; it does not check what the messages say (gaps, df, cf).
type Reader struct {
	r      *bufio.Reader
	header *ciffpb.Header
	lists  int64 // postings lists read
	docs   int64 // doc records read
	msgs   int64 // messages read, the header included
	buf    bytes.Buffer
}

// NewReader reads the header of the CIFF stream r.
func NewReader(r io.Reader) (*Reader, error) {
	cr := &Reader{r: bufio.NewReaderSize(r, 256<<10)}
	h := new(ciffpb.Header)
	if err := cr.readMessage(h, "header"); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty stream, no header", ErrInvalidCIFF)
		}
		return nil, err
	}
	if h.NumPostingsLists < 0 || h.NumDocs < 0 {
		return nil, fmt.Errorf("%w: header counts %d postings lists and %d docs", ErrInvalidCIFF, h.NumPostingsLists, h.NumDocs)
	}
	cr.header = h
	return cr, nil
}

// Header returns the stream's header.
func (cr *Reader) Header() *ciffpb.Header { return cr.header }

// NextPostingsList returns the next postings list, or io.EOF after the
// header's num_postings_lists of them.
func (cr *Reader) NextPostingsList() (*ciffpb.PostingsList, error) {
	if cr.lists == int64(cr.header.NumPostingsLists) {
		return nil, io.EOF
	}
	pl := new(ciffpb.PostingsList)
	if err := cr.readMessage(pl, fmt.Sprintf("postings list %d", cr.lists)); err != nil {
		return nil, noEOFIn(err, fmt.Sprintf("the header announces %d postings lists, the stream ends after %d", cr.header.NumPostingsLists, cr.lists))
	}
	cr.lists++
	return pl, nil
}

// NextDocRecord returns the next doc record, or io.EOF after the header's
// num_docs of them once it has checked that nothing follows. The postings
// lists must have been read first.
func (cr *Reader) NextDocRecord() (*ciffpb.DocRecord, error) {
	if cr.lists != int64(cr.header.NumPostingsLists) {
		return nil, fmt.Errorf("ciff: doc records come after the postings lists: %d of %d read", cr.lists, cr.header.NumPostingsLists)
	}
	if cr.docs == int64(cr.header.NumDocs) {
		if _, err := cr.r.ReadByte(); err == nil {
			return nil, fmt.Errorf("%w: bytes after the last of %d doc records (message %d)", ErrInvalidCIFF, cr.docs, cr.msgs)
		} else if !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("ciff: read: %w", err)
		}
		return nil, io.EOF
	}
	d := new(ciffpb.DocRecord)
	if err := cr.readMessage(d, fmt.Sprintf("doc record %d", cr.docs)); err != nil {
		return nil, noEOFIn(err, fmt.Sprintf("the header announces %d doc records, the stream ends after %d", cr.header.NumDocs, cr.docs))
	}
	cr.docs++
	return d, nil
}

// readMessage reads one length-delimited message into m. A clean end of
// the stream before the length is io.EOF.
func (cr *Reader) readMessage(m proto.Message, what string) error {
	n, err := binary.ReadUvarint(cr.r)
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	if err != nil {
		return fmt.Errorf("%w: %s (message %d): length: %v", ErrInvalidCIFF, what, cr.msgs, noEOF(err))
	}
	if n > math.MaxInt32 {
		return fmt.Errorf("%w: %s (message %d): length %d exceeds protobuf's 2 GiB limit", ErrInvalidCIFF, what, cr.msgs, n)
	}
	cr.buf.Reset()
	// CopyN grows the buffer as bytes arrive: a corrupt length cannot make
	// it allocate more than the stream holds.
	if _, err := io.CopyN(&cr.buf, cr.r, int64(n)); err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("ciff: read %s (message %d): %w", what, cr.msgs, err)
		}
		return fmt.Errorf("%w: %s (message %d): %d of %d bytes: %v", ErrInvalidCIFF, what, cr.msgs, cr.buf.Len(), n, noEOF(err))
	}
	if err := proto.Unmarshal(cr.buf.Bytes(), m); err != nil {
		return fmt.Errorf("%w: %s (message %d): %v", ErrInvalidCIFF, what, cr.msgs, err)
	}
	cr.msgs++
	return nil
}

// noEOFIn turns a clean end of stream where a message was due into an
// ErrInvalidCIFF error saying so.
func noEOFIn(err error, msg string) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s", ErrInvalidCIFF, msg)
	}
	return err
}
