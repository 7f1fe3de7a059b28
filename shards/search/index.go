// Package search searches impact shards exactly: it builds an in-memory
// inverted index of document shards and scores query shards against it,
// writing TREC run files. It is what `splash search` runs, a check of an
// encoding's retrieval quality without an external engine.
//
// # Scoring
//
// The score of document d for query q sums over the terms they share:
//
//   - ScoreImpacts (default): q_impact * d_impact, in int64 (exact; the
//     impacts of splash shards, round(weight * scale)). The same as an
//     impact index (Anserini, PISA) with the query's impacts as term weights.
//   - ScoreWeights: float64(q_weight) * float64(d_weight), summed in float64
//     in ascending term id order.
//
// Only documents with a score > 0 are hits (an impact can be 0 where
// weight * scale rounds to 0). Each query's hits are ranked by score,
// descending, ties broken by document id in ascending byte order, and the
// first k are kept; a query without hits gives no lines in the run.
// Document ids must be unique across the indexed shards, query ids across
// the query shards.
//
// # Memory
//
// The index holds, per term, the ordinals of the documents that contain it
// and their uint16 impacts (or float32 weights): 6 (8) bytes per non-zero
// plus the document ids (and, while building, a map of them that finds
// duplicates). Each search worker holds one score accumulator of
// 8 bytes and one 4-byte mark per document. Queries are streamed and the run
// is written as it is produced, in query order, with at most a few queries
// per worker in flight.
package search

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/splash-encode/splash/encode"
)

// ErrBadInput marks a problem with the shards or queries given: unreadable
// or inconsistent shards, duplicate ids, term ids outside the vocabulary.
var ErrBadInput = errors.New("bad input")

// ErrVocabularyMismatch marks queries and documents encoded with different
// vocabularies.
var ErrVocabularyMismatch = fmt.Errorf("%w: queries and documents use different vocabularies", ErrBadInput)

// Scoring chooses what a shared term contributes to a score.
type Scoring int

// The scoring modes (see the package documentation).
const (
	ScoreImpacts Scoring = iota
	ScoreWeights
)

func (s Scoring) String() string {
	switch s {
	case ScoreImpacts:
		return "impacts"
	case ScoreWeights:
		return "weights"
	}
	return fmt.Sprintf("Scoring(%d)", int(s))
}

// ParseScoring parses "impacts" or "weights".
func ParseScoring(s string) (Scoring, error) {
	switch s {
	case "impacts":
		return ScoreImpacts, nil
	case "weights":
		return ScoreWeights, nil
	}
	return 0, fmt.Errorf("scoring %q: want impacts or weights", s)
}

// postings are the documents of one term, in ascending ordinal order, with
// their impacts or weights (only the slice of the index's Scoring is used).
type postings struct {
	docs    []uint32
	impacts []uint16
	weights []float32
}

// Builder builds an Index from documents added one by one.
type Builder struct {
	scoring Scoring
	terms   []postings
	ids     []string
	seen    map[string]int // doc id -> ordinal
	nnz     int64
}

// NewBuilder returns a Builder for vectors over vocabSize term ids.
func NewBuilder(vocabSize int, scoring Scoring) *Builder {
	return &Builder{scoring: scoring, terms: make([]postings, vocabSize), seen: map[string]int{}}
}

// Add indexes one document. Its vector must satisfy the shard format
// (aligned lists, strictly ascending term ids) with ids below the vocabulary
// size; its id must be new.
func (b *Builder) Add(docID string, v encode.SparseVec) error {
	if err := checkVec(v, len(b.terms)); err != nil {
		return fmt.Errorf("%w: document %s: %w", ErrBadInput, docID, err)
	}
	if _, dup := b.seen[docID]; dup {
		return fmt.Errorf("%w: document id %s occurs twice", ErrBadInput, docID)
	}
	if len(b.ids) == 1<<32-1 {
		return fmt.Errorf("%w: more than %d documents", ErrBadInput, 1<<32-1)
	}
	ord := uint32(len(b.ids))
	b.seen[docID] = len(b.ids)
	b.ids = append(b.ids, docID)
	for i, t := range v.Terms {
		p := &b.terms[t]
		p.docs = append(p.docs, ord)
		if b.scoring == ScoreImpacts {
			p.impacts = append(p.impacts, v.Impacts[i])
		} else {
			p.weights = append(p.weights, v.Weights[i])
		}
	}
	b.nnz += int64(len(v.Terms))
	return nil
}

// checkVec checks what indexing and scoring rely on.
func checkVec(v encode.SparseVec, vocabSize int) error {
	if len(v.Weights) != len(v.Terms) || len(v.Impacts) != len(v.Terms) {
		return fmt.Errorf("%d terms, %d weights, %d impacts: want aligned lists", len(v.Terms), len(v.Weights), len(v.Impacts))
	}
	for i, t := range v.Terms {
		if int64(t) >= int64(vocabSize) {
			return fmt.Errorf("term id %d outside the vocabulary (size %d)", t, vocabSize)
		}
		if i > 0 && t <= v.Terms[i-1] {
			return fmt.Errorf("term ids not strictly ascending at %d: %d after %d", i, t, v.Terms[i-1])
		}
	}
	return nil
}

// Index returns the index of the documents added so far. The Builder must
// not be used afterwards.
func (b *Builder) Index() *Index {
	ix := &Index{scoring: b.scoring, terms: b.terms, ids: b.ids, nnz: b.nnz}
	// idRank[d] is the position of document d's id in byte order: ties
	// compare two integers instead of two strings.
	order := make([]uint32, len(b.ids))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(x, y uint32) int { return strings.Compare(b.ids[x], b.ids[y]) })
	ix.idRank = make([]uint32, len(b.ids))
	for r, d := range order {
		ix.idRank[d] = uint32(r)
	}
	*b = Builder{}
	return ix
}

// Index is an in-memory inverted index of impact shards. It is read-only
// and safe for concurrent searches (each with its own Searcher).
type Index struct {
	scoring Scoring
	terms   []postings
	ids     []string
	idRank  []uint32
	nnz     int64
}

// Docs returns the number of indexed documents.
func (ix *Index) Docs() int { return len(ix.ids) }

// NonZeros returns the number of postings.
func (ix *Index) NonZeros() int64 { return ix.nnz }

// VocabSize returns the number of term ids the index accepts.
func (ix *Index) VocabSize() int { return len(ix.terms) }

// Scoring returns the index's scoring mode.
func (ix *Index) Scoring() Scoring { return ix.scoring }

// Hit is a scored document. With ScoreImpacts, Score is the exact integer
// sum (float64 holds every integer below 2^53; 65535² × 2^17 terms stays
// far below).
type Hit struct {
	DocID string
	Score float64
}

// Searcher holds one goroutine's scratch space for searching ix.
type Searcher struct {
	ix      *Index
	ints    []int64   // ScoreImpacts accumulators
	floats  []float64 // ScoreWeights accumulators
	mark    []uint32  // mark[d] == epoch: d was touched by the current query
	epoch   uint32
	touched []uint32
	heap    []cand
}

type cand struct {
	doc   uint32
	score float64
}

// NewSearcher returns a Searcher for ix.
func (ix *Index) NewSearcher() *Searcher {
	s := &Searcher{ix: ix, mark: make([]uint32, len(ix.ids))}
	if ix.scoring == ScoreImpacts {
		s.ints = make([]int64, len(ix.ids))
	} else {
		s.floats = make([]float64, len(ix.ids))
	}
	return s
}

// Search returns the k best hits of q, best first (see the package
// documentation for scores and ties). q must be a valid vector over the
// index's vocabulary.
func (s *Searcher) Search(q encode.SparseVec, k int) ([]Hit, error) {
	ix := s.ix
	if err := checkVec(q, len(ix.terms)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	if k <= 0 {
		return nil, nil
	}
	s.nextEpoch()
	s.touched = s.touched[:0]
	// Term at a time, terms ascending: each document's sum is formed in
	// the same order as a plain dot product over sorted term ids.
	for i, t := range q.Terms {
		p := &ix.terms[t]
		if ix.scoring == ScoreImpacts {
			qi := int64(q.Impacts[i])
			for j, d := range p.docs {
				if s.mark[d] != s.epoch {
					s.mark[d] = s.epoch
					s.ints[d] = 0
					s.touched = append(s.touched, d)
				}
				s.ints[d] += qi * int64(p.impacts[j])
			}
		} else {
			qw := float64(q.Weights[i])
			for j, d := range p.docs {
				if s.mark[d] != s.epoch {
					s.mark[d] = s.epoch
					s.floats[d] = 0
					s.touched = append(s.touched, d)
				}
				s.floats[d] += qw * float64(p.weights[j])
			}
		}
	}
	// Bounded min-heap of the k best so far; its root is the worst kept.
	h := s.heap[:0]
	for _, d := range s.touched {
		var sc float64
		if ix.scoring == ScoreImpacts {
			sc = float64(s.ints[d])
		} else {
			sc = s.floats[d]
		}
		if !(sc > 0) {
			continue
		}
		c := cand{d, sc}
		if len(h) < k {
			h = append(h, c)
			s.up(h, len(h)-1)
		} else if s.better(c, h[0]) {
			h[0] = c
			s.down(h, 0)
		}
	}
	s.heap = h
	hits := make([]Hit, len(h))
	for n := len(h); n > 0; n-- {
		hits[n-1] = Hit{DocID: ix.ids[h[0].doc], Score: h[0].score}
		h[0] = h[n-1]
		s.down(h[:n-1], 0)
	}
	return hits, nil
}

// nextEpoch starts a new query; marks are reset when the counter wraps.
func (s *Searcher) nextEpoch() {
	s.epoch++
	if s.epoch == 0 {
		clear(s.mark)
		s.epoch = 1
	}
}

// better tells whether a ranks before b: higher score, then smaller id.
func (s *Searcher) better(a, b cand) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return s.ix.idRank[a.doc] < s.ix.idRank[b.doc]
}

func (s *Searcher) up(h []cand, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !s.better(h[p], h[i]) { // the parent is already the worse
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func (s *Searcher) down(h []cand, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		w := l // the worse child
		if r := l + 1; r < len(h) && s.better(h[l], h[r]) {
			w = r
		}
		if !s.better(h[i], h[w]) {
			return
		}
		h[i], h[w] = h[w], h[i]
		i = w
	}
}
