package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// runCLIStreams runs the CLI in-process as runCLI does, returning standard
// output and standard error apart.
func runCLIStreams(t *testing.T, args ...string) (stdout, stderr string, code int, err error) {
	t.Helper()
	cmd := newRootCommand()
	var out, errOut bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(""))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	ctx := context.Background()
	err = cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), exitCode(ctx, err), err
}

// decodeSummary decodes text as exactly one JSON object on one line.
func decodeSummary(t *testing.T, what, text string) map[string]any {
	t.Helper()
	text = strings.TrimSuffix(text, "\n")
	if text == "" || strings.Contains(text, "\n") {
		t.Fatalf("%s: want one JSON line, got %q", what, text)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, text)
	}
	return m
}

func wantFields(t *testing.T, what string, m map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s: %s = %v (present %v), want %v\n%v", what, k, got, ok, v, m)
		}
	}
}

// TestSummariesJSON checks that --log-format json turns the end-of-run
// summaries of verify, export and finalize into one JSON object each, with
// the numbers of the text summary, and that text stays the default.
func TestSummariesJSON(t *testing.T) {
	dir := exportTestDir(t)

	out, _, code, err := runCLIStreams(t, "verify", dir)
	if code != exitOK || !strings.HasPrefix(out, "ok   docs.parquet: 3 rows") {
		t.Fatalf("verify (text): exit %d (%v)\n%s", code, err, out)
	}
	out, _, code, err = runCLIStreams(t, "--log-format", "json", "verify", dir)
	if code != exitOK {
		t.Fatalf("verify: exit %d (%v)\n%s", code, err, out)
	}
	m := decodeSummary(t, "verify", out)
	wantFields(t, "verify", m, map[string]any{"summary": "verify", "dir": dir, "shards": 1.0, "failed": 0.0})
	if r, _ := m["results"].([]any); len(r) != 1 || r[0].(map[string]any)["rows"] != 3.0 || r[0].(map[string]any)["ok"] != true {
		t.Errorf("verify: results %v, want one ok shard of 3 rows", m["results"])
	}

	dest := filepath.Join(t.TempDir(), "docs.jsonl")
	_, errOut, code, err := runCLIStreams(t, "export", "--format", "anserini", "--input", dir, "--output", dest)
	if code != exitOK || !strings.Contains(errOut, "exported 3 documents") {
		t.Fatalf("export (text): exit %d (%v)\n%s", code, err, errOut)
	}
	_, errOut, code, err = runCLIStreams(t, "export", "--log-format", "json", "--format", "anserini", "--input", dir, "--output", dest)
	if code != exitOK {
		t.Fatalf("export: exit %d (%v)\n%s", code, err, errOut)
	}
	m = decodeSummary(t, "export", errOut)
	wantFields(t, "export", m, map[string]any{"summary": "export", "format": "anserini", "output": dest, "shards": 1.0,
		"verified": true, "documents": 3.0, "empty": 0.0, "postings": 6.0})

	ciffOut := filepath.Join(t.TempDir(), "docs.ciff")
	_, errOut, code, err = runCLIStreams(t, "export", "--log-format", "json", "--format", "ciff", "--input", dir, "--output", ciffOut)
	if code != exitOK {
		t.Fatalf("export ciff: exit %d (%v)\n%s", code, err, errOut)
	}
	m = decodeSummary(t, "export ciff", errOut)
	wantFields(t, "export ciff", m, map[string]any{"summary": "export", "format": "ciff", "documents": 3.0, "postings": 6.0, "sorted_runs": 0.0})

	out, _, code, err = runCLIStreams(t, "--log-format", "json", "finalize", "--output", dir)
	if code != exitOK {
		t.Fatalf("finalize: exit %d (%v)\n%s", code, err, out)
	}
	m = decodeSummary(t, "finalize", out)
	wantFields(t, "finalize", m, map[string]any{"summary": "finalize", "output": dir, "shards": 1.0, "documents": 3.0,
		"rejected_rows": 0.0, "duplicate_ids_across_shards": 0.0})
}

// TestEncodeSummaryJSON encodes a Cranfield shard with --log-format json and
// checks the summary object on standard output, then re-runs it (the shard
// is done: skipped_shards 1).
func TestEncodeSummaryJSON(t *testing.T) {
	requireORT(t)
	input := cranfieldShards(t)[0]
	modelDir := genTinyModel(t)
	out := filepath.Join(t.TempDir(), "out")
	args := []string{"--log-format", "json", "encode", "--device", "cpu", "--model", modelDir, "--input", input, "--output", out, "--title-column", "title"}
	stdout, _, code, err := runCLIStreams(t, args...)
	if code != exitOK {
		t.Fatalf("encode: exit %d (%v)\n%s", code, err, stdout)
	}
	m := decodeSummary(t, "encode", stdout)
	wantFields(t, "encode", m, map[string]any{"summary": "encode", "shards": 1.0, "skipped_shards": 0.0, "rejected_rows": 0.0})
	for _, k := range []string{"documents", "tokens", "batches", "wall_seconds", "docs_per_second", "max_length", "nonzeros_p50"} {
		if v, _ := m[k].(float64); !(v > 0) {
			t.Errorf("encode: %s = %v, want > 0", k, m[k])
		}
	}
	stdout, _, code, err = runCLIStreams(t, args...)
	if code != exitOK {
		t.Fatalf("encode again: exit %d (%v)\n%s", code, err, stdout)
	}
	wantFields(t, "encode again", decodeSummary(t, "encode again", stdout), map[string]any{"summary": "encode", "shards": 0.0, "skipped_shards": 1.0, "documents": 0.0})
}

// TestRequiredFlags checks that the flags marked required are refused as
// bad usage (exit code 2) with a message naming them, and that help shows
// an example.
func TestRequiredFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"encode", "--input", "x"}, "--input, --model and --output are required; missing: --model, --output"},
		{[]string{"tokenize"}, "--model is required"},
		{[]string{"finalize"}, "--output is required"},
		{[]string{"search", "--index", "x", "--queries", "y"}, "missing: --output"},
		{[]string{"eval", "--run", "x"}, "missing: --qrels"},
		{[]string{"model", "bench", "--model", "x"}, "missing: --input"},
		{[]string{"model", "gen-test"}, "--output is required"},
	} {
		_, _, code, err := runCLIStreams(t, c.args...)
		if code != exitUsage || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: exit %d (%v), want %d and %q", c.args, code, err, exitUsage, c.want)
		}
	}
	out, _, code, err := runCLIStreams(t, "encode", "--help")
	if code != exitOK || !strings.Contains(out, "Examples:\n  # Encode a directory") {
		t.Errorf("encode --help: exit %d (%v), no Examples block\n%s", code, err, out)
	}
}

// TestGenTestOutAlias checks that gen-test's old --out still works, hidden
// from the help and flagged as deprecated.
func TestGenTestOutAlias(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "model")
	stdout, errOut, code, err := runCLIStreams(t, "model", "gen-test", "--out", dir, "--layers", "1", "--hidden", "32", "--heads", "2", "--tokenizer", sharedBert)
	if code != exitOK {
		t.Fatalf("gen-test --out: exit %d (%v)\n%s", code, err, errOut)
	}
	// cobra prints the notice with Command.Print: to the output set with
	// SetOut when there is one, else to standard error.
	if !strings.Contains(stdout+errOut, "--out has been deprecated, use --output") {
		t.Errorf("gen-test --out: no deprecation notice on stderr:\n%s", errOut)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "config.json")); len(m) != 1 {
		t.Errorf("gen-test --out: no config.json in %s", dir)
	}
	out, _, _, _ := runCLIStreams(t, "model", "gen-test", "--help")
	if strings.Contains(out, "--out ") || !strings.Contains(out, "--output") {
		t.Errorf("gen-test --help: want --output shown and --out hidden\n%s", out)
	}
}

// TestVersionFlag checks that splash --version prints the version variable
// (set with -ldflags -X main.version=... at build time).
func TestVersionFlag(t *testing.T) {
	out, _, code, err := runCLIStreams(t, "--version")
	if code != exitOK || strings.TrimSpace(out) != "splash version "+version {
		t.Errorf("--version: exit %d (%v), output %q, want %q", code, err, out, "splash version "+version)
	}
}

// TestAttentionFlag checks --attention's usage errors: a value other than
// causal or bidirectional, and any value where ONNX Runtime would run the
// model (it runs the attention its graph was exported with).
func TestAttentionFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"encode", "--model", "m", "--input", "x", "--output", "o", "--attention", "sideways"}, `--attention "sideways": want causal or bidirectional`},
		{[]string{"encode", "--model", "m", "--input", "x", "--output", "o", "--device", "cpu", "--attention", "bidirectional"}, "--attention applies to splash's CUDA engine"},
		{[]string{"model", "bench", "--model", "m", "--input", "x", "--engine", "ort", "--attention", "causal"}, "--attention applies to splash's CUDA engine"},
	} {
		_, _, code, err := runCLIStreams(t, c.args...)
		if code != exitUsage || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: exit %d (%v), want %d and %q", c.args, code, err, exitUsage, c.want)
		}
	}
}
