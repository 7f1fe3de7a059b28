package shards

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The fuzz targets of this package read foreign bytes: FuzzInputReader
// (input Parquet files), FuzzReadManifest (manifests) and FuzzReadShard
// (impact shards). Their seed corpora live in testdata/fuzz/<target>/: the
// hand-written seeds, and the gen-* files that TestWriteFuzzSeeds writes
// (go test ./shards -run TestWriteFuzzSeeds -update-fuzz-seeds). Run one
// target with go test ./shards -run '^$' -fuzz '^FuzzReadShard$'; scripts/fuzz.sh
// runs them all for a short while.

var updateFuzzSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite the generated (gen-*) seed corpora under testdata/fuzz")

// failOnOwnPanics makes a panic that safely recovers crash the fuzz input
// when it comes from splash's own code: safely turns every panic into an
// error, which is right for the third-party Parquet and Arrow readers but
// would hide the bugs of this package from the fuzzer.
func failOnOwnPanics(f *testing.F) {
	old := panicHook
	panicHook = func(r any) {
		if fn := panicOrigin(); strings.HasPrefix(fn, "github.com/splash-encode/splash/") {
			panic(fmt.Sprintf("%v\n(panic in %s, recovered by safely: a bug of splash, not of a third-party reader)", r, fn))
		}
	}
	f.Cleanup(func() { panicHook = old })
}

// panicOrigin returns the function that panicked. It must be called (at any
// depth) from a deferred function run by the panic.
func panicOrigin() string {
	pcs := make([]uintptr, 128)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(1, pcs)])
	inPanic := false
	for {
		fr, more := frames.Next()
		if inPanic && !strings.HasPrefix(fr.Function, "runtime.") {
			return fr.Function
		}
		if fr.Function == "runtime.gopanic" {
			inPanic = true
		}
		if !more {
			return ""
		}
	}
}

// TestPanicOrigin checks the hook that FuzzInputReader and FuzzReadShard rely
// on: a panic in this package's code is told from one elsewhere.
func TestPanicOrigin(t *testing.T) {
	var got string
	old := panicHook
	panicHook = func(any) { got = panicOrigin() }
	defer func() { panicHook = old }()

	var s []int
	err := safely(ErrInvalidInput, func() error { _ = s[len(s)+1]; return nil })
	if !errors.Is(err, ErrInvalidInput) || !strings.HasPrefix(got, "github.com/splash-encode/splash/shards.") {
		t.Fatalf("own panic: err %v, origin %q", err, got)
	}
	err = safely(ErrInvalidShard, func() error { return fmt.Errorf("%w", errors.New(strings.Repeat("x", -len(got)-1))) })
	if !errors.Is(err, ErrInvalidShard) || got != "strings.Repeat" {
		t.Fatalf("third-party panic: err %v, origin %q", err, got)
	}
}

// writeSeed writes the seed corpus file testdata/fuzz/<target>/<name> in
// the format of go test fuzz v1; args are []byte, string or int.
func writeSeed(t testing.TB, target, name string, args ...any) {
	t.Helper()
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", v)
		case int:
			fmt.Fprintf(&b, "int(%d)\n", v)
		default:
			t.Fatalf("seed %s/%s: unsupported type %T", target, name, a)
		}
	}
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// removeGeneratedSeeds removes the gen-* seeds of a target whose names do
// not start with one of keep.
func removeGeneratedSeeds(t testing.TB, target string, keep ...string) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "gen-*"))
	if err != nil {
		t.Fatal(err)
	}
next:
	for _, p := range paths {
		for _, k := range keep {
			if strings.HasPrefix(filepath.Base(p), k) {
				continue next
			}
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
}

// damage returns damaged copies of a file, named by what was done: cut
// before the end (footer length or magic gone), cut in the middle, and
// single bits flipped near the end (footer, schema) and in the body (page
// headers, data). The flips are deterministic for a given seed.
func damage(data []byte, seed uint64) map[string][]byte {
	out := map[string][]byte{}
	if len(data) < 16 {
		return out
	}
	out["cut-tail"] = data[:len(data)-3]
	out["cut-half"] = data[:len(data)/2]
	x := seed*0x9e3779b97f4a7c15 + 1
	next := func(n int) int {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return int(x % uint64(n))
	}
	flip := func(lo, hi int) []byte {
		c := append([]byte(nil), data...)
		i := lo + next(hi-lo)
		c[i] ^= 1 << next(8)
		return c
	}
	tail := max(len(data)-200, 8)
	out["flip-tail"] = flip(tail, len(data)-8)
	out["flip-body"] = flip(4, tail)
	return out
}

// FuzzReadShard feeds arbitrary bytes to the readers of impact shards. They
// may refuse them, with an error that wraps ErrInvalidShard and names the
// file, never panic from splash's code, and agree with each other: when
// ReadShard reads a file, ShardRows counts its rows and ShardMetadata reads
// its metadata. Every row ReadShard returns is one the Writer accepts (aligned
// lists, ascending terms, positive weights: design.md §5), and writing the
// rows again reads back the same.
func FuzzReadShard(f *testing.F) {
	failOnOwnPanics(f)
	f.Add([]byte("PAR1"))
	f.Add([]byte("ARROW1\x00\x00ARROW1"))
	dir := f.TempDir() // one file per fuzzing process, rewritten for every input
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAlloc(t, len(data), func() {
			p := filepath.Join(dir, "shard")
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			checkErr := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, ErrInvalidShard) || !strings.Contains(err.Error(), p) {
					t.Fatalf("%s: error %q does not wrap ErrInvalidShard or does not name the file", what, err)
				}
			}
			const maxRows = 1 << 12
			errTooMany := errors.New("too many rows for the fuzz test")
			var rows []Row
			err := ReadShard(p, func(r Row) error {
				if err := checkRow(r); err != nil {
					t.Fatalf("ReadShard returned row %d, which the writer refuses: %v", len(rows), err)
				}
				rows = append(rows, r)
				if len(rows) > maxRows {
					return errTooMany
				}
				return nil
			})
			if err == errTooMany {
				return
			}
			n, nerr := ShardRows(p)
			md, merr := ShardMetadata(p)
			if nerr != nil {
				checkErr("ShardRows", nerr)
			}
			if merr != nil {
				checkErr("ShardMetadata", merr)
			} else if _, err := ParseMetadata(md); err != nil && !errors.Is(err, ErrInvalidShard) {
				t.Fatalf("ParseMetadata: error %q does not wrap ErrInvalidShard", err)
			}
			if err != nil {
				checkErr("ReadShard", err)
				return
			}
			if nerr != nil || merr != nil {
				t.Fatalf("ReadShard read %d rows but ShardRows fails with %v, ShardMetadata with %v", len(rows), nerr, merr)
			}
			if n != int64(len(rows)) {
				t.Fatalf("ReadShard read %d rows, ShardRows counts %d", len(rows), n)
			}
			if _, ok := md[arrowSchemaKey]; ok {
				t.Fatalf("ShardMetadata returned the serialized Arrow schema")
			}
			if len(rows) > 256 {
				return
			}
			format := FormatArrow
			if len(data) >= 4 && string(data[:4]) == "PAR1" {
				format = FormatParquet
			}
			out := filepath.Join(dir, "rewritten")
			if err := os.MkdirAll(out, 0o755); err != nil {
				t.Fatal(err)
			}
			w, err := NewWriter(out, "again", format, testMetadata(), WriterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Abort()
			for i, r := range rows {
				if err := w.Write(r); err != nil {
					t.Fatalf("row %d read back cannot be written: %v", i, err)
				}
			}
			o, err := w.Commit()
			if err != nil {
				t.Fatal(err)
			}
			i := 0
			err = ReadShard(o.Path, func(r Row) error {
				if i >= len(rows) || !rowsEqual(r, rows[i]) {
					return fmt.Errorf("row %d differs after writing it again", i)
				}
				i++
				return nil
			})
			if err != nil || i != len(rows) {
				t.Fatalf("rewritten shard: %v (%d of %d rows)", err, i, len(rows))
			}
		})
	})
}

// maxFuzzAlloc bounds the memory one fuzz input may make the readers
// allocate. The inputs are kilobytes: much more means a reader trusted a
// length field of the file, which a corrupt file turns into an OOM kill.
const maxFuzzAlloc = 256 << 20

// checkAlloc runs fn and fails when it allocated more than maxFuzzAlloc.
func checkAlloc(t *testing.T, size int, fn func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > maxFuzzAlloc {
		t.Fatalf("reading a file of %d bytes allocated %d MiB", size, n>>20)
	}
}
