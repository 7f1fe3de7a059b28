package shards

import (
	"errors"
	"fmt"
)

// Sentinel errors. They are used as prefixes of wrapped errors, so callers can
// classify a failure with errors.Is (for instance to pick an exit code) while
// the message still names the file, row group, row and column.
var (
	// ErrInvalidInput marks an input file that cannot be used as it is: not a
	// Parquet file, truncated or corrupt, a missing or mistyped column, or a
	// bad row (see RowError). Retrying does not help; the data must change.
	ErrInvalidInput = errors.New("invalid input")

	// ErrInvalidShard marks an impact shard that is not readable or does not
	// have the schema of an impact shard.
	ErrInvalidShard = errors.New("invalid impact shard")

	// ErrInvalidManifest marks a manifest that is not valid JSON, has unknown
	// or missing fields, or an unsupported schema version.
	ErrInvalidManifest = errors.New("invalid manifest")

	// ErrMismatch marks an output that does not match its manifest (size,
	// sha256 or row count).
	ErrMismatch = errors.New("output does not match manifest")

	// ErrVocabularyMismatch marks an output directory whose vocabulary file
	// differs from the one being written.
	ErrVocabularyMismatch = errors.New("vocabulary differs")

	// ErrExists is returned by Commit with WriterOptions.NoClobber when the
	// final name is already taken (another worker committed first).
	ErrExists = errors.New("output already exists")

	// ErrBaseCollision is returned by DiscoverInputs when two inputs have
	// the same base name: their outputs would have one name. It is a usage
	// problem (the arguments), not bad data.
	ErrBaseCollision = errors.New("inputs share a base name")

	// ErrClosed is returned by a Writer or InputReader used after Commit,
	// Abort or Close.
	ErrClosed = errors.New("already closed")

	// ErrUnsafePath marks a name in an output directory that would lead
	// outside it: a symbolic link pointing out of the directory (or an
	// absolute one), or a name that is not a plain file name. Such names are
	// never read or written through.
	ErrUnsafePath = errors.New("path leads outside the output directory")
)

// RowError is a problem with one row of an input file (for instance a null
// document id). It matches ErrInvalidInput with errors.Is; use errors.As to
// tell a per-row problem, which may be skipped, from a problem with the whole
// file.
type RowError struct {
	Path     string  // the input file
	RowGroup int     // row group index, from 0
	Row      int64   // row index in the file, from 0
	Line     int64   // line number in a text input, from 1; 0 for Parquet
	Column   string  // column name
	Code     string  // a Reject* reason code
	Reason   string  // what is wrong, for people, e.g. "null id"
	ID       *string // the row's id; nil when it is null
}

func (e *RowError) Error() string {
	if e.Line > 0 {
		where := fmt.Sprintf("line %d", e.Line)
		if e.Column != "" {
			where += fmt.Sprintf(", field %q", e.Column)
		}
		return fmt.Sprintf("read %s: %s: %s", e.Path, where, e.Reason)
	}
	return fmt.Sprintf("read %s: row group %d, row %d, column %q: %s", e.Path, e.RowGroup, e.Row, e.Column, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalidInput) true for a RowError.
func (e *RowError) Unwrap() error { return ErrInvalidInput }

// safely runs fn and turns a panic into an error that wraps kind. Every call
// into a reader of foreign bytes goes through it: the Parquet and Arrow
// readers have panicked on corrupt files.
func safely(kind error, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if panicHook != nil {
				panicHook(r)
			}
			err = fmt.Errorf("%w: reader panicked (corrupt file?): %v", kind, r)
		}
	}()
	return fn()
}

// panicHook, when set (by the fuzz tests), is called with every panic safely
// recovers, while the panicking frames are still on the stack: the tests use
// it to tell a panic of this package's own code, a bug to fix, from one of a
// third-party reader.
var panicHook func(r any)
