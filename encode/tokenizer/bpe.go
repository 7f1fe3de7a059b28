package tokenizer

import (
	"fmt"
	"sync"
)

// model is a tokenizer.json model: it turns one pre-tokenized word into ids.
type model interface {
	// appendIDs appends the ids of word (valid UTF-8, not empty) to dst.
	appendIDs(dst []int32, word []byte) []int32
	// vocabulary maps each token of the model to its id.
	vocabulary() map[string]int32
	// unknown returns the id of the unknown token, if the model has one.
	unknown() (int32, bool)
}

func (m *wordPiece) vocabulary() map[string]int32 { return m.vocab }
func (m *wordPiece) unknown() (int32, bool)       { return m.unkID, true }

// bpe is HF's BPE model: a word is split into characters (or, for
// byte-level files, into the bytes' characters), each looked up in the
// vocabulary (else byte_fallback's <0xXX> tokens, else the unknown token),
// then adjacent pairs are merged, lowest merge rank first (leftmost among
// equal ranks), until no pair has a merge.
type bpe struct {
	vocab  map[string]int32
	merges map[uint64]merge // pair of ids -> merge

	unkID                 int32
	hasUnk, fuseUnk       bool
	byteFallback          bool
	ignoreMerges          bool
	prefix, suffix        string // continuing_subword_prefix, end_of_word_suffix
	byteLevel             bool   // the words are bytes mapped by byteLevelChars
	byteIDs               [256]int32
	fallbackIDs           [256]int32 // id of <0xXX>, -1 if absent
	cache                 *bpeCache
	byteLevelStringLookup bool // byte-level with a prefix or suffix: look symbols up as strings
}

// merge is the rank of a merge and the id of the token it makes.
type merge struct{ rank, id int32 }

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// byteLevelChars is GPT-2's bytes_to_unicode: printable Latin-1 bytes map to
// themselves, the others to U+0100 and up, in byte order.
var byteLevelChars = func() (t [256]string) {
	n := 0
	for b := range 256 {
		if '!' <= b && b <= '~' || 0xA1 <= b && b <= 0xAC || 0xAE <= b && b <= 0xFF {
			t[b] = string(rune(b))
		} else {
			t[b] = string(rune(256 + n))
			n++
		}
	}
	return t
}()

// newBPE builds the model. merges are pairs of tokens in rank order.
func newBPE(vocab map[string]int32, merges [][2]string, unk *string, prefix, suffix string,
	fuseUnk, byteFallback, ignoreMerges bool) (*bpe, error) {
	m := &bpe{
		vocab:        vocab,
		merges:       make(map[uint64]merge, len(merges)),
		unkID:        -1,
		fuseUnk:      fuseUnk,
		byteFallback: byteFallback,
		ignoreMerges: ignoreMerges,
		prefix:       prefix,
		suffix:       suffix,
		cache:        &bpeCache{m: make(map[string][]int32)},
	}
	if unk != nil {
		id, ok := vocab[*unk]
		if !ok {
			return nil, fmt.Errorf("unk_token %q is not in the vocabulary", *unk)
		}
		m.unkID, m.hasUnk = id, true
	}
	for i, p := range merges {
		a, ok := vocab[p[0]]
		if !ok {
			return nil, fmt.Errorf("merge %d (%q %q): %q is not in the vocabulary", i, p[0], p[1], p[0])
		}
		b, ok := vocab[p[1]]
		if !ok {
			return nil, fmt.Errorf("merge %d (%q %q): %q is not in the vocabulary", i, p[0], p[1], p[1])
		}
		if len(p[1]) < len(prefix) {
			return nil, fmt.Errorf("merge %d (%q %q): shorter than continuing_subword_prefix", i, p[0], p[1])
		}
		joined := p[0] + p[1][len(prefix):]
		id, ok := vocab[joined]
		if !ok {
			return nil, fmt.Errorf("merge %d (%q %q): %q is not in the vocabulary", i, p[0], p[1], joined)
		}
		if i > 1<<31-1 {
			return nil, fmt.Errorf("too many merges")
		}
		m.merges[pairKey(a, b)] = merge{int32(i), id} // a repeated pair: the last wins, as in HF
	}
	for b := range 256 {
		m.fallbackIDs[b] = -1
		if id, ok := vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
			m.fallbackIDs[b] = id
		}
	}
	return m, nil
}

// setByteLevel makes the model read words as bytes mapped by byteLevelChars
// (the ByteLevel pre-tokenizer's transformation).
func (m *bpe) setByteLevel() {
	m.byteLevel = true
	m.byteLevelStringLookup = m.prefix != "" || m.suffix != ""
	for b := range 256 {
		m.byteIDs[b] = -1
		if id, ok := m.vocab[byteLevelChars[b]]; ok {
			m.byteIDs[b] = id
		}
	}
}

func (m *bpe) vocabulary() map[string]int32 { return m.vocab }
func (m *bpe) unknown() (int32, bool)       { return m.unkID, m.hasUnk }

// Cache bounds: words up to maxCachedWord bytes, at most maxCacheEntries of
// them (then the cache stops growing, like HF's).
const (
	maxCachedWord   = 64
	maxCacheEntries = 1 << 16
)

// bpeCache remembers the ids of words already seen.
type bpeCache struct {
	mu sync.RWMutex
	m  map[string][]int32
}

func (c *bpeCache) get(word []byte) ([]int32, bool) {
	c.mu.RLock()
	ids, ok := c.m[string(word)]
	c.mu.RUnlock()
	return ids, ok
}

func (c *bpeCache) put(word []byte, ids []int32) {
	c.mu.Lock()
	if len(c.m) < maxCacheEntries {
		c.m[string(word)] = ids
	}
	c.mu.Unlock()
}

// symbol is one part of a word being merged (a doubly linked list).
type symbol struct {
	id         int32
	prev, next int32
	size       int32 // bytes of the word it covers; 0 once merged away
}

// mergeEntry is a candidate merge of the symbol at pos with the next one.
type mergeEntry struct{ rank, pos, id int32 }

func (a mergeEntry) less(b mergeEntry) bool {
	return a.rank < b.rank || a.rank == b.rank && a.pos < b.pos
}

// bpeScratch holds the buffers of one word's merge.
type bpeScratch struct {
	syms  []symbol
	queue []mergeEntry
	str   []byte
}

var bpeScratchPool = sync.Pool{New: func() any { return new(bpeScratch) }}

func (m *bpe) appendIDs(dst []int32, word []byte) []int32 {
	if len(word) == 0 {
		return dst
	}
	sc := bpeScratchPool.Get().(*bpeScratch)
	defer bpeScratchPool.Put(sc)
	if m.ignoreMerges {
		key := word
		if m.byteLevel {
			sc.str = sc.str[:0]
			for _, b := range word {
				sc.str = append(sc.str, byteLevelChars[b]...)
			}
			key = sc.str
		}
		if id, ok := m.vocab[string(key)]; ok {
			return append(dst, id)
		}
	}
	if len(word) <= maxCachedWord {
		if ids, ok := m.cache.get(word); ok {
			return append(dst, ids...)
		}
	}
	syms := m.symbols(sc, word)
	syms = m.mergeAll(sc, syms)
	mark := len(dst)
	for i := int32(0); i >= 0 && int(i) < len(syms); i = syms[i].next {
		dst = append(dst, syms[i].id)
	}
	if len(word) <= maxCachedWord {
		m.cache.put(word, append([]int32(nil), dst[mark:]...))
	}
	return dst
}

// symbols splits a word into its initial symbols (HF's merge_word without
// the merges).
func (m *bpe) symbols(sc *bpeScratch, word []byte) []symbol {
	syms := sc.syms[:0]
	add := func(id int32, size int) {
		n := int32(len(syms))
		syms = append(syms, symbol{id: id, prev: n - 1, next: n + 1, size: int32(size)})
	}
	if m.byteLevel && !m.byteLevelStringLookup {
		unkID, unkSize := int32(-1), 0
		for _, b := range word {
			if id := m.byteIDs[b]; id >= 0 {
				if unkSize > 0 {
					add(unkID, unkSize)
					unkSize = 0
				}
				add(id, 1)
				continue
			}
			unkID, unkSize = m.missing(add, unkID, unkSize, byteLevelChars[b], 1)
		}
		if unkSize > 0 {
			add(unkID, unkSize)
		}
		return m.finish(sc, syms)
	}
	unkID, unkSize := int32(-1), 0
	n := len(word)
	plain := !m.byteLevel && m.prefix == "" && m.suffix == ""
	for i := 0; i < n; {
		size := 1
		if !m.byteLevel {
			_, size = decodeRune(word[i:])
		}
		var s string
		id, ok := int32(0), false
		if plain {
			id, ok = m.vocab[string(word[i:i+size])] // no allocation
		} else {
			if m.byteLevel {
				s = byteLevelChars[word[i]]
			} else {
				s = string(word[i : i+size])
			}
			if i > 0 && m.prefix != "" {
				s = m.prefix + s
			}
			if i+size == n && m.suffix != "" {
				s += m.suffix
			}
			id, ok = m.vocab[s]
		}
		if ok {
			if unkSize > 0 {
				add(unkID, unkSize)
				unkSize = 0
			}
			add(id, size)
			i += size
			continue
		}
		if plain {
			s = string(word[i : i+size])
		}
		i += size
		unkID, unkSize = m.missing(add, unkID, unkSize, s, size)
	}
	if unkSize > 0 {
		add(unkID, unkSize)
	}
	return m.finish(sc, syms)
}

// missing handles a character s (size bytes of the word) that is not in the
// vocabulary: byte_fallback's tokens if all exist, else the unknown token
// (fused with a pending one if fuse_unk), else nothing. It returns the
// pending unknown token.
func (m *bpe) missing(add func(int32, int), unkID int32, unkSize int, s string, size int) (int32, int) {
	if m.byteFallback {
		ok := true
		for i := 0; i < len(s); i++ {
			if m.fallbackIDs[s[i]] < 0 {
				ok = false
				break
			}
		}
		if ok {
			// HF adds the bytes before a pending unknown token.
			for i := 0; i < len(s); i++ {
				add(m.fallbackIDs[s[i]], 1)
			}
			return unkID, unkSize
		}
	}
	if !m.hasUnk {
		return unkID, unkSize
	}
	switch {
	case unkSize > 0 && m.fuseUnk:
		return unkID, unkSize + size
	case unkSize > 0:
		add(unkID, unkSize)
	}
	return m.unkID, size
}

func (m *bpe) finish(sc *bpeScratch, syms []symbol) []symbol {
	if len(syms) > 0 {
		syms[len(syms)-1].next = -1
	}
	sc.syms = syms
	return syms
}

// mergeAll is HF's Word::merge_all: a min-heap of candidate merges ordered
// by rank then position; stale entries are skipped.
func (m *bpe) mergeAll(sc *bpeScratch, syms []symbol) []symbol {
	q := sc.queue[:0]
	for i := 0; i+1 < len(syms); i++ {
		if mg, ok := m.merges[pairKey(syms[i].id, syms[i+1].id)]; ok {
			q = heapPush(q, mergeEntry{mg.rank, int32(i), mg.id})
		}
	}
	for len(q) > 0 {
		var top mergeEntry
		top, q = heapPop(q)
		cur := &syms[top.pos]
		if cur.size == 0 || cur.next < 0 {
			continue
		}
		nextPos := cur.next
		right := syms[nextPos]
		if mg, ok := m.merges[pairKey(cur.id, right.id)]; !ok || mg.id != top.id {
			continue
		}
		cur.id = top.id
		cur.size += right.size
		cur.next = right.next
		syms[nextPos].size = 0
		if right.next >= 0 {
			syms[right.next].prev = top.pos
		}
		if cur.prev >= 0 {
			if mg, ok := m.merges[pairKey(syms[cur.prev].id, cur.id)]; ok {
				q = heapPush(q, mergeEntry{mg.rank, cur.prev, mg.id})
			}
		}
		if cur.next >= 0 {
			if mg, ok := m.merges[pairKey(cur.id, syms[cur.next].id)]; ok {
				q = heapPush(q, mergeEntry{mg.rank, top.pos, mg.id})
			}
		}
	}
	sc.queue = q
	return syms
}

func heapPush(h []mergeEntry, e mergeEntry) []mergeEntry {
	h = append(h, e)
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !h[i].less(h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	return h
}

func heapPop(h []mergeEntry) (mergeEntry, []mergeEntry) {
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	for i := 0; ; {
		l, r, s := 2*i+1, 2*i+2, i
		if l < n && h[l].less(h[s]) {
			s = l
		}
		if r < n && h[r].less(h[s]) {
			s = r
		}
		if s == i {
			break
		}
		h[i], h[s] = h[s], h[i]
		i = s
	}
	return top, h
}
