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
	path := filepath.Join(outDir, SuccessFile)
	data := []byte("{}")
	if summary != nil {
		var err error
		if data, err = json.MarshalIndent(summary, "", "  "); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	data = append(data, '\n')
	return writeFileAtomic(outDir, SuccessFile, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
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
