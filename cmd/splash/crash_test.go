package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/splash-encode/splash/shards"
)

// crashSeedEnv overrides the seed of the crash and concurrency tests, to
// replay a failing sequence of kills (the seed is logged by every run).
const crashSeedEnv = "SPLASH_CRASH_SEED"

// crashProcessLimit bounds one `splash encode` process of these tests.
const crashProcessLimit = 90 * time.Second

// crashCorpusSizes are the documents per input shard of the test corpus.
var crashCorpusSizes = []int{48, 52, 56, 60, 64, 68, 72}

// crashDoc is one row of the test corpus (and of the Cranfield shards).
type crashDoc struct {
	ID    string `parquet:"id"`
	Title string `parquet:"title"`
	Text  string `parquet:"text"`
}

// crashFixture is what both tests share: the binary, a tiny model, a
// multi-shard corpus taken from Cranfield and an uninterrupted reference run.
type crashFixture struct {
	bin, model, corpus string
	bases              []string            // input base names, sorted
	ids                map[string][]string // base -> ids in input order
	total              int                 // documents in the corpus
	ref                string              // output of the uninterrupted run
	refWall            time.Duration
	refSHA             map[string]string // output file name -> sha256, for shards and _vocabulary.parquet
}

func newCrashFixture(t *testing.T) *crashFixture {
	t.Helper()
	f := &crashFixture{bin: buildSplash(t), ids: map[string][]string{}, refSHA: map[string]string{}}
	f.model = filepath.Join(t.TempDir(), "model")
	if out, err := splashCmd(f.bin, "model", "gen-test", "--output", f.model, "--layers", "1", "--hidden", "32", "--heads", "2",
		"--tokenizer", sharedBert).CombinedOutput(); err != nil {
		t.Fatalf("gen-test: %v\n%s", err, out)
	}
	f.writeCorpus(t)

	f.ref = filepath.Join(t.TempDir(), "reference")
	start := time.Now()
	p := f.start(t, f.ref, "")
	if err := p.wait(t); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, p.stderr.String())
	}
	f.refWall = time.Since(start)
	for _, b := range f.bases {
		m, err := shards.VerifyShard(f.ref, b)
		if err != nil {
			t.Fatalf("reference run: %v", err)
		}
		f.refSHA[m.Output.Path] = m.Output.SHA256
	}
	sum, _, err := shards.FileSHA256(filepath.Join(f.ref, "_vocabulary.parquet"))
	if err != nil {
		t.Fatalf("reference run: %v", err)
	}
	f.refSHA["_vocabulary.parquet"] = sum
	if lost, dup, n := f.checkIDs(t, f.ref, "reference"); lost+dup > 0 || n != f.total {
		t.Fatalf("reference run: %d of %d documents lost, %d duplicated", lost, f.total, dup)
	}
	return f
}

// writeCorpus splits the first documents of the Cranfield shards into
// len(crashCorpusSizes) Parquet shards with 16-row row groups.
func (f *crashFixture) writeCorpus(t *testing.T) {
	t.Helper()
	paths, _ := filepath.Glob(cranfieldDocs)
	sort.Strings(paths)
	var all []crashDoc
	for _, p := range paths {
		rows, err := parquet.ReadFile[crashDoc](p)
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		all = append(all, rows...)
	}
	f.corpus = filepath.Join(t.TempDir(), "corpus")
	if err := os.MkdirAll(f.corpus, 0o755); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	next := 0
	for i, n := range crashCorpusSizes {
		if next+n > len(all) {
			t.Fatalf("Cranfield has %d documents, the corpus needs more", len(all))
		}
		rows := all[next : next+n]
		next += n
		base := fmt.Sprintf("part-%05d", i)
		for _, r := range rows {
			if seen[r.ID] {
				t.Fatalf("Cranfield id %q appears twice", r.ID)
			}
			seen[r.ID] = true
			f.ids[base] = append(f.ids[base], r.ID)
		}
		f.bases = append(f.bases, base)
		f.total += n
		out, err := os.Create(filepath.Join(f.corpus, base+".parquet"))
		if err != nil {
			t.Fatal(err)
		}
		w := parquet.NewGenericWriter[crashDoc](out, parquet.MaxRowsPerRowGroup(16))
		if _, err := w.Write(rows); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *crashFixture) encodeArgs(out string) []string {
	return []string{"encode", "--model", f.model, "--input", filepath.Join(f.corpus, "*.parquet"), "--output", out,
		"--title-column", "title", "--max-length", "64", "--batch-tokens", "512", "--log-format", "json"}
}

// crashProc is a running `splash encode`.
type crashProc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	err            error
}

// start starts `splash encode` into out; failpoint, when not empty, is the
// SPLASH_FAILPOINT value.
func (f *crashFixture) start(t *testing.T, out, failpoint string) *crashProc {
	t.Helper()
	var env []string
	if failpoint != "" {
		env = append(env, failpointEnv+"="+failpoint)
	}
	return f.startWith(t, f.encodeArgs(out), env)
}

// startWith starts splash with args, in the test's environment without
// $SPLASH_FAILPOINT and $JOB_COMPLETION_INDEX, plus env.
func (f *crashFixture) startWith(t *testing.T, args, env []string) *crashProc {
	t.Helper()
	p := &crashProc{cmd: splashCmd(f.bin, args...), done: make(chan struct{})}
	p.cmd.Env = append(slices.DeleteFunc(p.cmd.Env, func(kv string) bool {
		return strings.HasPrefix(kv, failpointEnv+"=") || strings.HasPrefix(kv, completionIndexEnv+"=")
	}), env...)
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p
}

// wait waits for the process to end (killing it after crashProcessLimit).
func (p *crashProc) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(crashProcessLimit):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("splash encode ran longer than %s; stderr:\n%s", crashProcessLimit, tail(p.stderr.String(), 4000))
		return nil
	}
}

// killAfter sends SIGKILL after d unless the process ended before, waits
// for it and reports whether SIGKILL is what ended it.
func (p *crashProc) killAfter(t *testing.T, d time.Duration) bool {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		p.wait(t)
	}
	return killedBySIGKILL(p.err)
}

func killedBySIGKILL(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// outState is what a run left in an output directory.
type outState struct {
	done    map[string]bool // bases whose manifest verifies
	orphans []string        // bases with an output under its final name but no manifest
	temps   []string        // _tmp.* files
	success bool
}

// inspect checks the invariants that must hold at every moment, even right
// after a SIGKILL, and returns the state; each violation is a t.Errorf
// prefixed with when. Invariants: only known file names; every manifest
// verifies and names a shard byte-identical to the reference one; a shard
// without a manifest is not done (reported as an orphan); _SUCCESS only
// when every shard is done; _vocabulary.parquet, when present, is whole.
func (f *crashFixture) inspect(t *testing.T, dir, when string) outState {
	t.Helper()
	st := outState{done: map[string]bool{}}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return st // killed before the directory was created
	}
	if err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	names := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() && e.Name() == "_locks" {
			continue // the lock files of concurrent runs (shards.LockDir)
		}
		names[e.Name()] = true
	}
	isBase := map[string]bool{}
	for _, b := range f.bases {
		isBase[b] = true
	}
	for name := range names {
		switch {
		case shards.IsTempName(name):
			st.temps = append(st.temps, name)
		case name == shards.SuccessFile:
			st.success = true
		case name == "_vocabulary.parquet":
			if sum, _, err := shards.FileSHA256(filepath.Join(dir, name)); err != nil || sum != f.refSHA[name] {
				t.Errorf("%s: _vocabulary.parquet differs from the reference run's (%v)", when, err)
			}
		case strings.HasPrefix(name, "_manifest.") && strings.HasSuffix(name, ".json"):
			base := strings.TrimSuffix(strings.TrimPrefix(name, "_manifest."), ".json")
			if !isBase[base] {
				t.Errorf("%s: manifest %s for no input shard", when, name)
			}
		case strings.HasSuffix(name, ".parquet") && isBase[strings.TrimSuffix(name, ".parquet")]:
		default:
			// Dead-letter files (_rejected.*.jsonl) included: Cranfield has no bad rows.
			t.Errorf("%s: unexpected file %s", when, name)
		}
	}
	for _, b := range f.bases {
		data, manifest := names[b+".parquet"], names[shards.ManifestName(b)]
		switch {
		case manifest:
			m, err := shards.VerifyShard(dir, b)
			if err != nil {
				t.Errorf("%s: %s has a manifest that does not verify: %v", when, b, err)
				continue
			}
			if m.Output.SHA256 != f.refSHA[b+".parquet"] || m.Output.Rows != int64(len(f.ids[b])) {
				t.Errorf("%s: %s is done but differs from the reference run's (%d rows, sha256 %s; want %d rows, %s)",
					when, b, m.Output.Rows, m.Output.SHA256, len(f.ids[b]), f.refSHA[b+".parquet"])
				continue
			}
			st.done[b] = true
		case data:
			st.orphans = append(st.orphans, b)
		}
	}
	if st.success && len(st.done) != len(f.bases) {
		t.Errorf("%s: _SUCCESS with only %d of %d shards done", when, len(st.done), len(f.bases))
	}
	sort.Strings(st.temps)
	return st
}

// checkPlan checks, from the JSON log of a run, that it counted as done
// exactly the shards that had a verified manifest when it started: nothing
// left by a killed run (an output without manifest, a temp file) may be
// taken as done, and nothing done may be encoded again. Runs killed before
// they logged their plan are not checked; it reports whether a plan was found.
func (f *crashFixture) checkPlan(t *testing.T, stderr, when string, before outState) bool {
	t.Helper()
	planned := false
	skipped := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(stderr))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		switch rec["msg"] {
		case "plan":
			planned = true
			if n, ok := rec["already_done"].(float64); ok && int(n) != len(before.done) {
				t.Errorf("%s: the run counted %d shards as done, %d had a verified manifest", when, int(n), len(before.done))
			}
		case "shard already done, skipping":
			if in, ok := rec["input"].(string); ok {
				skipped[shards.InputBase(in)] = true
			}
		}
	}
	if planned {
		for b := range skipped {
			if !before.done[b] {
				t.Errorf("%s: the run skipped %s as done, but it had no verified manifest", when, b)
			}
		}
		for b := range before.done {
			if !skipped[b] {
				t.Errorf("%s: the run did not skip %s, done before", when, b)
			}
		}
	}
	return planned
}

// checkIDs reads every output shard of dir and counts, against the corpus,
// the documents lost and duplicated; each shard must hold its input's ids
// in input order. It returns lost, duplicated and the documents read.
func (f *crashFixture) checkIDs(t *testing.T, dir, when string) (lost, dup, read int) {
	t.Helper()
	count := map[string]int{}
	for _, b := range f.bases {
		var got []string
		err := shards.ReadShard(filepath.Join(dir, b+".parquet"), func(r shards.Row) error {
			got = append(got, r.DocID)
			return nil
		})
		if err != nil {
			t.Errorf("%s: read %s: %v", when, b, err)
		}
		if !slices.Equal(got, f.ids[b]) {
			t.Errorf("%s: %s holds %d ids, not the %d of its input in order", when, b, len(got), len(f.ids[b]))
		}
		for _, id := range got {
			count[id]++
		}
		read += len(got)
	}
	for _, b := range f.bases {
		for _, id := range f.ids[b] {
			switch c := count[id]; {
			case c == 0:
				lost++
			case c > 1:
				dup += c - 1
			}
			delete(count, id)
		}
	}
	for id, c := range count {
		t.Errorf("%s: id %q (%d times) is in no input", when, id, c)
	}
	if lost+dup > 0 {
		t.Errorf("%s: %d documents lost, %d duplicated", when, lost, dup)
	}
	return lost, dup, read
}

// checkComplete checks a finished output directory: every shard done and
// byte-identical to the reference, _SUCCESS, `splash verify` passes, every
// document exactly once, no temp file left. It returns the lost,
// duplicated and read document counts.
func (f *crashFixture) checkComplete(t *testing.T, dir, when string) (lost, dup, read int) {
	t.Helper()
	st := f.inspect(t, dir, when)
	if len(st.done) != len(f.bases) || !st.success || len(st.orphans) > 0 {
		t.Errorf("%s: %d of %d shards done, _SUCCESS %v, outputs without manifest %v", when, len(st.done), len(f.bases), st.success, st.orphans)
	}
	if len(st.temps) > 0 {
		t.Errorf("%s: temp files left: %v", when, st.temps)
	}
	for _, b := range f.bases {
		if sum, _, err := shards.FileSHA256(filepath.Join(dir, b+".parquet")); err != nil || sum != f.refSHA[b+".parquet"] {
			t.Errorf("%s: %s.parquet is not byte-identical to the reference run's (%v)", when, b, err)
		}
	}
	if out, err := splashCmd(f.bin, "verify", dir).CombinedOutput(); err != nil {
		t.Errorf("%s: splash verify: %v\n%s", when, err, out)
	}
	return f.checkIDs(t, dir, when)
}

func crashSeed(t *testing.T) int64 {
	t.Helper()
	seed := time.Now().UnixNano()
	if v := os.Getenv(crashSeedEnv); v != "" {
		var err error
		if seed, err = strconv.ParseInt(v, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", crashSeedEnv, v, err)
		}
	}
	t.Logf("seed %d (replay with %s=%d)", seed, crashSeedEnv, seed)
	return seed
}

// The kinds of kill of the crash harness: SIGKILL from outside after a
// random delay, or one of the failpoints of the commit protocol.
const crashKillTimer = "timer"

var crashKinds = []string{crashKillTimer, shards.FailpointRowWritten, shards.FailpointShardCommitted,
	shards.FailpointManifestWritten, shards.FailpointBeforeSuccess}

// TestCrashHarness kills `splash encode` with SIGKILL at random moments:
// from outside after a random delay, and from inside at each failpoint of
// the commit protocol (mid-shard, between a shard and its manifest, after a
// manifest, before _SUCCESS) with a random hit count. Kills pile up in one
// output directory (a round) until all its shards are done; then the
// command is re-run to completion and the result must equal the
// uninterrupted run byte for byte, with every document exactly once and no
// temp file left. After every kill the directory must hold no partial file
// that looks done (see inspect), and the next run must count as done
// exactly the shards with a verified manifest (see checkPlan). Half the
// outputs that a kill left under their final name without a manifest are
// truncated, as a torn write would leave them: they must be redone.
func TestCrashHarness(t *testing.T) {
	began := time.Now()
	f := newCrashFixture(t)
	rng := rand.New(rand.NewSource(crashSeed(t)))

	// Kills wanted per kind, and in all.
	quota := map[string]int{crashKillTimer: 10, shards.FailpointRowWritten: 4, shards.FailpointShardCommitted: 4,
		shards.FailpointManifestWritten: 4, shards.FailpointBeforeSuccess: 3}
	minKills := 25
	if testing.Short() {
		quota = map[string]int{crashKillTimer: 3, shards.FailpointRowWritten: 1, shards.FailpointShardCommitted: 1,
			shards.FailpointManifestWritten: 1, shards.FailpointBeforeSuccess: 1}
		minKills = 7
	}
	maxAttempts := 3 * minKills
	kills := map[string]int{}
	var (
		attempts, totalKills, timerLate, rounds             int
		orphansSeen, orphansTruncated, tempsSeen, unplanned int
		docsChecked, lostAll, dupAll                        int
	)

	dir := ""
	var prev outState
	finishRound := func() {
		when := fmt.Sprintf("round %d, re-run to completion", rounds)
		p := f.start(t, dir, "")
		if err := p.wait(t); err != nil {
			t.Errorf("%s: %v\n%s", when, err, tail(p.stderr.String(), 4000))
		}
		f.checkPlan(t, p.stderr.String(), when, prev)
		lost, dup, n := f.checkComplete(t, dir, when)
		docsChecked += n
		lostAll += lost
		dupAll += dup
		dir = ""
	}
	wanted := func() bool {
		if totalKills < minKills {
			return true
		}
		for k, q := range quota {
			if kills[k] < q {
				return true
			}
		}
		return false
	}
	for wanted() && attempts < maxAttempts {
		if dir == "" {
			rounds++
			dir = filepath.Join(t.TempDir(), fmt.Sprintf("round-%d", rounds))
			prev = outState{done: map[string]bool{}}
		}
		leftShards, leftRows := 0, 0
		for _, b := range f.bases {
			if !prev.done[b] {
				leftShards++
				leftRows += len(f.ids[b])
			}
		}
		if leftShards == 0 {
			finishRound()
			continue
		}

		// Draw a kind among those short of their quota, weighted by what is
		// missing. Each round costs a full encode of the corpus, so kills
		// come early in what is left and the kinds that end a round wait
		// for its end: before _SUCCESS when at most two shards are left,
		// after a manifest while at least two are.
		var pool []string
		for _, k := range crashKinds {
			for range max(quota[k]-kills[k], 0) {
				pool = append(pool, k)
			}
		}
		if len(pool) == 0 {
			pool = crashKinds
		}
		notNow := func(k string) bool {
			return k == shards.FailpointBeforeSuccess && leftShards > 2 || k == shards.FailpointManifestWritten && leftShards < 2
		}
		if narrowed := slices.DeleteFunc(slices.Clone(pool), notNow); len(narrowed) > 0 {
			pool = narrowed
		}
		kind := pool[rng.Intn(len(pool))]
		attempts++
		when := fmt.Sprintf("round %d, attempt %d (%s", rounds, attempts, kind)
		var p *crashProc
		killed := false
		if kind == crashKillTimer {
			// The run has leftRows of total documents to encode: the limit is
			// 80% of the time that takes, plus start-up.
			limit := time.Duration(float64(f.refWall) * (0.05 + 0.75*float64(leftRows)/float64(f.total)))
			delay := time.Duration(rng.Int63n(int64(limit) + 1))
			when += fmt.Sprintf(" after %s)", delay.Round(time.Millisecond))
			p = f.start(t, dir, "")
			killed = p.killAfter(t, delay)
			if !killed {
				timerLate++
				if p.err != nil {
					t.Errorf("%s: the run failed: %v\n%s", when, p.err, tail(p.stderr.String(), 4000))
				}
			}
		} else {
			n := 1
			switch kind {
			case shards.FailpointRowWritten:
				n = 1 + rng.Intn(min(leftRows, 80))
			case shards.FailpointShardCommitted:
				n = 1 + rng.Intn(min(leftShards, 2))
			case shards.FailpointManifestWritten:
				n = 1 + rng.Intn(max(min(leftShards-1, 2), 1))
			}
			fp := fmt.Sprintf("%s:%d", kind, n)
			when += fmt.Sprintf(" %s)", fp)
			p = f.start(t, dir, fp)
			err := p.wait(t)
			killed = killedBySIGKILL(err)
			if !killed || !strings.Contains(p.stderr.String(), "killing the process at "+kind) {
				t.Errorf("%s: the failpoint did not kill the run (%v)\n%s", when, err, tail(p.stderr.String(), 4000))
			}
		}
		if killed {
			kills[kind]++
			totalKills++
		}
		if !f.checkPlan(t, p.stderr.String(), when, prev) {
			unplanned++
		}
		st := f.inspect(t, dir, when)
		if len(st.temps) > 0 {
			tempsSeen++
		}
		if len(st.orphans) > 0 {
			orphansSeen++
			if rng.Intn(2) == 0 {
				path := filepath.Join(dir, st.orphans[0]+".parquet")
				if info, err := os.Stat(path); err == nil {
					if err := os.Truncate(path, info.Size()/2); err != nil {
						t.Fatal(err)
					}
					orphansTruncated++
				}
			}
		}
		if killed && st.success {
			// Only a kill after _SUCCESS took its name could leave one; none of
			// the failpoints is there and a timer kill rarely is.
			t.Logf("%s: the kill came after _SUCCESS", when)
		}
		prev = st
	}
	if dir != "" {
		finishRound()
	}
	if wanted() {
		t.Errorf("after %d attempts: kills %v, want at least %v and %d in all", attempts, kills, quota, minKills)
	}
	t.Logf("crash harness: %d shards, %d documents, reference run %s; %d attempts in %d rounds, %d SIGKILLs "+
		"(timer %d, %s %d, %s %d, %s %d, %s %d), %d timed runs finished before their kill, %d runs killed before their plan; "+
		"after kills: outputs without manifest %d times (%d truncated), temp files %d times; "+
		"docs checked %d, lost %d, duplicated %d; wall %s",
		len(f.bases), f.total, f.refWall.Round(time.Millisecond), attempts, rounds, totalKills,
		kills[crashKillTimer], shards.FailpointRowWritten, kills[shards.FailpointRowWritten],
		shards.FailpointShardCommitted, kills[shards.FailpointShardCommitted],
		shards.FailpointManifestWritten, kills[shards.FailpointManifestWritten],
		shards.FailpointBeforeSuccess, kills[shards.FailpointBeforeSuccess],
		timerLate, unplanned, orphansSeen, orphansTruncated, tempsSeen,
		docsChecked, lostAll, dupAll, time.Since(began).Round(100*time.Millisecond))
}

// waitManifests waits until dir holds n manifests or p has ended.
func waitManifests(t *testing.T, p *crashProc, dir string, n int) {
	t.Helper()
	deadline := time.Now().Add(crashProcessLimit)
	for n > 0 && time.Now().Before(deadline) {
		if m, _ := filepath.Glob(filepath.Join(dir, "_manifest.*.json")); len(m) >= n {
			return
		}
		select {
		case <-p.done:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

var encodedSummary = regexp.MustCompile(`encoded (\d+) documents from (\d+) shard\(s\)`)

// TestConcurrentRuns starts two `splash encode` processes on the same input
// and output directory, at once or the second a few shards later. Each
// shard is encoded under a lock in the output directory, so both must exit
// 0 with one committed output per shard, identical to an uninterrupted
// run, every document exactly once, no temp file left, every shard encoded
// by one of the two only, and a run that found a shard encoded by the other
// saying so. Then, twice, one of two racing processes is killed at a random
// moment: the other must finish the job alone, with the same result.
func TestConcurrentRuns(t *testing.T) {
	began := time.Now()
	f := newCrashFixture(t)
	rng := rand.New(rand.NewSource(crashSeed(t)))
	races, killRaces := 3, 2
	if testing.Short() {
		races, killRaces = 1, 1
	}
	var splits []string
	for i := range races {
		when := fmt.Sprintf("race %d", i+1)
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("race-%d", i+1))
		// The first race starts both at once; the others start the second
		// process once the first has committed 1 to 3 shards, to vary the
		// interleavings.
		after := 0
		if i > 0 {
			after = 1 + rng.Intn(3)
		}
		when += fmt.Sprintf(" (second process started after %d shards)", after)
		raceStart := time.Now()
		a := f.start(t, dir, "")
		waitManifests(t, a, dir, after)
		b := f.start(t, dir, "")
		errA, errB := a.wait(t), b.wait(t)
		for j, r := range []struct {
			p   *crashProc
			err error
		}{{a, errA}, {b, errB}} {
			if r.err != nil {
				t.Errorf("%s: process %d: %v\n%s", when, j+1, r.err, tail(r.p.stderr.String(), 4000))
			}
		}
		f.checkComplete(t, dir, when)
		logs := strings.ToLower(a.stdout.String() + a.stderr.String() + b.stdout.String() + b.stderr.String())
		if !strings.Contains(logs, "another run") {
			t.Errorf("%s: neither process reported a shard encoded by another run", when)
		}
		// Who encoded what, from the summaries ("encoded N documents from
		// S shard(s)"): each shard by one process only.
		docs, parsed := 0, true
		var split []string
		for _, p := range []*crashProc{a, b} {
			m := encodedSummary.FindStringSubmatch(p.stdout.String())
			if m == nil {
				parsed = false
				split = append(split, "?")
				continue
			}
			n, _ := strconv.Atoi(m[1])
			docs += n
			split = append(split, m[2]+" shards/"+m[1]+" docs")
		}
		splits = append(splits, fmt.Sprintf("%s + %s (second started after %d shards; %s)", split[0], split[1], after,
			time.Since(raceStart).Round(100*time.Millisecond)))
		if parsed && docs != f.total {
			t.Errorf("%s: the two processes encoded %d documents (%s) for %d in the corpus: work was done twice",
				when, docs, strings.Join(split, " + "), f.total)
		}
	}

	var kills []string
	for i := range killRaces {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("kill-race-%d", i+1))
		a, b := f.start(t, dir, ""), f.start(t, dir, "")
		victim, survivor := a, b
		if rng.Intn(2) == 0 {
			victim, survivor = b, a
		}
		// A random moment mid-run: once k shards are committed, plus up to
		// the time one shard takes.
		k := rng.Intn(len(f.bases) - 1)
		delay := time.Duration(rng.Int63n(int64(f.refWall) / int64(len(f.bases))))
		waitManifests(t, victim, dir, k)
		when := fmt.Sprintf("kill race %d (SIGKILL %s after %d shards)", i+1, delay.Round(time.Millisecond), k)
		killed := victim.killAfter(t, delay)
		if !killed && victim.err != nil {
			t.Errorf("%s: the process to kill failed before: %v\n%s", when, victim.err, tail(victim.stderr.String(), 4000))
		}
		if err := survivor.wait(t); err != nil {
			t.Errorf("%s: the survivor: %v\n%s", when, err, tail(survivor.stderr.String(), 4000))
		}
		f.checkComplete(t, dir, when)
		kills = append(kills, fmt.Sprintf("%s after %d shards (killed %v)", delay.Round(time.Millisecond), k, killed))
	}
	t.Logf("concurrent runs: %d shards, %d documents, reference run %s; races %d (split %s); kill races %d (%s); wall %s",
		len(f.bases), f.total, f.refWall.Round(time.Millisecond), races, strings.Join(splits, "; "),
		killRaces, strings.Join(kills, "; "), time.Since(began).Round(100*time.Millisecond))
}
