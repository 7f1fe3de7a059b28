package shards

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func strPtr(s string) *string { return &s }

// A dead-letter file is written under a temp name, committed with the
// shard, named with its sha256 in the manifest, and verified with it.
func TestRejectedFileCommitAndVerify(t *testing.T) {
	dir := t.TempDir()
	m := committedShard(t, dir, "docs", FormatParquet, 5)

	empty, err := NewRejectedWriter(dir, "docs")
	if err != nil {
		t.Fatal(err)
	}
	if mr, err := empty.Commit(); err != nil || mr != nil {
		t.Fatalf("commit without records: %+v, %v; want nothing written", mr, err)
	}
	if _, err := os.Stat(filepath.Join(dir, RejectedName("docs"))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a dead-letter file without records exists: %v", err)
	}

	want := []Rejected{
		{Input: "in/docs.parquet", RowGroup: 0, Row: 3, ID: nil, Reason: RejectNullID, Detail: "null id"},
		{Input: "in/docs.parquet", RowGroup: 1, Row: 17, ID: strPtr("d\"7\n<é>"), Reason: RejectDuplicateID, Detail: "id first seen at row 2"},
	}
	w, err := NewRejectedWriter(dir, "docs")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range want {
		if err := w.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if names := dirNames(t, dir); !containsTemp(names) {
		t.Fatalf("no temp file while writing: %v", names)
	}
	mr, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if mr == nil || mr.Rows != 2 || mr.Path != RejectedName("docs") {
		t.Fatalf("commit: %+v", mr)
	}
	var got []Rejected
	if err := ReadRejected(filepath.Join(dir, mr.Path), func(r Rejected) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read back %+v, want %+v", got, want)
	}
	m.Rejected = mr
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyShard(dir, "docs"); err != nil {
		t.Fatalf("verify with a dead-letter file: %v", err)
	}
	// A changed dead-letter file no longer verifies, nor a missing one.
	p := filepath.Join(dir, mr.Path)
	data, _ := os.ReadFile(p)
	if err := os.WriteFile(p, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyShard(dir, "docs"); !errors.Is(err, ErrMismatch) {
		t.Fatalf("verify with a modified dead-letter file: %v, want ErrMismatch", err)
	}
	os.Remove(p)
	if _, err := VerifyShard(dir, "docs"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("verify with a missing dead-letter file: %v, want not exist", err)
	}
	// RemoveShard removes the dead-letter file with the shard.
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := RemoveShard(dir, "docs"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("RemoveShard left the dead-letter file: %v", err)
	}
	// A manifest naming another shard's dead-letter file is invalid.
	m.Rejected = &ManifestRejected{Path: RejectedName("other"), Rows: 1, Size: 1, SHA256: mr.SHA256}
	if err := WriteManifest(dir, m); !errors.Is(err, ErrInvalidManifest) {
		t.Fatalf("manifest with another shard's dead-letter file: %v, want ErrInvalidManifest", err)
	}
}

func TestRejectedWriterAbort(t *testing.T) {
	dir := t.TempDir()
	w, err := NewRejectedWriter(dir, "docs")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(Rejected{Input: "x", Reason: RejectNullText}); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Fatalf("abort left %v", names)
	}
	if err := w.Add(Rejected{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("add after abort: %v, want ErrClosed", err)
	}
	if _, err := NewRejectedWriter(dir, "../x"); err == nil {
		t.Fatal("a base name with a separator was accepted")
	}
}

func containsTemp(names []string) bool {
	for _, n := range names {
		if IsTempName(n) {
			return true
		}
	}
	return false
}
