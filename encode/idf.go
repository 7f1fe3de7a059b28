package encode

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/splash-encode/splash/encode/tokenizer"
)

// loadBag opens a model-free bag-of-tokens "model" over the tokenizer tok:
// each text's vector holds its distinct token ids, without the template's
// special tokens, weighted 1 or by the IDF file.
func loadBag(tok *tokenizer.Tokenizer, tokSum, dir string, maxLength int, opts ModelOptions) (*Model, error) {
	var weights []float32
	var idfSum string
	if opts.Bag.IDFPath != "" {
		var err error
		if weights, err = ReadIDF(opts.Bag.IDFPath, tok); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
		}
		if idfSum, err = fileSHA256(opts.Bag.IDFPath); err != nil {
			return nil, err
		}
	}
	exclude := append(tok.Prefix(), tok.Suffix()...)
	bag, err := NewBag(tok.VocabSize(), weights, exclude)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	return &Model{
		Dir: dir, Tokenizer: tok, Backend: bag, Backends: []Backend{bag}, MaxLength: maxLength, Pooling: opts.Pooling,
		Shape:       ModelShape{Vocab: tok.VocabSize(), MaxLength: maxLength},
		ModelSHA256: idfSum, TokenizerSHA256: tokSum,
		Role: roleOrDefault(opts.Role), Bag: true, BagIDF: opts.Bag.IDFPath,
	}, nil
}

// ReadIDF reads token weights for bag-of-tokens queries, by token string:
// a JSON object {"token": weight, ...} (the idf.json of inference-free
// SPLADE models) when the file name ends in .json, otherwise lines
// "token<TAB>weight" (blank lines are skipped; there are no comments, since
// tokens such as "##s" start with #).
// Weights must be finite and >= 0; a token that the tokenizer does not
// know is an error naming it. It returns one weight per vocabulary id, 0
// for the ids the file leaves out.
func ReadIDF(path string, tok *tokenizer.Tokenizer) ([]float32, error) {
	weights := make([]float32, tok.VocabSize())
	set := func(token string, w float64, where string) error {
		if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 || w > math.MaxFloat32 {
			return fmt.Errorf("read %s: %s: token %q has weight %v, want a finite number >= 0", path, where, token, w)
		}
		id, ok := tok.TokenID(token)
		if !ok {
			return fmt.Errorf("read %s: %s: token %q is not in the tokenizer's vocabulary", path, where, token)
		}
		weights[id] = float32(w)
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read IDF file: %w", err)
	}
	defer f.Close()
	if strings.EqualFold(filepath.Ext(path), ".json") {
		var m map[string]float64
		if err := json.NewDecoder(bufio.NewReader(f)).Decode(&m); err != nil {
			return nil, fmt.Errorf("read %s: want a JSON object of token weights: %w", path, err)
		}
		for token, w := range m {
			if err := set(token, w, "key"); err != nil {
				return nil, err
			}
		}
		return weights, nil
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		token, value, ok := strings.Cut(text, "\t")
		if !ok {
			return nil, fmt.Errorf("read %s: line %d: want token<TAB>weight", path, line)
		}
		w, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return nil, fmt.Errorf("read %s: line %d: weight %q: %w", path, line, value, err)
		}
		if err := set(token, w, fmt.Sprintf("line %d", line)); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return weights, nil
}
