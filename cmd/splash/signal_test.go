package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/splash-encode/splash/gpu/ort"
)

const cranfieldDocs = "../../testdata/cranfield/docs-*.parquet"

// buildSplash builds the CLI into a temporary directory.
func buildSplash(t *testing.T) string {
	t.Helper()
	if err := ort.Usable(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if m, _ := filepath.Glob(cranfieldDocs); len(m) == 0 {
		t.Fatalf("no Cranfield shards at %s", cranfieldDocs)
	}
	bin := filepath.Join(t.TempDir(), "splash")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func splashCmd(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	lib, _ := ort.ResolveLibrary("")
	cmd.Env = append(os.Environ(), ort.LibraryEnv+"="+lib)
	return cmd
}

func exitStatus(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestInterruptAndResume sends SIGINT to a running `splash encode` once the
// first shard is committed, checks that it exits with the interrupted code
// and leaves no partial shard looking done, re-runs the same command to
// completion, and compares the result byte for byte with an uninterrupted
// run. Then `splash verify` must accept the output and reject a modified,
// a truncated and a missing shard.
func TestInterruptAndResume(t *testing.T) {
	bin := buildSplash(t)
	model := filepath.Join(t.TempDir(), "model")
	if out, err := splashCmd(bin, "model", "gen-test", "--output", model, "--layers", "2", "--hidden", "64", "--heads", "4",
		"--tokenizer", sharedBert).CombinedOutput(); err != nil {
		t.Fatalf("gen-test: %v\n%s", err, out)
	}
	encodeArgs := func(out string) []string {
		return []string{"encode", "--model", model, "--input", cranfieldDocs, "--output", out, "--title-column", "title", "--log-format", "json"}
	}

	full := filepath.Join(t.TempDir(), "full")
	if out, err := splashCmd(bin, encodeArgs(full)...).CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}

	resumed := filepath.Join(t.TempDir(), "resumed")
	cmd := splashCmd(bin, encodeArgs(resumed)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if m, _ := filepath.Glob(filepath.Join(resumed, "_manifest.*.json")); len(m) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	interruptedEarly := exitStatus(err) == exitTransient
	switch exitStatus(err) {
	case exitTransient:
	case exitOK:
		t.Log("the run finished before SIGINT arrived; checking the re-run only")
	default:
		t.Fatalf("interrupted run exited %d: %v\n%s", exitStatus(err), err, stderr.String())
	}
	if interruptedEarly {
		if _, err := os.Stat(filepath.Join(resumed, "_SUCCESS")); err == nil {
			t.Error("an interrupted run wrote _SUCCESS")
		}
		entries, _ := os.ReadDir(resumed)
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, "_tmp.") {
				t.Errorf("interrupted run left temp file %s", name)
			}
			if strings.HasSuffix(name, ".parquet") && !strings.HasPrefix(name, "_") { // not _vocabulary.parquet
				if _, err := os.Stat(filepath.Join(resumed, "_manifest."+strings.TrimSuffix(name, ".parquet")+".json")); err != nil {
					t.Errorf("%s has its final name but no manifest", name)
				}
			}
		}
	}
	if out, err := splashCmd(bin, encodeArgs(resumed)...).CombinedOutput(); err != nil {
		t.Fatalf("re-run: %v\n%s", err, out)
	}
	shardsFull, _ := filepath.Glob(filepath.Join(full, "[^_]*.parquet")) // not _vocabulary.parquet
	if len(shardsFull) != 4 {
		t.Fatalf("uninterrupted run wrote %d shards", len(shardsFull))
	}
	for _, p := range shardsFull {
		a, _ := os.ReadFile(p)
		b, err := os.ReadFile(filepath.Join(resumed, filepath.Base(p)))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: interrupted-and-resumed output differs from the uninterrupted one (%v)", filepath.Base(p), err)
		}
	}

	// splash inspect on the directory: schema from the file, totals, top terms.
	out, err := splashCmd(bin, "inspect", full, "--rows", "1").CombinedOutput()
	if err != nil {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	for _, want := range []string{"doc_id: utf8 not null", "term_ids: list<uint32> not null", "weights: list<float32>",
		"impacts: list<uint16>", "num_tokens: int32", "truncated: bool", "splash.schema_version = 1", "4 shards",
		"rows 1400,", "empty 2", "non-zeros per row: mean", "terms in most rows: "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}

	// splash verify: accepts the output, rejects damage.
	if out, err := splashCmd(bin, "verify", resumed).CombinedOutput(); err != nil {
		t.Fatalf("verify on a good directory: %v\n%s", err, out)
	}
	damage := map[string]func(path string){
		"modified": func(p string) {
			data, _ := os.ReadFile(p)
			data[len(data)/2] ^= 0xff
			os.WriteFile(p, data, 0o644)
		},
		"truncated": func(p string) {
			data, _ := os.ReadFile(p)
			os.WriteFile(p, data[:len(data)-100], 0o644)
		},
		"missing": func(p string) { os.Remove(p) },
	}
	for name, spoil := range damage {
		dir := filepath.Join(t.TempDir(), name)
		os.MkdirAll(dir, 0o755)
		entries, _ := os.ReadDir(full)
		for _, e := range entries {
			data, _ := os.ReadFile(filepath.Join(full, e.Name()))
			os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644)
		}
		spoil(filepath.Join(dir, "docs-00002.parquet"))
		out, err := splashCmd(bin, "verify", dir).CombinedOutput()
		if exitStatus(err) != exitBadData || !strings.Contains(string(out), "FAIL docs-00002") {
			t.Errorf("verify on a %s shard: exit %d, output:\n%s", name, exitStatus(err), out)
		}
	}
}
