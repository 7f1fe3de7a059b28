package encode

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
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

// SafeTensorsIndexFile lists the shards of a Hugging Face checkpoint saved
// in several files (model-00001-of-00004.safetensors, ...): its weight_map
// names each tensor's file.
const SafeTensorsIndexFile = "model.safetensors.index.json"

// shardedCheckpoint hashes a sharded checkpoint: the sha256 of the index
// file's bytes followed, for each shard the weight_map names (sorted, each
// once), by the shard's name and its own sha256, so that a change in any
// shard changes it. It also returns the shards' total size.
func shardedCheckpoint(index string) (sum string, size int64, err error) {
	data, err := os.ReadFile(index)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", index, err)
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return "", 0, fmt.Errorf("%w: %s: %w", ErrBadModel, index, err)
	}
	if len(idx.WeightMap) == 0 {
		return "", 0, fmt.Errorf("%w: %s: no weight_map", ErrBadModel, index)
	}
	files := slices.Sorted(maps.Values(idx.WeightMap))
	files = slices.Compact(files)
	h := sha256.New()
	h.Write(data)
	dir := filepath.Dir(index)
	for _, f := range files {
		if f != filepath.Base(f) {
			return "", 0, fmt.Errorf("%w: %s: shard %q is not a file name beside the index", ErrBadModel, index, f)
		}
		p := filepath.Join(dir, f)
		s, err := fileSHA256(p)
		if err != nil {
			return "", 0, err
		}
		st, err := os.Stat(p)
		if err != nil {
			return "", 0, fmt.Errorf("model %s: %w", p, err)
		}
		size += st.Size()
		fmt.Fprintf(h, "\n%s %s", f, s)
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}
