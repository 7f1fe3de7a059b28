package shards

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/pierrec/lz4/v4"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// Bounds of checkChunkPages on the sizes a page header may declare.
const (
	// maxInflation bounds a compressed page's declared uncompressed size
	// relative to its compressed size. parquet-go allocates the declared
	// size before it decompresses; a real page of text compresses far less
	// than this (zstd and gzip reach a few times on prose, and repeated
	// values go to the dictionary page, which is bounded the same way).
	maxInflation = 4096
	// minInflationBound is the uncompressed size any compressed page may
	// declare, whatever its compressed size: tiny pages of empty or
	// repeated strings may inflate beyond maxInflation without harm.
	minInflationBound = 1 << 20
	// pageHeaderWindow is the first read of a page header; it grows by
	// doubling (up to the rest of the column chunk) for headers with large
	// statistics.
	pageHeaderWindow = 4 << 10
)

// checkChunkPages walks the page headers of a column chunk before
// parquet-go reads them, and refuses the chunk when a header declares sizes
// that the chunk cannot hold: parquet-go allocates a page's compressed size
// before it reads the page, and its uncompressed size before it
// decompresses, so one lying header in a file of kilobytes would cost
// gigabytes. Found by FuzzInputReader. It checks that the chunk lies inside
// the file, that each page fits in what is left of the chunk, and that a
// compressed page inflates at most maxInflation times (or to
// minInflationBound); it stops once the data pages hold the chunk's values,
// as the reader does. It returns errors wrapping ErrInvalidInput.
func checkChunkPages(ra io.ReaderAt, fileSize int64, md *format.ColumnMetaData) error {
	base := md.DataPageOffset
	if md.DictionaryPageOffset != 0 {
		base = md.DictionaryPageOffset
	}
	size := md.TotalCompressedSize
	if base < 0 || size < 0 || base > fileSize || size > fileSize-base {
		return fmt.Errorf("%w: column chunk of %d bytes at offset %d does not fit in a file of %d bytes",
			ErrInvalidInput, size, base, fileSize)
	}
	var values int64
	var proto thrift.CompactProtocol
	for off, page := int64(0), 0; off < size && values < md.NumValues; page++ {
		var header format.PageHeader
		n, err := readPageHeader(ra, base+off, size-off, &proto, &header)
		if err != nil {
			return fmt.Errorf("%w: page %d of the column chunk (byte %d): header: %w", ErrInvalidInput, page, base+off, err)
		}
		compressed, uncompressed := int64(header.CompressedPageSize), int64(header.UncompressedPageSize)
		left := size - off - n
		switch {
		case compressed < 0 || uncompressed < 0:
			return fmt.Errorf("%w: page %d of the column chunk (byte %d): negative page size (compressed %d, uncompressed %d)",
				ErrInvalidInput, page, base+off, compressed, uncompressed)
		case compressed > left:
			return fmt.Errorf("%w: page %d of the column chunk (byte %d): header declares %d bytes, the chunk has %d left",
				ErrInvalidInput, page, base+off, compressed, left)
		case md.Codec != format.Uncompressed && uncompressed > max(compressed*maxInflation, minInflationBound):
			return fmt.Errorf("%w: page %d of the column chunk (byte %d): header declares %d bytes uncompressed from %d compressed (more than %d times)",
				ErrInvalidInput, page, base+off, uncompressed, compressed, maxInflation)
		}
		if md.Codec != format.Uncompressed {
			if err := checkCompressedBody(ra, base+off+n, compressed, uncompressed, &header, md.Codec); err != nil {
				return fmt.Errorf("%w: page %d of the column chunk (byte %d): %w", ErrInvalidInput, page, base+off, err)
			}
		}
		switch {
		case header.DataPageHeader.Valid:
			values += int64(header.DataPageHeader.V.NumValues)
		case header.DataPageHeaderV2.Valid:
			values += int64(header.DataPageHeaderV2.V.NumValues)
		}
		off += n + compressed
	}
	return nil
}

// readPageHeader decodes the Thrift page header at offset off, of which at
// most limit bytes may be read, and returns its length in bytes.
func readPageHeader(ra io.ReaderAt, off, limit int64, proto *thrift.CompactProtocol, header *format.PageHeader) (int64, error) {
	window := min(int64(pageHeaderWindow), limit)
	for {
		buf := make([]byte, window)
		if n, err := ra.ReadAt(buf, off); int64(n) < window {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		r := proto.NewReaderFromBytes(buf)
		*header = format.PageHeader{}
		err := thrift.NewDecoder(r).Decode(header)
		if err == nil {
			return int64(r.BytesRead()), nil
		}
		truncated := errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
		if !truncated || window == limit {
			return 0, err
		}
		window = min(2*window, limit)
	}
}

// checkCompressedBody checks what a compressed page's body says of its own
// size against the header before parquet-go decompresses it: the decoders
// size their output from the body, not the header. Snappy starts with the
// decoded length, which must be the header's; a zstd frame that declares
// its content size must not declare more than the header; an LZ4 block is
// decoded here into a buffer of the header's size, because parquet-go's
// LZ4 decoder doubles its buffer without bound when a block fails to
// decode. Data page v2 keeps its levels uncompressed before the body.
func checkCompressedBody(ra io.ReaderAt, off, compressed, uncompressed int64, h *format.PageHeader, codec format.CompressionCodec) error {
	if h.DataPageHeaderV2.Valid {
		v2 := h.DataPageHeaderV2.V
		if v2.IsCompressed.Valid && !v2.IsCompressed.V {
			return nil
		}
		levels := int64(v2.RepetitionLevelsByteLength) + int64(v2.DefinitionLevelsByteLength)
		if levels > compressed || levels > uncompressed {
			return fmt.Errorf("levels of %d bytes in a page of %d bytes (%d uncompressed)", levels, compressed, uncompressed)
		}
		off, compressed, uncompressed = off+levels, compressed-levels, uncompressed-levels
	}
	switch codec {
	case format.Snappy:
		var head [binary.MaxVarintLen64]byte
		n, _ := ra.ReadAt(head[:min(int64(len(head)), compressed)], off)
		size, k := binary.Uvarint(head[:n])
		if k <= 0 {
			return errors.New("snappy: the body does not start with its length")
		}
		if size != uint64(uncompressed) {
			return fmt.Errorf("snappy: the body decodes to %d bytes, the header says %d", size, uncompressed)
		}
	case format.Zstd:
		if size, ok := zstdContentSize(ra, off, compressed); ok && size > uint64(uncompressed) {
			return fmt.Errorf("zstd: the frame declares %d bytes, the header says %d", size, uncompressed)
		}
	case format.Lz4Raw:
		body := make([]byte, compressed)
		if n, err := ra.ReadAt(body, off); int64(n) < compressed {
			return fmt.Errorf("lz4: read the body: %w", err)
		}
		dst := make([]byte, uncompressed)
		if n, err := lz4.UncompressBlock(body, dst); err != nil || int64(n) != uncompressed {
			return fmt.Errorf("lz4: the block does not decode to the %d bytes the header says", uncompressed)
		}
	}
	return nil
}

// zstdContentSize reads the Frame_Content_Size of the zstd frame at off,
// when its header declares one (RFC 8878, section 3.1.1.1).
func zstdContentSize(ra io.ReaderAt, off, size int64) (uint64, bool) {
	var h [14]byte // magic 4, descriptor 1, window 1, dictionary id <= 4, content size <= 8 (less: fine)
	n, _ := ra.ReadAt(h[:min(int64(len(h)), size)], off)
	if n < 5 || binary.LittleEndian.Uint32(h[:4]) != 0xFD2FB528 {
		return 0, false
	}
	fd := h[4]
	fcsFlag, single, didFlag := fd>>6, fd>>5&1 == 1, fd&3
	fcsLen := [4]int{0, 2, 4, 8}[fcsFlag]
	if fcsFlag == 0 && single {
		fcsLen = 1
	}
	pos := 5
	if !single {
		pos++ // window descriptor
	}
	pos += [4]int{0, 1, 2, 4}[didFlag]
	if fcsLen == 0 || pos+fcsLen > n {
		return 0, false
	}
	b := h[pos : pos+fcsLen]
	switch fcsLen {
	case 1:
		return uint64(b[0]), true
	case 2:
		return uint64(binary.LittleEndian.Uint16(b)) + 256, true
	case 4:
		return uint64(binary.LittleEndian.Uint32(b)), true
	}
	return binary.LittleEndian.Uint64(b), true
}
