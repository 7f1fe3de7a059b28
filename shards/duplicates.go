package shards

import (
	"cmp"
	"context"
	"hash/maphash"
	"path/filepath"
	"slices"
)

// DuplicateID is a document id found in more than one output shard.
type DuplicateID struct {
	ID      string
	Outputs []string // output file names, in input order
}

// FindDuplicateIDs reads the doc_id column of every committed shard and
// returns the ids that occur in more than one, sorted. Ids are unique
// within a shard (the reader rejects repeats), but each shard's output
// depends only on its own input, so the same id in two input shards is kept
// in both and reported here. Memory: 8 bytes per document (a hash) plus the
// candidates; a second pass confirms candidates by their exact id.
func FindDuplicateIDs(ctx context.Context, outDir string, mans []Manifest) ([]DuplicateID, error) {
	type entry struct {
		h     uint64
		shard int32
	}
	seed := maphash.MakeSeed()
	var entries []entry
	for i, m := range mans {
		err := ReadDocIDs(filepath.Join(outDir, m.Output.Path), func(id string) error {
			entries = append(entries, entry{maphash.String(seed, id), int32(i)})
			return ctx.Err()
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Or(cmp.Compare(a.h, b.h), cmp.Compare(a.shard, b.shard)) })
	candidates := map[uint64]bool{}
	for i := 1; i < len(entries); i++ {
		if entries[i].h == entries[i-1].h {
			candidates[entries[i].h] = true
		}
	}
	entries = nil
	if len(candidates) == 0 {
		return nil, nil
	}
	where := map[string][]string{}
	for _, m := range mans {
		err := ReadDocIDs(filepath.Join(outDir, m.Output.Path), func(id string) error {
			if candidates[maphash.String(seed, id)] {
				where[id] = append(where[id], m.Output.Path)
			}
			return ctx.Err()
		})
		if err != nil {
			return nil, err
		}
	}
	var dups []DuplicateID
	for id, outs := range where {
		if len(outs) > 1 {
			dups = append(dups, DuplicateID{ID: id, Outputs: outs})
		}
	}
	slices.SortFunc(dups, func(a, b DuplicateID) int { return cmp.Compare(a.ID, b.ID) })
	return dups, nil
}
