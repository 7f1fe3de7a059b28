package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/shards"
)

// sharedBert is the bert-base-uncased tokenizer of the repository's test
// data (testdata/README.md).
const sharedBert = "../../testdata/tokenizers/bert-base-uncased/tokenizer.json"

// runCLI runs the root command in-process and returns stdout and the exit code.
func runCLI(t *testing.T, stdin string, args ...string) (string, int, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&bytes.Buffer{})
	ctx := context.Background()
	err := cmd.ExecuteContext(ctx)
	return out.String(), exitCode(ctx, err), err
}

// TestTokenizeCommandMatchesReference feeds the tokenizer parity cases
// through `splash tokenize` (grouped by max length) and compares every line
// with the ids Hugging Face tokenizers produced for them.
func TestTokenizeCommandMatchesReference(t *testing.T) {
	modelDir := t.TempDir()
	data, err := os.ReadFile(sharedBert)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(modelDir, "tokenizer.json"), data, 0o644)

	type tcase struct {
		Text      string `json:"text"`
		MaxLength int    `json:"max_length"`
	}
	type expected struct {
		IDs []int32 `json:"ids"`
	}
	cases := readJSONL[tcase](t, "../../encode/tokenizer/testdata/cases.jsonl")
	want := readJSONL[expected](t, "../../encode/tokenizer/testdata/expected.jsonl")
	byLength := map[int][]int{}
	for i, c := range cases {
		byLength[c.MaxLength] = append(byLength[c.MaxLength], i)
	}
	checked := 0
	for maxLength, idx := range byLength {
		var in strings.Builder
		for _, i := range idx {
			line, _ := json.Marshal(cases[i].Text)
			in.Write(line)
			in.WriteByte('\n')
		}
		args := []string{"tokenize", "--model", modelDir}
		if maxLength > 0 {
			args = append(args, "--max-length", strconv.Itoa(maxLength))
		}
		out, code, err := runCLI(t, in.String(), args...)
		if code != 0 {
			if maxLength > 0 && maxLength < 2 && code == exitUsage {
				continue // below [CLS]+[SEP]: refused as bad usage, by design
			}
			t.Fatalf("max length %d: exit %d: %v", maxLength, code, err)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != len(idx) {
			t.Fatalf("max length %d: %d output lines for %d inputs", maxLength, len(lines), len(idx))
		}
		for k, i := range idx {
			var got []int32
			if err := json.Unmarshal([]byte(lines[k]), &got); err != nil {
				t.Fatalf("line %q: %v", lines[k], err)
			}
			if !equalIDs(got, want[i].IDs) {
				t.Errorf("case %d %q (max %d): got %v, want %v", i, cases[i].Text, maxLength, got, want[i].IDs)
			}
			checked++
		}
	}
	if checked < 300 {
		t.Fatalf("only %d cases checked", checked)
	}
}

func TestTokenizeCommandErrors(t *testing.T) {
	modelDir := t.TempDir()
	data, err := os.ReadFile(sharedBert)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(modelDir, "tokenizer.json"), data, 0o644)

	_, code, err := runCLI(t, "\"ok\"\nnot json\n", "tokenize", "--model", modelDir)
	if code != exitBadData || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: exit %d, err %v; want exit %d naming line 2", code, err, exitBadData)
	}
	_, code, _ = runCLI(t, "", "tokenize")
	if code != exitUsage {
		t.Errorf("missing --model: exit %d, want %d", code, exitUsage)
	}
	_, code, err = runCLI(t, "", "tokenize", "--model", t.TempDir())
	if code != exitBadData || !strings.Contains(err.Error(), "tokenizer.json") {
		t.Errorf("no tokenizer.json: exit %d, err %v", code, err)
	}
	_, code, _ = runCLI(t, "", "encode", "--model", modelDir, "--input", "x.parquet", "--output", t.TempDir(), "--pooling", "mean")
	if code != exitUsage {
		t.Errorf("--pooling mean: exit %d, want %d", code, exitUsage)
	}
	_, code, _ = runCLI(t, "", "encode", "--bogus-flag")
	if code != exitUsage {
		t.Errorf("unknown flag: exit %d, want %d", code, exitUsage)
	}
}

func readJSONL[T any](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, v)
	}
	return out
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestExitCodeOfOSErrors: a full disk, a quota, an I/O error or a timeout is
// transient (exit 4: re-running resumes), even under a bad-input wrapper
// (an input that cannot be read now); a missing input stays bad data and
// other OS errors (permissions, a link out of the output directory) fail.
func TestExitCodeOfOSErrors(t *testing.T) {
	osErr := func(errno syscall.Errno) error {
		return fmt.Errorf("commit out/docs-00000.parquet: %w", &fs.PathError{Op: "write", Path: "out/_tmp.docs-00000.parquet.1", Err: errno})
	}
	ctx := context.Background()
	for _, c := range []struct {
		err  error
		want int
	}{
		{osErr(syscall.ENOSPC), exitTransient},
		{osErr(syscall.EDQUOT), exitTransient},
		{osErr(syscall.EIO), exitTransient},
		{osErr(syscall.EAGAIN), exitTransient},
		{osErr(syscall.ETIMEDOUT), exitTransient},
		{fmt.Errorf("%w: %w", encode.ErrBadInput, osErr(syscall.EIO)), exitTransient},
		{fmt.Errorf("%w: %w", encode.ErrBadInput, osErr(syscall.ENOENT)), exitBadData},
		{osErr(syscall.EACCES), exitFailure},
		{osErr(syscall.EROFS), exitFailure},
		{fmt.Errorf("check resume: %w: out/_manifest.x.json is a symbolic link", shards.ErrUnsafePath), exitFailure},
		{fmt.Errorf("%w: batch tokens", encode.ErrSettings), exitUsage},
		{context.Canceled, exitTransient},
		{nil, exitOK},
	} {
		if got := exitCode(ctx, c.err); got != c.want {
			t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}
