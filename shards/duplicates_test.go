package shards

import (
	"context"
	"reflect"
	"testing"
)

// Ids found in two shards are reported once each, with the shards in input
// order; ids in one shard only are not.
func TestFindDuplicateIDs(t *testing.T) {
	dir := t.TempDir()
	write := func(base string, ids ...string) Manifest {
		w, err := NewWriter(dir, base, FormatParquet, Metadata{VocabSize: 10, MaxLength: 8, Pooling: "max", Scale: 100}, WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if err := w.Write(Row{DocID: id}); err != nil {
				t.Fatal(err)
			}
		}
		out, err := w.Commit()
		if err != nil {
			t.Fatal(err)
		}
		return Manifest{Output: NewManifestOutput(out, FormatParquet)}
	}
	mans := []Manifest{write("x", "a", "b", "c"), write("y", "c", "d", "a"), write("z", "e", "a")}
	got, err := FindDuplicateIDs(context.Background(), dir, mans)
	if err != nil {
		t.Fatal(err)
	}
	want := []DuplicateID{{ID: "a", Outputs: []string{"x.parquet", "y.parquet", "z.parquet"}}, {ID: "c", Outputs: []string{"x.parquet", "y.parquet"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	none, err := FindDuplicateIDs(context.Background(), dir, mans[2:])
	if err != nil || len(none) != 0 {
		t.Fatalf("one shard: %+v, %v", none, err)
	}
}
