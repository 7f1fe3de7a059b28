package shards

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
)

// ReadDocIDs gives the ids ReadShard gives, in order, for both formats.
func TestReadDocIDsMatchesReadShard(t *testing.T) {
	for _, format := range []Format{FormatParquet, FormatArrow} {
		dir := t.TempDir()
		out := writeShard(t, dir, "docs", format, testRows(5000, 3), WriterOptions{BatchRows: 700, RowGroupRows: 1500})
		var want, got []string
		if err := ReadShard(out.Path, func(r Row) error { want = append(want, r.DocID); return nil }); err != nil {
			t.Fatal(err)
		}
		if err := ReadDocIDs(out.Path, func(id string) error { got = append(got, id); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(want) != 5000 || !slices.Equal(got, want) {
			t.Fatalf("%s: ReadDocIDs gave %d ids, ReadShard %d, or in another order", format, len(got), len(want))
		}
		stop := errors.New("stop")
		n := 0
		if err := ReadDocIDs(out.Path, func(string) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
			t.Fatalf("%s: callback error: %v after %d ids", format, err, n)
		}
		if err := ReadDocIDs(filepath.Join(dir, "missing.parquet"), func(string) error { return nil }); err == nil {
			t.Fatalf("%s: a missing file read without error", format)
		}
	}
}
