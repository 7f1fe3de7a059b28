// Package report builds the HTML report of a `splash encode` output
// directory: a summary table (shards, documents, tokens, non-zeros per
// document, the encoding settings) and plots of the non-zeros per document,
// the weight distribution, the terms found in most documents, and per shard
// the encoding throughput, the padding waste and the truncated and empty
// documents.
//
// The page is self-contained: inline CSS and inline SVG plots drawn with
// gonum.org/v1/plot (vg/vgsvg), no script and no external resource. Every
// plot is a <figure id="plot-..."> with a <figcaption>; a plot that has no
// data (manifests written before they recorded run statistics, say) is
// replaced by a note inside its figure.
//
// Collect streams every shard once (shards.ReadShard) into the statistics of
// package stats, whose memory is bounded by the vocabulary, not by the
// number of documents; per shard only its counts are kept.
package report

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/splash-encode/splash/shards"
	"github.com/splash-encode/splash/shards/stats"
)

// ErrInput marks a problem with the directory a report is made of: missing,
// holding no impact shard, or holding a shard that cannot be read.
var ErrInput = errors.New("bad report input")

// Options tune a report. The zero value gives the defaults.
type Options struct {
	// TopTerms is the number of terms in the top-terms chart (default 20).
	TopTerms int
	// Bins is the number of bins of the histograms (default 40).
	Bins int
}

func (o Options) withDefaults() Options {
	if o.TopTerms <= 0 {
		o.TopTerms = 20
	}
	if o.Bins <= 0 {
		o.Bins = 40
	}
	return o
}

// Report is what a report shows, collected from an output directory.
type Report struct {
	Dir     string
	Options Options
	// Shards are the directory's impact shards, in name order.
	Shards []Shard
	// Total holds the statistics of all rows.
	Total *stats.Stats
	// TopTerms are the Options.TopTerms terms in most documents.
	TopTerms []stats.TermDF
	// Settings lists the encoding settings read from the shards' metadata,
	// each with its distinct values in shard order (more than one value
	// means the directory mixes settings).
	Settings []Setting
	// Notes are problems worth telling the reader that did not stop the
	// report (an unreadable manifest, say).
	Notes []string
}

// Shard is one impact shard of the directory.
type Shard struct {
	Path                                string
	Base                                string // file name without extension
	Rows, Tokens, Empty, Truncated, NNZ int64
	// Manifest is the shard's manifest; nil when it has none (a shard being
	// written, or one whose manifest could not be read: see Report.Notes).
	Manifest *shards.Manifest
}

// RunStats returns the statistics the encoder recorded in the shard's
// manifest, or nil.
func (s Shard) RunStats() *shards.ManifestStats {
	if s.Manifest == nil {
		return nil
	}
	return s.Manifest.Stats
}

// Setting is one encoding setting and its distinct values.
type Setting struct {
	Name   string
	Values []string
}

// Collect reads the output directory dir: the vocabulary, every impact
// shard (streamed once) with its metadata, and every shard's manifest.
func Collect(ctx context.Context, dir string, opts Options) (*Report, error) {
	opts = opts.withDefaults()
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory (want a splash encode output directory)", ErrInput, dir)
	}
	files, err := stats.ListShards(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: %s holds no impact shard (*.parquet or *.arrow)", ErrInput, dir)
	}
	vocab, err := stats.Vocabulary(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	r := &Report{Dir: dir, Options: opts, Total: stats.New()}
	if vocab == nil {
		r.Notes = append(r.Notes, fmt.Sprintf("%s has no %s: terms are shown by id", dir, shards.VocabularyFile))
	}
	settings := newSettingSet()
	for _, path := range files {
		sh, err := collectShard(ctx, r, path, settings)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %w", ErrInput, err)
		}
		r.Shards = append(r.Shards, sh)
	}
	r.TopTerms = r.Total.TopTerms(opts.TopTerms, vocab)
	r.Settings = settings.list()
	return r, nil
}

func collectShard(ctx context.Context, r *Report, path string, settings *settingSet) (Shard, error) {
	name := filepath.Base(path)
	sh := Shard{Path: path, Base: strings.TrimSuffix(name, filepath.Ext(name))}
	kv, err := shards.ShardMetadata(path)
	if err != nil {
		return sh, err
	}
	meta, err := shards.ParseMetadata(kv)
	if err != nil {
		return sh, fmt.Errorf("read %s: metadata: %w", path, err)
	}
	settings.add(meta)
	s := stats.New()
	if err := s.Read(ctx, path, nil); err != nil {
		return sh, err
	}
	sh.Rows, sh.Tokens, sh.Empty, sh.Truncated, sh.NNZ = s.Rows, s.Tokens, s.Empty, s.Truncated, s.NNZTotal()
	r.Total.Merge(s)

	mpath := filepath.Join(r.Dir, shards.ManifestName(sh.Base))
	m, err := shards.ReadManifest(mpath)
	switch {
	case err == nil:
		sh.Manifest = &m
		if m.Output.Rows != sh.Rows {
			r.Notes = append(r.Notes, fmt.Sprintf("%s records %d rows, %s holds %d (run splash verify)", mpath, m.Output.Rows, name, sh.Rows))
		}
	case errors.Is(err, os.ErrNotExist):
		r.Notes = append(r.Notes, fmt.Sprintf("%s has no manifest (%s): not committed yet, or left by an interrupted run", name, shards.ManifestName(sh.Base)))
	default:
		r.Notes = append(r.Notes, fmt.Sprintf("manifest of %s unreadable: %v", name, err))
	}
	return sh, nil
}

// settingSet collects the distinct values of the settings, in first-seen order.
type settingSet struct {
	names  []string
	values map[string][]string
}

func newSettingSet() *settingSet {
	return &settingSet{
		names:  []string{"model sha256", "tokenizer sha256", "max length", "pooling", "scale", "top-k", "min weight", "vocabulary size", "splash version"},
		values: map[string][]string{},
	}
}

func (s *settingSet) add(m shards.Metadata) {
	for i, v := range []string{
		m.ModelSHA256, m.TokenizerSHA256, strconv.Itoa(m.MaxLength), m.Pooling,
		strconv.FormatFloat(float64(m.Scale), 'g', -1, 32), strconv.Itoa(m.TopK),
		strconv.FormatFloat(float64(m.MinWeight), 'g', -1, 32), strconv.Itoa(m.VocabSize), m.SplashVersion,
	} {
		name := s.names[i]
		if !slices.Contains(s.values[name], v) {
			s.values[name] = append(s.values[name], v)
		}
	}
}

func (s *settingSet) list() []Setting {
	out := make([]Setting, 0, len(s.names))
	for _, n := range s.names {
		out = append(out, Setting{Name: n, Values: s.values[n]})
	}
	return out
}

// Totals of the run statistics of the shards whose manifests have them.
type runTotals struct {
	shards               int
	docs, tokens, padded int64
	seconds              float64
}

func (r *Report) runTotals() runTotals {
	var t runTotals
	for _, s := range r.Shards {
		if st := s.RunStats(); st != nil {
			t.shards++
			t.docs += st.Documents
			t.tokens += st.Tokens
			t.padded += st.PaddedTokens
			t.seconds += st.Seconds
		}
	}
	return t
}

// PaddingWaste is the share of the positions run through the model that
// were padding: (padded - tokens) / padded; 0 when nothing was padded.
func PaddingWaste(st shards.ManifestStats) float64 {
	if st.PaddedTokens <= 0 {
		return 0
	}
	return float64(st.PaddedTokens-st.Tokens) / float64(st.PaddedTokens)
}

// Throughput is documents per second (0 without a duration).
func Throughput(st shards.ManifestStats) float64 {
	if st.Seconds <= 0 {
		return 0
	}
	return float64(st.Documents) / st.Seconds
}

// Write collects the report of dir and writes it to out atomically: to a
// temporary file beside it, synced, then renamed over out.
func Write(ctx context.Context, dir, out string, opts Options) (*Report, error) {
	r, err := Collect(ctx, dir, opts)
	if err != nil {
		return nil, err
	}
	if err := shards.WriteFileAtomic(out, r.WriteHTML); err != nil {
		return nil, err
	}
	return r, nil
}
