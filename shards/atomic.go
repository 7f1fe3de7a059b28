package shards

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tempPrefix starts the name of every file being written. Names starting
// with "_" are sidecars, never shards, so a half-written file can never be
// mistaken for an output; a crashed run leaves only such names behind.
const tempPrefix = "_tmp."

// outputPerm is the mode of committed files (temp files are created 0600).
const outputPerm = 0o644

// IsTempName reports whether a file name (no directory) is one of this
// package's temp names, left behind by a writer that never committed.
func IsTempName(name string) bool { return strings.HasPrefix(name, tempPrefix) }

// createTemp creates a temp file in dir for the final name.
func createTemp(dir, name string) (*os.File, error) {
	f, err := os.CreateTemp(dir, tempPrefix+name+".*")
	if err != nil {
		return nil, fmt.Errorf("create temp file for %s: %w", filepath.Join(dir, name), err)
	}
	return f, nil
}

// commitTemp fsyncs and closes f (a temp file in dir), gives it its final
// name and fsyncs dir. With noClobber an existing final name is left alone
// and the error wraps ErrExists. The temp file is removed on every error.
func commitTemp(f *os.File, dir, name string, noClobber bool) (err error) {
	tmp := f.Name()
	final := filepath.Join(dir, name)
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				f.Close()
			}
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(outputPerm); err != nil {
		return fmt.Errorf("commit %s: %w", final, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("commit %s: fsync: %w", final, err)
	}
	closed = true
	if err := f.Close(); err != nil {
		return fmt.Errorf("commit %s: %w", final, err)
	}
	if noClobber {
		// link fails when the name exists: first writer wins.
		if err := os.Link(tmp, final); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("commit %s: %w", final, ErrExists)
			}
			return fmt.Errorf("commit %s: %w", final, err)
		}
		if err := os.Remove(tmp); err != nil {
			return fmt.Errorf("commit %s: remove temp: %w", final, err)
		}
	} else if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("commit %s: %w", final, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("commit %s: %w", final, err)
	}
	return nil
}

// syncDir fsyncs a directory so that a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// writeFileAtomic writes dir/name through write: to a temp file in dir, then
// fsync, rename over name, fsync dir. A reader sees the old file or the whole
// new one, never part of it; on any error the temp file is removed.
func writeFileAtomic(dir, name string, write func(io.Writer) error) error {
	f, err := createTemp(dir, name)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	if err := write(bw); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	return commitTemp(f, dir, name, false)
}

// FileSHA256 streams the file at path and returns its sha256 (lower-case
// hex) and size in bytes.
func FileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// hashWriter counts and hashes what passes through it. It hides the
// destination's Close so that format writers cannot close the file before
// the commit has fsynced it.
type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func newHashWriter(w io.Writer) *hashWriter { return &hashWriter{w: w, h: sha256.New()} }

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

func (hw *hashWriter) sum() string { return hex.EncodeToString(hw.h.Sum(nil)) }
