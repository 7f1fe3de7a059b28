package safetensors

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeShard writes tensors (name -> values, 1-D) as BF16 into dir/name.
func writeShard(t *testing.T, dir, name string, tensors map[string][]float32) {
	t.Helper()
	var ts []Tensor
	for _, n := range slices.Sorted(maps.Keys(tensors)) {
		x, err := FromFloat32(n, BF16, []int{len(tensors[n])}, tensors[n])
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, x)
	}
	var buf bytes.Buffer
	if err := Write(&buf, ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeIndex(t *testing.T, dir, index string) string {
	t.Helper()
	p := filepath.Join(dir, IndexFile)
	if err := os.WriteFile(p, []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOpenSharded reads tensors from two shards through the index (BF16
// values that convert exactly), and refuses indexes that disagree with
// their shards, naming the index, shard and tensor.
func TestOpenSharded(t *testing.T) {
	dir := t.TempDir()
	writeShard(t, dir, "model-00001-of-00002.safetensors", map[string][]float32{"a.weight": {1, 2, 3}, "b.weight": {-0.5}})
	writeShard(t, dir, "model-00002-of-00002.safetensors", map[string][]float32{"c.weight": {4, 5}})
	good := `{"metadata": {"total_size": 12}, "weight_map": {"a.weight": "model-00001-of-00002.safetensors",
	  "b.weight": "model-00001-of-00002.safetensors", "c.weight": "model-00002-of-00002.safetensors"}}`
	s, err := OpenSharded(writeIndex(t, dir, good))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Names(); !slices.Equal(got, []string{"a.weight", "b.weight", "c.weight"}) {
		t.Errorf("names %v", got)
	}
	for name, want := range map[string][]float32{"a.weight": {1, 2, 3}, "b.weight": {-0.5}, "c.weight": {4, 5}} {
		got, shape, err := s.Float32(name)
		if err != nil || !slices.Equal(got, want) || !slices.Equal(shape, []int{len(want)}) {
			t.Errorf("%s: %v %v %v, want %v", name, got, shape, err, want)
		}
	}
	if f := s.FileOf("c.weight"); filepath.Base(f) != "model-00002-of-00002.safetensors" {
		t.Errorf("FileOf(c.weight) = %q", f)
	}
	if !s.Has("b.weight") || s.Has("d.weight") {
		t.Error("Has")
	}
	if _, _, err := s.Float32("d.weight"); !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), IndexFile) {
		t.Errorf("missing tensor: %v", err)
	}

	writeShard(t, dir, "dup.safetensors", map[string][]float32{"a.weight": {9}, "z.weight": {1}})
	for _, c := range []struct{ index, want string }{
		{`{"weight_map": {"a.weight": "model-00002-of-00002.safetensors"}}`, "puts tensor a.weight in model-00002-of-00002.safetensors, which does not hold it"},
		{`{"weight_map": {"a.weight": "model-00001-of-00002.safetensors", "z.weight": "dup.safetensors"}}`, "tensor a.weight is in both"},
		{`{"weight_map": {"a.weight": "../model-00001-of-00002.safetensors"}}`, "is not a file name beside the index"},
		{`{"weight_map": {}}`, "weight_map is missing or empty"},
		{`{"weight_map": {"a.weight": "absent.safetensors"}}`, "shard absent.safetensors"},
		{`{"weight_map": [`, "invalid safetensors file"},
	} {
		s, err := OpenSharded(writeIndex(t, dir, c.index))
		if err == nil {
			s.Close()
			t.Errorf("index %s accepted", c.index)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), IndexFile) {
			t.Errorf("index %s: error %v, want one naming the index and saying %q", c.index, err, c.want)
		}
	}
}
