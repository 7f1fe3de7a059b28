package ort

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ModelFile returns the ONNX file of a model directory: model.onnx, or
// onnx/model.onnx as some exports lay it out. A path to a .onnx file is
// returned as is.
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
