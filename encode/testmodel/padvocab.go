package testmodel

import (
	"encoding/json"
	"fmt"
	"slices"
)

// HighIDToken is the text of id in a vocabulary that GenerateLlama padded
// beyond its tokenizer's (LlamaConfig.Vocab), for the ids of HighIDs: one
// character of Unicode's supplementary private use area (U+F0000 +
// id mod 65,534), which no tokenizer's vocabulary holds and which padding
// adds as a vocabulary entry of that id. A BPE tokenizer over characters
// with byte fallback (SentencePiece style: Mistral, Llama 2) turns the
// character into that id, so tests can feed ids above 65,535 through the
// tokenizer. (Added tokens would not do: Hugging Face tokenizers number
// added tokens that are not in the vocabulary after it, whatever id
// tokenizer.json gives them.)
func HighIDToken(id int) string { return string(rune(0xF0000 + id%0xFFFE)) }

// HighIDs are the ids of a vocabulary padded from from to to ids that
// GenerateLlama makes reachable from text (HighIDToken): 65,535, 65,536,
// the middle of the padding and the last id, those that fall in [from, to).
func HighIDs(from, to int) []int {
	var ids []int
	for _, id := range []int{65535, 65536, (from + to) / 2, to - 1} {
		if id >= from && id < to && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// padTokenizer returns tokenizer.json tok with its vocabulary grown from
// from to to ids, as a model's vocab_size may exceed its tokenizer's words
// (Llama 3: 128,256 ids): the HighIDs become the model.vocab entries
// HighIDToken, one character each, which text can produce; every other new
// id an entry "<|splash_pad_ID|>" that no text produces (no merge makes
// it). The other members are kept as they are (key order aside).
func padTokenizer(tok []byte, from, to int) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(tok, &top); err != nil {
		return nil, fmt.Errorf("testmodel: pad tokenizer.json: %w", err)
	}
	var model map[string]json.RawMessage
	if err := json.Unmarshal(top["model"], &model); err != nil {
		return nil, fmt.Errorf("testmodel: pad tokenizer.json: model: %w", err)
	}
	var vocab map[string]int
	if err := json.Unmarshal(model["vocab"], &vocab); err != nil {
		return nil, fmt.Errorf("testmodel: pad tokenizer.json: model.vocab is not a token-to-id object (a Unigram vocabulary cannot be padded): %w", err)
	}
	reachable := HighIDs(from, to)
	for id := from; id < to; id++ {
		name := fmt.Sprintf("<|splash_pad_%d|>", id)
		if slices.Contains(reachable, id) {
			name = HighIDToken(id)
		}
		if _, dup := vocab[name]; dup {
			return nil, fmt.Errorf("testmodel: pad tokenizer.json: %q is already in the vocabulary", name)
		}
		vocab[name] = id
	}
	var err error
	if model["vocab"], err = json.Marshal(vocab); err != nil {
		return nil, err
	}
	if top["model"], err = json.Marshal(model); err != nil {
		return nil, err
	}
	return json.Marshal(top)
}
