package shards

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// touch creates empty files (and their folders) under dir.
func touch(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDiscoverInputs(t *testing.T) {
	dir := t.TempDir()
	touch(t, dir,
		"a/docs-00002.parquet", "a/docs-00000.parquet", "a/docs-00001.parquet",
		"a/_SUCCESS", "a/_common_metadata.parquet", "a/.docs-00000.parquet.crc", "a/.hidden.parquet",
		"a/notes.txt", "a/sub.parquet/part-0.parquet", "a/sub/x.parquet",
		"b/x-1.parquet", "b/x-2.parquet", "b/y-1.parquet", "b/_x-0.parquet", "b/.x-9.parquet",
		"c/data.pq", "c/data2.PARQUET",
		"d/only.txt",
		"e/odd[1].parquet",
		"f/dup/docs-00000.parquet",
		"g/data.parquet",
	)
	if err := os.Symlink(filepath.Join(dir, "c", "data.pq"), filepath.Join(dir, "a", "zz-link.parquet")); err != nil {
		t.Fatal(err)
	}
	j := func(parts ...string) string { return filepath.Join(append([]string{dir}, parts...)...) }
	cases := []struct {
		name   string
		values []string
		want   []string
	}{
		{"directory", []string{j("a")}, []string{j("a", "docs-00000.parquet"), j("a", "docs-00001.parquet"), j("a", "docs-00002.parquet"), j("a", "zz-link.parquet")}},
		{"directory with trailing slash", []string{j("b") + "/"}, []string{j("b", "x-1.parquet"), j("b", "x-2.parquet"), j("b", "y-1.parquet")}},
		{"file of any extension", []string{j("c", "data.pq")}, []string{j("c", "data.pq")}},
		{"explicit file with an unclean path", []string{j("c") + "/./../c/data2.PARQUET"}, []string{j("c", "data2.PARQUET")}},
		{"glob, sorted, skipping _ and .", []string{j("b", "*.parquet")}, []string{j("b", "x-1.parquet"), j("b", "x-2.parquet"), j("b", "y-1.parquet")}},
		{"glob with ? and []", []string{j("b", "x-[12].parq?et")}, []string{j("b", "x-1.parquet"), j("b", "x-2.parquet")}},
		{"file name with glob characters", []string{j("e", "odd[1].parquet")}, []string{j("e", "odd[1].parquet")}},
		{"values concatenated in order, duplicates dropped", []string{j("b", "y-1.parquet"), j("b"), j("b", "x-*.parquet"), j("b") + "/../b/x-1.parquet"},
			[]string{j("b", "y-1.parquet"), j("b", "x-1.parquet"), j("b", "x-2.parquet")}},
	}
	for _, c := range cases {
		got, err := DiscoverInputs(c.values)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}

	// Relative values give relative, cleaned paths; the same file given
	// relatively and absolutely counts once.
	t.Chdir(dir)
	got, err := DiscoverInputs([]string{"./b/x-1.parquet", j("b", "x-1.parquet"), "b//x-2.parquet"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join("b", "x-1.parquet"), filepath.Join("b", "x-2.parquet")}; !slices.Equal(got, want) {
		t.Errorf("relative values: got %v, want %v", got, want)
	}

	errCases := []struct {
		name    string
		values  []string
		mention []string
	}{
		{"no values", nil, []string{"no input"}},
		{"empty value", []string{""}, []string{`""`}},
		{"missing file", []string{j("a", "nope.parquet")}, []string{j("a", "nope.parquet"), "no such file"}},
		{"missing directory", []string{j("zz") + "/"}, []string{j("zz")}},
		{"glob matching nothing", []string{j("a", "*.arrow")}, []string{j("a", "*.arrow"), "no file matches"}},
		{"glob matching only directories", []string{j("a", "sub*")}, []string{j("a", "sub*"), "no file"}},
		{"bad glob", []string{j("a", "[")}, []string{j("a", "[")}},
		{"directory without parquet", []string{j("d")}, []string{j("d"), "no *.parquet"}},
		{"same base name", []string{j("a"), j("f", "dup")}, []string{j("a", "docs-00000.parquet"), j("f", "dup", "docs-00000.parquet"), "docs-00000", "collide"}},
		{"same base name, other extension", []string{j("c", "data.pq"), j("g", "data.parquet")}, []string{j("c", "data.pq"), j("g", "data.parquet"), `"data"`}},
		{"directory matching case-sensitively", []string{j("c")}, []string{j("c"), "no *.parquet"}},
		{"reserved base name", []string{j("b", "_x-0.parquet")}, []string{j("b", "_x-0.parquet"), `"_"`}},
		{"reserved base name by glob", []string{j("b", "_*.parquet")}, []string{j("b", "_x-0.parquet")}},
		{"the first error wins", []string{j("a"), j("a", "nope")}, []string{j("a", "nope")}},
	}
	for _, c := range errCases {
		got, err := DiscoverInputs(c.values)
		if err == nil {
			t.Errorf("%s: got %v, want an error", c.name, got)
			continue
		}
		if collision := strings.HasPrefix(c.name, "same base name"); errors.Is(err, ErrBaseCollision) != collision {
			t.Errorf("%s: errors.Is(%q, ErrBaseCollision) = %v", c.name, err, !collision)
		}
		for _, m := range c.mention {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, m)
			}
		}
	}
	// A link to a file under another name is another input.
	got, err = DiscoverInputs([]string{j("c", "data.pq"), j("a", "zz-link.parquet")})
	if err != nil || len(got) != 2 {
		t.Errorf("a file and a link to it under another name: %v, %v", got, err)
	}
}

func TestInputBase(t *testing.T) {
	for in, want := range map[string]string{
		"in/docs-00000.parquet": "docs-00000",
		"docs.tar.gz":           "docs.tar",
		"/x/noext":              "noext",
		"a.b/c":                 "c",
		"x.arrow":               "x",
	} {
		if got := InputBase(in); got != want {
			t.Errorf("InputBase(%q) = %q, want %q", in, got, want)
		}
	}
}
