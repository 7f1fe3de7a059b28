package encode

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrBadModel marks a model whose files do not fit what splash needs (a
// graph without the inputs or outputs it feeds and reads, bytes that are
// not a model): retrying will not help. Engines wrap it (gpu/ort's
// ErrBadModel is this error), so that callers tell bad model files from
// other failures without knowing the engine.
var ErrBadModel = errors.New("unsupported model")

// ModelFile returns the ONNX file of a model directory: model.onnx, or
// onnx/model.onnx as some exports lay it out. A path to a .onnx file is
// returned as is. A directory holding neither fails with an error that
// wraps fs.ErrNotExist.
func ModelFile(dir string) (string, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("model %s: %w", dir, err)
	}
	if !st.IsDir() {
		return dir, nil
	}
	for _, rel := range []string{"model.onnx", filepath.Join("onnx", "model.onnx")} {
		p := filepath.Join(dir, rel)
		st, err := os.Stat(p)
		if err == nil && st.Mode().IsRegular() {
			return p, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("model %s: %w", p, err)
		}
	}
	return "", fmt.Errorf("model directory %s holds neither model.onnx nor onnx/model.onnx: %w", dir, fs.ErrNotExist)
}

// SafeTensorsFile is the weights file of a Hugging Face checkpoint, which
// splash's CUDA engine reads when there is no ONNX export.
const SafeTensorsFile = "model.safetensors"

// fileExists reports whether path is a regular file.
func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}
