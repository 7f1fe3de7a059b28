package shards

import (
	"errors"
	"testing"
)

func TestCheckLocalPath(t *testing.T) {
	for _, p := range []string{"s3://bucket/corpus/", "gs://b/x", "azblob://c/y", "file:///data/in", "S3://B/K"} {
		if err := CheckLocalPath("--input", p); !errors.Is(err, ErrObjectStorage) {
			t.Errorf("%s: %v, want ErrObjectStorage", p, err)
		}
	}
	for _, p := range []string{"/data/in", "rel/dir", "docs-*.parquet", "./a:b/c", "dir/with://inside", "C:\\x"} {
		if err := CheckLocalPath("--input", p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}
