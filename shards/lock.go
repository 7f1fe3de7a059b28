package shards

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// LockDir is the directory, inside an output directory, of the lock files
// that keep concurrent runs from writing the same shard.
const LockDir = "_locks"

// runLockName is the lock every run holds shared while it runs; a run that
// can take it exclusively is alone and may remove temp files.
const runLockName = "_run.lock"

// Lock is an advisory lock (flock(2)) on a file in an output directory's
// _locks directory. The kernel releases it when the process dies, so a
// killed run never leaves a stale lock behind; the lock files themselves
// stay (removing them would race with a process about to lock them).
// flock works across processes of one machine and, on Linux, across NFS
// clients (as POSIX record locks); see docs/RELIABILITY.md.
type Lock struct {
	f    *os.File
	path string
}

// ShardLockName returns the lock file name, relative to LockDir, of the
// shard with base name base.
func ShardLockName(base string) string { return base + ".lock" }

func openLockFile(outDir, name string) (*os.File, string, error) {
	root, err := os.OpenRoot(outDir)
	if err != nil {
		return nil, "", fmt.Errorf("open output directory: %w", err)
	}
	defer root.Close()
	if err := root.Mkdir(LockDir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, "", fmt.Errorf("create lock directory in %s: %w", outDir, err)
	}
	// OpenRoot on the Root refuses a _locks that leads out of outDir.
	locks, err := root.OpenRoot(LockDir)
	if err != nil {
		return nil, "", fmt.Errorf("open lock directory in %s: %w: %w", outDir, ErrUnsafePath, err)
	}
	defer locks.Close()
	path := filepath.Join(outDir, LockDir, name)
	f, err := locks.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, "", fmt.Errorf("open lock file %s: %w", path, err)
	}
	return f, path, nil
}

// flock applies how (syscall.LOCK_SH or LOCK_EX) to f without blocking and
// reports whether it got the lock.
func flock(f *os.File, how int) (bool, error) {
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.EWOULDBLOCK):
			return false, nil
		case errors.Is(err, syscall.EINTR):
			continue
		default:
			return false, err
		}
	}
}

// TryLockShard takes the shard's exclusive lock if no other process holds
// it; ok is false when another does.
func TryLockShard(outDir, base string) (l *Lock, ok bool, err error) {
	if err := checkBase(base); err != nil {
		return nil, false, fmt.Errorf("lock shard: %w", err)
	}
	f, path, err := openLockFile(outDir, ShardLockName(base))
	if err != nil {
		return nil, false, err
	}
	got, err := flock(f, syscall.LOCK_EX)
	if err != nil || !got {
		f.Close()
		if err != nil {
			return nil, false, fmt.Errorf("lock %s: %w", path, err)
		}
		return nil, false, nil
	}
	return &Lock{f: f, path: path}, true, nil
}

// LockShard waits, polling every interval, until it holds the shard's
// exclusive lock or ctx ends.
func LockShard(ctx context.Context, outDir, base string, interval time.Duration) (*Lock, error) {
	for {
		l, ok, err := TryLockShard(outDir, base)
		if err != nil || ok {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// Unlock releases the lock. It is safe to call on nil and more than once.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor releases the flock
	l.f = nil
	if err != nil {
		return fmt.Errorf("unlock %s: %w", l.path, err)
	}
	return nil
}

// RunLock is held, shared, by every run writing into an output directory.
type RunLock struct{ Lock }

// LockRun takes outDir's run lock shared, waiting (polling) while a run
// holds it exclusively to clean up. First, when no other run holds it at
// all, it takes it exclusively and removes every temp file left by killed
// runs; removed lists them.
func LockRun(ctx context.Context, outDir string) (l *RunLock, removed []string, err error) {
	f, path, err := openLockFile(outDir, runLockName)
	if err != nil {
		return nil, nil, err
	}
	l = &RunLock{Lock{f: f, path: path}}
	alone, err := flock(f, syscall.LOCK_EX)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if alone {
		removed, err = CleanTemp(outDir, 0)
		if err != nil {
			f.Close()
			return nil, nil, err
		}
	}
	for {
		got, err := flock(f, syscall.LOCK_SH)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if got {
			return l, removed, nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// CleanIfAlone removes the temp files of killed runs when no other run
// holds the run lock, and reports what it removed. It keeps holding the
// lock (shared again) either way; call Unlock when done.
func (l *RunLock) CleanIfAlone() ([]string, error) {
	// A failed conversion may drop the shared lock (flock(2)): take it
	// again afterwards in every case.
	alone, err := flock(l.f, syscall.LOCK_EX)
	var removed []string
	if err == nil && alone {
		removed, err = CleanTemp(filepath.Dir(filepath.Dir(l.path)), 0)
	} else if err != nil {
		err = fmt.Errorf("lock %s: %w", l.path, err)
	}
	if _, lerr := flock(l.f, syscall.LOCK_SH); lerr != nil && err == nil {
		err = fmt.Errorf("lock %s: %w", l.path, lerr)
	}
	return removed, err
}
