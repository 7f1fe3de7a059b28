package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/splash-encode/splash/shards"
)

func newFinalizeCommand() *cobra.Command {
	var cfg shards.FinalizeConfig
	cmd := &cobra.Command{
		Use:   "finalize --output DIR [--input PATH[,PATH...]]",
		Short: "Check an output directory encoded by several processes (--shard-count) and write _SUCCESS",
		Long: `finalize is the last step of a corpus encoded by several processes (the
indexes of splash encode --shard-count N, e.g. a Kubernetes Indexed Job). It
verifies every shard against its manifest (size and sha256), checks that
every input given with --input has its shard (without --input: every
manifest found), that all shards were encoded with the same settings, that
the rejected rows stay within --max-bad-fraction of all input rows, reports
document ids found in more than one shard, and then writes _SUCCESS. Missing
or broken shards are listed and nothing is written: re-run the indexes that
own them (re-running an index encodes only what is not done).`,
		Example: `  # After every index of: splash encode --shard-count 4 --input corpus/ --output out/
  splash finalize --output out/ --input corpus/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfg.OutputDir == "" {
				return usageErrorf("--output is required")
			}
			if cfg.MaxBadFraction < 0 || cfg.MaxBadFraction > 1 || cfg.MaxBadFraction != cfg.MaxBadFraction {
				return usageErrorf("--max-bad-fraction %g: want a fraction from 0 to 1", cfg.MaxBadFraction)
			}
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			sum, err := shards.Finalize(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			text := fmt.Sprintf("finalized %s: %d shard(s), %d documents, %d rejected input rows, %d id(s) in more than one shard",
				cfg.OutputDir, sum.Shards, sum.Documents, sum.Rejected, sum.Duplicates)
			return printRunSummary(cmd, cmd.OutOrStdout(), text, struct {
				Summary string `json:"summary"` // "finalize"
				Output  string `json:"output"`
				shards.FinalizeSummary
			}{"finalize", cfg.OutputDir, sum})
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.OutputDir, "output", "", "output directory of the encode runs")
	f.StringSliceVar(&cfg.Inputs, "input", nil, "the corpus's input shards (as given to encode): each must have its shard")
	partSizeFlag(f, &cfg.PartSize)
	f.Float64Var(&cfg.MaxBadFraction, "max-bad-fraction", 0.001, "fail when rejected input rows exceed this fraction of all input rows, as encode does")
	markRequired(cmd, "output")
	return cmd
}
