package shards

import (
	"encoding/binary"
	"fmt"
	"io"
)

// checkFooterLength refuses a Parquet file whose footer length, the four
// bytes before the closing magic, is larger than the file. parquet-go
// allocates a buffer of that length (up to 4 GiB) before it finds out that
// the file is too short: one corrupt or truncated input would cost a worker
// gigabytes of memory, or its life. Found by FuzzInputReader.
func checkFooterLength(ra io.ReaderAt, size int64) error {
	if size < 8 {
		return nil // no room for the length and the magic: parquet-go says so without allocating
	}
	var tail [8]byte
	if n, err := ra.ReadAt(tail[:], size-8); n < len(tail) {
		return fmt.Errorf("read the footer: %w", err)
	}
	if string(tail[4:]) != "PAR1" {
		return fmt.Errorf("%w: not a Parquet file: it does not end with the PAR1 magic (another format, or cut short)", ErrInvalidInput)
	}
	if n := int64(binary.LittleEndian.Uint32(tail[:4])); n > size-12 {
		return fmt.Errorf("%w: the footer says it is %d bytes long, in a file of %d bytes", ErrInvalidInput, n, size)
	}
	return nil
}
