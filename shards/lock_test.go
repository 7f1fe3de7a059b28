package shards

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// flock(2) locks belong to an open file description, so two opens in one
// process exclude each other as two processes would.
func TestShardLockExcludes(t *testing.T) {
	dir := t.TempDir()
	a, ok, err := TryLockShard(dir, "docs")
	if err != nil || !ok {
		t.Fatalf("first lock: ok %v, %v", ok, err)
	}
	if _, ok, err := TryLockShard(dir, "docs"); err != nil || ok {
		t.Fatalf("second lock while the first is held: ok %v, %v", ok, err)
	}
	if _, ok, err := TryLockShard(dir, "other"); err != nil || !ok {
		t.Fatalf("another shard's lock: ok %v, %v", ok, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := LockShard(ctx, dir, "docs", 10*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting for a held lock: %v, want the context's deadline", err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		a.Unlock()
	}()
	b, err := LockShard(context.Background(), dir, "docs", 10*time.Millisecond)
	if err != nil {
		t.Fatalf("waiting for a released lock: %v", err)
	}
	if err := b.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := b.Unlock(); err != nil {
		t.Fatalf("second unlock: %v", err)
	}
	if _, _, err := TryLockShard(dir, "../escape"); err == nil {
		t.Fatal("a base name with a separator was locked")
	}
}

// A run alone in the directory removes temp files of killed runs; with
// another run holding the run lock it leaves them (they may be that run's).
func TestRunLockCleansOnlyWhenAlone(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, tempPrefix+"docs.parquet.123")
	if err := os.WriteFile(tmp, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	first, removed, err := LockRun(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != filepath.Base(tmp) {
		t.Fatalf("first run removed %v, want the temp file", removed)
	}
	if err := os.WriteFile(tmp, []byte("being written"), 0o600); err != nil {
		t.Fatal(err)
	}
	second, removed, err := LockRun(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 0 {
		t.Fatalf("second run removed %v while the first runs", removed)
	}
	if removed, err := first.CleanIfAlone(); err != nil || len(removed) != 0 {
		t.Fatalf("CleanIfAlone with another run: %v, %v", removed, err)
	}
	if err := second.Unlock(); err != nil {
		t.Fatal(err)
	}
	// The first run still holds its shared lock after the failed upgrade:
	// a newcomer cannot take it exclusively.
	if f, _, err := openLockFile(dir, runLockName); err != nil {
		t.Fatal(err)
	} else {
		got, err := flock(f, syscall.LOCK_EX)
		f.Close()
		if err != nil || got {
			t.Fatalf("exclusive run lock while the first run holds it shared: got %v, %v", got, err)
		}
	}
	if removed, err := first.CleanIfAlone(); err != nil || len(removed) != 1 {
		t.Fatalf("CleanIfAlone alone: %v, %v", removed, err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temp file still there: %v", err)
	}
	first.Unlock()
}

// A _locks planted as a link to a directory outside is refused: no lock
// file is created through it.
func TestLockDirLinkOutsideIsRefused(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, LockDir)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := TryLockShard(dir, "docs"); !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("lock through an escaping _locks: %v, want ErrUnsafePath", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("lock file created outside: %v", entries)
	}
}
