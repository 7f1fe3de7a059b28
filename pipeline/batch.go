package pipeline

import "sort"

// PackByLength groups items into batches for a padded forward pass. Items are
// sorted by length (stable, so equal lengths keep their order) and packed
// greedily: a batch grows while its padded size, items × longest length,
// stays within budget and it holds at most maxItems items (0: no limit).
// An item longer than budget gets a batch of its own. It returns the item
// indices of each batch; every index appears exactly once.
func PackByLength(lengths []int, budget, maxItems int) [][]int {
	order := make([]int, len(lengths))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return lengths[order[a]] < lengths[order[b]] })
	var batches [][]int
	var cur []int
	for _, i := range order {
		n := len(cur) + 1
		longest := lengths[i] // ascending order: the newest item is the longest
		if len(cur) > 0 && (n*longest > budget || (maxItems > 0 && n > maxItems)) {
			batches = append(batches, cur)
			cur = nil
		}
		cur = append(cur, i)
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	return batches
}

// PaddedTokens returns the tokens a batch of these lengths occupies once
// padded to its longest item.
func PaddedTokens(lengths []int, batch []int) int {
	longest := 0
	for _, i := range batch {
		longest = max(longest, lengths[i])
	}
	return longest * len(batch)
}
