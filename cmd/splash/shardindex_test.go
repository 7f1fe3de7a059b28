package main

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/splash-encode/splash/shards"
)

// startIndex starts `splash encode --shard-count count` as index index: by
// the flag, or (byEnv) through $JOB_COMPLETION_INDEX as an Indexed Job's
// pod gets it.
func (f *crashFixture) startIndex(t *testing.T, out string, index, count int, byEnv bool) *crashProc {
	t.Helper()
	args := append(f.encodeArgs(out), "--shard-count", strconv.Itoa(count))
	var env []string
	if byEnv {
		env = append(env, completionIndexEnv+"="+strconv.Itoa(index))
	} else {
		args = append(args, "--shard-index", strconv.Itoa(index))
	}
	return f.startWith(t, args, env)
}

// TestShardedIndexedRuns is the harness of a Kubernetes Indexed Job on one
// machine: three `splash encode --shard-count 3` processes as indexes 0-2
// (two by --shard-index, one by $JOB_COMPLETION_INDEX), some killed with
// SIGKILL at random moments and restarted, as the Job controller restarts
// failed indexes, and a duplicate of one index running at the same time as
// it (a replacement pod started while the old one still runs). No index may
// write _SUCCESS; `splash finalize` refuses while shards are missing, then
// writes it; the union of the outputs must hold every document exactly
// once, each shard byte-identical to an uninterrupted single-process run.
func TestShardedIndexedRuns(t *testing.T) {
	f := newCrashFixture(t)
	rng := rand.New(rand.NewSource(crashSeed(t)))
	const count = 3
	dir := filepath.Join(t.TempDir(), "sharded")
	corpus := filepath.Join(f.corpus, "*.parquet")

	// Index 0 alone first: its shards only, and finalize must refuse.
	p0 := f.startIndex(t, dir, 0, count, false)
	if err := p0.wait(t); err != nil {
		t.Fatalf("index 0: %v\n%s", err, tail(p0.stderr.String(), 4000))
	}
	mine, _ := shards.AssignShards(mustGlob(t, corpus), 0, count)
	if got := f.inspect(t, dir, "after index 0"); len(got.done) != len(mine) || got.success {
		t.Fatalf("after index 0: %d shards done (want its %d), _SUCCESS %v", len(got.done), len(mine), got.success)
	}
	out, err := splashCmd(f.bin, "finalize", "--output", dir, "--input", corpus).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "are missing or do not verify") {
		t.Fatalf("finalize with indexes 1 and 2 missing: %v\n%s", err, out)
	}

	// Indexes 1 and 2, each killed at random moments and restarted until it
	// finishes; a duplicate of index 2 runs alongside its first attempt.
	started, kills := 1, 0
	dupe := f.startIndex(t, dir, 2, count, true)
	started++
	for _, index := range []int{1, 2} {
		for attempt := 1; ; attempt++ {
			p := f.startIndex(t, dir, index, count, index == 2)
			started++
			if attempt <= 2 {
				delay := time.Duration(rng.Int63n(int64(f.refWall)/2 + 1))
				if p.killAfter(t, delay) {
					kills++
					t.Logf("index %d attempt %d: killed after %s", index, attempt, delay.Round(time.Millisecond))
					continue
				}
			}
			if err := p.wait(t); err != nil {
				t.Fatalf("index %d attempt %d: %v\n%s", index, attempt, err, tail(p.stderr.String(), 4000))
			}
			break
		}
	}
	if err := dupe.wait(t); err != nil {
		t.Fatalf("duplicate of index 2: %v\n%s", err, tail(dupe.stderr.String(), 4000))
	}
	if st := f.inspect(t, dir, "all indexes done"); st.success {
		t.Fatal("an index wrote _SUCCESS; only splash finalize may")
	}
	out, err = splashCmd(f.bin, "finalize", "--output", dir, "--input", corpus).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("%d shard(s), %d documents", len(f.bases), f.total)) {
		t.Fatalf("finalize: %v\n%s", err, out)
	}
	lost, dup, read := f.checkComplete(t, dir, "sharded run")
	t.Logf("%d processes for %d indexes (one duplicate), %d killed with SIGKILL; %d documents read, %d lost, %d duplicated",
		started, count, kills, read, lost, dup)
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) == 0 {
		t.Fatalf("glob %s: %v (%d matches)", pattern, err, len(m))
	}
	return m
}

// TestShardFlags checks how encode resolves its shard index.
func TestShardFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--shard-count", "3"}, "", "needs --shard-index or $JOB_COMPLETION_INDEX"},
		{[]string{"--shard-count", "3", "--shard-index", "3"}, "", "--shard-index 3: must be from 0 to 2"},
		{[]string{"--shard-count", "3"}, "7", "$JOB_COMPLETION_INDEX 7: must be from 0 to 2"},
		{[]string{"--shard-count", "3"}, "x", `$JOB_COMPLETION_INDEX="x" is not a number`},
		{[]string{"--shard-count", "0"}, "", "--shard-count 0: must be at least 1"},
	} {
		t.Setenv(completionIndexEnv, c.env)
		if c.env == "" {
			os.Unsetenv(completionIndexEnv)
		}
		args := append([]string{"encode", "--model", "m", "--input", "i", "--output", "o"}, c.args...)
		_, code, err := runCLI(t, "", args...)
		if code != exitUsage || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v with $JOB_COMPLETION_INDEX=%q: exit %d, error %v; want usage error %q", c.args, c.env, code, err, c.want)
		}
	}
}

// TestShardedIndexedRunsFinalizeWhenComplete is the Indexed Job harness
// with --finalize-when-complete, as deploy/base/job.yaml runs it: index 0
// alone must not finalize (the others' shards are still to come); indexes
// 1 and 2, started at the same time, must end with _SUCCESS written by
// exactly one of them (recorded in it, and said in its JSON summary),
// without any splash finalize; the output must be complete.
func TestShardedIndexedRunsFinalizeWhenComplete(t *testing.T) {
	f := newCrashFixture(t)
	const count = 3
	dir := filepath.Join(t.TempDir(), "sharded")
	start := func(index int) *crashProc {
		args := append(f.encodeArgs(dir), "--shard-count", strconv.Itoa(count), "--finalize-when-complete")
		var env []string
		if index == 2 {
			env = append(env, completionIndexEnv+"="+strconv.Itoa(index)) // as the Job sets it
		} else {
			args = append(args, "--shard-index", strconv.Itoa(index))
		}
		return f.startWith(t, args, env)
	}
	finalized := func(p *crashProc) bool {
		var sum struct {
			Summary   string `json:"summary"`
			Finalized bool   `json:"finalized"`
		}
		for _, line := range strings.Split(p.stdout.String(), "\n") {
			if json.Unmarshal([]byte(line), &sum) == nil && sum.Summary == "encode" {
				return sum.Finalized
			}
		}
		t.Fatalf("no JSON summary on stdout:\n%s", p.stdout.String())
		return false
	}

	p0 := start(0)
	if err := p0.wait(t); err != nil {
		t.Fatalf("index 0: %v\n%s", err, tail(p0.stderr.String(), 4000))
	}
	if st := f.inspect(t, dir, "after index 0"); st.success || finalized(p0) {
		t.Fatal("index 0 finalized while indexes 1 and 2 were still to come")
	}
	if !strings.Contains(p0.stderr.String(), "shards still to come; the index that finishes last finalizes") {
		t.Errorf("index 0 does not say that shards are still to come:\n%s", tail(p0.stderr.String(), 4000))
	}

	p1, p2 := start(1), start(2)
	var winners []int
	for i, p := range []*crashProc{p1, p2} {
		if err := p.wait(t); err != nil {
			t.Fatalf("index %d: %v\n%s", i+1, err, tail(p.stderr.String(), 4000))
		}
		if finalized(p) {
			winners = append(winners, i+1)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("indexes %v finalized, want exactly one", winners)
	}
	var success shards.FinalizeSummary
	if err := shards.ReadSuccess(dir, &success); err != nil {
		t.Fatal(err)
	}
	if by := success.FinalizedByIndex; by == nil || by.ShardIndex != winners[0] || by.ShardCount != count || success.FinalizedBy != "splash encode" {
		t.Errorf("_SUCCESS says finalized by %q, %+v; want splash encode, index %d", success.FinalizedBy, by, winners[0])
	}
	if success.Shards != len(f.bases) || success.Documents != int64(f.total) {
		t.Errorf("_SUCCESS: %d shards, %d documents; want %d and %d", success.Shards, success.Documents, len(f.bases), f.total)
	}
	lost, dup, read := f.checkComplete(t, dir, "finalized by an index")
	t.Logf("index %d finalized; %d documents read, %d lost, %d duplicated", winners[0], read, lost, dup)
}
