package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/shards"
	"github.com/splash-encode/splash/shards/export/exporttest"
)

// runExport runs `splash export ARGS` in-process (the command alone, as the
// root command does not carry it yet) and returns stdout and stderr.
func runExport(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	cmd := newExportCommand()
	var out, errb bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err = cmd.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

// readExport reads an export back with exporttest's reader of its format.
func readExport(t *testing.T, format, path string, r io.Reader, index, field string) []exporttest.Doc {
	t.Helper()
	var docs []exporttest.Doc
	var err error
	switch format {
	case "anserini":
		docs, err = exporttest.ReadAnserini(r)
	case "seismic":
		ids, ierr := os.Open(path + ".ids")
		if ierr != nil {
			t.Fatal(ierr)
		}
		defer ids.Close()
		docs, err = exporttest.ReadSeismic(r, ids)
	case "seismic-jsonl":
		docs, err = exporttest.ReadSeismicJSONL(r)
	case "esbulk":
		docs, err = exporttest.ReadESBulk(r, index, field)
	case "qdrant":
		docs, err = exporttest.ReadQdrant(r, field)
	}
	if err != nil {
		t.Fatalf("read back %s: %v", format, err)
	}
	return docs
}

// TestExportCranfield encodes the four Cranfield shards with a small test
// model and exports them in every format; each export, read back by a
// reader written from the format's description, must equal the shards
// document by document (ids and order, tokens or term ids, integer impacts
// = round(weight × scale), weights bit for bit, empty vectors kept).
func TestExportCranfield(t *testing.T) {
	requireORT(t)
	inputs := cranfieldShards(t)
	model := genTinyModel(t)
	enc := filepath.Join(t.TempDir(), "enc")
	// Short documents keep the encoding quick; the export does not care.
	if out, code, err := runCLI(t, "", "encode", "--model", model, "--input", strings.Join(inputs, ","), "--output", enc,
		"--title-column", "title", "--max-length", "64"); code != exitOK {
		t.Fatalf("encode: exit %d (%v)\n%s", code, err, out)
	}
	bases, err := shards.ListManifests(enc)
	if err != nil || len(bases) != 4 {
		t.Fatalf("manifests %v, %v", bases, err)
	}
	var paths []string
	for _, b := range bases {
		paths = append(paths, filepath.Join(enc, b+".parquet"))
	}
	rows, err := exporttest.ReadRows(paths)
	if err != nil {
		t.Fatal(err)
	}
	vocab, err := shards.ReadVocabulary(filepath.Join(enc, shards.VocabularyFile))
	if err != nil {
		t.Fatal(err)
	}
	empty := 0
	for _, r := range rows {
		if r.Vec.Len() == 0 {
			empty++
		}
	}
	if len(rows) != 1400 || empty == 0 {
		t.Fatalf("%d rows, %d empty: the test wants Cranfield's 1400 documents, some of them empty", len(rows), empty)
	}

	for _, c := range []struct {
		format       string
		args         []string
		scale        float64
		index, field string
	}{
		{"anserini", nil, 100, "", ""},
		{"anserini", []string{"--scale", "7"}, 7, "", ""},
		{"seismic", nil, 0, "", ""},
		{"seismic-jsonl", nil, 0, "", ""},
		{"esbulk", nil, 0, "splash", "splade"},
		{"esbulk", []string{"--index", "cranfield", "--field", "sp"}, 0, "cranfield", "sp"},
		{"qdrant", nil, 0, "", "splade"},
		{"qdrant", []string{"--field", "text"}, 0, "", "text"},
	} {
		t.Run(strings.Join(append([]string{c.format}, c.args...), " "), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "export")
			args := append([]string{"--format", c.format, "--input", enc, "--output", out}, c.args...)
			_, stderr, err := runExport(context.Background(), args...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(stderr, "exported 1400 documents") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("summary %q", stderr)
			}
			f, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			docs := readExport(t, c.format, out, f, c.index, c.field)
			if err := exporttest.Compare(docs, rows, exporttest.Expect{Format: c.format, Vocab: vocab, Scale: c.scale}); err != nil {
				t.Fatal(err)
			}
		})
	}

	// Standard output, and one shard file as the input.
	stdout, _, err := runExport(context.Background(), "--format", "qdrant", "--input", paths[2], "--output", "-")
	if err != nil {
		t.Fatal(err)
	}
	one, err := exporttest.ReadRows(paths[2:3])
	if err != nil {
		t.Fatal(err)
	}
	docs := readExport(t, "qdrant", "-", strings.NewReader(stdout), "", "splade")
	if err := exporttest.Compare(docs, one, exporttest.Expect{Format: "qdrant"}); err != nil {
		t.Fatal(err)
	}
}

// exportTestDir writes a small output directory as splash encode leaves it:
// one shard, its manifest and the vocabulary.
func exportTestDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	vocab := []string{"[PAD]", "a", "b", "c"}
	meta := shards.Metadata{SplashVersion: "test", VocabSize: len(vocab), MaxLength: 64, Pooling: "max", Scale: 100}
	w, err := shards.NewWriter(dir, "docs", shards.FormatParquet, meta, shards.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"x", "y", "z"} {
		v := encode.SparseVec{Terms: []uint32{1, uint32(2 + i%2)}, Weights: []float32{0.5, 1.5}, Impacts: []uint16{50, 150}}
		if err := w.Write(shards.Row{DocID: id, Vec: v}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	m := shards.Manifest{SplashVersion: "test", Output: shards.NewManifestOutput(out, shards.FormatParquet),
		Input: shards.ManifestInput{Path: "docs.parquet", MTime: time.Unix(0, 0).UTC()}}
	if err := shards.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	if err := shards.WriteVocabulary(dir, vocab); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestExportCommandErrors(t *testing.T) {
	dir := exportTestDir(t)
	out := filepath.Join(t.TempDir(), "out")
	ctx := context.Background()
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad format", []string{"--format", "lucene", "--input", dir, "--output", out}, exitUsage,
			`--format "lucene": want one of anserini, anserini-topics, seismic, seismic-jsonl, esbulk, qdrant, ciff`},
		{"no format", []string{"--input", dir, "--output", out}, exitUsage, "are required"},
		{"missing input", []string{"--format", "anserini", "--input", filepath.Join(dir, "absent"), "--output", out}, exitUsage, "no such file"},
		{"directory without manifests", []string{"--format", "anserini", "--input", t.TempDir(), "--output", out}, exitBadData, "holds no manifest"},
		{"seismic to stdout", []string{"--format", "seismic", "--input", dir, "--output", "-"}, exitUsage, "PATH.ids"},
		{"scale for qdrant", []string{"--format", "qdrant", "--scale", "10", "--input", dir, "--output", out}, exitUsage, "--scale applies to --format anserini and anserini-topics only"},
		{"zero scale", []string{"--format", "anserini", "--scale", "0", "--input", dir, "--output", out}, exitUsage, "must be a finite number > 0"},
		{"index for anserini", []string{"--format", "anserini", "--index", "x", "--input", dir, "--output", out}, exitUsage, "--index applies"},
		{"bad index", []string{"--format", "esbulk", "--index", "Upper", "--input", dir, "--output", out}, exitUsage, "lower case"},
		{"field for seismic", []string{"--format", "seismic", "--field", "x", "--input", dir, "--output", out}, exitUsage, "--field applies"},
		{"ciff flags", []string{"--format", "ciff", "--scale", "2", "--input", dir, "--output", out}, exitUsage, "do not apply to --format ciff"},
	} {
		_, _, err := runExport(ctx, c.args...)
		if code := exitCode(ctx, err); code != c.code || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: exit %d (%v), want exit %d with %q", c.name, code, err, c.code, c.want)
		}
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed export left %s", out)
	}

	// A shard that no longer matches its manifest: bad data.
	path := filepath.Join(dir, "docs.parquet")
	data, _ := os.ReadFile(path)
	os.WriteFile(path, append(data, 0), 0o644)
	_, _, err := runExport(ctx, "--format", "anserini", "--input", dir, "--output", out)
	if code := exitCode(ctx, err); code != exitBadData || !errors.Is(err, shards.ErrMismatch) {
		t.Errorf("corrupt shard: exit %d (%v)", code, err)
	}
	os.WriteFile(path, data, 0o644)

	// Cancelled: context.Canceled, the transient exit code, no output.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err = runExport(cctx, "--format", "anserini", "--input", dir, "--output", out)
	if code := exitCode(cctx, err); code != exitTransient || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: exit %d (%v)", code, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 0 {
		t.Errorf("a cancelled export left %v", entries)
	}

	// And the directory exports once it is whole again.
	if _, stderr, err := runExport(ctx, "--format", "anserini", "--input", dir, "--output", out); err != nil ||
		stderr != "exported 3 documents (0 with an empty vector), 6 postings from 1 shard(s) as anserini to "+out+"\n" {
		t.Errorf("export: %v, summary %q", err, stderr)
	}
	got, _ := os.ReadFile(out)
	want := `{"id":"x","contents":"","vector":{"a":50,"b":150}}` + "\n" +
		`{"id":"y","contents":"","vector":{"a":50,"c":150}}` + "\n" +
		`{"id":"z","contents":"","vector":{"a":50,"b":150}}` + "\n"
	if string(got) != want {
		t.Errorf("export:\n%s\nwant\n%s", got, want)
	}
}
