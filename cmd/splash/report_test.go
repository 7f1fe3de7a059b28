package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runReportCommand runs `splash report` (the command alone: the root
// registers it) and returns stdout and the exit code.
func runReportCommand(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := newReportCommand()
	var out bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&bytes.Buffer{})
	ctx := context.Background()
	err := cmd.ExecuteContext(ctx)
	return out.String(), exitCode(ctx, err)
}

func TestReportCommand(t *testing.T) {
	dir := writeInspectFixture(t, true)
	outDir := t.TempDir()
	page := filepath.Join(outDir, "report.html")
	out, code := runReportCommand(t, "--input", dir, "--output", page)
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if want := "wrote " + page + ": 2 shards, 5 documents\n"; out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	data, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	html := string(data)
	for _, want := range []string{`<figure id="plot-nnz">`, `<figure id="plot-throughput">`, `<tr id="summary-documents"><th>Documents</th><td class="num">5</td></tr>`, "delta"} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if entries, _ := os.ReadDir(outDir); len(entries) != 1 {
		t.Errorf("%d entries beside the report, want none (temp file left?)", len(entries)-1)
	}

	for _, c := range []struct {
		name string
		args []string
		want int
	}{
		{"no input", []string{"--output", page}, exitUsage},
		{"no output", []string{"--input", dir}, exitUsage},
		{"missing input", []string{"--input", filepath.Join(dir, "nope"), "--output", page}, exitBadData},
		{"no shards", []string{"--input", t.TempDir(), "--output", page}, exitBadData},
		{"a file as input", []string{"--input", filepath.Join(dir, "one.parquet"), "--output", page}, exitBadData},
		{"unwritable output", []string{"--input", dir, "--output", filepath.Join(outDir, "missing", "r.html")}, exitFailure},
	} {
		if _, code := runReportCommand(t, c.args...); code != c.want {
			t.Errorf("%s: exit %d, want %d", c.name, code, c.want)
		}
	}
}
