package shards

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// committedShard writes a shard and its manifest and returns the manifest.
func committedShard(t *testing.T, dir, base string, format Format, rows int) Manifest {
	t.Helper()
	out := writeShard(t, dir, base, format, testRows(rows, 7), WriterOptions{BatchRows: 16})
	settings, err := testMetadata().Map()
	if err != nil {
		t.Fatal(err)
	}
	m := Manifest{
		SplashVersion: "0.0.0-test",
		Input: ManifestInput{
			Path:   "/data/in/" + base + ".parquet",
			Size:   130642,
			MTime:  time.Date(2025, 3, 1, 12, 0, 0, 123, time.UTC),
			SHA256: strings.Repeat("0a", 32),
		},
		Settings: settings,
		Output:   NewManifestOutput(out, format),
	}
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestManifestRoundTrip(t *testing.T) {
	for _, format := range []Format{FormatParquet, FormatArrow} {
		t.Run(format.String(), func(t *testing.T) {
			dir := t.TempDir()
			m := committedShard(t, dir, "docs-00002", format, 40)
			names := dirNames(t, dir)
			want := []string{"_manifest.docs-00002.json", "docs-00002" + format.Ext()}
			if !slices.Equal(names, want) {
				t.Fatalf("directory holds %v, want %v", names, want)
			}
			got, err := ReadManifest(filepath.Join(dir, ManifestName("docs-00002")))
			if err != nil {
				t.Fatal(err)
			}
			if got.SchemaVersion != ManifestSchemaVersion || got.CreatedAt.IsZero() {
				t.Errorf("defaults not filled: %+v", got)
			}
			m.SchemaVersion, m.CreatedAt = got.SchemaVersion, got.CreatedAt
			if !reflect.DeepEqual(got, m) {
				t.Errorf("read back\n%+v\nwant\n%+v", got, m)
			}
			if got.Output.Path != "docs-00002"+format.Ext() || got.Output.Rows != 40 || got.Output.Format != format.String() {
				t.Errorf("output %+v", got.Output)
			}
			if err := VerifyManifest(dir, got); err != nil {
				t.Fatal(err)
			}
			if _, err := VerifyShard(dir, "docs-00002"); err != nil {
				t.Fatal(err)
			}
			if _, err := VerifyShard(dir, "docs-00009"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("VerifyShard without a manifest: %v, want fs.ErrNotExist", err)
			}
		})
	}
}

func TestVerifyManifestDetectsChanges(t *testing.T) {
	for _, format := range []Format{FormatParquet, FormatArrow} {
		t.Run(format.String(), func(t *testing.T) {
			dir := t.TempDir()
			m := committedShard(t, dir, "s", format, 30)
			path := filepath.Join(dir, m.Output.Path)

			wrongRows := m
			wrongRows.Output.Rows++
			if err := VerifyManifest(dir, wrongRows); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "rows") {
				t.Errorf("wrong row count: %v", err)
			}
			wrongFormat := m
			if format == FormatParquet {
				wrongFormat.Output.Format = "arrow"
			} else {
				wrongFormat.Output.Format = "parquet"
			}
			if err := VerifyManifest(dir, wrongFormat); err == nil {
				t.Error("wrong format accepted")
			}

			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// One modified byte: same size, different sha256.
			bad := slices.Clone(data)
			bad[len(bad)/2] ^= 1
			if err := os.WriteFile(path, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := VerifyManifest(dir, m); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "sha256") || !strings.Contains(err.Error(), path) {
				t.Errorf("modified byte: %v", err)
			}
			if _, err := VerifyShard(dir, "s"); !errors.Is(err, ErrMismatch) {
				t.Errorf("VerifyShard of a modified output: %v", err)
			}
			// Truncated: size differs.
			if err := os.WriteFile(path, data[:len(data)-1], 0o644); err != nil {
				t.Fatal(err)
			}
			if err := VerifyManifest(dir, m); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "size") {
				t.Errorf("truncated output: %v", err)
			}
			// Missing output.
			os.Remove(path)
			if err := VerifyManifest(dir, m); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("missing output: %v", err)
			}
		})
	}
}

func TestWriteManifestRejectsBadManifests(t *testing.T) {
	dir := t.TempDir()
	good := Manifest{
		Input:  ManifestInput{Path: "in.parquet"},
		Output: ManifestOutput{Path: "in.parquet", Format: "parquet", SHA256: strings.Repeat("a", 64)},
	}
	if err := WriteManifest(dir, good); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*Manifest){
		"version":      func(m *Manifest) { m.SchemaVersion = 2 },
		"no input":     func(m *Manifest) { m.Input.Path = "" },
		"format":       func(m *Manifest) { m.Output.Format = "csv" },
		"ext":          func(m *Manifest) { m.Output.Path = "in.arrow" },
		"dir in path":  func(m *Manifest) { m.Output.Path = "../in.parquet" },
		"sidecar name": func(m *Manifest) { m.Output.Path = "_x.parquet" },
		"sha":          func(m *Manifest) { m.Output.SHA256 = "ABC" },
		"input sha":    func(m *Manifest) { m.Input.SHA256 = strings.Repeat("A", 64) },
		"rows":         func(m *Manifest) { m.Output.Rows = -1 },
	} {
		m := good
		mutate(&m)
		if err := WriteManifest(dir, m); !errors.Is(err, ErrInvalidManifest) {
			t.Errorf("%s: %v, want ErrInvalidManifest", name, err)
		}
	}
}

func TestReadManifestStrict(t *testing.T) {
	dir := t.TempDir()
	m := committedShard(t, dir, "s", FormatParquet, 3)
	path := filepath.Join(dir, ManifestName("s"))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for name, text := range map[string]string{
		"unknown field":   strings.Replace(s, `"splash_version"`, `"surprise": 1, "splash_version"`, 1),
		"unknown nested":  strings.Replace(s, `"rows"`, `"extra": true, "rows"`, 1),
		"trailing data":   s + "{}",
		"truncated":       s[:len(s)/2],
		"wrong type":      strings.Replace(s, `"rows": 3`, `"rows": "3"`, 1),
		"null":            "null",
		"empty":           "",
		"version 2":       strings.Replace(s, `"schema_version": 1`, `"schema_version": 2`, 1),
		"array":           "[]",
		"bad created_at":  strings.Replace(s, `"created_at": "`, `"created_at": "x`, 1),
		"missing created": strings.Replace(s, `"created_at"`, `"created_at_"`, 1),
	} {
		p := filepath.Join(dir, "_manifest.bad.json")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadManifest(p); !errors.Is(err, ErrInvalidManifest) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want ErrInvalidManifest naming the file", name, err)
		}
	}
	// Manifest files are JSON objects with the documented keys.
	for _, key := range []string{`"schema_version": 1`, `"splash_version"`, `"input"`, `"mtime"`, `"settings"`, `"output"`, `"format": "parquet"`, `"created_at"`} {
		if !strings.Contains(s, key) {
			t.Errorf("manifest lacks %s:\n%s", key, s)
		}
	}
	if _, err := ReadManifest(filepath.Join(dir, "absent.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent manifest: %v", err)
	}
	_ = m
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	if err := writeFileAtomic(dir, "_a", func(w io.Writer) error { _, err := io.WriteString(w, "one"); return err }); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(dir, "_a", func(w io.Writer) error { _, err := io.WriteString(w, "two"); return err }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := writeFileAtomic(dir, "_a", func(w io.Writer) error { io.WriteString(w, "half"); return boom }); !errors.Is(err, boom) {
		t.Fatalf("failing write: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "_a")); string(data) != "two" {
		t.Errorf("content %q, want the last complete write", data)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"_a"}) {
		t.Errorf("directory holds %v", names)
	}
}

func TestFileSHA256(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, n, err := FileSHA256(p)
	if err != nil || n != 3 || sum != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("FileSHA256 = %s, %d, %v", sum, n, err)
	}
	if _, _, err := FileSHA256(p + ".absent"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent file: %v", err)
	}
}

// FuzzReadManifest feeds arbitrary bytes to ReadManifest: it may refuse
// them, with an error that wraps ErrInvalidManifest and names the file, never
// panic, and what it accepts marshals back to an equal manifest. Its seeds
// are in testdata/fuzz/FuzzReadManifest (see TestWriteFuzzSeeds).
func FuzzReadManifest(f *testing.F) {
	f.Add([]byte(`{"schema_version":1,"splash_version":"v","input":{"path":"a","size":1,"mtime":"2025-01-01T00:00:00Z","sha256":""},"settings":{"k":"v"},"output":{"path":"a.parquet","format":"parquet","rows":0,"size":0,"sha256":"` + strings.Repeat("0", 64) + `"},"created_at":"2025-01-01T00:00:00Z"}`))
	f.Add([]byte(`{}`))
	dir := f.TempDir() // one file per fuzzing process, rewritten for every input
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "_manifest.x.json")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := ReadManifest(p)
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error %q does not name the file", err)
			}
			if !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("error %q does not wrap ErrInvalidManifest", err)
			}
			return
		}
		// What is accepted marshals back to an equal manifest (in memory:
		// WriteManifest's fsyncs would slow the fuzzer down to a crawl).
		data2, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		m2, err := parseManifest(data2)
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		if !m2.CreatedAt.Equal(m.CreatedAt) || !m2.Input.MTime.Equal(m.Input.MTime) {
			t.Fatalf("times changed: %v %v -> %v %v", m.CreatedAt, m.Input.MTime, m2.CreatedAt, m2.Input.MTime)
		}
		m.CreatedAt, m2.CreatedAt, m.Input.MTime, m2.Input.MTime = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if len(m.Settings) == 0 && len(m2.Settings) == 0 {
			m.Settings, m2.Settings = nil, nil
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the manifest:\n%+v\n%+v", m, m2)
		}
	})
}
