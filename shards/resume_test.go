package shards

import (
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// resumeFixture commits shard base in dir and returns its manifest with the
// input identity and settings that a re-run with nothing changed would pass.
func resumeFixture(t *testing.T, dir, base string, format Format) (Manifest, ManifestInput, map[string]string) {
	t.Helper()
	m := committedShard(t, dir, base, format, 25)
	return m, m.Input, maps.Clone(m.Settings)
}

func checkResume(t *testing.T, dir, base string, in ManifestInput, settings map[string]string, want ResumeState, mention ...string) ResumeDecision {
	t.Helper()
	d, err := CheckResume(dir, base, in, settings)
	if err != nil {
		t.Fatalf("CheckResume: %v", err)
	}
	if d.State != want {
		t.Fatalf("CheckResume = %s (%s), want %s", d.State, d.Reason, want)
	}
	for _, m := range mention {
		if !strings.Contains(d.Reason, m) {
			t.Errorf("%s: reason %q does not mention %q", d.State, d.Reason, m)
		}
	}
	return d
}

func TestCheckResume(t *testing.T) {
	for _, format := range []Format{FormatParquet, FormatArrow} {
		t.Run(format.String(), func(t *testing.T) {
			dir := t.TempDir()
			m, in, settings := resumeFixture(t, dir, "docs-00000", format)

			// Nothing changed: done, whatever the path and mtime say.
			d := checkResume(t, dir, "docs-00000", in, settings, ResumeDone, "verified", "25 rows")
			if d.Manifest == nil || d.Manifest.Output != m.Output {
				t.Errorf("decision carries manifest %+v, want output %+v", d.Manifest, m.Output)
			}
			moved := in
			moved.Path = "/elsewhere/docs-00000.parquet"
			moved.MTime = in.MTime.Add(48 * time.Hour)
			checkResume(t, dir, "docs-00000", moved, settings, ResumeDone)

			// Another shard: no manifest yet.
			d = checkResume(t, dir, "docs-00001", in, settings, ResumeTodo, "no manifest")
			if d.Manifest != nil {
				t.Error("a todo decision carries a manifest")
			}

			// The input changed.
			changed := in
			changed.SHA256 = strings.Repeat("cd", 32)
			checkResume(t, dir, "docs-00000", changed, settings, ResumeConflict,
				"input changed: sha256 0a0a0a0a0a0a… → cdcdcdcdcdcd…")
			changed.Size++
			checkResume(t, dir, "docs-00000", changed, settings, ResumeConflict,
				"input changed: size 130642 → 130643 bytes, sha256 0a0a0a0a0a0a… → cdcdcdcdcdcd…")

			// The settings changed: each differing key is named.
			s2 := maps.Clone(settings)
			s2[MetaTopK] = "10"
			checkResume(t, dir, "docs-00000", in, s2, ResumeConflict, "settings differ: splash.top_k 0 → 10")
			s2 = maps.Clone(settings)
			delete(s2, MetaPooling)
			s2["format"] = "arrow"
			s2[MetaSourcePath] = ""
			d = checkResume(t, dir, "docs-00000", in, s2, ResumeConflict,
				"settings differ: format (unset) → arrow, splash.pooling max → (unset), splash.source.path in/docs-00000.parquet → \"\"")
			if d.Manifest == nil {
				t.Error("a conflict decision carries no manifest")
			}
			s2 = maps.Clone(settings)
			s2[MetaModelSHA256] = strings.Repeat("01", 32)
			checkResume(t, dir, "docs-00000", changed, s2, ResumeConflict,
				"input changed: size", "; settings differ: splash.model.sha256 abababababab… → 010101010101…")

			// Without sha256 on one side, the mtime decides.
			noSum := in
			noSum.SHA256 = ""
			checkResume(t, dir, "docs-00000", noSum, settings, ResumeDone)
			noSum.MTime = noSum.MTime.Add(time.Second)
			checkResume(t, dir, "docs-00000", noSum, settings, ResumeConflict, "mtime", "no sha256")

			// The output is damaged: broken; a conflict still wins.
			out := filepath.Join(dir, m.Output.Path)
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			bad := slices.Clone(data)
			bad[len(bad)/3] ^= 0x40
			if err := os.WriteFile(out, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			checkResume(t, dir, "docs-00000", in, settings, ResumeBroken, "output does not verify", "sha256", out)
			if err := os.WriteFile(out, data[:len(data)-7], 0o644); err != nil {
				t.Fatal(err)
			}
			checkResume(t, dir, "docs-00000", in, settings, ResumeBroken, "size")
			if err := os.Remove(out); err != nil {
				t.Fatal(err)
			}
			checkResume(t, dir, "docs-00000", in, settings, ResumeBroken, out)
			checkResume(t, dir, "docs-00000", changed, settings, ResumeConflict, "input changed")

			// An unreadable manifest: broken, no manifest carried.
			mpath := filepath.Join(dir, ManifestName("docs-00000"))
			if err := os.WriteFile(mpath, []byte(`{"schema_version": 1, "inp`), 0o644); err != nil {
				t.Fatal(err)
			}
			d = checkResume(t, dir, "docs-00000", in, settings, ResumeBroken, mpath, "invalid manifest")
			if d.Manifest != nil {
				t.Error("a decision on an unreadable manifest carries one")
			}
		})
	}
}

func TestCheckResumeOddCases(t *testing.T) {
	dir := t.TempDir()
	_, in, settings := resumeFixture(t, dir, "s", FormatParquet)

	// An output left without its manifest (crash between the two commits).
	writeShard(t, dir, "t", FormatArrow, testRows(3, 1), WriterOptions{})
	checkResume(t, dir, "t", in, settings, ResumeTodo, "no manifest", "t.arrow")

	// A manifest that names another shard's output.
	if err := os.Rename(filepath.Join(dir, ManifestName("s")), filepath.Join(dir, ManifestName("u"))); err != nil {
		t.Fatal(err)
	}
	checkResume(t, dir, "u", in, settings, ResumeBroken, `names output "s.parquet"`)

	// No output directory yet: everything is to do.
	checkResume(t, dir+"/absent", "s", in, settings, ResumeTodo)

	for _, base := range []string{"", "_x", "../s", ".s"} {
		if _, err := CheckResume(dir, base, in, settings); err == nil {
			t.Errorf("CheckResume accepted base name %q", base)
		}
	}

	// An I/O error is an error, not a decision: here the manifest's name
	// is a directory, which cannot be read (even by root).
	odd := t.TempDir()
	if err := os.Mkdir(filepath.Join(odd, ManifestName("s")), 0o755); err != nil {
		t.Fatal(err)
	}
	if d, err := CheckResume(odd, "s", in, settings); err == nil || !strings.Contains(err.Error(), ManifestName("s")) {
		t.Errorf("unreadable manifest: %+v, %v; want an error naming it", d, err)
	}
}

func TestRemoveShard(t *testing.T) {
	dir := t.TempDir()
	_, in, settings := resumeFixture(t, dir, "a", FormatParquet)
	resumeFixture(t, dir, "b", FormatParquet)
	writeShard(t, dir, "a", FormatArrow, testRows(2, 1), WriterOptions{}) // an orphan of another format
	if err := WriteVocabulary(dir, []string{"[PAD]", "x"}); err != nil {
		t.Fatal(err)
	}
	if err := WriteSuccess(dir, map[string]int{"shards": 2}); err != nil {
		t.Fatal(err)
	}
	if err := RemoveShard(dir, "a"); err != nil {
		t.Fatal(err)
	}
	want := []string{"_manifest.b.json", VocabularyFile, "b.parquet"}
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("after RemoveShard the directory holds %v, want %v", got, want)
	}
	if err := RemoveShard(dir, "a"); err != nil {
		t.Errorf("RemoveShard of a removed shard: %v", err)
	}
	checkResume(t, dir, "a", in, settings, ResumeTodo)
	checkResume(t, dir, "b", in, settings, ResumeDone)
	for _, base := range []string{"", "_SUCCESS", "../b", "a/b"} {
		if err := RemoveShard(dir, base); err == nil {
			t.Errorf("RemoveShard accepted base name %q", base)
		}
	}
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("refused RemoveShard calls changed the directory: %v", got)
	}
}

func TestCleanTemp(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-2 * time.Hour)
	touch(t, dir, "_tmp.a.parquet.111", "_tmp._manifest.a.json.222", "_tmp.b.arrow.333", "a.parquet", "_tmpfile", "_SUCCESS")
	for _, n := range []string{"_tmp.a.parquet.111", "_tmp._manifest.a.json.222", "a.parquet", "_tmpfile"} {
		if err := os.Chtimes(filepath.Join(dir, n), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "_tmp.dir.444"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A writer at work has a fresh temp file: spared by an age limit.
	w, err := NewWriter(dir, "c", FormatParquet, testMetadata(), WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, r := range testRows(10, 1) {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}

	removed, err := CleanTemp(dir, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"_tmp._manifest.a.json.222", "_tmp.a.parquet.111"}; !slices.Equal(removed, want) {
		t.Errorf("CleanTemp(1h) removed %v, want %v", removed, want)
	}
	if _, err := w.Commit(); err != nil {
		t.Fatalf("the writer whose temp file was spared: %v", err)
	}
	removed, err = CleanTemp(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"_tmp.b.arrow.333"}; !slices.Equal(removed, want) {
		t.Errorf("CleanTemp(0) removed %v, want %v", removed, want)
	}
	if want := []string{"_SUCCESS", "_tmp.dir.444", "_tmpfile", "a.parquet", "c.parquet"}; !slices.Equal(dirNames(t, dir), want) {
		t.Errorf("after CleanTemp the directory holds %v, want %v", dirNames(t, dir), want)
	}
	if removed, err := CleanTemp(dir, 0); err != nil || len(removed) != 0 {
		t.Errorf("CleanTemp with nothing to clean: %v, %v", removed, err)
	}
	missing := filepath.Join(dir, "absent")
	if _, err := CleanTemp(missing, 0); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("CleanTemp of a missing directory: %v", err)
	}
}

func TestWriteSuccess(t *testing.T) {
	dir := t.TempDir()
	type summary struct {
		Shards int       `json:"shards"`
		Docs   int64     `json:"docs"`
		When   time.Time `json:"when"`
	}
	want := summary{Shards: 3, Docs: 1400, When: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)}
	if err := ReadSuccess(dir, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadSuccess before WriteSuccess: %v", err)
	}
	if err := WriteSuccess(dir, want); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{SuccessFile}) {
		t.Errorf("directory holds %v", got)
	}
	var got summary
	if err := ReadSuccess(dir, &got); err != nil || got != want {
		t.Errorf("ReadSuccess = %+v, %v; want %+v", got, err, want)
	}
	data, _ := os.ReadFile(filepath.Join(dir, SuccessFile))
	if !json.Valid(data) || !strings.HasSuffix(string(data), "}\n") {
		t.Errorf("_SUCCESS holds %q", data)
	}
	// Rewriting replaces; nil writes {}.
	if err := WriteSuccess(dir, nil); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, SuccessFile)); string(data) != "{}\n" {
		t.Errorf("WriteSuccess(nil) wrote %q", data)
	}
	// A value JSON cannot encode: an error naming the file, nothing written.
	if err := WriteSuccess(dir, map[string]any{"c": make(chan int)}); err == nil || !strings.Contains(err.Error(), SuccessFile) {
		t.Errorf("WriteSuccess of a channel: %v", err)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{SuccessFile}) {
		t.Errorf("directory holds %v", got)
	}
	if err := WriteSuccess(filepath.Join(dir, "absent"), want); err == nil {
		t.Error("WriteSuccess into a missing directory succeeded")
	}
	if err := RemoveSuccess(dir); err != nil {
		t.Fatal(err)
	}
	if err := RemoveSuccess(dir); err != nil {
		t.Errorf("RemoveSuccess without _SUCCESS: %v", err)
	}
	if got := dirNames(t, dir); len(got) != 0 {
		t.Errorf("directory holds %v", got)
	}
}

// TestResumeCycle runs the protocol as a job does: discover, decide,
// encode, mark success; then re-runs with nothing changed, with a damaged
// output and with a changed input.
func TestResumeCycle(t *testing.T) {
	root := t.TempDir()
	inDir, outDir := filepath.Join(root, "in"), filepath.Join(root, "out")
	for _, d := range []string{inDir, outDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i, name := range []string{"docs-0.parquet", "docs-1.parquet", "docs-2.parquet"} {
		writeParquet(t, filepath.Join(inDir, name), []docRequired{{ID: name, Text: strings.Repeat("x", i)}})
	}
	settings := map[string]string{"top_k": "0", "format": "parquet"}
	run := func() (todo, done, broken, conflict []string) {
		t.Helper()
		inputs, err := DiscoverInputs([]string{inDir})
		if err != nil {
			t.Fatal(err)
		}
		var encode []string
		for _, in := range inputs {
			sum, size, err := FileSHA256(in)
			if err != nil {
				t.Fatal(err)
			}
			st, _ := os.Stat(in)
			ident := ManifestInput{Path: in, Size: size, MTime: st.ModTime().UTC(), SHA256: sum}
			base := InputBase(in)
			d, err := CheckResume(outDir, base, ident, settings)
			if err != nil {
				t.Fatal(err)
			}
			switch d.State {
			case ResumeTodo:
				todo = append(todo, base)
			case ResumeDone:
				done = append(done, base)
				continue
			case ResumeBroken:
				broken = append(broken, base)
			case ResumeConflict:
				conflict = append(conflict, base)
				continue // a job refuses without --overwrite
			}
			if err := RemoveShard(outDir, base); err != nil {
				t.Fatal(err)
			}
			encode = append(encode, base)
			out := writeShard(t, outDir, base, FormatParquet, testRows(4, 2), WriterOptions{})
			m := Manifest{SplashVersion: "test", Input: ident, Settings: settings, Output: NewManifestOutput(out, FormatParquet)}
			if err := WriteManifest(outDir, m); err != nil {
				t.Fatal(err)
			}
		}
		if len(conflict) == 0 {
			if err := WriteSuccess(outDir, map[string]any{"encoded": encode}); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	if todo, done, _, _ := run(); len(todo) != 3 || len(done) != 0 {
		t.Fatalf("first run: todo %v, done %v", todo, done)
	}
	if todo, done, _, _ := run(); len(todo) != 0 || len(done) != 3 {
		t.Fatalf("second run: todo %v, done %v", todo, done)
	}
	if err := os.Truncate(filepath.Join(outDir, "docs-1.parquet"), 10); err != nil {
		t.Fatal(err)
	}
	if _, done, broken, _ := run(); !slices.Equal(broken, []string{"docs-1"}) || len(done) != 2 {
		t.Fatalf("after damage: broken %v, done %v", broken, done)
	}
	writeParquet(t, filepath.Join(inDir, "docs-2.parquet"), []docRequired{{ID: "changed", Text: "y"}})
	if _, _, _, conflict := run(); !slices.Equal(conflict, []string{"docs-2"}) {
		t.Fatalf("after an input changed: conflict %v", conflict)
	}
	if err := ReadSuccess(outDir, nil); err != nil {
		t.Errorf("the refused run removed _SUCCESS: %v", err)
	}
}
