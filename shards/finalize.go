package shards

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/splash-encode/splash/encode"
)

// FinalizeConfig configures Finalize.
type FinalizeConfig struct {
	OutputDir string
	// Inputs, when given, are the corpus's input shards (files,
	// directories, globs, as for encode): each must have a verified shard.
	// Without them every manifest in OutputDir is checked.
	Inputs []string
	// PartSize is encode's --part-size: how text inputs were cut into parts
	// (0: shards.DefaultPartSize).
	PartSize int64
	// MaxBadFraction is encode's --max-bad-fraction, applied to the whole
	// directory.
	MaxBadFraction float64
}

// FinalizeSummary is what Finalize found.
type FinalizeSummary struct {
	Shards     int   `json:"shards"`
	Documents  int64 `json:"documents"`
	InputRows  int64 `json:"input_rows"`
	Rejected   int64 `json:"rejected_rows"`
	Duplicates int   `json:"duplicate_ids_across_shards"`
	// DupExamples lists some of the duplicated ids.
	DupExamples []string `json:"duplicate_id_examples,omitempty"`
	// FinalizedBy is "splash finalize", or "splash encode" when the last
	// index of an encode run finalized (--finalize-when-complete);
	// FinalizedByIndex then says which index.
	FinalizedBy      string           `json:"finalized_by"`
	FinalizedByIndex *FinalizingIndex `json:"finalized_by_index,omitempty"`
	FinishedAt       string           `json:"finished_at"`
}

// Finalize checks an output directory that several processes encoded (the
// indexes of `splash encode --shard-count N`) and writes _SUCCESS: every
// manifest must verify against its shard (size and sha256), every input
// (when given) must have one, all shards must have been encoded with the
// same settings, the rejected rows must stay within MaxBadFraction of all
// input rows, and document ids found in more than one shard are reported
// (kept, as encode does). Shards that are missing or fail verification are
// listed in the error; nothing is written then.
func Finalize(ctx context.Context, cfg FinalizeConfig, log *slog.Logger) (FinalizeSummary, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	out, err := OpenOutput(ctx, cfg.OutputDir, OutputOptions{MaxBadFraction: cfg.MaxBadFraction, Log: log})
	if err != nil {
		return FinalizeSummary{}, err
	}
	defer out.Close()
	var bases []string
	switch {
	case len(cfg.Inputs) > 0:
		sources, err := DiscoverSources(ctx, cfg.Inputs, SourceOptions{PartSize: cfg.PartSize})
		if err != nil {
			return FinalizeSummary{}, err
		}
		sources.Close()
		for _, in := range sources.Names {
			bases = append(bases, InputBase(in))
		}
	case out.store != nil:
		if bases, err = out.store.ListManifests(ctx); err != nil {
			return FinalizeSummary{}, err
		}
	default:
		if bases, err = ListManifests(cfg.OutputDir); err != nil {
			return FinalizeSummary{}, err
		}
	}
	if len(bases) == 0 {
		return FinalizeSummary{}, fmt.Errorf("%w: %s holds no manifest (_manifest.*.json): nothing was encoded there", encode.ErrBadInput, cfg.OutputDir)
	}
	slices.Sort(bases)
	// A bucket's shards are downloaded into the staging directory for the
	// duplicate-id check.
	sum, err := out.checkFinal(ctx, bases, out.dir)
	if err != nil {
		return FinalizeSummary{}, err
	}
	sum.FinalizedBy = "splash finalize"
	sum.FinishedAt = time.Now().UTC().Format(time.RFC3339)
	if out.store != nil {
		err = out.store.WriteSuccess(ctx, sum)
	} else {
		err = WriteSuccess(cfg.OutputDir, sum)
	}
	if err != nil {
		return FinalizeSummary{}, err
	}
	log.Info("finalized", slog.String("output", cfg.OutputDir), slog.Int("shards", sum.Shards), slog.Int64("documents", sum.Documents))
	return sum, nil
}

// sameSettings reports shards encoded with different settings (another
// model, max length, pooling...): their vectors do not belong in one index.
func sameSettings(all []Manifest) error {
	for _, m := range all[1:] {
		if d := DiffSettings(all[0].Settings, m.Settings); d != "" {
			return fmt.Errorf("shards %s and %s were encoded with different settings (%s): re-encode one of them with --overwrite",
				all[0].Output.Path, m.Output.Path, d)
		}
	}
	return nil
}

// checkFinal runs finalize's checks on the shards of bases: every manifest
// verifies against its shard (from a bucket: against the object's recorded
// size and sha256, and the shard is downloaded into checkDir), all shards
// have the same settings, the rejected rows stay within the output's
// MaxBadFraction of all input rows; the document ids found in more than
// one shard are counted (kept). Missing or broken shards are listed in the
// error. It returns the summary to write into _SUCCESS, without
// FinalizedBy and FinishedAt.
func (o *Output) checkFinal(ctx context.Context, bases []string, checkDir string) (FinalizeSummary, error) {
	var all []Manifest
	var problems []string
	if o.store != nil {
		var err error
		if all, problems, err = o.completeShards(ctx, bases, checkDir); err != nil {
			return FinalizeSummary{}, err
		}
	} else {
		for _, base := range bases {
			if err := ctx.Err(); err != nil {
				return FinalizeSummary{}, err
			}
			m, err := VerifyShard(o.dir, base)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", base, err))
				continue
			}
			all = append(all, m)
		}
	}
	if len(problems) > 0 {
		return FinalizeSummary{}, fmt.Errorf("%d of %d shards are missing or do not verify (re-run the encode indexes that own them):\n  %s",
			len(problems), len(bases), strings.Join(problems, "\n  "))
	}
	if err := sameSettings(all); err != nil {
		return FinalizeSummary{}, fmt.Errorf("%w: %w", encode.ErrSettings, err)
	}
	dups, err := checkDirectory(ctx, checkDir, all, o.opts.MaxBadFraction, o.log)
	if err != nil {
		return FinalizeSummary{}, err
	}
	sum := FinalizeSummary{Shards: len(all), Duplicates: len(dups)}
	for _, m := range all {
		sum.Documents += m.Output.Rows
		sum.InputRows += m.Input.Rows
		if m.Rejected != nil {
			sum.Rejected += m.Rejected.Rows
		}
	}
	for _, d := range dups[:min(len(dups), 20)] {
		sum.DupExamples = append(sum.DupExamples, d.ID)
	}
	return sum, nil
}
