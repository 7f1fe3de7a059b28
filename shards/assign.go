package shards

import (
	"cmp"
	"fmt"
	"slices"
)

// AssignShards returns the inputs that process index of count encodes when
// count processes share one corpus (a Kubernetes Indexed Job): the inputs
// ordered by base name, then every count-th one starting at index. Every
// input goes to exactly one index, the indexes' loads differ by at most one
// shard, and the assignment depends only on the set of base names, not on
// the order in which inputs were listed or discovered. Adding shards to a
// corpus moves others to other indexes; that costs nothing, because a shard
// already done is skipped by its manifest whichever index meets it.
func AssignShards(inputs []string, index, count int) ([]string, error) {
	if count < 1 {
		return nil, fmt.Errorf("shard count %d: must be at least 1", count)
	}
	if index < 0 || index >= count {
		return nil, fmt.Errorf("shard index %d: must be from 0 to %d (the shard count minus one)", index, count-1)
	}
	sorted := slices.Clone(inputs)
	slices.SortStableFunc(sorted, func(a, b string) int {
		if c := cmp.Compare(InputBase(a), InputBase(b)); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	var mine []string
	for i := index; i < len(sorted); i += count {
		mine = append(mine, sorted[i])
	}
	return mine, nil
}
