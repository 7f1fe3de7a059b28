package tokenizer

import (
	"errors"
	"math/bits"
)

// byteTrie is a trie over the bytes of the vocabulary whose transitions live
// in one open-addressing hash table keyed by (state, byte). WordPiece's greedy
// longest-match-first is a longest-prefix walk in it: one table probe per
// byte instead of a string-map lookup per candidate piece.
type byteTrie struct {
	table []uint64 // key<<32 | child state; emptySlot if free
	shift uint     // 64 - log2(len(table))
	value []int32  // token id ending at a state, -1 if none
}

const (
	emptySlot = ^uint64(0)
	maxStates = 1<<24 - 1 // a key is state<<8 | byte in 32 bits
)

func transitionKey(s int32, c byte) uint32 { return uint32(s)<<8 | uint32(c) }

func (t *byteTrie) slot(key uint32) uint {
	return uint((uint64(key) * 0x9E3779B97F4A7C15) >> t.shift)
}

// child returns the state reached from s by c, or -1.
func (t *byteTrie) child(s int32, c byte) int32 {
	key := transitionKey(s, c)
	mask := uint(len(t.table) - 1)
	for i := t.slot(key); ; i = (i + 1) & mask {
		e := t.table[i]
		if e == emptySlot {
			return -1
		}
		if uint32(e>>32) == key {
			return int32(uint32(e))
		}
	}
}

func (t *byteTrie) insertTransition(key uint32, child int32) {
	mask := uint(len(t.table) - 1)
	i := t.slot(key)
	for t.table[i] != emptySlot {
		i = (i + 1) & mask
	}
	t.table[i] = uint64(key)<<32 | uint64(uint32(child))
}

// rehash resizes the table to 2^logSize slots.
func (t *byteTrie) rehash(logSize int) {
	old := t.table
	t.table = make([]uint64, 1<<logSize)
	for i := range t.table {
		t.table[i] = emptySlot
	}
	t.shift = uint(64 - logSize)
	for _, e := range old {
		if e != emptySlot {
			t.insertTransition(uint32(e>>32), int32(uint32(e)))
		}
	}
}

// newByteTrie builds the trie of keys (token -> id).
func newByteTrie(keys map[string]int32) (*byteTrie, error) {
	t := &byteTrie{value: []int32{-1}}
	t.rehash(10)
	transitions := 0
	for k, id := range keys {
		s := int32(0)
		for i := 0; i < len(k); i++ {
			next := t.child(s, k[i])
			if next < 0 {
				if len(t.value) >= maxStates {
					return nil, errors.New("vocabulary too large for the trie")
				}
				next = int32(len(t.value))
				t.value = append(t.value, -1)
				if transitions++; 2*transitions > len(t.table) {
					t.rehash(bits.Len(uint(len(t.table))))
				}
				t.insertTransition(transitionKey(s, k[i]), next)
			}
			s = next
		}
		if k != "" {
			t.value[s] = id
		}
	}
	return t, nil
}

// walk follows key from state s; it returns the state reached, or -1.
func (t *byteTrie) walk(s int32, key string) int32 {
	for i := 0; i < len(key) && s >= 0; i++ {
		s = t.child(s, key[i])
	}
	return s
}

// fanout is the children of one state indexed by byte (-1: none), a
// shortcut for the states every word starts from.
type fanout [256]int32

func (t *byteTrie) fanout(s int32) *fanout {
	var f fanout
	for c := range f {
		f[c] = -1
		if s >= 0 {
			f[c] = t.child(s, byte(c))
		}
	}
	return &f
}

// longestPrefix returns the id and length of the longest key that, appended
// to the prefix of the state whose fanout is f, is a prefix of b (not empty);
// n is 0 if there is none.
func (t *byteTrie) longestPrefix(f *fanout, b []byte) (id int32, n int) {
	s := f[b[0]]
	for i := 1; s >= 0; i++ {
		if v := t.value[s]; v >= 0 {
			id, n = v, i
		}
		if i == len(b) {
			break
		}
		s = t.child(s, b[i])
	}
	return id, n
}
