package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

var errUsage = errors.New("usage")

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "splash",
		Short:         "Encode document corpora with SPLADE into impact shards",
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
