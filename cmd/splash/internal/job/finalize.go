package job

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/splash-encode/splash/shards"
)

// FinalizeConfig configures Finalize.
type FinalizeConfig struct {
	OutputDir string
	// Inputs, when given, are the corpus's input shards (files,
	// directories, globs, as for encode): each must have a verified shard.
	// Without them every manifest in OutputDir is checked.
	Inputs []string
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
	FinalizedBy string   `json:"finalized_by"`
	FinishedAt  string   `json:"finished_at"`
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
	remote, err := openRemoteOutput(ctx, cfg.OutputDir)
	if err != nil {
		return FinalizeSummary{}, err
	}
	if remote != nil {
		defer remote.Close()
	}
	var bases []string
	switch {
	case len(cfg.Inputs) > 0:
		sources, err := discoverInputs(ctx, cfg.Inputs)
		if err != nil {
			return FinalizeSummary{}, err
		}
		sources.Close()
		for _, in := range sources.names {
			bases = append(bases, shards.InputBase(in))
		}
	case remote != nil:
		if bases, err = remote.store.ListManifests(ctx); err != nil {
			return FinalizeSummary{}, err
		}
	default:
		if bases, err = shards.ListManifests(cfg.OutputDir); err != nil {
			return FinalizeSummary{}, err
		}
	}
	if len(bases) == 0 {
		return FinalizeSummary{}, fmt.Errorf("%w: %s holds no manifest (_manifest.*.json): nothing was encoded there", ErrBadInput, cfg.OutputDir)
	}
	slices.Sort(bases)
	checkDir := cfg.OutputDir
	var all []shards.Manifest
	var problems []string
	if remote != nil {
		// The shards are downloaded for the duplicate-id check.
		checkDir = remote.staging
		if all, problems, err = remote.completeShards(ctx, bases, checkDir); err != nil {
			return FinalizeSummary{}, err
		}
	} else {
		for _, base := range bases {
			if err := ctx.Err(); err != nil {
				return FinalizeSummary{}, err
			}
			m, err := shards.VerifyShard(cfg.OutputDir, base)
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
		return FinalizeSummary{}, fmt.Errorf("%w: %w", ErrSettings, err)
	}
	dups, err := checkDirectory(ctx, checkDir, all, cfg.MaxBadFraction, log)
	if err != nil {
		return FinalizeSummary{}, err
	}
	sum := FinalizeSummary{Shards: len(all), Duplicates: len(dups), FinalizedBy: "splash finalize"}
	for _, m := range all {
		sum.Documents += m.Output.Rows
		sum.InputRows += m.Input.Rows
		if m.Rejected != nil {
			sum.Rejected += m.Rejected.Rows
		}
	}
	for _, d := range dups[:min(len(dups), 20)] {
		sum.DupExamples = append(sum.DupExamples, d.id)
	}
	sum.FinishedAt = time.Now().UTC().Format(time.RFC3339)
	if remote != nil {
		err = remote.store.WriteSuccess(ctx, sum)
	} else {
		err = shards.WriteSuccess(cfg.OutputDir, sum)
	}
	if err != nil {
		return FinalizeSummary{}, err
	}
	log.Info("finalized", slog.String("output", cfg.OutputDir), slog.Int("shards", sum.Shards), slog.Int64("documents", sum.Documents))
	return sum, nil
}

// sameSettings reports shards encoded with different settings (another
// model, max length, pooling...): their vectors do not belong in one index.
func sameSettings(all []shards.Manifest) error {
	for _, m := range all[1:] {
		if d := shards.DiffSettings(all[0].Settings, m.Settings); d != "" {
			return fmt.Errorf("shards %s and %s were encoded with different settings (%s): re-encode one of them with --overwrite",
				all[0].Output.Path, m.Output.Path, d)
		}
	}
	return nil
}

// checkDirectory holds a complete output directory (all is every shard's
// manifest) to the bad-row budget and reports the document ids found in
// more than one shard, logging some of them.
func checkDirectory(ctx context.Context, outDir string, all []shards.Manifest, maxBad float64, log *slog.Logger) ([]duplicateID, error) {
	total := &badBudget{maxFraction: maxBad, outDir: outDir}
	for _, man := range all {
		total.totalRows += man.Input.Rows
		if man.Rejected != nil {
			total.rejected += man.Rejected.Rows
		}
	}
	if err := total.check(); err != nil {
		return nil, err
	}
	dups, err := findDuplicateIDs(ctx, outDir, all)
	if err != nil {
		return nil, err
	}
	for _, d := range dups[:min(len(dups), 10)] {
		log.Warn("document id in more than one shard (every copy is kept)", slog.String("id", d.id), slog.Any("outputs", d.outputs))
	}
	return dups, nil
}
