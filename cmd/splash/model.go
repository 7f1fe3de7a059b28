package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/splash-encode/splash/encode/testmodel"
)

func newModelCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "model", Short: "Model utilities"}
	cmd.AddCommand(newGenTestCommand(), newModelBenchCommand())
	return cmd
}

func newGenTestCommand() *cobra.Command {
	var out, tokenizerPath string
	var cfg testmodel.Config
	cmd := &cobra.Command{
		Use:   "gen-test --out DIR [--layers N --hidden H --heads A --seed S]",
		Short: "Write a small BERT masked-LM test model with random weights",
		Long: `gen-test writes a model directory laid out like an optimum fill-mask export
(model.onnx with inputs input_ids, attention_mask, token_type_ids and output
logits; tokenizer.json; config.json). Its weights are random and
deterministic: it exercises the real architecture and vocabulary, but its
vectors mean nothing. The vocabulary is bert-base-uncased's tokenizer.json
(by default looked up in ../shared/models/bert-base-uncased).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageErrorf("--out is required")
			}
			if tokenizerPath == "" {
				p, err := findSharedTokenizer()
				if err != nil {
					return err
				}
				tokenizerPath = p
			}
			if err := testmodel.Generate(out, cfg, tokenizerPath); err != nil {
				return err
			}
			log, _ := newLogger(cmd)
			log.Info("wrote test model (random weights, not a trained model)", slog.String("dir", out),
				slog.Int("layers", cfg.Layers), slog.Int("hidden", cfg.Hidden), slog.Int("heads", cfg.Heads),
				slog.Uint64("seed", cfg.Seed), slog.String("tokenizer", tokenizerPath))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "output model directory")
	f.StringVar(&tokenizerPath, "tokenizer", "", "tokenizer.json of the vocabulary (default: ../shared/models/bert-base-uncased/tokenizer.json)")
	f.IntVar(&cfg.Layers, "layers", 2, "transformer layers")
	f.IntVar(&cfg.Hidden, "hidden", 64, "hidden size")
	f.IntVar(&cfg.Heads, "heads", 4, "attention heads")
	f.IntVar(&cfg.Intermediate, "intermediate", 0, "feed-forward size (0: 4 x hidden)")
	f.Uint64Var(&cfg.Seed, "seed", 1, "weight seed")
	f.IntVar(&cfg.Opset, "opset", 14, "ONNX opset (14 or 18)")
	return cmd
}

// findSharedTokenizer looks for shared/models/bert-base-uncased/tokenizer.json
// beside the working directory or any of its parents.
func findSharedTokenizer() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	const rel = "shared/models/bert-base-uncased/tokenizer.json"
	for dir := wd; ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	return "", usageErrorf("no %s found beside %s or its parents: pass --tokenizer PATH (a BERT WordPiece tokenizer.json)", rel, wd)
}
