package shards

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestAssignShards(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 5, 17, 100} {
		var inputs []string
		for i := 0; i < n; i++ {
			inputs = append(inputs, fmt.Sprintf("/data/part-%d/docs-%05d.parquet", i%3, rng.IntN(1_000_000)))
		}
		for _, count := range []int{1, 2, 3, 8, 150} {
			seen := map[string]int{}
			smallest, largest := n, 0
			for index := 0; index < count; index++ {
				mine, err := AssignShards(inputs, index, count)
				if err != nil {
					t.Fatal(err)
				}
				shuffled := slices.Clone(inputs)
				rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				again, _ := AssignShards(shuffled, index, count)
				if !slices.Equal(mine, again) {
					t.Fatalf("n=%d index %d of %d: the assignment depends on the input order", n, index, count)
				}
				for _, in := range mine {
					seen[in]++
				}
				smallest, largest = min(smallest, len(mine)), max(largest, len(mine))
			}
			for _, in := range inputs {
				if seen[in] != 1 {
					t.Fatalf("n=%d count %d: %s assigned %d times", n, count, in, seen[in])
				}
			}
			if largest-smallest > 1 {
				t.Errorf("n=%d count %d: loads from %d to %d shards", n, count, smallest, largest)
			}
		}
	}
	for _, c := range [][2]int{{0, 0}, {-1, 2}, {2, 2}, {5, 3}} {
		if _, err := AssignShards([]string{"a.parquet"}, c[0], c[1]); err == nil || !strings.Contains(err.Error(), "shard") {
			t.Errorf("index %d of %d: error %v", c[0], c[1], err)
		}
	}
}
