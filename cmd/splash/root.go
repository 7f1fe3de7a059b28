package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// version is splash's version: shard metadata (splash.version), the
// splash_build_info metric and `splash --version` report it. Builds set it
// with -ldflags "-X main.version=$(git describe --tags --always --dirty)"
// (scripts/demo.sh, scripts/gpu/prepare.sh, the Dockerfile); a plain
// go build keeps this default.
var version = "0.1.0-dev"

var errUsage = errors.New("usage")

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "splash",
		Short: "Encode document corpora with SPLADE into impact shards",
		Example: `  # Check the installation: encode a generated model and compare with the oracle
  splash selftest

  # Encode a corpus, check it, and export it for Anserini
  splash encode --model models/splade-v3 --input corpus/ --output out/
  splash verify out/
  splash export --format anserini --input out/ --output anserini/docs.jsonl

  # Encode queries, search and evaluate
  splash encode --role query --model models/splade-v3-query --input queries.parquet --output out-queries/
  splash search --index out/ --queries out-queries/ --k 1000 --output run.trec
  splash eval --run run.trec --qrels qrels.txt`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w: %v (see %s --help)", errUsage, err, c.CommandPath())
	})
	root.PersistentFlags().String("log-format", "text", "log format: text or json")
	root.PersistentFlags().String("log-level", "info", "log level: debug, info, warn or error")
	root.PersistentFlags().String("cpu-profile", "", "write a Go CPU profile (pprof) of the command to FILE")
	_ = root.PersistentFlags().MarkHidden("cpu-profile")
	var profile *os.File
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if _, err := newLogger(cmd); err != nil {
			return err
		}
		path, _ := cmd.Flags().GetString("cpu-profile")
		if path == "" {
			return nil
		}
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("create CPU profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("start CPU profile: %w", err)
		}
		profile = f
		return nil
	}
	root.PersistentPostRunE = func(cmd *cobra.Command, args []string) error {
		if profile == nil {
			return nil
		}
		pprof.StopCPUProfile()
		if err := profile.Close(); err != nil {
			return fmt.Errorf("write CPU profile: %w", err)
		}
		return nil
	}
	root.AddCommand(newTokenizeCommand(), newEncodeCommand(), newModelCommand(), newInspectCommand(), newVerifyCommand(), newSelftestCommand(), newFinalizeCommand(),
		newExportCommand(), newSearchCommand(), newEvalCommand(), newReportCommand())
	return root
}

// checkRequiredFlags reports the flags marked required (MarkFlagRequired)
// that the command line left out as a usage error (exit code 2), naming all
// of the command's required flags. It runs before cobra's own check, whose
// error would not be a usage error.
func checkRequiredFlags(cmd *cobra.Command) error {
	var required, missing []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if v, ok := f.Annotations[cobra.BashCompOneRequiredFlag]; !ok || len(v) == 0 || v[0] != "true" {
			return
		}
		required = append(required, "--"+f.Name)
		if !f.Changed {
			missing = append(missing, "--"+f.Name)
		}
	})
	if len(missing) == 0 {
		return nil
	}
	if len(required) == 1 {
		return usageErrorf("%s is required (see %s --help)", required[0], cmd.CommandPath())
	}
	return usageErrorf("%s are required; missing: %s (see %s --help)", joinAnd(required), strings.Join(missing, ", "), cmd.CommandPath())
}

// markRequired marks flags of cmd required: its help says so, and
// checkRequiredFlags, run as cmd's PreRunE (before cobra's own check),
// refuses a command line without them (exit code 2).
func markRequired(cmd *cobra.Command, names ...string) {
	for _, name := range names {
		if err := cmd.MarkFlagRequired(name); err != nil {
			panic(err) // a flag name that the command does not define
		}
		if f := cmd.Flags().Lookup(name); !strings.HasSuffix(f.Usage, "(required)") {
			f.Usage += " (required)"
		}
	}
	next := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		if err := checkRequiredFlags(c); err != nil {
			return err
		}
		if next != nil {
			return next(c, args)
		}
		return nil
	}
}

// joinAnd joins words as "a, b and c".
func joinAnd(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// summaryJSON reports whether the end-of-run summaries are to be printed as
// JSON objects (--log-format json) rather than text lines.
func summaryJSON(cmd *cobra.Command) bool {
	format, _ := cmd.Flags().GetString("log-format")
	return format == "json"
}

// printRunSummary writes an end-of-run summary to w: with --log-format json
// one JSON object (v) on one line, else the text line(s).
func printRunSummary(cmd *cobra.Command, w io.Writer, text string, v any) error {
	if !summaryJSON(cmd) {
		_, err := fmt.Fprintln(w, text)
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// newLogger builds the logger from the persistent flags (stderr).
func newLogger(cmd *cobra.Command) (*slog.Logger, error) {
	format, _ := cmd.Flags().GetString("log-format")
	levelName, _ := cmd.Flags().GetString("log-level")
	var level slog.Level
	if err := level.UnmarshalText([]byte(levelName)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, levelName)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	default:
		return nil, fmt.Errorf("%w: --log-format %q: want text or json", errUsage, format)
	}
}

// quieter returns a logger that drops info lines (used while a progress bar
// owns the terminal), unless --log-level asked for debug.
func quieter(cmd *cobra.Command, log *slog.Logger) *slog.Logger {
	if lvl, _ := cmd.Flags().GetString("log-level"); lvl == "debug" {
		return log
	}
	format, _ := cmd.Flags().GetString("log-format")
	opts := &slog.HandlerOptions{Level: slog.LevelWarn}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// usageErrorf marks an error as bad usage (exit code 2).
func usageErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}
