package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// IndexFile is the index of a sharded checkpoint on a Hugging Face model
// page: {"metadata": {...}, "weight_map": {"tensor name": "model-00001-of-00004.safetensors", ...}}.
const IndexFile = "model.safetensors.index.json"

// Sharded is a checkpoint split over several safetensors files by an index
// (IndexFile). Its methods may be called concurrently; Close closes every
// shard.
type Sharded struct {
	index  string           // the index's path, for errors
	shards []*File          // in the order of their names
	where  map[string]*File // tensor name -> the shard that holds it
	names  []string
}

// index is the JSON of IndexFile.
type index struct {
	WeightMap map[string]string `json:"weight_map"`
}

// OpenSharded opens the shards that the index at path (a
// model.safetensors.index.json) names and checks them against it: every
// shard is a file beside the index (no path separators, no "..") that
// opens as a safetensors file, every tensor of the weight map is in the
// shard the map names, and no tensor is in two shards. An error names the
// index, and the shard and tensor at fault; those about the content wrap
// ErrFormat.
func OpenSharded(path string) (s *Sharded, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	var idx index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w: %w", path, ErrFormat, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("safetensors: %s: %w: weight_map is missing or empty", path, ErrFormat)
	}
	opened := &Sharded{index: path, where: make(map[string]*File, len(idx.WeightMap))}
	s = opened
	defer func() {
		if err != nil {
			opened.Close()
			s = nil
		}
	}()
	files := map[string]*File{}
	var shardNames []string
	for _, shard := range idx.WeightMap {
		if _, ok := files[shard]; !ok {
			files[shard] = nil
			shardNames = append(shardNames, shard)
		}
	}
	sort.Strings(shardNames)
	dir := filepath.Dir(path)
	for _, shard := range shardNames {
		if shard == "" || shard != filepath.Base(shard) || strings.ContainsAny(shard, `/\`) || shard == ".." || shard == "." {
			return nil, fmt.Errorf("safetensors: %s: %w: shard %q is not a file name beside the index", path, ErrFormat, shard)
		}
		f, err := Open(filepath.Join(dir, shard))
		if err != nil {
			return nil, fmt.Errorf("safetensors: %s: shard %s: %w", path, shard, err)
		}
		files[shard] = f
		s.shards = append(s.shards, f)
	}
	for name, shard := range idx.WeightMap {
		f := files[shard]
		if _, ok := f.Tensor(name); !ok {
			return nil, fmt.Errorf("safetensors: %s: %w: the weight map puts tensor %s in %s, which does not hold it", path, ErrFormat, name, shard)
		}
		s.where[name] = f
	}
	for _, f := range s.shards {
		for _, name := range f.Names() {
			if g := s.where[name]; g != nil && g != f {
				return nil, fmt.Errorf("safetensors: %s: %w: tensor %s is in both %s and %s", path, ErrFormat, name, filepath.Base(g.Name()), filepath.Base(f.Name()))
			}
			// A tensor a shard holds but the map leaves out is still
			// readable, from the one shard that holds it.
			s.where[name] = f
		}
	}
	for name := range s.where {
		s.names = append(s.names, name)
	}
	sort.Strings(s.names)
	return s, nil
}

// Source returns the index's path.
func (s *Sharded) Source() string { return s.index }

// Names returns the tensor names of all shards, sorted.
func (s *Sharded) Names() []string { return slices.Clone(s.names) }

// Has reports whether a shard holds name.
func (s *Sharded) Has(name string) bool { _, ok := s.where[name]; return ok }

// Tensor returns the description of a tensor (its Offset is in its
// shard, FileOf's).
func (s *Sharded) Tensor(name string) (Info, bool) {
	f, ok := s.where[name]
	if !ok {
		return Info{}, false
	}
	return f.Tensor(name)
}

// FileOf returns the path of the shard that holds name ("" if none does).
func (s *Sharded) FileOf(name string) string {
	if f, ok := s.where[name]; ok {
		return f.Name()
	}
	return ""
}

// Float32 reads a tensor from its shard as File.Float32 does; a tensor no
// shard holds gives an error naming the index that wraps ErrMissing.
func (s *Sharded) Float32(name string) ([]float32, []int, error) {
	f, ok := s.where[name]
	if !ok {
		return nil, nil, &missingError{file: s.index, name: name}
	}
	return f.Float32(name)
}

// Close closes every shard.
func (s *Sharded) Close() error {
	var errs []error
	for _, f := range s.shards {
		errs = append(errs, f.Close())
	}
	s.shards = nil
	return errors.Join(errs...)
}
