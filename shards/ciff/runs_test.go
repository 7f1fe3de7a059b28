package ciff

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
)

// randomPostings returns n distinct postings, unsorted, with values up to
// the extremes of their types.
func randomPostings(rng *rand.Rand, n int) []posting {
	seen := map[[2]uint32]bool{}
	var ps []posting
	for len(ps) < n {
		p := posting{rank: uint32(rng.IntN(50)), doc: rng.Uint32(), tf: uint32(1 + rng.IntN(math.MaxInt32))}
		if rng.IntN(10) == 0 {
			p.rank = math.MaxUint32 - uint32(rng.IntN(3))
		}
		if !seen[[2]uint32{p.rank, p.doc}] {
			seen[[2]uint32{p.rank, p.doc}] = true
			ps = append(ps, p)
		}
	}
	return ps
}

func writeRun(t *testing.T, path string, ps []posting) {
	t.Helper()
	rw, err := createRun(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if err := rw.add(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := rw.close(); err != nil {
		t.Fatal(err)
	}
}

func drain(t *testing.T, s source) []posting {
	t.Helper()
	var out []posting
	for {
		p, ok, err := s.next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, p)
	}
}

// TestRunRoundTrip: a sorted run file reads back as written.
func TestRunRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ps := randomPostings(rng, 5000)
	slices.SortFunc(ps, comparePostings)
	path := filepath.Join(t.TempDir(), "run")
	writeRun(t, path, ps)
	rr, err := openRun(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.close()
	if got := drain(t, rr); !slices.Equal(got, ps) {
		t.Fatalf("run read back differs: %d postings, wrote %d", len(got), len(ps))
	}
}

// TestMergeMatchesSort: merging sorted pieces (run files, one in memory,
// some empty), directly and through mergeRuns, equals sorting them all.
func TestMergeMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	all := randomPostings(rng, 20000)
	dir := t.TempDir()
	var paths []string
	var pieces [][]posting
	for rest := all; len(rest) > 0; {
		n := min(len(rest), rng.IntN(800))
		piece := slices.Clone(rest[:n])
		rest = rest[n:]
		slices.SortFunc(piece, comparePostings)
		pieces = append(pieces, piece)
	}
	for i, piece := range pieces[:len(pieces)-1] {
		p := filepath.Join(dir, "run"+string(rune('a'+i%26))+string(rune('a'+i/26)))
		writeRun(t, p, piece)
		paths = append(paths, p)
	}
	want := slices.Clone(all)
	slices.SortFunc(want, comparePostings)

	open := func(paths []string) []source {
		var srcs []source
		for _, p := range paths {
			r, err := openRun(p)
			if err != nil {
				t.Fatal(err)
			}
			srcs = append(srcs, r)
		}
		return append(srcs, &memSource{buf: pieces[len(pieces)-1]})
	}
	merged := func(srcs []source) []posting {
		defer closeSources(srcs)
		m, err := newMerger(srcs)
		if err != nil {
			t.Fatal(err)
		}
		var out []posting
		for {
			p, ok, err := m.next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				return out
			}
			out = append(out, p)
		}
	}
	if got := merged(open(paths)); !slices.Equal(got, want) {
		t.Fatalf("merge differs from sort (%d vs %d postings)", len(got), len(want))
	}
	// Two passes: the first half of the runs into one run file.
	half := filepath.Join(dir, "half")
	if err := mergeRuns(context.Background(), paths[:len(paths)/2], half); err != nil {
		t.Fatal(err)
	}
	if got := merged(open(append([]string{half}, paths[len(paths)/2:]...))); !slices.Equal(got, want) {
		t.Fatalf("two-pass merge differs from sort (%d vs %d postings)", len(got), len(want))
	}
}

// TestBufferStaysWithinBound: the postings buffer never grows past the
// memory bound, and it spills exactly when full.
func TestBufferStaysWithinBound(t *testing.T) {
	for _, mem := range []int64{1, 12, 4096, 100_000} {
		e := &exporter{limit: int(max(1, mem/postingBytes))}
		for i := range 3 * e.limit {
			if len(e.buf) == e.limit {
				e.buf = e.buf[:0] // what spill does
			}
			e.push(posting{doc: uint32(i)})
			if int64(cap(e.buf))*postingBytes > max(mem, postingBytes) {
				t.Fatalf("memory %d: buffer capacity %d postings (%d bytes)", mem, cap(e.buf), cap(e.buf)*postingBytes)
			}
		}
	}
}
