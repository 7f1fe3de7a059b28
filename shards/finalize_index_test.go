package shards

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
)

// TestWriteSuccessOnceRace starts several writers of _SUCCESS at once, in
// a directory and in a bucket (the fake S3): exactly one must succeed, the
// others must get ErrExists, and _SUCCESS must hold the winner's summary,
// whole. A later writer loses too.
func TestWriteSuccessOnceRace(t *testing.T) {
	type summary struct {
		Writer int `json:"writer"`
	}
	ctx := context.Background()
	f := newFakeS3(t)
	const writers = 8
	for _, kind := range []string{"dir", "bucket"} {
		t.Run(kind, func(t *testing.T) {
			for round := range 5 {
				dir := t.TempDir()
				var st *Store
				write := func(i int) error { return WriteSuccessOnce(dir, summary{i}) }
				read := func() summary {
					var s summary
					if err := ReadSuccess(dir, &s); err != nil {
						t.Fatal(err)
					}
					return s
				}
				if kind == "bucket" {
					st = f.open(t, fmt.Sprintf("race-%d/", round))
					write = func(i int) error { return st.WriteSuccessOnce(ctx, summary{i}) }
					read = func() summary {
						if err := st.Download(ctx, SuccessFile, dir+"/"+SuccessFile); err != nil {
							t.Fatal(err)
						}
						var s summary
						if err := ReadSuccess(dir, &s); err != nil {
							t.Fatal(err)
						}
						return s
					}
				}
				errs := make([]error, writers)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i := range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						errs[i] = write(i)
					}()
				}
				close(start)
				wg.Wait()
				winner := -1
				for i, err := range errs {
					switch {
					case err == nil && winner >= 0:
						t.Errorf("round %d: writers %d and %d both wrote _SUCCESS", round, winner, i)
					case err == nil:
						winner = i
					case !errors.Is(err, ErrExists):
						t.Errorf("round %d: writer %d: %v, want ErrExists", round, i, err)
					}
				}
				if winner < 0 {
					t.Fatalf("round %d: no writer wrote _SUCCESS: %v", round, errs)
				}
				if got := read(); got.Writer != winner {
					t.Errorf("round %d: _SUCCESS holds writer %d's summary, writer %d won", round, got.Writer, winner)
				}
				if err := write(writers); !errors.Is(err, ErrExists) {
					t.Errorf("round %d: a later writer: %v, want ErrExists", round, err)
				}
				if kind == "dir" {
					entries, _ := os.ReadDir(dir)
					for _, e := range entries {
						if e.Name() != SuccessFile {
							t.Errorf("round %d: %s left in the directory", round, e.Name())
						}
					}
					if ok, err := HasSuccess(dir); !ok || err != nil {
						t.Errorf("HasSuccess: %v, %v", ok, err)
					}
				} else if ok, err := st.HasSuccess(ctx); !ok || err != nil {
					t.Errorf("HasSuccess: %v, %v", ok, err)
				}
			}
		})
	}
	if ok, err := HasSuccess(t.TempDir()); ok || err != nil {
		t.Errorf("HasSuccess of an empty directory: %v, %v", ok, err)
	}
}
