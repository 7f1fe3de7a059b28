package trec

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// maxLine is the longest line ReadQrels and ReadRun accept.
const maxLine = 1 << 20

// ReadQrels reads a qrels file (see the package documentation).
func ReadQrels(path string) (Qrels, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read qrels: %w", err)
	}
	defer f.Close()
	return ParseQrels(f, path)
}

// ParseQrels parses qrels from r; name is the file name used in errors.
func ParseQrels(r io.Reader, name string) (Qrels, error) {
	q := Qrels{}
	err := eachLine(r, name, func(line int, fields []string) error {
		if len(fields) != 4 {
			return fmt.Errorf("%s:%d: %w: %d fields, want 4 (qid iter docid rel)", name, line, ErrFormat, len(fields))
		}
		qid, docid := fields[0], fields[2]
		rel, err := strconv.Atoi(fields[3])
		if err != nil {
			return fmt.Errorf("%s:%d: %w: relevance %q is not an integer", name, line, ErrFormat, fields[3])
		}
		docs := q[qid]
		if docs == nil {
			docs = map[string]int{}
			q[qid] = docs
		}
		if _, dup := docs[docid]; dup {
			return fmt.Errorf("%s:%d: %w: query %s judges document %s twice", name, line, ErrFormat, qid, docid)
		}
		docs[docid] = rel
		return nil
	})
	if err != nil {
		return nil, err
	}
	return q, nil
}

// ReadRun reads a run file (see the package documentation).
func ReadRun(path string) (Run, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read run: %w", err)
	}
	defer f.Close()
	return ParseRun(f, path)
}

// ParseRun parses a run from r; name is the file name used in errors.
func ParseRun(r io.Reader, name string) (Run, error) {
	run := Run{}
	seen := map[string]map[string]int{} // qid -> docid -> line
	err := eachLine(r, name, func(line int, fields []string) error {
		if len(fields) != 6 {
			return fmt.Errorf("%s:%d: %w: %d fields, want 6 (qid Q0 docid rank score tag)", name, line, ErrFormat, len(fields))
		}
		qid, docid := fields[0], fields[2]
		if _, err := strconv.ParseInt(fields[3], 10, 64); err != nil {
			return fmt.Errorf("%s:%d: %w: rank %q is not an integer", name, line, ErrFormat, fields[3])
		}
		score, err := strconv.ParseFloat(fields[4], 64)
		if err != nil || math.IsNaN(score) {
			return fmt.Errorf("%s:%d: %w: score %q is not a number", name, line, ErrFormat, fields[4])
		}
		docs := seen[qid]
		if docs == nil {
			docs = map[string]int{}
			seen[qid] = docs
		}
		if first, dup := docs[docid]; dup {
			return fmt.Errorf("%s:%d: %w: query %s retrieves document %s again (first on line %d)", name, line, ErrFormat, qid, docid, first)
		}
		docs[docid] = line
		run[qid] = append(run[qid], Result{DocID: docid, Score: score})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return run, nil
}

// eachLine calls fn with the white-space separated fields of every
// non-blank line of r and its 1-based number.
func eachLine(r io.Reader, name string, fn func(line int, fields []string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		n++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if err := fn(n, fields); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return fmt.Errorf("%s:%d: %w: line longer than %d bytes", name, n+1, ErrFormat, maxLine)
		}
		return fmt.Errorf("read %s: %w", name, err)
	}
	return nil
}

// RunWriter writes a run file: one line "qid Q0 docid rank score tag" per
// retrieved document, ranks from 1 in the order given. Scores are written
// in the shortest decimal form that reads back as the same float64, without
// an exponent (an integer score is written as an integer).
type RunWriter struct {
	w   *bufio.Writer
	tag string
	buf []byte
}

// NewRunWriter returns a RunWriter on w; tag is the run name of the last
// column (non-empty, without white space). Call Flush when done.
func NewRunWriter(w io.Writer, tag string) (*RunWriter, error) {
	if err := checkField("run tag", tag); err != nil {
		return nil, err
	}
	return &RunWriter{w: bufio.NewWriterSize(w, 256<<10), tag: tag}, nil
}

// WriteQuery writes the ranked results of one query. It writes nothing for
// an empty list. Ids with white space (which no TREC reader could split)
// are refused.
func (rw *RunWriter) WriteQuery(qid string, results []Result) error {
	if len(results) == 0 {
		return nil
	}
	if err := checkField("query id", qid); err != nil {
		return err
	}
	for i, r := range results {
		if err := checkField("document id", r.DocID); err != nil {
			return fmt.Errorf("query %s: %w", qid, err)
		}
		if math.IsNaN(r.Score) || math.IsInf(r.Score, 0) {
			return fmt.Errorf("query %s document %s: %w: score %v", qid, r.DocID, ErrFormat, r.Score)
		}
		b := rw.buf[:0]
		b = append(b, qid...)
		b = append(b, " Q0 "...)
		b = append(b, r.DocID...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(i+1), 10)
		b = append(b, ' ')
		b = strconv.AppendFloat(b, r.Score, 'f', -1, 64)
		b = append(b, ' ')
		b = append(b, rw.tag...)
		b = append(b, '\n')
		rw.buf = b
		if _, err := rw.w.Write(b); err != nil {
			return fmt.Errorf("write run: %w", err)
		}
	}
	return nil
}

// Flush writes any buffered lines to the underlying writer.
func (rw *RunWriter) Flush() error {
	if err := rw.w.Flush(); err != nil {
		return fmt.Errorf("write run: %w", err)
	}
	return nil
}
