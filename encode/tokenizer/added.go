package tokenizer

import "unicode/utf8"

// addedToken is one entry of tokenizer.json's added_tokens.
type addedToken struct {
	ID         int64  `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// sameFlags reports whether a and b are the same AddedToken for HF (the id
// is not part of it).
func (a addedToken) same(b addedToken) bool {
	a.ID, b.ID = 0, 0
	return a == b
}

// matcher finds added tokens in a text the way HF's AddedVocabulary does: an
// Aho-Corasick automaton with leftmost-longest semantics (at the leftmost
// position where any pattern matches, the longest pattern; non-overlapping),
// then the single_word, lstrip and rstrip rules.
type matcher struct {
	first [256]bool // bytes a pattern can start with
	nodes []trieNode
}

type trieNode struct {
	edges []trieEdge
	// match is the index+1 of the first pattern ending here, 0 if none.
	match int
}

type trieEdge struct {
	b    byte
	next int32
}

// matchRule is what the matcher needs to know about a pattern.
type matchRule struct {
	id                         int32
	singleWord, lstrip, rstrip bool
}

// match is an added token found in a text: bytes [start, end) are token id.
type match struct {
	start, end int
	id         int32
}

// patternSet is a matcher together with the rule of each of its patterns.
type patternSet struct {
	m     *matcher
	rules []matchRule
}

func newMatcher(patterns []string) *matcher {
	m := &matcher{nodes: []trieNode{{}}}
	for pi, p := range patterns {
		if p == "" {
			continue // an empty pattern cannot split anything
		}
		m.first[p[0]] = true
		n := 0
		for i := 0; i < len(p); i++ {
			next := -1
			for _, e := range m.nodes[n].edges {
				if e.b == p[i] {
					next = int(e.next)
					break
				}
			}
			if next < 0 {
				next = len(m.nodes)
				m.nodes = append(m.nodes, trieNode{})
				m.nodes[n].edges = append(m.nodes[n].edges, trieEdge{p[i], int32(next)})
			}
			n = next
		}
		if m.nodes[n].match == 0 {
			m.nodes[n].match = pi + 1
		}
	}
	return m
}

// longestAt returns the index of the longest pattern that s[i:] starts with
// and its length, or -1.
func longestAt[S ~string | ~[]byte](m *matcher, s S, i int) (pattern, length int) {
	pattern, n := -1, 0
	for j := i; j < len(s); j++ {
		next := -1
		for _, e := range m.nodes[n].edges {
			if e.b == s[j] {
				next = int(e.next)
				break
			}
		}
		if next < 0 {
			break
		}
		n = next
		if p := m.nodes[n].match; p != 0 {
			pattern, length = p-1, j+1-i
		}
	}
	return pattern, length
}

// appendMatches appends the added tokens of s, in order, to dst.
func appendMatches[S ~string | ~[]byte](dst []match, ps *patternSet, s S) []match {
	m := ps.m
	startOffset := 0 // end of the previous accepted match (HF's start_offset)
	for i := 0; i < len(s); {
		if !m.first[s[i]] {
			i++
			continue
		}
		p, n := longestAt(m, s, i)
		if p < 0 {
			i++
			continue
		}
		start, stop := i, i+n
		i = stop // the automaton resumes after the match, accepted or not
		rule := ps.rules[p]
		if rule.singleWord {
			startSpace := start == 0 || !endsWithWord(s[:start])
			stopSpace := stop == len(s) || !startsWithWord(s[stop:])
			if !startSpace || !stopSpace {
				continue
			}
		}
		if rule.lstrip {
			start = max(leftmostSpaceAtEnd(s[:start]), startOffset)
		}
		if rule.rstrip {
			stop += rightmostSpaceAtStart(s[stop:])
		}
		start = max(start, startOffset)
		dst = append(dst, match{start, stop, rule.id})
		startOffset = stop
	}
	return dst
}

func endsWithWord[S ~string | ~[]byte](s S) bool {
	if len(s) == 0 {
		return false
	}
	r, _ := decodeLastRune(s)
	return isRegexWord(r)
}

func startsWithWord[S ~string | ~[]byte](s S) bool {
	if len(s) == 0 {
		return false
	}
	r, _ := decodeRune(s)
	return isRegexWord(r)
}

// leftmostSpaceAtEnd returns where the whitespace at the end of s begins.
func leftmostSpaceAtEnd[S ~string | ~[]byte](s S) int {
	end := len(s)
	for end > 0 {
		r, size := decodeLastRune(s[:end])
		if !isRustWhitespace(r) {
			break
		}
		end -= size
	}
	return end
}

// rightmostSpaceAtStart returns the length of the whitespace at the start of s.
func rightmostSpaceAtStart[S ~string | ~[]byte](s S) int {
	n := 0
	for n < len(s) {
		r, size := decodeRune(s[n:])
		if !isRustWhitespace(r) {
			break
		}
		n += size
	}
	return n
}

func decodeLastRune[S ~string | ~[]byte](s S) (rune, int) {
	c := s[len(s)-1]
	if c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeLastRuneInString(string(s[max(0, len(s)-utf8.UTFMax):]))
}
