package job

import (
	"context"
	"reflect"
	"testing"

	"github.com/splash-encode/splash/shards"
)

// Ids found in two shards are reported once each, with the shards in input
// order; ids in one shard only are not.
func TestFindDuplicateIDs(t *testing.T) {
	dir := t.TempDir()
	write := func(base string, ids ...string) shards.Manifest {
		w, err := shards.NewWriter(dir, base, shards.FormatParquet, shards.Metadata{VocabSize: 10, MaxLength: 8, Pooling: "max", Scale: 100}, shards.WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if err := w.Write(shards.Row{DocID: id}); err != nil {
				t.Fatal(err)
			}
		}
		out, err := w.Commit()
		if err != nil {
			t.Fatal(err)
		}
		return shards.Manifest{Output: shards.NewManifestOutput(out, shards.FormatParquet)}
	}
	mans := []shards.Manifest{write("x", "a", "b", "c"), write("y", "c", "d", "a"), write("z", "e", "a")}
	got, err := findDuplicateIDs(context.Background(), dir, mans)
	if err != nil {
		t.Fatal(err)
	}
	want := []duplicateID{{id: "a", outputs: []string{"x.parquet", "y.parquet", "z.parquet"}}, {id: "c", outputs: []string{"x.parquet", "y.parquet"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	none, err := findDuplicateIDs(context.Background(), dir, mans[2:])
	if err != nil || len(none) != 0 {
		t.Fatalf("one shard: %+v, %v", none, err)
	}
}
