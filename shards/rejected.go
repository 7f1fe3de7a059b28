package shards

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Reason codes of rejected input rows (the "reason" of a dead-letter record).
const (
	RejectNullID      = "null_id"      // the id is null
	RejectEmptyID     = "empty_id"     // the id is the empty string
	RejectNullText    = "null_text"    // the text is null (and there is no non-empty title)
	RejectDuplicateID = "duplicate_id" // the id was seen before in the same input shard
)

// RejectedName returns the dead-letter file name of the shard with base name
// base: one JSON object per line, one line per rejected input row.
func RejectedName(base string) string { return "_rejected." + base + ".jsonl" }

// Rejected is one record of a dead-letter file: an input row that was not
// encoded, and why.
type Rejected struct {
	Input    string  `json:"input"`          // the input file
	RowGroup int     `json:"row_group"`      // row group index, from 0
	Row      int64   `json:"row"`            // row index in the input file, from 0 (a text input's line index)
	Line     int64   `json:"line,omitempty"` // line number in a text input, from 1
	ID       *string `json:"id"`             // the document id; null when it is null
	Reason   string  `json:"reason"`         // a Reject* code
	Detail   string  `json:"detail"`         // for people
}

// RejectedFromRowError converts a reader's per-row error into a record.
func RejectedFromRowError(e *RowError) Rejected {
	return Rejected{Input: e.Path, RowGroup: e.RowGroup, Row: e.Row, Line: e.Line, ID: e.ID, Reason: e.Code, Detail: e.Reason}
}

// ManifestRejected identifies a shard's dead-letter file in its manifest.
type ManifestRejected struct {
	Path   string `json:"path"` // file name, relative to the output directory
	Rows   int64  `json:"rows"` // records (rejected input rows)
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// RejectedWriter writes one shard's dead-letter file. Like Writer it writes
// to a temp file and gives it its final name only in Commit; nothing is
// created until the first Add. It is not safe for concurrent use.
type RejectedWriter struct {
	dir, base string
	f         *os.File
	bw        *bufio.Writer
	hw        *hashWriter
	enc       *json.Encoder
	rows      int64
	done      bool
}

// NewRejectedWriter starts the dead-letter file of the shard base in outDir.
func NewRejectedWriter(outDir, base string) (*RejectedWriter, error) {
	if err := checkBase(base); err != nil {
		return nil, fmt.Errorf("new dead-letter writer: %w", err)
	}
	return &RejectedWriter{dir: outDir, base: base}, nil
}

// Rows is the number of records added.
func (w *RejectedWriter) Rows() int64 { return w.rows }

// Add appends a record.
func (w *RejectedWriter) Add(r Rejected) error {
	if w.done {
		return fmt.Errorf("dead-letter file %s: %w", RejectedName(w.base), ErrClosed)
	}
	if w.f == nil {
		f, err := createTemp(w.dir, RejectedName(w.base))
		if err != nil {
			return err
		}
		w.f = f
		w.bw = bufio.NewWriter(f)
		w.hw = newHashWriter(w.bw)
		w.enc = json.NewEncoder(w.hw)
		w.enc.SetEscapeHTML(false)
	}
	if err := w.enc.Encode(r); err != nil {
		return fmt.Errorf("write dead-letter file %s: %w", filepath.Join(w.dir, RejectedName(w.base)), err)
	}
	w.rows++
	return nil
}

// Commit gives the file its final name (replacing a leftover of an earlier
// run) and describes it for the manifest; with no records it writes nothing
// and returns nil.
func (w *RejectedWriter) Commit() (*ManifestRejected, error) {
	if w.done {
		return nil, fmt.Errorf("dead-letter file %s: %w", RejectedName(w.base), ErrClosed)
	}
	w.done = true
	if w.f == nil {
		return nil, nil
	}
	name := RejectedName(w.base)
	if err := w.bw.Flush(); err != nil {
		w.f.Close()
		_ = removeTemp(w.f, w.dir)
		return nil, fmt.Errorf("write dead-letter file %s: %w", filepath.Join(w.dir, name), err)
	}
	if err := commitTemp(w.f, w.dir, name, false); err != nil {
		return nil, err
	}
	return &ManifestRejected{Path: name, Rows: w.rows, Size: w.hw.n, SHA256: w.hw.sum()}, nil
}

// Abort removes the temp file. It is safe to call after Commit (then it
// does nothing) and more than once.
func (w *RejectedWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	if w.f == nil {
		return nil
	}
	w.f.Close()
	if err := removeTemp(w.f, w.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("abort dead-letter file: %w", err)
	}
	return nil
}

// ReadRejected calls fn for every record of a dead-letter file, in order.
// A malformed line is an error naming the file and the line.
func ReadRejected(path string, fn func(Rejected) error) error {
	f, err := openInDir(filepath.Dir(path), filepath.Base(path))
	if err != nil {
		return fmt.Errorf("read dead-letter file %s: %w", path, err)
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReader(f))
	dec.DisallowUnknownFields()
	for line := 1; ; line++ {
		var r Rejected
		err := dec.Decode(&r)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read dead-letter file %s: record %d: %w", path, line, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
}
