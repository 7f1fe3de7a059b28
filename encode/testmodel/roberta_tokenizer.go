package testmodel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
)

// Special tokens of RobertaTokenizerJSON (those of roberta-base).
const (
	robertaBOSID = 0 // <s>, also the classification token
	robertaEOSID = 2 // </s>, also the separator
	robertaUnkID = 3 // <unk>
)

// robertaSpecials are the tokens at ids 0..3; <mask> comes last.
var robertaSpecials = [...]string{"<s>", "<pad>", "</s>", "<unk>"}

const (
	robertaMask   = "<mask>"
	gpt2EndOfText = "<|endoftext|>"
)

// RobertaTokenizerJSON builds a RoBERTa-style tokenizer.json from GPT-2's
// (the byte-level BPE RoBERTa was trained with), the shape of roberta-base's
// file:
//
//   - vocabulary: <s> 0, <pad> 1, </s> 2, <unk> 3, then GPT-2's tokens in
//     the order of their ids without <|endoftext|> (GPT-2's last id, so
//     every other token moves up by 4), then <mask>: 50261 ids for GPT-2's
//     50257 (roberta-base has the same tokens in fairseq's order, 50265);
//   - merges: GPT-2's, unchanged;
//   - added_tokens: the five specials, <mask> with lstrip as in roberta-base;
//   - pre_tokenizer ByteLevel without add_prefix_space, ByteLevel decoder,
//     no normalizer, no truncation or padding;
//   - post_processor RobertaProcessing: <s> $A </s>.
//
// The result is the same bytes for the same input.
func RobertaTokenizerJSON(gpt2TokenizerJSON []byte) ([]byte, error) {
	var src struct {
		Model struct {
			Type   string           `json:"type"`
			Vocab  map[string]int64 `json:"vocab"`
			Merges json.RawMessage  `json:"merges"`
		} `json:"model"`
	}
	if err := json.Unmarshal(gpt2TokenizerJSON, &src); err != nil {
		return nil, fmt.Errorf("testmodel: roberta tokenizer: parse GPT-2 tokenizer.json: %w", err)
	}
	m := src.Model
	switch {
	case m.Type != "BPE":
		return nil, fmt.Errorf("testmodel: roberta tokenizer: model type %q, want BPE", m.Type)
	case len(m.Vocab) == 0:
		return nil, fmt.Errorf("testmodel: roberta tokenizer: empty model.vocab")
	case len(bytes.TrimSpace(m.Merges)) == 0 || m.Merges[0] != '[':
		return nil, fmt.Errorf("testmodel: roberta tokenizer: model.merges is not a list")
	}
	byID := make([]string, len(m.Vocab))
	seen := make([]bool, len(m.Vocab))
	for tok, id := range m.Vocab {
		if id < 0 || id >= int64(len(byID)) || seen[id] {
			return nil, fmt.Errorf("testmodel: roberta tokenizer: model.vocab ids are not 0..%d (token %q has id %d)", len(byID)-1, tok, id)
		}
		byID[id], seen[id] = tok, true
	}
	vocab := make([]string, 0, len(byID)+len(robertaSpecials)+1)
	vocab = append(vocab, robertaSpecials[:]...)
	for _, tok := range byID {
		if tok == gpt2EndOfText {
			continue
		}
		if slices.Contains(robertaSpecials[:], tok) || tok == robertaMask {
			return nil, fmt.Errorf("testmodel: roberta tokenizer: GPT-2 vocabulary already holds %q", tok)
		}
		vocab = append(vocab, tok)
	}
	vocab = append(vocab, robertaMask)

	type addedToken struct {
		ID         int    `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
		Normalized bool   `json:"normalized"`
		Special    bool   `json:"special"`
	}
	var added []addedToken
	for id, tok := range robertaSpecials {
		added = append(added, addedToken{ID: id, Content: tok, Normalized: true, Special: true})
	}
	added = append(added, addedToken{ID: len(vocab) - 1, Content: robertaMask, LStrip: true, Special: true})

	type byteLevel struct {
		Type           string `json:"type"`
		AddPrefixSpace bool   `json:"add_prefix_space"`
		TrimOffsets    bool   `json:"trim_offsets"`
		UseRegex       bool   `json:"use_regex"`
	}
	out := struct {
		Version       string          `json:"version"`
		Truncation    *struct{}       `json:"truncation"`
		Padding       *struct{}       `json:"padding"`
		AddedTokens   []addedToken    `json:"added_tokens"`
		Normalizer    *struct{}       `json:"normalizer"`
		PreTokenizer  byteLevel       `json:"pre_tokenizer"`
		PostProcessor json.RawMessage `json:"post_processor"`
		Decoder       byteLevel       `json:"decoder"`
		Model         struct {
			Type                    string          `json:"type"`
			Dropout                 *float64        `json:"dropout"`
			UnkToken                *string         `json:"unk_token"`
			ContinuingSubwordPrefix string          `json:"continuing_subword_prefix"`
			EndOfWordSuffix         string          `json:"end_of_word_suffix"`
			FuseUnk                 bool            `json:"fuse_unk"`
			ByteFallback            bool            `json:"byte_fallback"`
			IgnoreMerges            bool            `json:"ignore_merges"`
			Vocab                   orderedVocab    `json:"vocab"`
			Merges                  json.RawMessage `json:"merges"`
		} `json:"model"`
	}{
		Version:      "1.0",
		AddedTokens:  added,
		PreTokenizer: byteLevel{Type: "ByteLevel", TrimOffsets: true, UseRegex: true},
		PostProcessor: json.RawMessage(fmt.Sprintf(
			`{"type":"RobertaProcessing","sep":["</s>",%d],"cls":["<s>",%d],"trim_offsets":true,"add_prefix_space":false}`,
			robertaEOSID, robertaBOSID)),
		Decoder: byteLevel{Type: "ByteLevel", AddPrefixSpace: true, TrimOffsets: true, UseRegex: true},
	}
	out.Model.Type = "BPE"
	out.Model.Vocab = vocab
	out.Model.Merges = m.Merges
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "<s>", not "\u003cs\u003e"
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("testmodel: roberta tokenizer: encode tokenizer.json: %w", err)
	}
	return buf.Bytes(), nil
}

// orderedVocab marshals as a JSON object token -> index, in index order
// (as Hugging Face writes model.vocab).
type orderedVocab []string

func (v orderedVocab) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(16 * len(v))
	buf.WriteByte('{')
	for id, tok := range v {
		if id > 0 {
			buf.WriteByte(',')
		}
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(tok); err != nil {
			return nil, err
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
		fmt.Fprintf(&buf, ":%d", id)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
