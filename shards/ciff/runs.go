package ciff

import (
	"bufio"
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxFanIn is the most sources one merge reads at once (open files and
// read buffers); more runs are merged in passes first.
const maxFanIn = 64

// runBufBytes is the buffer of each run file being written or read.
const runBufBytes = 32 << 10

// A run file holds postings sorted by (rank, doc), each as three uvarints:
// the rank's increase over the previous posting's; the docid, as the gap
// from the previous posting's docid when the rank did not change, else as
// it is; the tf. The first posting counts from rank 0, docid 0.

// runWriter writes one run file.
type runWriter struct {
	path     string
	f        *os.File
	w        *bufio.Writer
	prevRank uint32
	prevDoc  uint32
	scratch  [3 * binary.MaxVarintLen32]byte
}

func createRun(path string) (*runWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create run %s: %w", path, err)
	}
	return &runWriter{path: path, f: f, w: bufio.NewWriterSize(f, runBufBytes)}, nil
}

// add appends p, which must not sort before the previous posting.
func (rw *runWriter) add(p posting) error {
	b := rw.scratch[:0]
	b = binary.AppendUvarint(b, uint64(p.rank-rw.prevRank))
	if p.rank == rw.prevRank {
		b = binary.AppendUvarint(b, uint64(p.doc-rw.prevDoc))
	} else {
		b = binary.AppendUvarint(b, uint64(p.doc))
	}
	b = binary.AppendUvarint(b, uint64(p.tf))
	rw.prevRank, rw.prevDoc = p.rank, p.doc
	if _, err := rw.w.Write(b); err != nil {
		return fmt.Errorf("write run %s: %w", rw.path, err)
	}
	return nil
}

func (rw *runWriter) close() error {
	err := rw.w.Flush()
	if cerr := rw.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write run %s: %w", rw.path, err)
	}
	return nil
}

// abort closes the file after a failure (the temp directory goes later).
func (rw *runWriter) abort() { rw.f.Close() }

// source yields postings in (rank, doc) order.
type source interface {
	// next returns the next posting; ok is false at the end.
	next() (p posting, ok bool, err error)
	close()
}

func closeSources(srcs []source) {
	for _, s := range srcs {
		s.close()
	}
}

// runReader reads a run file.
type runReader struct {
	path string
	f    *os.File
	r    *bufio.Reader
	prev posting
}

func openRun(path string) (*runReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open run %s: %w", path, err)
	}
	return &runReader{path: path, f: f, r: bufio.NewReaderSize(f, runBufBytes)}, nil
}

func (rr *runReader) next() (posting, bool, error) {
	dr, err := binary.ReadUvarint(rr.r)
	if errors.Is(err, io.EOF) {
		return posting{}, false, nil
	}
	if err != nil {
		return posting{}, false, fmt.Errorf("read run %s: %w", rr.path, err)
	}
	d, err := binary.ReadUvarint(rr.r)
	if err != nil {
		return posting{}, false, fmt.Errorf("read run %s: %w", rr.path, noEOF(err))
	}
	tf, err := binary.ReadUvarint(rr.r)
	if err != nil {
		return posting{}, false, fmt.Errorf("read run %s: %w", rr.path, noEOF(err))
	}
	p := posting{rank: rr.prev.rank + uint32(dr), doc: uint32(d), tf: uint32(tf)}
	if dr == 0 {
		p.doc = rr.prev.doc + uint32(d)
	}
	rr.prev = p
	return p, true, nil
}

func (rr *runReader) close() { rr.f.Close() }

// noEOF turns an end of file inside a record into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// memSource yields a sorted in-memory buffer.
type memSource struct {
	buf []posting
	i   int
}

func (m *memSource) next() (posting, bool, error) {
	if m.i == len(m.buf) {
		return posting{}, false, nil
	}
	m.i++
	return m.buf[m.i-1], true, nil
}

func (m *memSource) close() {}

// merger is a k-way merge of sources by (rank, doc); ties, which the
// exporter never produces, go to the earlier source.
type merger struct {
	h mergeHeap
}

type mergeItem struct {
	p   posting
	src int
}

type mergeHeap struct {
	items []mergeItem
	srcs  []source
}

func (h *mergeHeap) Len() int { return len(h.items) }
func (h *mergeHeap) Less(i, j int) bool {
	if c := comparePostings(h.items[i].p, h.items[j].p); c != 0 {
		return c < 0
	}
	return h.items[i].src < h.items[j].src
}
func (h *mergeHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *mergeHeap) Push(x any)    { h.items = append(h.items, x.(mergeItem)) }
func (h *mergeHeap) Pop() any {
	it := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return it
}

func newMerger(srcs []source) (*merger, error) {
	m := &merger{h: mergeHeap{srcs: srcs}}
	for i, s := range srcs {
		p, ok, err := s.next()
		if err != nil {
			return nil, err
		}
		if ok {
			m.h.items = append(m.h.items, mergeItem{p: p, src: i})
		}
	}
	heap.Init(&m.h)
	return m, nil
}

// next returns the smallest posting left; ok is false when all are done.
func (m *merger) next() (posting, bool, error) {
	if len(m.h.items) == 0 {
		return posting{}, false, nil
	}
	top := m.h.items[0]
	p, ok, err := m.h.srcs[top.src].next()
	if err != nil {
		return posting{}, false, err
	}
	if ok {
		if comparePostings(p, top.p) <= 0 {
			return posting{}, false, fmt.Errorf("internal error: run %d out of order", top.src)
		}
		m.h.items[0].p = p
		heap.Fix(&m.h, 0)
	} else {
		heap.Pop(&m.h)
	}
	return top.p, true, nil
}

// mergeRuns merges the run files paths into one run file at out.
func mergeRuns(ctx context.Context, paths []string, out string) (err error) {
	var srcs []source
	defer func() { closeSources(srcs) }()
	for _, p := range paths {
		r, err := openRun(p)
		if err != nil {
			return err
		}
		srcs = append(srcs, r)
	}
	m, err := newMerger(srcs)
	if err != nil {
		return err
	}
	rw, err := createRun(out)
	if err != nil {
		return err
	}
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				rw.abort()
				return err
			}
		}
		p, ok, err := m.next()
		if err != nil {
			rw.abort()
			return err
		}
		if !ok {
			break
		}
		if err := rw.add(p); err != nil {
			rw.abort()
			return err
		}
	}
	return rw.close()
}
