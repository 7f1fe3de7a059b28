package shards

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// outsideTarget makes a directory beside out holding "secret" and returns
// the secret's path and content.
func outsideTarget(t *testing.T, parent string) (string, []byte) {
	t.Helper()
	dir := filepath.Join(parent, "outside")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "secret")
	content := []byte("not yours to overwrite\n")
	if err := os.WriteFile(secret, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return secret, content
}

func plantLink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func checkUnchanged(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s was changed through a link: %q, %v", path, got, err)
	}
}

func isLink(t *testing.T, path string) bool {
	t.Helper()
	st, err := os.Lstat(path)
	return err == nil && st.Mode()&fs.ModeSymlink != 0
}

func wantUnsafe(t *testing.T, what string, err error, mention ...string) {
	t.Helper()
	if !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("%s: got %v, want an error wrapping ErrUnsafePath", what, err)
	}
	for _, m := range mention {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("%s: %q does not mention %q", what, err, m)
		}
	}
}

// TestWritesNeverFollowLinksOutOfTheOutputDirectory plants links under the
// names of an output, a manifest, the vocabulary and _SUCCESS, pointing out
// of the output directory (relative and absolute): writing replaces the link
// or is refused, and the file outside never changes.
func TestWritesNeverFollowLinksOutOfTheOutputDirectory(t *testing.T) {
	parent := t.TempDir()
	secret, content := outsideTarget(t, parent)
	out := filepath.Join(parent, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	plantLink(t, "../outside/secret", filepath.Join(out, "docs.parquet"))
	plantLink(t, secret, filepath.Join(out, "docs.arrow"))
	plantLink(t, secret, filepath.Join(out, ManifestName("docs")))
	plantLink(t, "../outside/secret", filepath.Join(out, VocabularyFile))
	plantLink(t, secret, filepath.Join(out, SuccessFile))

	// A shard commit renames over the link: the link is gone, the target kept.
	m := committedShard(t, out, "docs", FormatParquet, 20)
	checkUnchanged(t, secret, content)
	for _, name := range []string{"docs.parquet", ManifestName("docs")} {
		if isLink(t, filepath.Join(out, name)) {
			t.Errorf("%s is still a link after the commit", name)
		}
	}
	if _, err := VerifyShard(out, "docs"); err != nil {
		t.Fatal(err)
	}
	// With NoClobber a link under the name counts as taken: refused.
	w, err := NewWriter(out, "docs", FormatArrow, testMetadata(), WriterOptions{NoClobber: true})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(testRows(1, 1)[0])
	if _, err := w.Commit(); !errors.Is(err, ErrExists) {
		t.Errorf("NoClobber commit over a link: %v, want ErrExists", err)
	}
	checkUnchanged(t, secret, content)
	if !isLink(t, filepath.Join(out, "docs.arrow")) {
		t.Error("the refused commit replaced the link")
	}

	// The vocabulary is read before it is written: the link is refused.
	err = WriteVocabulary(out, []string{"[PAD]", "a"})
	wantUnsafe(t, "WriteVocabulary over a link", err, filepath.Join(out, VocabularyFile), "symbolic link", "../outside/secret")
	checkUnchanged(t, secret, content)
	_, err = ReadVocabulary(filepath.Join(out, VocabularyFile))
	wantUnsafe(t, "ReadVocabulary through a link", err, VocabularyFile)

	// _SUCCESS: reading through the link is refused, writing replaces it,
	// removing removes the link.
	wantUnsafe(t, "ReadSuccess through a link", ReadSuccess(out, nil), SuccessFile)
	if err := RemoveSuccess(out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(out, SuccessFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("RemoveSuccess left the link: %v", err)
	}
	plantLink(t, secret, filepath.Join(out, SuccessFile))
	if err := WriteSuccess(out, map[string]int{"shards": 1}); err != nil {
		t.Fatal(err)
	}
	if isLink(t, filepath.Join(out, SuccessFile)) || ReadSuccess(out, nil) != nil {
		t.Error("WriteSuccess did not replace the link with its file")
	}
	checkUnchanged(t, secret, content)

	// RemoveShard removes links, never their targets.
	plantLink(t, secret, filepath.Join(out, "other.parquet"))
	plantLink(t, secret, filepath.Join(out, ManifestName("other")))
	if err := RemoveShard(out, "other"); err != nil {
		t.Fatal(err)
	}
	checkUnchanged(t, secret, content)
	if slices.Contains(dirNames(t, out), "other.parquet") {
		t.Error("RemoveShard left the link")
	}
	// CleanTemp: a link with a temp name is removed as a name.
	plantLink(t, secret, filepath.Join(out, "_tmp.x.parquet.1"))
	if removed, err := CleanTemp(out, 0); err != nil || !slices.Equal(removed, []string{"_tmp.x.parquet.1"}) {
		t.Errorf("CleanTemp: %v, %v", removed, err)
	}
	checkUnchanged(t, secret, content)
	if _, err := os.Stat(filepath.Join(out, "docs.parquet")); err != nil || m.Output.Path != "docs.parquet" {
		t.Fatal(err)
	}
	for _, name := range dirNames(t, out) {
		if IsTempName(name) {
			t.Errorf("temp file %s left behind", name)
		}
	}
}

// TestReadsRefuseLinksOutOfTheOutputDirectory: a manifest or an output that
// is a link out of the output directory is not read through, even when the
// target is a valid copy; CheckResume fails with an error naming the link.
func TestReadsRefuseLinksOutOfTheOutputDirectory(t *testing.T) {
	parent := t.TempDir()
	real := filepath.Join(parent, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	m := committedShard(t, real, "docs", FormatArrow, 20)
	out := filepath.Join(parent, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}

	// The manifest is a link to a valid manifest outside.
	plantLink(t, filepath.Join(real, ManifestName("docs")), filepath.Join(out, ManifestName("docs")))
	_, err := CheckResume(out, "docs", m.Input, m.Settings)
	wantUnsafe(t, "CheckResume with a linked manifest", err, filepath.Join(out, ManifestName("docs")), "symbolic link")

	// A real manifest whose output is a link to a byte-identical copy outside.
	os.Remove(filepath.Join(out, ManifestName("docs")))
	if err := WriteManifest(out, m); err != nil {
		t.Fatal(err)
	}
	plantLink(t, "../real/docs.arrow", filepath.Join(out, "docs.arrow"))
	_, err = CheckResume(out, "docs", m.Input, m.Settings)
	wantUnsafe(t, "CheckResume with a linked output", err, filepath.Join(out, "docs.arrow"), "../real/docs.arrow")
	_, _, err = fileSHA256In(out, "docs.arrow")
	wantUnsafe(t, "hashing a linked output", err, filepath.Join(out, "docs.arrow"))
	_, err = openShardIn(out, "docs.arrow", memory.DefaultAllocator)
	wantUnsafe(t, "opening a linked output", err, filepath.Join(out, "docs.arrow"))

	// A link that stays inside the directory is followed.
	os.Remove(filepath.Join(out, "docs.arrow"))
	data, err := os.ReadFile(filepath.Join(real, "docs.arrow"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(out, "copy.arrow"), data, 0o644)
	plantLink(t, "copy.arrow", filepath.Join(out, "docs.arrow"))
	if d, err := CheckResume(out, "docs", m.Input, m.Settings); err != nil || d.State != ResumeDone {
		t.Errorf("link inside the directory: %v, %v", d.State, err)
	}
	sf, err := openShardIn(out, "docs.arrow", memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	sf.close()
	// The output directory itself may be reached through a link.
	linkedDir := filepath.Join(parent, "linked")
	plantLink(t, "out", linkedDir)
	if d, err := CheckResume(linkedDir, "docs", m.Input, m.Settings); err != nil || d.State != ResumeDone {
		t.Errorf("output directory behind a link: %v, %v", d.State, err)
	}
}

// TestNamesCannotLeaveTheOutputDirectory: names with "..", a separator or
// NUL are refused by every function that takes a name, and nothing appears
// outside the directory.
func TestNamesCannotLeaveTheOutputDirectory(t *testing.T) {
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(w io.Writer) error { _, err := io.WriteString(w, "x"); return err }
	for _, name := range []string{"../escaped", "sub/x", `..\x`, "", ".", "..", "a\x00b"} {
		if f, err := createTemp(out, name); err == nil {
			f.Close()
			t.Errorf("createTemp accepted %q", name)
		}
		if err := writeFileAtomic(out, name, write); err == nil {
			t.Errorf("writeFileAtomic accepted %q", name)
		}
		if _, err := openInDir(out, name); err == nil {
			t.Errorf("openInDir accepted %q", name)
		}
	}
	// commitTemp refuses a final name outside and removes its temp file.
	f, err := createTemp(out, "ok")
	if err != nil {
		t.Fatal(err)
	}
	if err := commitTemp(f, out, "../escaped", false); !errors.Is(err, ErrUnsafePath) {
		t.Errorf("commitTemp to ../escaped: %v", err)
	}
	for _, base := range []string{"../escaped", "a/b", "..", "."} {
		if w, err := NewWriter(out, base, FormatParquet, testMetadata(), WriterOptions{}); err == nil {
			w.Abort()
			t.Errorf("NewWriter accepted base %q", base)
		}
		if _, err := CheckResume(out, base, ManifestInput{}, nil); err == nil {
			t.Errorf("CheckResume accepted base %q", base)
		}
		if err := RemoveShard(out, base); err == nil {
			t.Errorf("RemoveShard accepted base %q", base)
		}
	}
	// A manifest naming an output outside is invalid, never followed.
	m := Manifest{SchemaVersion: 1, Input: ManifestInput{Path: "in"}, Output: ManifestOutput{Path: "../x.parquet", Format: "parquet", SHA256: strings.Repeat("0", 64)}}
	if err := WriteManifest(out, m); !errors.Is(err, ErrInvalidManifest) {
		t.Errorf("WriteManifest naming ../x.parquet: %v", err)
	}
	if names := dirNames(t, parent); !slices.Equal(names, []string{"out"}) {
		t.Errorf("the parent of the output directory holds %v", names)
	}
	if names := dirNames(t, out); len(names) != 0 {
		t.Errorf("the output directory holds %v", names)
	}
}
