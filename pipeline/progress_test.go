package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeClock is a manually advanced clock for ProgressOptions.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// safeBuffer is a bytes.Buffer for writers that a goroutine under test may
// use while the test reads.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// logLines decodes the JSON lines a slog.JSONHandler wrote.
func logLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	return lines
}

// newLogged returns a non-terminal Progress on clock whose ticker never fires
// during a test, so that the test drives report itself.
func newLogged(clock *fakeClock, totals Totals) (*Progress, *safeBuffer) {
	var buf safeBuffer
	p := NewProgress(ProgressOptions{
		Logger:   slog.New(slog.NewJSONHandler(&buf, nil)),
		Interval: time.Hour,
		Totals:   totals,
		Now:      clock.Now,
	})
	return p, &buf
}

func checkFields(t *testing.T, line map[string]any, want map[string]any, absent ...string) {
	t.Helper()
	for k, v := range want {
		if got, ok := line[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v; line %v", k, got, ok, v, line)
		}
	}
	for _, k := range absent {
		if v, ok := line[k]; ok {
			t.Errorf("%s = %v, want absent; line %v", k, v, line)
		}
	}
}

func TestProgressLogsRatesAndETAFromClock(t *testing.T) {
	clock := newFakeClock()
	p, buf := newLogged(clock, Totals{Docs: 1000, Shards: 4})
	p.Start(context.Background())
	defer p.Stop()

	clock.Advance(10 * time.Second)
	p.AddDocs(200, 20000)
	p.ShardDone()
	p.report(false)

	clock.Advance(10 * time.Second)
	p.AddDocs(100, 5000)
	p.report(false)

	lines := logLines(t, buf.String())
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want 2:\n%s", len(lines), buf.String())
	}
	// 200 docs in 10 s: 20 docs/s, 800 left: 40 s.
	checkFields(t, lines[0], map[string]any{
		"msg": "progress", "level": "INFO",
		"documents": 200.0, "tokens": 20000.0, "shards_done": 1.0, "shards_total": 4.0,
		"elapsed": "10s", "docs_per_s": 20.0, "tokens_per_s": 2000.0,
		"documents_total": 1000.0, "percent": 20.0, "eta": "40s",
	}, "final")
	// 300 docs in 20 s: 15 docs/s, 700 left: 46.67 s.
	checkFields(t, lines[1], map[string]any{
		"documents": 300.0, "tokens": 25000.0, "shards_done": 1.0,
		"elapsed": "20s", "docs_per_s": 15.0, "tokens_per_s": 1250.0,
		"percent": 30.0, "eta": "47s",
	}, "final")

	s := p.Snapshot()
	if s.ETA.Round(time.Millisecond) != 46667*time.Millisecond {
		t.Errorf("Snapshot ETA %v, want 46.667s", s.ETA)
	}
}

func TestProgressStopLogsFinalLineOnceAndFreezesElapsed(t *testing.T) {
	clock := newFakeClock()
	p, buf := newLogged(clock, Totals{Docs: 50, Shards: 2})
	p.Start(context.Background())
	clock.Advance(5 * time.Second)
	p.AddDocs(50, 500)
	p.ShardDone()
	p.ShardDone()

	var wg sync.WaitGroup
	for range 4 { // concurrent Stops: one final line, and each returns after it
		wg.Go(p.Stop)
	}
	wg.Wait()
	p.Stop()

	lines := logLines(t, buf.String())
	if len(lines) != 1 {
		t.Fatalf("got %d log lines, want 1 final line:\n%s", len(lines), buf.String())
	}
	checkFields(t, lines[0], map[string]any{
		"final": true, "documents": 50.0, "shards_done": 2.0, "shards_total": 2.0,
		"docs_per_s": 10.0, "tokens_per_s": 100.0, "percent": 100.0, "eta": "0s",
	})
	select {
	case <-p.done:
	default:
		t.Fatal("Stop returned before the reporting goroutine ended")
	}

	clock.Advance(time.Hour)
	if s := p.Snapshot(); s.Elapsed != 5*time.Second || s.DocsPerS != 10 {
		t.Fatalf("after Stop: Elapsed %v, DocsPerS %v; want 5s and 10", s.Elapsed, s.DocsPerS)
	}
	p.Start(context.Background()) // after Stop: nothing
	if strings.Count(buf.String(), "\n") != 1 {
		t.Fatalf("more output after Stop:\n%s", buf.String())
	}
}

func TestProgressUnknownTotalsLogNoPercentOrETA(t *testing.T) {
	clock := newFakeClock()
	p, buf := newLogged(clock, Totals{})
	p.Start(context.Background())
	clock.Advance(4 * time.Second)
	p.AddDocs(10, 1000)
	p.report(false)
	p.Stop()

	lines := logLines(t, buf.String())
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want 2:\n%s", len(lines), buf.String())
	}
	for _, l := range lines {
		checkFields(t, l, map[string]any{"documents": 10.0, "docs_per_s": 2.5, "tokens_per_s": 250.0},
			"documents_total", "percent", "eta", "shards_total")
	}
}

func TestProgressSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name         string
		totals       Totals
		start        bool
		elapsed      time.Duration
		docs, tokens int64
		want         Snapshot
	}{
		{name: "before start", totals: Totals{Docs: 10}, docs: 3, tokens: 30,
			want: Snapshot{Docs: 3, Tokens: 30, DocsTotal: 10, Percent: 30}},
		{name: "no time passed", totals: Totals{Docs: 10}, start: true, docs: 3, tokens: 30,
			want: Snapshot{Docs: 3, Tokens: 30, DocsTotal: 10, Percent: 30}},
		{name: "no docs yet", totals: Totals{Docs: 10, Shards: 3}, start: true, elapsed: time.Minute,
			want: Snapshot{DocsTotal: 10, ShardsTotal: 3, Elapsed: time.Minute}},
		{name: "unknown total", start: true, elapsed: 2 * time.Second, docs: 8, tokens: 80,
			want: Snapshot{Docs: 8, Tokens: 80, Elapsed: 2 * time.Second, DocsPerS: 4, TokensPerS: 40}},
		{name: "halfway", totals: Totals{Docs: 100}, start: true, elapsed: 5 * time.Second, docs: 50, tokens: 1000,
			want: Snapshot{Docs: 50, Tokens: 1000, DocsTotal: 100, Elapsed: 5 * time.Second,
				DocsPerS: 10, TokensPerS: 200, Percent: 50, ETA: 5 * time.Second}},
		{name: "underestimated total", totals: Totals{Docs: 100}, start: true, elapsed: time.Second, docs: 150,
			want: Snapshot{Docs: 150, DocsTotal: 100, Elapsed: time.Second, DocsPerS: 150, Percent: 150}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			p, _ := newLogged(clock, tc.totals)
			if tc.start {
				p.Start(context.Background())
				defer p.Stop()
			}
			clock.Advance(tc.elapsed)
			p.AddDocs(tc.docs, tc.tokens)
			if got := p.Snapshot(); got != tc.want {
				t.Fatalf("Snapshot() = %+v\nwant         %+v", got, tc.want)
			}
		})
	}
}

func TestProgressConcurrentCounting(t *testing.T) {
	var buf safeBuffer
	p := NewProgress(ProgressOptions{
		Logger:   slog.New(slog.NewJSONHandler(&buf, nil)),
		Interval: time.Millisecond, // the reporter runs while the counters move
		Totals:   Totals{Docs: 64 * 1000, Shards: 64},
	})
	p.Start(context.Background())
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range 1000 {
				p.AddDocs(1, 7)
				_ = p.Snapshot()
			}
			p.ShardDone()
		})
	}
	wg.Wait()
	p.Stop()
	s := p.Snapshot()
	if s.Docs != 64000 || s.Tokens != 7*64000 || s.ShardsDone != 64 || s.Percent != 100 || s.ETA != 0 {
		t.Fatalf("final snapshot %+v", s)
	}
	lines := logLines(t, buf.String())
	last := lines[len(lines)-1]
	checkFields(t, last, map[string]any{"final": true, "documents": 64000.0, "tokens": 448000.0, "shards_done": 64.0})
}

func TestProgressTerminalBarShowsRates(t *testing.T) {
	for _, tc := range []struct {
		name   string
		totals Totals
		want   []string
	}{
		{"known total", Totals{Docs: 1000, Shards: 4}, []string{"50%", "500/1.00k docs", "125 docs/s", "12.5k tok/s", "shards 1/4", "[4s<4s]"}},
		{"unknown total", Totals{}, []string{"500 docs", "125 docs/s", "12.5k tok/s", "shards 1", "[4s]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			var out safeBuffer
			p := NewProgress(ProgressOptions{Out: &out, IsTerminal: true, Interval: time.Hour, Totals: tc.totals, Now: clock.Now})
			p.Start(context.Background())
			clock.Advance(4 * time.Second)
			p.AddDocs(500, 50000)
			p.ShardDone()
			p.report(false)
			got := out.String()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("bar output lacks %q:\n%q", w, got)
				}
			}
			p.Stop()
			if got := out.String(); !strings.HasSuffix(got, "\n") {
				t.Errorf("bar output after Stop does not end the line: %q", got)
			}
			if strings.Contains(out.String(), "{") {
				t.Errorf("log line on the terminal: %q", out.String())
			}
		})
	}
}

func TestProgressTerminalBarCompletesOnlyAtStop(t *testing.T) {
	clock := newFakeClock()
	var out safeBuffer
	p := NewProgress(ProgressOptions{Out: &out, IsTerminal: true, Interval: time.Hour, Totals: Totals{Docs: 10, Shards: 2}, Now: clock.Now})
	p.Start(context.Background())
	clock.Advance(time.Second)
	p.AddDocs(10, 100)
	p.ShardDone()
	p.report(false) // all documents, one shard: the bar must keep redrawing
	if strings.Contains(out.String(), "100%") {
		t.Fatalf("bar full before Stop: %q", out.String())
	}
	p.ShardDone()
	p.Stop()
	got := out.String()
	final := got[strings.LastIndex(got, "\r"):]
	if !strings.Contains(final, "100%") || !strings.Contains(final, "shards 2/2") {
		t.Fatalf("final bar %q, want 100%% and shards 2/2", final)
	}
}

// TestProgressReportsEveryInterval runs the real ticker under synctest's fake
// time: the defaults (30 s, time.Now) apply, and the bubble fails the test
// if any goroutine, the bar's included, outlives it.
func TestProgressReportsEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		p := NewProgress(ProgressOptions{Logger: slog.New(slog.NewJSONHandler(&buf, nil)), Totals: Totals{Docs: 900}})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p.Start(ctx)
		p.AddDocs(300, 3000)
		time.Sleep(95 * time.Second)
		synctest.Wait()
		lines := logLines(t, buf.String())
		if len(lines) != 3 {
			t.Fatalf("got %d lines in 95 s, want 3 (every 30 s):\n%s", len(lines), buf.String())
		}
		checkFields(t, lines[0], map[string]any{"elapsed": "30s", "docs_per_s": 10.0, "eta": "1m0s"})
		checkFields(t, lines[2], map[string]any{"elapsed": "1m30s", "docs_per_s": 3.33, "percent": 33.33, "eta": "3m0s"})

		cancel() // the reporter ends with its context
		synctest.Wait()
		select {
		case <-p.done:
		default:
			t.Fatal("reporting goroutine still running after its context ended")
		}
		time.Sleep(time.Minute)
		p.Stop()
		if lines := logLines(t, buf.String()); len(lines) != 4 || lines[3]["final"] != true {
			t.Fatalf("want 3 periodic lines and a final one:\n%s", buf.String())
		}
	})
}

func TestProgressTerminalUnderSynctestLeaksNothing(t *testing.T) {
	for _, totals := range []Totals{{}, {Docs: 100}} {
		synctest.Test(t, func(t *testing.T) {
			var out bytes.Buffer
			p := NewProgress(ProgressOptions{Out: &out, IsTerminal: true, Totals: totals})
			p.Start(context.Background())
			for range 10 {
				p.AddDocs(5, 50)
				time.Sleep(DefaultBarInterval)
			}
			p.Stop()
			if !strings.Contains(out.String(), " 10 docs/s") {
				t.Fatalf("bar output lacks 10 docs/s: %q", out.String())
			}
		})
	}
}

func TestProgressStopWithoutStart(t *testing.T) {
	p, buf := newLogged(newFakeClock(), Totals{})
	p.AddDocs(1, 1)
	p.Stop()
	p.Stop()
	p.Start(context.Background())
	if buf.String() != "" {
		t.Fatalf("output without Start: %q", buf.String())
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("a regular file is a terminal")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if IsTerminal(w) {
		t.Error("a pipe is a terminal")
	}
	if IsTerminal(nil) {
		t.Error("nil is a terminal")
	}
	if null, err := os.Open(os.DevNull); err == nil {
		defer null.Close()
		if !IsTerminal(null) {
			t.Error("/dev/null is a character device and counts as a terminal")
		}
	}
}

func TestHuman(t *testing.T) {
	for _, tc := range []struct {
		x    float64
		want string
	}{
		{0, "0"}, {3.84, "3.8"}, {5, "5"}, {125, "125"}, {999.4, "999"}, {999.7, "1.00k"},
		{1234, "1.23k"}, {12500, "12.5k"}, {450000, "450k"}, {1e6, "1.00M"}, {2.5e9, "2.50G"},
	} {
		if got := human(tc.x); got != tc.want {
			t.Errorf("human(%v) = %q, want %q", tc.x, got, tc.want)
		}
	}
}

func ExampleProgress() {
	clock := newFakeClock() // a test clock; leave Now unset in real runs
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{} // for a stable example output
			}
			return a
		},
	}))
	p := NewProgress(ProgressOptions{
		// The CLI sets Out: os.Stderr, IsTerminal: IsTerminal(os.Stderr).
		Logger: logger,
		Totals: Totals{Docs: 8_841_823, Shards: 64},
		Now:    clock.Now,
	})
	p.Start(context.Background())
	defer p.Stop()

	clock.Advance(25*time.Minute + 12*time.Second)
	p.AddDocs(1_523_000, 152_300_000) // the writer stage, as shards commit
	for range 11 {
		p.ShardDone()
	}
	// Output: level=INFO msg=progress documents=1523000 tokens=152300000 shards_done=11 shards_total=64 elapsed=25m12s docs_per_s=1007.28 tokens_per_s=100727.51 documents_total=8841823 percent=17.22 eta=2h1m6s final=true
}
