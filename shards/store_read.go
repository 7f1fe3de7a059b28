package shards

import (
	"context"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	"gocloud.dev/blob"
)

// Block cache of Store.OpenInput.
const (
	storeBlockSize   = 4 << 20 // bytes per range request
	storeCacheBlocks = 4       // blocks kept, least recently used dropped
)

// blockReaderAt reads an object with range requests of blockSize bytes,
// aligned, keeping the last few blocks. It is safe for concurrent use (one
// request at a time). No request stays open between calls, so it holds
// only memory.
type blockReaderAt struct {
	ctx       context.Context
	bucket    *blob.Bucket
	key, url  string
	size      int64
	modTime   time.Time
	blockSize int64
	maxBlocks int

	mu       sync.Mutex
	blocks   []cachedBlock // least recently used first
	requests int           // range requests made (for tests)
}

type cachedBlock struct {
	off  int64
	data []byte
}

func newBlockReaderAt(ctx context.Context, b *blob.Bucket, key, url string, size int64, modTime time.Time) *blockReaderAt {
	return &blockReaderAt{ctx: ctx, bucket: b, key: key, url: url, size: size, modTime: modTime,
		blockSize: storeBlockSize, maxBlocks: storeCacheBlocks}
}

// ReadAt implements io.ReaderAt.
func (r *blockReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset %d", r.url, off)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for n < len(p) && off+int64(n) < r.size {
		pos := off + int64(n)
		start := pos - pos%r.blockSize
		data, err := r.block(start)
		if err != nil {
			return n, err
		}
		n += copy(p[n:], data[pos-start:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// block returns the block at start, from the cache or the store.
func (r *blockReaderAt) block(start int64) ([]byte, error) {
	for i, b := range r.blocks {
		if b.off == start {
			r.blocks = append(append(r.blocks[:i:i], r.blocks[i+1:]...), b)
			return b.data, nil
		}
	}
	length := min(r.blockSize, r.size-start)
	r.requests++
	rr, err := r.bucket.NewRangeReader(r.ctx, r.key, start, length, nil)
	if err != nil {
		return nil, &storageReadError{fmt.Errorf("read %s bytes %d-%d: %w", r.url, start, start+length-1, err)}
	}
	defer rr.Close()
	if !rr.ModTime().Equal(r.modTime) || rr.Size() != r.size {
		return nil, &storageReadError{fmt.Errorf("read %s: the object changed while it was read (size %d, modified %s; was %d, %s)",
			r.url, rr.Size(), rr.ModTime().UTC().Format(time.RFC3339), r.size, r.modTime.UTC().Format(time.RFC3339))}
	}
	data := make([]byte, length)
	if _, err := io.ReadFull(rr, data); err != nil {
		return nil, &storageReadError{fmt.Errorf("read %s bytes %d-%d: %w", r.url, start, start+length-1, err)}
	}
	if len(r.blocks) >= r.maxBlocks {
		r.blocks = append(r.blocks[:0], r.blocks[1:]...)
	}
	r.blocks = append(r.blocks, cachedBlock{off: start, data: data})
	return data, nil
}

// storageReadError is a failed read of an object. It also matches
// syscall.EIO, so that the input reader takes it for an I/O failure, which
// may be transient, and not for bad data (ErrInvalidInput).
type storageReadError struct{ err error }

func (e *storageReadError) Error() string   { return e.err.Error() }
func (e *storageReadError) Unwrap() []error { return []error{e.err, syscall.EIO} }

// OpenRange streams the object obj (as listed) from byte offset to its
// end, for text inputs. It fails when the object is no longer the one
// listed (another size or modification time).
func (s *Store) OpenRange(ctx context.Context, obj RemoteObject, offset int64) (io.ReadCloser, error) {
	u := s.loc.ObjectURL(obj.Key)
	rr, err := s.bucket.NewRangeReader(ctx, obj.Key, offset, -1, nil)
	if err != nil {
		return nil, &storageReadError{fmt.Errorf("read %s from byte %d: %w", u, offset, notExist(err))}
	}
	// A listing's time has milliseconds, a GET's Last-Modified seconds.
	if !rr.ModTime().Truncate(time.Second).Equal(obj.ModTime.Truncate(time.Second)) || rr.Size() != obj.Size {
		rr.Close()
		return nil, &storageReadError{fmt.Errorf("read %s: the object changed since it was listed (size %d, modified %s; was %d, %s)",
			u, rr.Size(), rr.ModTime().UTC().Format(time.RFC3339), obj.Size, obj.ModTime.UTC().Format(time.RFC3339))}
	}
	return rr, nil
}
