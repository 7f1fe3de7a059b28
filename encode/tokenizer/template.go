package tokenizer

import "slices"

// Prefix returns the ids the post-processor puts before a single
// sequence's content ([CLS] for BERT, <s> for Llama-style files; none for
// GPT-2). The slice is a copy.
func (t *Tokenizer) Prefix() []int32 { return slices.Clone(t.prefix) }

// Suffix returns the ids the post-processor puts after the content ([SEP]
// for BERT, </s> for RoBERTa). The slice is a copy.
func (t *Tokenizer) Suffix() []int32 { return slices.Clone(t.suffix) }

// Content returns the ids of enc between the template's prefix and suffix:
// the text's own tokens. enc must come from t.
func (t *Tokenizer) Content(enc Encoding) []int32 {
	return enc.IDs[len(t.prefix) : len(enc.IDs)-len(t.suffix)]
}
