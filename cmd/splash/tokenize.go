package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/splash-encode/splash/encode"
	"github.com/splash-encode/splash/encode/tokenizer"
)

func newTokenizeCommand() *cobra.Command {
	var modelDir string
	var maxLength int
	cmd := &cobra.Command{
		Use:   "tokenize --model DIR [--max-length N]",
		Short: "Tokenize JSON Lines strings from stdin into id arrays on stdout",
		Long: `tokenize reads JSON Lines on stdin, each line one JSON string, and writes one
JSON array of token ids per line on stdout, [CLS] and [SEP] included, exactly
as Hugging Face tokenizers would for the model's tokenizer.json.

Without --max-length nothing is truncated (as tokenizer.json's own truncation
setting, null for BERT exports, says); splash encode truncates to the model's
maximum length instead, so use --max-length to see what encode feeds the model.`,
		Example: `  echo "what is splade?" | splash tokenize --model models/splade-v3
  splash tokenize --model models/splade-v3 --max-length 16 < queries.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if modelDir == "" {
				return usageErrorf("--model is required")
			}
			tok, err := tokenizer.Load(filepath.Join(modelDir, "tokenizer.json"))
			if err != nil {
				return fmt.Errorf("%w: %w", encode.ErrBadInput, err)
			}
			if maxLength != 0 {
				if err := tok.ValidateMaxLength(maxLength); err != nil {
					return usageErrorf("--max-length: %v", err)
				}
			}
			return tokenizeLines(cmd.InOrStdin(), cmd.OutOrStdout(), tok, maxLength)
		},
	}
	cmd.Flags().StringVar(&modelDir, "model", "", "model directory holding tokenizer.json")
	cmd.Flags().IntVar(&maxLength, "max-length", 0, "truncate to N ids, [CLS] and [SEP] included (0: no truncation)")
	markRequired(cmd, "model")
	return cmd
}

func tokenizeLines(in io.Reader, out io.Writer, tok *tokenizer.Tokenizer, maxLength int) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64*1024), 256<<20)
	w := bufio.NewWriter(out)
	var buf []byte
	for line := 1; sc.Scan(); line++ {
		var text string
		if err := json.Unmarshal(sc.Bytes(), &text); err != nil {
			return fmt.Errorf("%w: stdin line %d: want a JSON string: %v", encode.ErrBadInput, line, err)
		}
		enc := tok.Encode(text, maxLength)
		buf = append(buf[:0], '[')
		for i, id := range enc.IDs {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = strconv.AppendInt(buf, int64(id), 10)
		}
		buf = append(buf, ']', '\n')
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("write stdout: %w", err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	return nil
}
