package report

import (
	"bytes"
	"fmt"
	"html"
	"html/template"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/splash-encode/splash/shards/stats"
)

// Figure is one plot of the page: an SVG, or a note saying why there is none.
type Figure struct {
	ID      string // the figure element's id, "plot-..."
	Title   string
	Caption string
	SVG     template.HTML // the inline <svg> element; empty when Note is set
	Note    string
}

// The figure ids, stable for tests and for links into a report.
const (
	FigNNZ       = "plot-nnz"
	FigWeights   = "plot-weights"
	FigTopTerms  = "plot-top-terms"
	FigThrough   = "plot-throughput"
	FigPadding   = "plot-padding"
	FigTruncated = "plot-truncated-empty"
)

// FigureIDs lists the figures of every report, in page order.
func FigureIDs() []string {
	return []string{FigNNZ, FigWeights, FigTopTerms, FigThrough, FigPadding, FigTruncated}
}

const (
	plotWidth  = 7 * vg.Inch
	plotHeight = 3.2 * vg.Inch
	// maxNamedShards is the most shards whose names label a per-shard axis;
	// beyond it the axis counts shards by position.
	maxNamedShards = 40
)

var (
	colorBlue   = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	colorOrange = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	colorGreen  = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	colorRed    = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	colorPurple = color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}
)

// Figures draws the report's plots, in the order of FigureIDs.
func (r *Report) Figures() ([]Figure, error) {
	var figs []Figure
	for _, f := range []func() (Figure, error){r.nnzFigure, r.weightFigure, r.topTermsFigure, r.throughputFigure, r.paddingFigure, r.truncatedFigure} {
		fig, err := f()
		if err != nil {
			return nil, err
		}
		figs = append(figs, fig)
	}
	return figs, nil
}

func (r *Report) nnzFigure() (Figure, error) {
	fig := Figure{ID: FigNNZ, Title: "Non-zeros per document"}
	bins := r.Total.NNZHistogram(r.Options.Bins)
	fig.Caption = fmt.Sprintf("Documents by number of non-zero terms (%d documents; mean %.1f, p50 %d, p99 %d, max %d).",
		r.Total.Rows, r.Total.NNZMean(), r.Total.NNZPercentile(0.5), r.Total.NNZPercentile(0.99), r.Total.NNZMax())
	if len(bins) == 0 {
		fig.Note = "No documents."
		return fig, nil
	}
	p := newPlot(fig.Title, "non-zero terms", "documents")
	p.Add(histogram(bins, colorBlue, false))
	var err error
	fig.SVG, err = renderSVG(p, plotWidth, plotHeight)
	return fig, err
}

func (r *Report) weightFigure() (Figure, error) {
	fig := Figure{ID: FigWeights, Title: "Weight distribution"}
	bins := r.Total.WeightHistogram(r.Options.Bins)
	fig.Caption = fmt.Sprintf("Non-zero terms by SPLADE weight, log scale (%d non-zeros, largest weight %.3g; weights binned at 8 significant bits).",
		r.Total.NonZeroWeights(), r.Total.MaxWeight())
	if len(bins) == 0 {
		fig.Note = "No non-zero weights: every document is empty."
		return fig, nil
	}
	p := newPlot(fig.Title, "weight", "non-zeros (log scale)")
	p.Add(histogram(bins, colorOrange, true))
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	var err error
	fig.SVG, err = renderSVG(p, plotWidth, plotHeight)
	return fig, err
}

func (r *Report) topTermsFigure() (Figure, error) {
	fig := Figure{ID: FigTopTerms, Title: "Top expansion terms"}
	n := len(r.TopTerms)
	fig.Caption = fmt.Sprintf("The %d terms found in most documents, with the number of documents holding each (document frequency), of %d distinct terms.", n, r.Total.Terms())
	if n == 0 {
		fig.Note = "No terms: every document is empty."
		return fig, nil
	}
	p := newPlot(fig.Title, "documents", "")
	values := make(plotter.Values, n)
	labels := make([]string, n)
	for i, t := range r.TopTerms { // the most frequent at the top
		values[n-1-i] = float64(t.DF)
		labels[n-1-i] = t.Token
	}
	rowHeight := vg.Points(14)
	bars, err := plotter.NewBarChart(values, rowHeight*0.7)
	if err != nil {
		return fig, fmt.Errorf("plot %s: %w", fig.ID, err)
	}
	bars.Horizontal = true
	bars.Color = colorGreen
	bars.LineStyle.Width = 0
	p.Add(bars)
	p.NominalY(labels...)
	p.X.Min = 0
	fig.SVG, err = renderSVG(p, plotWidth, max(plotHeight, rowHeight*vg.Length(n)+vg.Points(70)))
	return fig, err
}

// statShards returns the shards whose manifests hold run statistics, with
// their labels.
func (r *Report) statShards() (with []Shard, labels []string, missing int) {
	for _, s := range r.Shards {
		if s.RunStats() != nil {
			with = append(with, s)
			labels = append(labels, s.Base)
		} else {
			missing++
		}
	}
	return with, labels, missing
}

func missingStatsNote(missing, total int) string {
	if missing == 0 {
		return ""
	}
	return fmt.Sprintf(" %d of %d shards are left out: their manifests hold no run statistics.", missing, total)
}

func (r *Report) throughputFigure() (Figure, error) {
	fig := Figure{ID: FigThrough, Title: "Throughput per shard"}
	with, labels, missing := r.statShards()
	if len(with) == 0 {
		fig.Caption = "Documents encoded per second, per shard, from the manifests' run statistics."
		fig.Note = "No manifest of this directory holds run statistics (they were written by a splash version that did not record them, or the shards have no manifest): no throughput to show."
		return fig, nil
	}
	values := make(plotter.Values, len(with))
	t := r.runTotals()
	for i, s := range with {
		values[i] = Throughput(*s.RunStats())
	}
	fig.Caption = fmt.Sprintf("Documents encoded per second, per shard (wall time from the shard's first encoded row to its commit); all shards together %.1f documents per second of shard time (%.1f s in all; shards encoded at the same time overlap).%s",
		safeDiv(float64(t.docs), t.seconds), t.seconds, missingStatsNote(missing, len(r.Shards)))
	p := newPlot(fig.Title, "", "documents / s")
	if err := addBars(p, values, colorBlue, 0, 1); err != nil {
		return fig, fmt.Errorf("plot %s: %w", fig.ID, err)
	}
	shardAxis(p, labels)
	var err error
	fig.SVG, err = renderSVG(p, plotWidth, plotHeight)
	return fig, err
}

func (r *Report) paddingFigure() (Figure, error) {
	fig := Figure{ID: FigPadding, Title: "Padding waste per shard"}
	with, labels, missing := r.statShards()
	if len(with) == 0 {
		fig.Caption = "Share of the positions run through the model that were padding, (padded − tokens) / padded, per shard."
		fig.Note = "No manifest of this directory holds run statistics: no padding figures to show."
		return fig, nil
	}
	values := make(plotter.Values, len(with))
	for i, s := range with {
		values[i] = 100 * PaddingWaste(*s.RunStats())
	}
	t := r.runTotals()
	fig.Caption = fmt.Sprintf("Share of the positions run through the model that were padding, (padded − tokens) / padded, per shard; overall %.2f%% (%d padded positions for %d tokens).%s",
		100*safeDiv(float64(t.padded-t.tokens), float64(t.padded)), t.padded, t.tokens, missingStatsNote(missing, len(r.Shards)))
	p := newPlot(fig.Title, "", "padding waste (%)")
	if err := addBars(p, values, colorPurple, 0, 1); err != nil {
		return fig, fmt.Errorf("plot %s: %w", fig.ID, err)
	}
	shardAxis(p, labels)
	var err error
	fig.SVG, err = renderSVG(p, plotWidth, plotHeight)
	return fig, err
}

func (r *Report) truncatedFigure() (Figure, error) {
	fig := Figure{ID: FigTruncated, Title: "Truncated and empty documents per shard"}
	fig.Caption = fmt.Sprintf("Documents cut at the maximum length (%d in all) and documents with an empty vector (%d in all), per shard, counted in the shards.",
		r.Total.Truncated, r.Total.Empty)
	if len(r.Shards) == 0 {
		fig.Note = "No shards."
		return fig, nil
	}
	truncated := make(plotter.Values, len(r.Shards))
	empty := make(plotter.Values, len(r.Shards))
	labels := make([]string, len(r.Shards))
	for i, s := range r.Shards {
		truncated[i], empty[i], labels[i] = float64(s.Truncated), float64(s.Empty), s.Base
	}
	p := newPlot(fig.Title, "", "documents")
	if err := addBars(p, truncated, colorOrange, 0, 2, "truncated"); err != nil {
		return fig, fmt.Errorf("plot %s: %w", fig.ID, err)
	}
	if err := addBars(p, empty, colorRed, 1, 2, "empty"); err != nil {
		return fig, fmt.Errorf("plot %s: %w", fig.ID, err)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(8)
	top := max(slices.Max(truncated), slices.Max(empty), 1)
	p.Y.Max = 1.3 * top // headroom for the legend
	shardAxis(p, labels)
	var err error
	fig.SVG, err = renderSVG(p, plotWidth, plotHeight)
	return fig, err
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.X.Tick.Marker = plainTicks{}
	p.Y.Tick.Marker = plainTicks{}
	return p
}

// plainTicks are gonum's default ticks labelled in the shortest decimal
// form ("250", not "250.00").
type plainTicks struct{}

func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'g', 6, 64)
		}
	}
	return ticks
}

func histogram(bins []stats.Bin, fill color.Color, logY bool) *plotter.Histogram {
	h := &plotter.Histogram{FillColor: fill, LineStyle: plotter.DefaultLineStyle, LogY: logY}
	h.LineStyle.Color = color.White
	h.LineStyle.Width = vg.Points(0.5)
	for _, b := range bins {
		h.Bins = append(h.Bins, plotter.HistogramBin{Min: b.Lo, Max: b.Hi, Weight: float64(b.Count)})
	}
	if len(bins) > 0 {
		h.Width = bins[0].Hi - bins[0].Lo
	}
	return h
}

// addBars adds one series of a group of series bars per category: the
// series-th of n, side by side, with an optional legend entry.
func addBars(p *plot.Plot, values plotter.Values, c color.Color, series, n int, legend ...string) error {
	area := plotWidth - vg.Inch
	width := min(vg.Points(24), area*0.7/vg.Length(max(1, len(values)*n)))
	bars, err := plotter.NewBarChart(values, width)
	if err != nil {
		return err
	}
	bars.Color = c
	bars.LineStyle.Width = 0
	bars.Offset = width * (vg.Length(series) - vg.Length(n-1)/2)
	p.Add(bars)
	if len(legend) > 0 {
		p.Legend.Add(legend[0], bars)
	}
	p.Y.Min = 0
	if len(values) > 0 {
		p.Y.Max = max(p.Y.Max, 1.08*slices.Max(values)) // the tallest bar below the plot's top
	}
	return nil
}

// shardAxis labels the X axis with the shards' names, slanted when there are
// several, or with their positions when there are too many to name.
func shardAxis(p *plot.Plot, names []string) {
	if len(names) > maxNamedShards {
		p.X.Label.Text = "shard (position in name order, from 0)"
		p.X.Min, p.X.Max = -0.5, float64(len(names))-0.5
		return
	}
	p.NominalX(names...)
	// Half a category of room on each side, so that the outer bars are
	// not cut by the axes.
	p.X.Min, p.X.Max = -0.5, float64(len(names))-0.5
	if len(names) > 4 {
		p.X.Tick.Label.Rotation = math.Pi / 5
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YCenter
	}
}

// renderSVG draws p as an SVG element for inline use in HTML (no XML
// prolog). A panic of the plotting library (it panics on some degenerate
// ranges) becomes an error.
func renderSVG(p *plot.Plot, w, h vg.Length) (svg template.HTML, err error) {
	defer func() {
		if e := recover(); e != nil {
			err = fmt.Errorf("draw plot %q: %v", p.Title.Text, e)
		}
	}()
	c := vgsvg.New(w, h)
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return "", fmt.Errorf("draw plot %q: %w", p.Title.Text, err)
	}
	s := buf.String()
	i := strings.Index(s, "<svg")
	if i < 0 {
		return "", fmt.Errorf("draw plot %q: no <svg> element in the output", p.Title.Text)
	}
	// The page's own CSS sizes the plots; the SVG keeps its aspect ratio.
	s = strings.Replace(s[i:], "<svg ", `<svg role="img" class="plot" aria-label="`+html.EscapeString(p.Title.Text)+`" `, 1)
	return template.HTML(s), nil // trusted: drawn here, text escaped by vgsvg
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
