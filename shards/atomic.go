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
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
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

// Every file operation in an output directory goes through an os.Root
// opened on it: names are plain file names resolved inside the directory,
// and a symbolic link that leads out of it (or an absolute one) is refused
// (ErrUnsafePath), so a link planted under an output's name is never read
// or written through. Renames and removals act on the link itself.

// openRoot opens dir as an os.Root.
func openRoot(dir string) (*os.Root, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// checkName refuses a name that is not a plain file name of dir.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return fmt.Errorf("%w: %q is not a plain file name", ErrUnsafePath, name)
	}
	return nil
}

// rootError gives an error of a Root method on name the full path, and
// turns the refusal of a name that leads outside the root into an error
// wrapping ErrUnsafePath that says so.
func rootError(r *os.Root, name string, err error) error {
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		return err
	}
	path := filepath.Join(r.Name(), name)
	if pe.Err != nil && pe.Err.Error() == "path escapes from parent" { // os.Root's refusal
		if target, lerr := r.Readlink(name); lerr == nil {
			return fmt.Errorf("%w: %s is a symbolic link to %q, outside %s (or absolute): refused", ErrUnsafePath, path, target, r.Name())
		}
		return fmt.Errorf("%w: %s leads outside %s: refused", ErrUnsafePath, path, r.Name())
	}
	if pe.Path == name {
		return &fs.PathError{Op: pe.Op, Path: path, Err: pe.Err}
	}
	return err
}

// openInDir opens dir/name for reading through an os.Root on dir: a name
// that leads outside dir is refused with an error wrapping ErrUnsafePath.
func openInDir(dir, name string) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	r, err := openRoot(dir)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.Open(name)
	if err != nil {
		return nil, rootError(r, name, err)
	}
	return f, nil
}

// readFileInDir reads dir/name (at most limit bytes, then it fails) through
// an os.Root on dir, as openInDir.
func readFileInDir(dir, name string, limit int64) ([]byte, error) {
	f, err := openInDir(dir, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}

// fileSHA256In is FileSHA256 of dir/name, opened as openInDir does.
func fileSHA256In(dir, name string) (string, int64, error) {
	f, err := openInDir(dir, name)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", filepath.Join(dir, name), err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", filepath.Join(dir, name), err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// createTemp creates a temp file in dir for the final name: a new file
// "_tmp.<name>.<random>", mode 0600, created through an os.Root on dir
// (O_EXCL: never an existing file, nor through a link).
func createTemp(dir, name string) (*os.File, error) {
	r, err := openRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("create temp file for %s: %w", filepath.Join(dir, name), err)
	}
	defer r.Close()
	return createTempIn(r, name)
}

func createTempIn(r *os.Root, name string) (*os.File, error) {
	final := filepath.Join(r.Name(), name)
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("create temp file for %s: %w", final, err)
	}
	for try := 0; ; try++ {
		tmp := tempPrefix + name + "." + strconv.FormatUint(uint64(rand.Uint32()), 10)
		f, err := r.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			return f, nil
		}
		if errors.Is(err, fs.ErrExist) && try < 100 {
			continue
		}
		return nil, fmt.Errorf("create temp file for %s: %w", final, rootError(r, tmp, err))
	}
}

// removeTemp removes the temp file f (closed or not) from dir.
func removeTemp(f *os.File, dir string) error {
	r, err := openRoot(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	return removeTempIn(r, f)
}

func removeTempIn(r *os.Root, f *os.File) error {
	name := filepath.Base(f.Name())
	if !IsTempName(name) {
		return fmt.Errorf("remove %s: not a temp file", f.Name())
	}
	if err := r.Remove(name); err != nil {
		return rootError(r, name, err)
	}
	return nil
}

// commitTemp fsyncs and closes f (a temp file in dir, from createTemp), gives
// it its final name and fsyncs dir. With noClobber an existing final name is
// left alone and the error wraps ErrExists. The temp file is removed on
// every error.
func commitTemp(f *os.File, dir, name string, noClobber bool) error {
	r, err := openRoot(dir)
	if err != nil {
		f.Close() // the temp file cannot be removed from a directory that cannot be opened
		return fmt.Errorf("commit %s: %w", filepath.Join(dir, name), err)
	}
	defer r.Close()
	return commitTempIn(r, f, name, noClobber)
}

func commitTempIn(r *os.Root, f *os.File, name string, noClobber bool) (err error) {
	tmp := filepath.Base(f.Name())
	final := filepath.Join(r.Name(), name)
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				f.Close()
			}
			r.Remove(tmp)
		}
	}()
	if err := checkName(name); err != nil {
		return fmt.Errorf("commit %s: %w", final, err)
	}
	if !IsTempName(tmp) {
		return fmt.Errorf("commit %s: %s is not a temp file", final, f.Name())
	}
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
		// link fails when the name exists (a symbolic link included): first
		// writer wins.
		if err := r.Link(tmp, name); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("commit %s: %w", final, ErrExists)
			}
			return fmt.Errorf("commit %s: %w", final, rootError(r, name, err))
		}
		if err := r.Remove(tmp); err != nil {
			return fmt.Errorf("commit %s: remove temp: %w", final, rootError(r, tmp, err))
		}
	} else if err := r.Rename(tmp, name); err != nil { // replaces a link, never writes through it
		return fmt.Errorf("commit %s: %w", final, rootError(r, name, err))
	}
	if err := syncRoot(r); err != nil {
		return fmt.Errorf("commit %s: %w", final, err)
	}
	return nil
}

// syncRoot fsyncs the directory of r.
func syncRoot(r *os.Root) error {
	d, err := r.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", r.Name(), err)
	}
	return nil
}

// writeFileAtomic writes dir/name through write: to a temp file in dir, then
// fsync, rename over name, fsync dir. A reader sees the old file or the whole
// new one, never part of it; on any error the temp file is removed.
func writeFileAtomic(dir, name string, write func(io.Writer) error) error {
	r, err := openRoot(dir)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	defer r.Close()
	f, err := createTempIn(r, name)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		f.Close()
		removeTempIn(r, f)
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	return commitTempIn(r, f, name, false)
}

// WriteFileAtomic writes the file path through write (buffered): to a temp
// file "_tmp.<name>.<random>" beside it, then fsync, rename over path, fsync
// the directory. A reader sees the old file or the whole new one, never
// part of it; on any error (write's included) the temp file is removed and
// path is left as it was. Exporters, runs and reports use it for their
// single-file outputs.
func WriteFileAtomic(path string, write func(io.Writer) error) error {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	return writeFileAtomic(dir, name, write)
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
