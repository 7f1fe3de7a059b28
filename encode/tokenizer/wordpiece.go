package tokenizer

import "unicode/utf8"

// wordPiece is HF's WordPiece model: greedy longest-match-first over the
// vocabulary, pieces after the first looked up with the continuing-subword
// prefix, and the unknown token for a word that cannot be covered or that has
// more than maxChars characters.
type wordPiece struct {
	vocab    map[string]int32 // token -> id
	trie     *byteTrie        // the same, for longest-prefix walks
	root     *fanout          // trie children of the root
	cont     *fanout          // trie children of the prefix's state (all -1 if no token starts with it)
	prefix   string
	unk      string
	unkID    int32
	maxChars int
}

func newWordPiece(vocab map[string]int32, unk, prefix string, maxChars int) (*wordPiece, error) {
	trie, err := newByteTrie(vocab)
	if err != nil {
		return nil, err
	}
	m := &wordPiece{
		vocab:    vocab,
		trie:     trie,
		prefix:   prefix,
		unk:      unk,
		unkID:    vocab[unk],
		maxChars: maxChars,
	}
	m.root = trie.fanout(0)
	m.cont = trie.fanout(trie.walk(0, prefix))
	return m, nil
}

// appendIDs appends the ids of one word (valid UTF-8, not empty). The longest
// vocabulary entry that prefixes the rest of the word is what HF finds by
// trying ever shorter pieces: a valid UTF-8 token that matches the word's
// bytes ends on a character boundary.
func (m *wordPiece) appendIDs(dst []int32, word []byte) []int32 {
	if len(word) > m.maxChars && utf8.RuneCount(word) > m.maxChars {
		return append(dst, m.unkID)
	}
	id, n := m.trie.longestPrefix(m.root, word)
	if n == 0 {
		return append(dst, m.unkID)
	}
	if n == len(word) {
		return append(dst, id)
	}
	mark := len(dst)
	dst = append(dst, id)
	for start := n; start < len(word); start += n {
		id, n = m.trie.longestPrefix(m.cont, word[start:])
		if n == 0 {
			return append(dst[:mark], m.unkID)
		}
		dst = append(dst, id)
	}
	return dst
}
