//go:build linux

package job

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/splash-encode/splash/encode/testmodel"
	"github.com/splash-encode/splash/shards"
)

// mountTmpfs mounts a tmpfs of kib KiB on dir (unmounted at cleanup), or
// skips the test saying why it cannot.
func mountTmpfs(t *testing.T, dir string, kib int64) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%dk,mode=0755", kib)); err != nil {
		t.Skipf("skipping: cannot mount a tmpfs on %s (needs root or CAP_SYS_ADMIN; uid %d): %v", dir, os.Geteuid(), err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
}

// diskPages is what a file of size bytes takes on a tmpfs, in 4 KiB pages.
func diskPages(size int64) int64 { return (size + 4095) / 4096 }

// manifestsByCommit returns the base names of the shards in dir in the order
// their manifests were written (created_at).
func manifestsByCommit(t *testing.T, dir string) []string {
	t.Helper()
	type entry struct {
		base string
		at   time.Time
	}
	var es []entry
	for _, p := range mustGlob(t, filepath.Join(dir, "_manifest.*.json")) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			CreatedAt time.Time `json:"created_at"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		base := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "_manifest."), ".json")
		es = append(es, entry{base, m.CreatedAt})
	}
	slices.SortFunc(es, func(a, b entry) int { return a.at.Compare(b.at) })
	var bases []string
	for _, e := range es {
		bases = append(bases, e.base)
	}
	return bases
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestRunOnAFullDisk encodes two Cranfield shards (700 documents, max
// length 64, to keep it short) into a tmpfs too small for them: the
// run fails with ENOSPC naming the output directory, leaves no temp file,
// no _SUCCESS, and no impact shard with its final name that its manifest
// does not verify. With the tmpfs enlarged, a re-run completes (skipping
// the shard done before the disk filled up) and its files equal those of a
// run into an ordinary directory.
func TestRunOnAFullDisk(t *testing.T) {
	dir, _ := cranfieldDocs(t)
	model := genModel(t, testmodel.Config{Layers: 1, Hidden: 32, Heads: 2, Seed: 34})
	cfg := func(out string) Config {
		c := baseConfig(model, out, filepath.Join(dir, "docs-0000[01].parquet"))
		c.MaxLength = 64
		return c
	}

	// The reference run, into an ordinary directory, sizes the tmpfs.
	start := time.Now()
	ref := filepath.Join(t.TempDir(), "ref")
	if _, err := Run(context.Background(), cfg(ref), quietLog()); err != nil {
		t.Fatal(err)
	}
	order := manifestsByCommit(t, ref)
	if len(order) != 2 {
		t.Fatalf("reference run: %d manifests", len(order))
	}
	// Room for the vocabulary and the first shard committed (with its
	// manifest and dead-letter file, if any), then half of the second
	// shard: the run fails writing the second shard's data.
	pages := diskPages(fileSize(t, filepath.Join(ref, shards.VocabularyFile)))
	first := order[0]
	for _, name := range []string{first + ".parquet", shards.ManifestName(first), shards.RejectedName(first)} {
		if st, err := os.Stat(filepath.Join(ref, name)); err == nil {
			pages += diskPages(st.Size())
		}
	}
	second := diskPages(fileSize(t, filepath.Join(ref, order[1]+".parquet")))
	if second < 4 {
		t.Fatalf("the second shard takes %d pages: too small to fail in its middle", second)
	}
	pages += second / 2
	t.Logf("reference run %s; shards committed in the order %v; tmpfs of %d KiB (vocabulary + %s + half of %s, %d of %d pages)",
		time.Since(start).Round(time.Millisecond), order, pages*4, first, order[1], second/2, second)

	mnt := t.TempDir()
	mountTmpfs(t, mnt, pages*4)
	out := filepath.Join(mnt, "out")
	start = time.Now()
	_, err := Run(context.Background(), cfg(out), quietLog())
	t.Logf("run on the full disk (%s): %v", time.Since(start).Round(time.Millisecond), err)
	if err == nil {
		t.Fatal("the run succeeded on a tmpfs too small for its output")
	}
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left on device") || !strings.Contains(err.Error(), out) {
		t.Errorf("error %q does not say the disk is full and name the output directory %s", err, out)
	}
	verified := 0
	for _, name := range listDir(t, out) {
		switch {
		case shards.IsTempName(name):
			t.Errorf("the failed run left the temp file %s", name)
		case name == shards.SuccessFile:
			t.Error("the failed run wrote _SUCCESS")
		case name == shards.VocabularyFile:
			if _, err := shards.ReadVocabulary(filepath.Join(out, name)); err != nil {
				t.Errorf("the vocabulary does not read: %v", err)
			}
		case strings.HasSuffix(name, ".parquet"):
			if _, err := shards.VerifyShard(out, strings.TrimSuffix(name, ".parquet")); err != nil {
				t.Errorf("%s has its final name but does not verify: %v", name, err)
			}
			verified++
		}
	}
	if verified != 1 {
		t.Errorf("%d verified shards after the failure, want 1 (%s): %v", verified, first, listDir(t, out))
	}

	// Free space: the re-run completes.
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", syscall.MS_REMOUNT, "size=64m"); err != nil {
		t.Fatalf("remount the tmpfs larger: %v", err)
	}
	start = time.Now()
	sum, err := Run(context.Background(), cfg(out), quietLog())
	if err != nil {
		t.Fatalf("re-run after freeing space: %v", err)
	}
	t.Logf("re-run (%s): encoded %d shards, skipped %d", time.Since(start).Round(time.Millisecond), sum.Shards, sum.Skipped)
	if sum.Skipped != 1 || sum.Shards != 1 {
		t.Errorf("re-run encoded %d shards and skipped %d, want 1 and 1", sum.Shards, sum.Skipped)
	}
	if err := shards.ReadSuccess(out, nil); err != nil {
		t.Errorf("no _SUCCESS after the re-run: %v", err)
	}
	for _, base := range order {
		if _, err := shards.VerifyShard(out, base); err != nil {
			t.Error(err)
		}
	}
	// The same files as the reference run: shards and vocabulary byte for
	// byte, manifests but for their creation time.
	for _, name := range listDir(t, ref) {
		if name == shards.SuccessFile || strings.HasPrefix(name, "_lock") {
			continue
		}
		a, errA := os.ReadFile(filepath.Join(ref, name))
		b, errB := os.ReadFile(filepath.Join(out, name))
		if errA != nil || errB != nil {
			if fi, _ := os.Stat(filepath.Join(ref, name)); fi != nil && fi.IsDir() {
				continue
			}
			t.Errorf("%s: %v, %v", name, errA, errB)
			continue
		}
		if strings.HasPrefix(name, "_manifest.") {
			a, b = withoutCreatedAt(t, a), withoutCreatedAt(t, b)
		}
		if !bytes.Equal(a, b) {
			msg := fmt.Sprintf("%d vs %d bytes", len(a), len(b))
			if strings.HasSuffix(name, ".parquet") {
				msg = firstRowDifference(t, filepath.Join(ref, name), filepath.Join(out, name))
			}
			t.Errorf("%s differs from the reference run's: %s", name, msg)
		}
	}
}

func withoutCreatedAt(t *testing.T, data []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "created_at")
	// The stats describe the run (its batches, its time), not the output:
	// a re-run batches the shard differently.
	delete(m, "stats")
	out, _ := json.Marshal(m)
	return out
}
