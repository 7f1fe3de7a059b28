package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Default reporting intervals of a Progress whose ProgressOptions.Interval
// is zero.
const (
	DefaultLogInterval = 30 * time.Second       // one log line per interval (not a terminal)
	DefaultBarInterval = 500 * time.Millisecond // one bar redraw per interval (terminal)
)

// barWidth is the width of the bar itself in cells; the figures follow it on
// the same line, which must stay within a common terminal's width.
const barWidth = 20

// Totals is the work a run expects. A zero field is unknown: without Docs
// there is no percentage and no ETA, without Shards no shard total.
type Totals struct {
	Docs   int64
	Shards int
}

// ProgressOptions configures a Progress. The zero value is usable: it logs
// through slog.Default every DefaultLogInterval.
type ProgressOptions struct {
	// Out receives the progress bar when IsTerminal is set (default os.Stderr).
	Out io.Writer
	// IsTerminal selects the bar on Out; otherwise Progress logs lines to
	// Logger. The caller decides, typically with IsTerminal(os.Stderr).
	IsTerminal bool
	// Logger receives the periodic lines when IsTerminal is not set
	// (default slog.Default()).
	Logger *slog.Logger
	// Interval between two reports; zero or negative means
	// DefaultLogInterval for log lines and DefaultBarInterval for the bar.
	Interval time.Duration
	// Totals are the expected totals of the run. When a run resumes, they
	// should count only the work that is left.
	Totals Totals
	// Now is the clock that rates and ETA are computed from (default
	// time.Now). The reporting interval itself is always wall-clock time.
	Now func() time.Time
}

// Snapshot is the state of a run at one moment.
//
// Rates are overall rates: the counts divided by the time since Start. They
// are stable over a run of hours, and the ETA they give is what an operator
// expects from "so far"; call Start when work begins (after model loading),
// so that start-up cost does not depress them.
type Snapshot struct {
	Docs, Tokens int64 // committed so far
	DocsTotal    int64 // Totals.Docs; 0 when unknown
	ShardsDone   int
	ShardsTotal  int           // Totals.Shards; 0 when unknown
	Elapsed      time.Duration // since Start; frozen by Stop; 0 before Start
	DocsPerS     float64       // Docs / Elapsed; 0 while Elapsed is 0
	TokensPerS   float64       // Tokens / Elapsed; 0 while Elapsed is 0
	// Percent is 100 × Docs / DocsTotal (0 when DocsTotal is unknown). It
	// exceeds 100 when Totals.Docs was an underestimate.
	Percent float64
	// ETA is the remaining documents divided by DocsPerS: 0 when DocsTotal
	// is unknown, before the first document, and once Docs reaches DocsTotal.
	ETA time.Duration
}

// Progress counts the documents, tokens and shards a run commits and reports
// them: a progress bar on a terminal, otherwise one structured log line every
// interval. AddDocs, ShardDone and Snapshot are safe for concurrent use and
// cost a few atomic operations; they may be called before Start and after
// Stop. Report output comes from one goroutine, started by Start and ended by
// Stop, which writes the final report. Always call Stop (defer it).
type Progress struct {
	opts     ProgressOptions // with defaults filled in
	interval time.Duration

	docs, tokens, shards atomic.Int64

	mu      sync.Mutex
	started bool
	stopped bool
	start   time.Time
	end     time.Time // set by Stop when started

	bar      *progressbar.ProgressBar // terminal mode; used by the reporting goroutine, then by Stop
	quit     chan struct{}            // closed by Stop
	done     chan struct{}            // closed when the reporting goroutine returns
	stopOnce sync.Once
}

// NewProgress returns a Progress that reports nothing until Start.
func NewProgress(opts ProgressOptions) *Progress {
	if opts.Out == nil {
		opts.Out = os.Stderr
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	interval := opts.Interval
	if interval <= 0 {
		interval = DefaultLogInterval
		if opts.IsTerminal {
			interval = DefaultBarInterval
		}
	}
	return &Progress{
		opts:     opts,
		interval: interval,
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// IsTerminal reports whether f is a character device, the standard library's
// approximation of a terminal. /dev/null is one too, which is harmless: a
// bar drawn there is discarded. A pipe, a file or a pod's log is not.
func IsTerminal(f *os.File) bool {
	if f == nil {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Start records the start time and starts reporting: every interval until
// ctx is done or Stop is called. A second call, or a call after Stop, does
// nothing.
func (p *Progress) Start(ctx context.Context) {
	p.mu.Lock()
	if p.started || p.stopped {
		p.mu.Unlock()
		return
	}
	p.started = true
	p.start = p.opts.Now()
	if p.opts.IsTerminal {
		p.bar = newBar(p.opts.Out, p.opts.Totals.Docs)
	}
	p.mu.Unlock()
	go p.run(ctx)
}

func (p *Progress) run(ctx context.Context) {
	defer close(p.done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.quit:
			return
		case <-t.C:
			p.report(false)
		}
	}
}

// AddDocs counts docs documents of tokens tokens in all as done. Call it
// when they are committed, so that the counts never run ahead of the output.
func (p *Progress) AddDocs(docs, tokens int64) {
	p.docs.Add(docs)
	p.tokens.Add(tokens)
}

// ShardDone counts one more shard as done.
func (p *Progress) ShardDone() {
	p.shards.Add(1)
}

// Snapshot returns the counts and the rates derived from them now.
func (p *Progress) Snapshot() Snapshot {
	p.mu.Lock()
	started, stopped, start, end := p.started, p.stopped, p.start, p.end
	p.mu.Unlock()
	s := Snapshot{
		Docs:        p.docs.Load(),
		Tokens:      p.tokens.Load(),
		DocsTotal:   p.opts.Totals.Docs,
		ShardsDone:  int(p.shards.Load()),
		ShardsTotal: p.opts.Totals.Shards,
	}
	if started {
		if !stopped {
			end = p.opts.Now()
		}
		s.Elapsed = max(end.Sub(start), 0)
	}
	if sec := s.Elapsed.Seconds(); sec > 0 {
		s.DocsPerS = float64(s.Docs) / sec
		s.TokensPerS = float64(s.Tokens) / sec
	}
	if s.DocsTotal > 0 {
		s.Percent = 100 * float64(s.Docs) / float64(s.DocsTotal)
		if left := s.DocsTotal - s.Docs; left > 0 && s.DocsPerS > 0 {
			s.ETA = time.Duration(float64(left) / s.DocsPerS * float64(time.Second))
		}
	}
	return s
}

// Stop stops reporting, waits for the reporting goroutine to return and
// writes the final report: the bar with a line break after it, or a log
// line with final=true. It freezes Elapsed for later Snapshots. Stop is
// idempotent and safe to call from several goroutines; without Start it
// only prevents a later Start.
func (p *Progress) Stop() {
	p.stopOnce.Do(func() {
		p.mu.Lock()
		p.stopped = true
		started := p.started
		if started {
			p.end = p.opts.Now()
		}
		p.mu.Unlock()
		close(p.quit)
		if !started {
			return
		}
		<-p.done
		p.report(true)
	})
}

// report writes one report of the current state. Only the reporting
// goroutine calls it, and Stop once that goroutine has returned; tests call
// it directly between ticks of a long interval.
func (p *Progress) report(final bool) {
	s := p.Snapshot()
	if p.bar != nil {
		p.drawBar(s, final)
		return
	}
	p.logLine(s, final)
}

func (p *Progress) logLine(s Snapshot, final bool) {
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs,
		slog.Int64("documents", s.Docs),
		slog.Int64("tokens", s.Tokens),
		slog.Int("shards_done", s.ShardsDone),
	)
	if s.ShardsTotal > 0 {
		attrs = append(attrs, slog.Int("shards_total", s.ShardsTotal))
	}
	attrs = append(attrs,
		slog.String("elapsed", s.Elapsed.Round(time.Second).String()),
		slog.Float64("docs_per_s", round2(s.DocsPerS)),
		slog.Float64("tokens_per_s", round2(s.TokensPerS)),
	)
	if s.DocsTotal > 0 {
		attrs = append(attrs,
			slog.Int64("documents_total", s.DocsTotal),
			slog.Float64("percent", round2(s.Percent)),
		)
		if eta, ok := etaText(s); ok {
			attrs = append(attrs, slog.String("eta", eta))
		}
	}
	if final {
		attrs = append(attrs, slog.Bool("final", true))
	}
	p.opts.Logger.LogAttrs(context.Background(), slog.LevelInfo, "progress", attrs...)
}

// etaText formats the ETA, rounded to the second, when it is known: a total
// is known and either documents have been done at a measurable rate or all
// are done.
func etaText(s Snapshot) (string, bool) {
	if s.DocsTotal <= 0 || (s.ETA == 0 && s.Docs < s.DocsTotal) {
		return "", false
	}
	return s.ETA.Round(time.Second).String(), true
}

func newBar(out io.Writer, total int64) *progressbar.ProgressBar {
	limit := int64(-1) // unknown: a spinner instead of a bar
	if total > 0 {
		limit = total
	}
	return progressbar.NewOptions64(limit,
		progressbar.OptionSetWriter(out),
		progressbar.OptionSetWidth(barWidth),
		// Progress computes rates and ETA itself, from its own clock.
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(false),
		// 0: the spinner turns on each redraw; otherwise the bar runs a
		// goroutine of its own that never ends.
		progressbar.OptionSetSpinnerChangeInterval(0),
		progressbar.OptionShowDescriptionAtLineEnd(),
	)
}

func (p *Progress) drawBar(s Snapshot, final bool) {
	n := s.Docs
	if s.DocsTotal > 0 {
		// The bar stops redrawing for good once it reaches its maximum, so
		// it reaches it only in the final report: a last shard may be
		// counted after the last document.
		limit := s.DocsTotal - 1
		if final {
			limit = s.DocsTotal
		}
		n = min(n, limit)
	}
	// Describe redraws with the new figures; Set64 redraws again only when
	// the percentage changes. Errors are those of writing to a terminal.
	p.bar.Describe(barText(s))
	_ = p.bar.Set64(n)
	if final {
		_, _ = io.WriteString(p.opts.Out, "\n")
	}
}

// barText is the line after the bar, e.g.
// "450k/1.00M docs, 1.20k docs/s, 150k tok/s, shards 3/8 [6m15s<7m38s]".
func barText(s Snapshot) string {
	var b strings.Builder
	b.WriteString(human(float64(s.Docs)))
	if s.DocsTotal > 0 {
		b.WriteString("/" + human(float64(s.DocsTotal)))
	}
	fmt.Fprintf(&b, " docs, %s docs/s, %s tok/s", human(s.DocsPerS), human(s.TokensPerS))
	switch {
	case s.ShardsTotal > 0:
		fmt.Fprintf(&b, ", shards %d/%d", s.ShardsDone, s.ShardsTotal)
	case s.ShardsDone > 0:
		fmt.Fprintf(&b, ", shards %d", s.ShardsDone)
	}
	b.WriteString(" [" + s.Elapsed.Round(time.Second).String())
	if eta, ok := etaText(s); ok {
		b.WriteString("<" + eta)
	}
	b.WriteString("]")
	return b.String()
}

// human formats x with three significant digits and an SI suffix from 1000
// on (12.3k, 1.20M); below, whole numbers as they are and others with one
// decimal below 10 (3.8).
func human(x float64) string {
	for _, u := range []struct {
		div    float64
		suffix string
	}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if x >= u.div*0.9995 { // 999.6 is 1.00k, not 1000
			v := x / u.div
			prec := 0
			switch {
			case v < 10:
				prec = 2
			case v < 100:
				prec = 1
			}
			return strconv.FormatFloat(v, 'f', prec, 64) + u.suffix
		}
	}
	if x < 10 && x != math.Trunc(x) {
		return strconv.FormatFloat(x, 'f', 1, 64)
	}
	return strconv.FormatFloat(x, 'f', 0, 64)
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }
