package report

import (
	"fmt"
	"html/template"
	"io"
	"strings"
)

// row is one line of a table: an id (for tests and links), a label, a value.
type row struct {
	ID, Label, Value string
}

type shardRow struct {
	Base                                    string
	Rows, Tokens, Empty, Truncated, NNZMean string
	Throughput, Padding, Manifest           string
}

type page struct {
	Dir      string
	Summary  []row
	Settings []row
	Figures  []Figure
	Shards   []shardRow
	Notes    []string
}

// SummaryRows returns the summary table: ids "summary-..." with their labels
// and values as the page shows them.
func (r *Report) SummaryRows() []row {
	t := r.runTotals()
	manifests := 0
	for _, s := range r.Shards {
		if s.Manifest != nil {
			manifests++
		}
	}
	rows := []row{
		{"summary-shards", "Shards", fmt.Sprint(len(r.Shards))},
		{"summary-manifests", "Shards with a manifest", fmt.Sprint(manifests)},
		{"summary-documents", "Documents", fmt.Sprint(r.Total.Rows)},
		{"summary-tokens", "Tokens (model input, specials included)", fmt.Sprint(r.Total.Tokens)},
		{"summary-empty", "Empty documents", fmt.Sprint(r.Total.Empty)},
		{"summary-truncated", "Truncated documents", fmt.Sprint(r.Total.Truncated)},
		{"summary-nnz-total", "Non-zeros", fmt.Sprint(r.Total.NNZTotal())},
		{"summary-nnz-mean", "Non-zeros per document: mean", fmt.Sprintf("%.1f", r.Total.NNZMean())},
		{"summary-nnz-p50", "Non-zeros per document: p50", fmt.Sprint(r.Total.NNZPercentile(0.5))},
		{"summary-nnz-p99", "Non-zeros per document: p99", fmt.Sprint(r.Total.NNZPercentile(0.99))},
		{"summary-nnz-max", "Non-zeros per document: max", fmt.Sprint(r.Total.NNZMax())},
		{"summary-terms", "Distinct terms", fmt.Sprint(r.Total.Terms())},
	}
	if t.shards == 0 {
		rows = append(rows, row{"summary-run", "Run statistics", "not recorded in the manifests"})
	} else {
		rows = append(rows,
			row{"summary-seconds", "Shard encoding time (sum over shards)", fmt.Sprintf("%.1f s", t.seconds)},
			row{"summary-throughput", "Throughput (per second of shard time)", fmt.Sprintf("%.1f documents/s", safeDiv(float64(t.docs), t.seconds))},
			row{"summary-padding", "Padding waste", fmt.Sprintf("%.2f%%", 100*safeDiv(float64(t.padded-t.tokens), float64(t.padded)))},
		)
		if t.shards < len(r.Shards) {
			rows = append(rows, row{"summary-run", "Run statistics", fmt.Sprintf("recorded for %d of %d shards", t.shards, len(r.Shards))})
		}
	}
	return rows
}

func (r *Report) settingRows() []row {
	var rows []row
	for _, s := range r.Settings {
		v := strings.Join(s.Values, ", ")
		if len(s.Values) > 1 {
			v = "mixed: " + v
		}
		rows = append(rows, row{"setting-" + strings.ReplaceAll(s.Name, " ", "-"), s.Name, v})
	}
	return rows
}

// WriteHTML writes the report as one self-contained HTML page.
func (r *Report) WriteHTML(w io.Writer) error {
	figs, err := r.Figures()
	if err != nil {
		return err
	}
	pg := page{Dir: r.Dir, Summary: r.SummaryRows(), Settings: r.settingRows(), Figures: figs, Notes: r.Notes}
	for _, s := range r.Shards {
		sr := shardRow{
			Base: s.Base, Rows: fmt.Sprint(s.Rows), Tokens: fmt.Sprint(s.Tokens), Empty: fmt.Sprint(s.Empty),
			Truncated: fmt.Sprint(s.Truncated), NNZMean: fmt.Sprintf("%.1f", safeDiv(float64(s.NNZ), float64(s.Rows))),
			Throughput: "–", Padding: "–", Manifest: "no",
		}
		if s.Manifest != nil {
			sr.Manifest = "yes"
		}
		if st := s.RunStats(); st != nil {
			sr.Throughput = fmt.Sprintf("%.1f", Throughput(*st))
			sr.Padding = fmt.Sprintf("%.2f%%", 100*PaddingWaste(*st))
		}
		pg.Shards = append(pg.Shards, sr)
	}
	if err := pageTemplate.Execute(w, pg); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	return nil
}

var pageTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>splash report: {{.Dir}}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", "Liberation Sans", sans-serif; margin: 2em auto; max-width: 60em; padding: 0 1em; color: #222; background: #fff; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
code { font-family: "Liberation Mono", monospace; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 0.2em 0.8em; border-bottom: 1px solid #eee; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.hash { font-family: "Liberation Mono", monospace; font-size: 0.85em; word-break: break-all; }
figure { margin: 2em 0; }
figure svg.plot { display: block; max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9em; margin-top: 0.4em; }
p.note { background: #f6f6f6; border-left: 4px solid #bbb; padding: 0.8em; }
ul.notes li { color: #8a4b00; }
</style>
</head>
<body>
<h1>splash report</h1>
<p>Output directory <code>{{.Dir}}</code></p>
{{if .Notes}}<ul class="notes">{{range .Notes}}
<li>{{.}}</li>{{end}}
</ul>{{end}}
<h2>Summary</h2>
<table id="summary">
{{- range .Summary}}
<tr id="{{.ID}}"><th>{{.Label}}</th><td class="num">{{.Value}}</td></tr>
{{- end}}
</table>
<h2>Settings</h2>
<table id="settings">
{{- range .Settings}}
<tr id="{{.ID}}"><th>{{.Label}}</th><td class="hash">{{.Value}}</td></tr>
{{- end}}
</table>
<h2>Plots</h2>
{{- range .Figures}}
<figure id="{{.ID}}">
{{if .Note}}<p class="note">{{.Note}}</p>{{else}}{{.SVG}}{{end}}
<figcaption><b>{{.Title}}.</b> {{.Caption}}</figcaption>
</figure>
{{- end}}
<h2>Shards</h2>
<table id="shards">
<tr><th>shard</th><th class="num">documents</th><th class="num">tokens</th><th class="num">empty</th><th class="num">truncated</th><th class="num">non-zeros / doc</th><th class="num">documents/s</th><th class="num">padding waste</th><th>manifest</th></tr>
{{- range .Shards}}
<tr><td>{{.Base}}</td><td class="num">{{.Rows}}</td><td class="num">{{.Tokens}}</td><td class="num">{{.Empty}}</td><td class="num">{{.Truncated}}</td><td class="num">{{.NNZMean}}</td><td class="num">{{.Throughput}}</td><td class="num">{{.Padding}}</td><td>{{.Manifest}}</td></tr>
{{- end}}
</table>
<p><small>Written by splash report.</small></p>
</body>
</html>
`))
