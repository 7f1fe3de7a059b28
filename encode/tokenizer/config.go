package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// ErrUnsupported is matched (errors.Is) by the error Parse returns for a
// tokenizer.json component this package does not implement.
var ErrUnsupported = errors.New("unsupported tokenizer.json component")

// UnsupportedError names a tokenizer.json component this package does not
// implement, e.g. the model "BPE" or the normalizer "Precompiled".
type UnsupportedError struct {
	Component string // "model", "normalizer", "pre_tokenizer" or "post_processor"
	Type      string // its "type" field
	Detail    string // optional: what is supported instead
}

func (e *UnsupportedError) Error() string {
	msg := fmt.Sprintf("%s %q is not supported", e.Component, e.Type)
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrUnsupported) true.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

// fileJSON is the part of tokenizer.json this package reads.
type fileJSON struct {
	Version    *string `json:"version"`
	Truncation *struct {
		MaxLength int `json:"max_length"`
	} `json:"truncation"`
	Padding *struct {
		PadID    *int64 `json:"pad_id"`
		PadToken string `json:"pad_token"`
	} `json:"padding"`
	AddedTokens   []addedToken    `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Model         json.RawMessage `json:"model"`
}

// isNull reports whether a component is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// componentType reads the "type" field of a component.
func componentType(component string, raw json.RawMessage) (string, error) {
	var c struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return "", fmt.Errorf("%s: %w", component, err)
	}
	if c.Type == nil {
		return "", fmt.Errorf("%s has no \"type\"", component)
	}
	return *c.Type, nil
}

// decode unmarshals a component into v, naming it on error.
func decode(component, typ string, raw json.RawMessage, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s %q: %w", component, typ, err)
	}
	return nil
}

func checkID(what string, id int64) (int32, error) {
	if id < 0 || id > math.MaxInt32 {
		return 0, fmt.Errorf("%s: id %d out of range", what, id)
	}
	return int32(id), nil
}

func parseModel(raw json.RawMessage) (model, error) {
	if isNull(raw) {
		return nil, errors.New("model is missing")
	}
	typ, err := componentType("model", raw)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "WordPiece":
		return parseWordPiece(raw, typ)
	case "BPE":
		return parseBPE(raw, typ)
	}
	return nil, &UnsupportedError{Component: "model", Type: typ, Detail: "implemented: WordPiece, BPE"}
}

func parseBPE(raw json.RawMessage, typ string) (*bpe, error) {
	var m struct {
		Dropout                 *float64          `json:"dropout"`
		UnkToken                *string           `json:"unk_token"`
		ContinuingSubwordPrefix *string           `json:"continuing_subword_prefix"`
		EndOfWordSuffix         *string           `json:"end_of_word_suffix"`
		FuseUnk                 bool              `json:"fuse_unk"`
		ByteFallback            bool              `json:"byte_fallback"`
		IgnoreMerges            bool              `json:"ignore_merges"`
		Vocab                   map[string]int64  `json:"vocab"`
		Merges                  []json.RawMessage `json:"merges"`
	}
	if err := decode("model", typ, raw, &m); err != nil {
		return nil, err
	}
	if m.Dropout != nil && *m.Dropout != 0 {
		return nil, &UnsupportedError{Component: "model", Type: typ, Detail: fmt.Sprintf("dropout %v: only deterministic BPE (dropout null or 0) is implemented", *m.Dropout)}
	}
	vocab := make(map[string]int32, len(m.Vocab))
	for tok, id := range m.Vocab {
		v, err := checkID(fmt.Sprintf("model BPE: vocab entry %q", tok), id)
		if err != nil {
			return nil, err
		}
		vocab[tok] = v
	}
	merges := make([][2]string, len(m.Merges))
	for i, r := range m.Merges {
		var line string
		if json.Unmarshal(r, &line) == nil {
			a, b, ok := strings.Cut(line, " ")
			if !ok {
				return nil, fmt.Errorf("model BPE: merge %d %q is not two tokens separated by a space", i, line)
			}
			merges[i] = [2]string{a, b}
			continue
		}
		var pair []string
		if err := json.Unmarshal(r, &pair); err != nil || len(pair) != 2 {
			return nil, fmt.Errorf("model BPE: merge %d is neither \"a b\" nor [\"a\", \"b\"]", i)
		}
		merges[i] = [2]string{pair[0], pair[1]}
	}
	var prefix, suffix string
	if m.ContinuingSubwordPrefix != nil {
		prefix = *m.ContinuingSubwordPrefix
	}
	if m.EndOfWordSuffix != nil {
		suffix = *m.EndOfWordSuffix
	}
	b, err := newBPE(vocab, merges, m.UnkToken, prefix, suffix, m.FuseUnk, m.ByteFallback, m.IgnoreMerges)
	if err != nil {
		return nil, fmt.Errorf("model BPE: %w", err)
	}
	return b, nil
}

func parseWordPiece(raw json.RawMessage, typ string) (*wordPiece, error) {
	var m struct {
		UnkToken                *string          `json:"unk_token"`
		ContinuingSubwordPrefix *string          `json:"continuing_subword_prefix"`
		MaxInputCharsPerWord    *int             `json:"max_input_chars_per_word"`
		Vocab                   map[string]int64 `json:"vocab"`
	}
	if err := decode("model", typ, raw, &m); err != nil {
		return nil, err
	}
	unk, prefix, maxChars := "[UNK]", "##", 100 // HF's defaults
	if m.UnkToken != nil {
		unk = *m.UnkToken
	}
	if m.ContinuingSubwordPrefix != nil {
		prefix = *m.ContinuingSubwordPrefix
	}
	if m.MaxInputCharsPerWord != nil {
		maxChars = *m.MaxInputCharsPerWord
	}
	if maxChars < 0 {
		return nil, fmt.Errorf("model WordPiece: max_input_chars_per_word %d is negative", maxChars)
	}
	vocab := make(map[string]int32, len(m.Vocab))
	for tok, id := range m.Vocab {
		v, err := checkID(fmt.Sprintf("model WordPiece: vocab entry %q", tok), id)
		if err != nil {
			return nil, err
		}
		vocab[tok] = v
	}
	if _, ok := vocab[unk]; !ok {
		return nil, fmt.Errorf("model WordPiece: unk_token %q is not in the vocabulary", unk)
	}
	wp, err := newWordPiece(vocab, unk, prefix, maxChars)
	if err != nil {
		return nil, fmt.Errorf("model WordPiece: %w", err)
	}
	return wp, nil
}

func parseNormalizer(raw json.RawMessage) (normalizer, error) {
	typ, err := componentType("normalizer", raw)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "BertNormalizer":
		var c struct {
			CleanText          *bool `json:"clean_text"`
			HandleChineseChars *bool `json:"handle_chinese_chars"`
			StripAccents       *bool `json:"strip_accents"`
			Lowercase          *bool `json:"lowercase"`
		}
		if err := decode("normalizer", typ, raw, &c); err != nil {
			return nil, err
		}
		orTrue := func(b *bool) bool { return b == nil || *b }
		lower := orTrue(c.Lowercase)
		strip := lower // strip_accents: null follows lowercase
		if c.StripAccents != nil {
			strip = *c.StripAccents
		}
		return newBertNormalizer(orTrue(c.CleanText), orTrue(c.HandleChineseChars), strip, lower), nil
	case "Lowercase":
		return lowercaseNormalizer{}, nil
	case "NFD":
		return nfdNormalizer{}, nil
	case "NFC":
		return unicodeFormNormalizer{norm.NFC}, nil
	case "NFKC":
		return unicodeFormNormalizer{norm.NFKC}, nil
	case "NFKD":
		return unicodeFormNormalizer{norm.NFKD}, nil
	case "StripAccents":
		return stripAccentsNormalizer{}, nil
	case "Strip":
		var c struct {
			Left  bool `json:"strip_left"`
			Right bool `json:"strip_right"`
		}
		if err := decode("normalizer", typ, raw, &c); err != nil {
			return nil, err
		}
		return stripNormalizer{c.Left, c.Right}, nil
	case "Prepend":
		var c struct {
			Prepend string `json:"prepend"`
		}
		if err := decode("normalizer", typ, raw, &c); err != nil {
			return nil, err
		}
		return prependNormalizer(c.Prepend), nil
	case "Replace":
		var c struct {
			Pattern struct {
				String *string `json:"String"`
				Regex  *string `json:"Regex"`
			} `json:"pattern"`
			Content string `json:"content"`
		}
		if err := decode("normalizer", typ, raw, &c); err != nil {
			return nil, err
		}
		if c.Pattern.String == nil || *c.Pattern.String == "" {
			return nil, &UnsupportedError{Component: "normalizer", Type: typ, Detail: "only a non-empty String pattern is implemented"}
		}
		return replaceNormalizer{*c.Pattern.String, c.Content}, nil
	case "Sequence":
		var c struct {
			Normalizers []json.RawMessage `json:"normalizers"`
		}
		if err := decode("normalizer", typ, raw, &c); err != nil {
			return nil, err
		}
		seq := make(sequenceNormalizer, 0, len(c.Normalizers))
		for _, r := range c.Normalizers {
			n, err := parseNormalizer(r)
			if err != nil {
				return nil, err
			}
			seq = append(seq, n)
		}
		return seq, nil
	}
	return nil, &UnsupportedError{Component: "normalizer", Type: typ,
		Detail: "implemented: BertNormalizer, Lowercase, NFD, NFC, NFKC, NFKD, StripAccents, Strip, Prepend, Replace, Sequence"}
}

func parsePreTokenizer(raw json.RawMessage) (preTokenizer, error) {
	typ, err := componentType("pre_tokenizer", raw)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "BertPreTokenizer":
		return newBertPreTokenizer(), nil
	case "Whitespace":
		return whitespacePreTokenizer{}, nil
	case "WhitespaceSplit":
		return whitespaceSplitPreTokenizer{}, nil
	case "ByteLevel":
		c := struct {
			AddPrefixSpace bool `json:"add_prefix_space"`
			UseRegex       bool `json:"use_regex"`
		}{AddPrefixSpace: true, UseRegex: true} // HF's defaults
		if err := decode("pre_tokenizer", typ, raw, &c); err != nil {
			return nil, err
		}
		return byteLevelPreTokenizer{addPrefixSpace: c.AddPrefixSpace, useRegex: c.UseRegex}, nil
	case "Split":
		var c struct {
			Pattern struct {
				String *string `json:"String"`
				Regex  *string `json:"Regex"`
			} `json:"pattern"`
			Behavior string `json:"behavior"`
			Invert   bool   `json:"invert"`
		}
		if err := decode("pre_tokenizer", typ, raw, &c); err != nil {
			return nil, err
		}
		const detail = "implemented: the Regex patterns of GPT-2 and Llama 3 with behavior Isolated, not inverted"
		if c.Pattern.Regex == nil || c.Behavior != "Isolated" || c.Invert {
			return nil, &UnsupportedError{Component: "pre_tokenizer", Type: typ, Detail: detail}
		}
		switch *c.Pattern.Regex {
		case gpt2Pattern:
			return splitPreTokenizer{gpt2Match}, nil
		case llama3Pattern:
			return splitPreTokenizer{llama3Match}, nil
		}
		return nil, &UnsupportedError{Component: "pre_tokenizer", Type: typ, Detail: detail}
	case "Metaspace":
		c := struct {
			Replacement    string  `json:"replacement"`
			PrependScheme  *string `json:"prepend_scheme"`
			AddPrefixSpace *bool   `json:"add_prefix_space"`
			Split          *bool   `json:"split"`
		}{Replacement: "\u2581"}
		if err := decode("pre_tokenizer", typ, raw, &c); err != nil {
			return nil, err
		}
		p := metaspacePreTokenizer{replacement: c.Replacement, prepend: prependAlways, split: true}
		if c.Split != nil {
			p.split = *c.Split
		}
		switch {
		case c.PrependScheme != nil:
			switch *c.PrependScheme {
			case "always":
			case "first":
				p.prepend = prependFirst
			case "never":
				p.prepend = prependNever
			default:
				return nil, fmt.Errorf("pre_tokenizer Metaspace: unknown prepend_scheme %q", *c.PrependScheme)
			}
		case c.AddPrefixSpace != nil && !*c.AddPrefixSpace:
			p.prepend = prependNever // the legacy field
		}
		if utf8.RuneCountInString(p.replacement) != 1 {
			return nil, fmt.Errorf("pre_tokenizer Metaspace: replacement %q is not one character", p.replacement)
		}
		return p, nil
	case "Sequence":
		var c struct {
			PreTokenizers []json.RawMessage `json:"pretokenizers"`
		}
		if err := decode("pre_tokenizer", typ, raw, &c); err != nil {
			return nil, err
		}
		seq := make(sequencePreTokenizer, 0, len(c.PreTokenizers))
		for _, r := range c.PreTokenizers {
			p, err := parsePreTokenizer(r)
			if err != nil {
				return nil, err
			}
			seq = append(seq, p)
		}
		return seq, nil
	}
	return nil, &UnsupportedError{Component: "pre_tokenizer", Type: typ,
		Detail: "implemented: BertPreTokenizer, Whitespace, WhitespaceSplit, ByteLevel, Split, Metaspace, Sequence"}
}

// parsePostProcessor returns the ids put before and after the single
// sequence.
func parsePostProcessor(raw json.RawMessage) (prefix, suffix []int32, err error) {
	typ, err := componentType("post_processor", raw)
	if err != nil {
		return nil, nil, err
	}
	switch typ {
	case "ByteLevel":
		return nil, nil, nil // it only adjusts offsets
	case "Sequence":
		var c struct {
			Processors []json.RawMessage `json:"processors"`
		}
		if err := decode("post_processor", typ, raw, &c); err != nil {
			return nil, nil, err
		}
		for _, r := range c.Processors {
			p, s, err := parsePostProcessor(r)
			if err != nil {
				return nil, nil, err
			}
			// Each processor wraps the output of the previous ones.
			prefix = append(p, prefix...)
			suffix = append(suffix, s...)
		}
		return prefix, suffix, nil
	case "BertProcessing", "RobertaProcessing":
		// Both give cls $A sep for a single sequence (they differ for
		// pairs, which are not encoded here). RobertaProcessing's
		// trim_offsets and add_prefix_space only adjust offsets.
		var c struct {
			Sep []json.RawMessage `json:"sep"`
			Cls []json.RawMessage `json:"cls"`
		}
		if err := decode("post_processor", typ, raw, &c); err != nil {
			return nil, nil, err
		}
		cls, err := tokenPair("cls", c.Cls)
		if err != nil {
			return nil, nil, fmt.Errorf("post_processor %s: %w", typ, err)
		}
		sep, err := tokenPair("sep", c.Sep)
		if err != nil {
			return nil, nil, fmt.Errorf("post_processor %s: %w", typ, err)
		}
		return []int32{cls}, []int32{sep}, nil
	case "TemplateProcessing":
		var c struct {
			Single        json.RawMessage `json:"single"`
			SpecialTokens map[string]struct {
				IDs []int64 `json:"ids"`
			} `json:"special_tokens"`
		}
		if err := decode("post_processor", typ, raw, &c); err != nil {
			return nil, nil, err
		}
		pieces, err := parseTemplate(c.Single)
		if err != nil {
			return nil, nil, fmt.Errorf("post_processor TemplateProcessing: single: %w", err)
		}
		seen := false
		for _, p := range pieces {
			if p.sequence != "" {
				if p.sequence != "A" || seen {
					return nil, nil, fmt.Errorf("post_processor TemplateProcessing: single must hold $A exactly once, found $%s", p.sequence)
				}
				seen = true
				continue
			}
			st, ok := c.SpecialTokens[p.special]
			if !ok {
				return nil, nil, fmt.Errorf("post_processor TemplateProcessing: special token %q is not in special_tokens", p.special)
			}
			for _, id := range st.IDs {
				v, err := checkID("post_processor TemplateProcessing: "+p.special, id)
				if err != nil {
					return nil, nil, err
				}
				if seen {
					suffix = append(suffix, v)
				} else {
					prefix = append(prefix, v)
				}
			}
		}
		if !seen {
			return nil, nil, errors.New("post_processor TemplateProcessing: single has no $A")
		}
		return prefix, suffix, nil
	}
	return nil, nil, &UnsupportedError{Component: "post_processor", Type: typ,
		Detail: "implemented: TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence"}
}

// tokenPair reads a ["[CLS]", 101] pair of BertProcessing.
func tokenPair(name string, pair []json.RawMessage) (int32, error) {
	if len(pair) != 2 {
		return 0, fmt.Errorf("%s: want [token, id]", name)
	}
	var id int64
	if err := json.Unmarshal(pair[1], &id); err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return checkID(name, id)
}

// templatePiece is $A / $B (sequence set) or a special token.
type templatePiece struct {
	sequence string
	special  string
}

// parseTemplate reads a template in its list form
// ([{"SpecialToken": {"id": "[CLS]", ...}}, {"Sequence": {"id": "A", ...}}, ...])
// or its string form ("[CLS] $A [SEP]", each piece optionally with ":type_id").
func parseTemplate(raw json.RawMessage) ([]templatePiece, error) {
	if isNull(raw) {
		return nil, errors.New("missing")
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		var out []templatePiece
		for _, f := range strings.Fields(s) {
			if i := strings.LastIndexByte(f, ':'); i > 0 {
				f = f[:i]
			}
			if strings.HasPrefix(f, "$") {
				switch strings.ToUpper(f[1:]) {
				case "", "A", "0":
					out = append(out, templatePiece{sequence: "A"})
				case "B", "1":
					out = append(out, templatePiece{sequence: "B"})
				default:
					return nil, fmt.Errorf("bad sequence piece %q", f)
				}
				continue
			}
			out = append(out, templatePiece{special: f})
		}
		return out, nil
	}
	var list []struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
		Sequence *struct {
			ID string `json:"id"`
		} `json:"Sequence"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, err
	}
	out := make([]templatePiece, 0, len(list))
	for _, p := range list {
		switch {
		case p.Sequence != nil:
			out = append(out, templatePiece{sequence: p.Sequence.ID})
		case p.SpecialToken != nil:
			out = append(out, templatePiece{special: p.SpecialToken.ID})
		default:
			return nil, errors.New("piece is neither SpecialToken nor Sequence")
		}
	}
	return out, nil
}
