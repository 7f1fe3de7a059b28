package shards

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
)

// SuccessFile is the name of the marker that WriteSuccess writes into an
// output directory once every input shard is done.
const SuccessFile = "_SUCCESS"

// WriteSuccess writes outDir/_SUCCESS atomically (temp file, fsync, rename,
// fsync directory) holding summary as indented JSON; summary is any value
// that encoding/json can marshal (nil writes {}). Call it once every shard
// of the run is done (ResumeDone, or committed with its manifest).
func WriteSuccess(outDir string, summary any) error {
	data, err := successJSON(summary)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(outDir, SuccessFile), err)
	}
	return writeFileAtomic(outDir, SuccessFile, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteSuccessOnce writes outDir/_SUCCESS as WriteSuccess does, but
// create-only: the temp file is linked to the name, which fails when it
// exists (O_EXCL-style), so of concurrent writers exactly one succeeds and
// the others get an error wrapping ErrExists, leaving the winner's file.
func WriteSuccessOnce(outDir string, summary any) error {
	data, err := successJSON(summary)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(outDir, SuccessFile), err)
	}
	f, err := createTemp(outDir, SuccessFile)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		removeTemp(f, outDir)
		return fmt.Errorf("write %s: %w", filepath.Join(outDir, SuccessFile), err)
	}
	return commitTemp(f, outDir, SuccessFile, true)
}

// HasSuccess reports whether outDir/_SUCCESS exists.
func HasSuccess(outDir string) (bool, error) {
	r, err := openRoot(outDir)
	if err != nil {
		return false, fmt.Errorf("look for %s: %w", filepath.Join(outDir, SuccessFile), err)
	}
	defer r.Close()
	if _, err := r.Lstat(SuccessFile); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("look for %s: %w", filepath.Join(outDir, SuccessFile), rootError(r, SuccessFile, err))
	}
	return true, nil
}

// successJSON is the content of _SUCCESS: summary as indented JSON (nil:
// {}) and a newline.
func successJSON(summary any) ([]byte, error) {
	data := []byte("{}")
	if summary != nil {
		var err error
		if data, err = json.MarshalIndent(summary, "", "  "); err != nil {
			return nil, err
		}
	}
	return append(data, '\n'), nil
}

// ReadSuccess reads outDir/_SUCCESS into summary (a pointer, as for
// json.Unmarshal; nil only checks that the file is JSON). An error wrapping
// fs.ErrNotExist means the directory is not (or no longer) complete.
func ReadSuccess(outDir string, summary any) error {
	path := filepath.Join(outDir, SuccessFile)
	data, err := readFileInDir(outDir, SuccessFile, maxManifestSize)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if summary == nil {
		if !json.Valid(data) {
			return fmt.Errorf("read %s: not valid JSON", path)
		}
		return nil
	}
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(summary); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// RemoveSuccess removes outDir/_SUCCESS, if there is one, and fsyncs the
// directory: call it before a run changes anything in a directory that an
// earlier run completed, so that readers never take a directory in flux for
// a complete one. RemoveShard does it too.
func RemoveSuccess(outDir string) error {
	path := filepath.Join(outDir, SuccessFile)
	r, err := openRoot(outDir)
	if err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	defer r.Close()
	if err := r.Remove(SuccessFile); err != nil { // a link is removed, not followed
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove %s: %w", path, rootError(r, SuccessFile, err))
	}
	if err := syncRoot(r); err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}
