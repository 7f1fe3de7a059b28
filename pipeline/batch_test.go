package pipeline

import (
	"math/rand/v2"
	"testing"
)

func TestPackByLengthCoversEveryItemOnceWithinBudget(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 200; trial++ {
		n := rng.IntN(300)
		lengths := make([]int, n)
		for i := range lengths {
			lengths[i] = 1 + rng.IntN(512)
		}
		budget := 256 + rng.IntN(8192)
		maxItems := rng.IntN(64)
		seen := make([]int, n)
		for _, b := range PackByLength(lengths, budget, maxItems) {
			if len(b) == 0 {
				t.Fatal("empty batch")
			}
			if maxItems > 0 && len(b) > maxItems {
				t.Fatalf("batch of %d items exceeds maxItems %d", len(b), maxItems)
			}
			if len(b) > 1 && PaddedTokens(lengths, b) > budget {
				t.Fatalf("batch pads to %d tokens, budget %d", PaddedTokens(lengths, b), budget)
			}
			for _, i := range b {
				seen[i]++
			}
		}
		for i, c := range seen {
			if c != 1 {
				t.Fatalf("item %d appears %d times", i, c)
			}
		}
	}
}

func TestPackByLengthGroupsSimilarLengths(t *testing.T) {
	lengths := []int{10, 500, 11, 499, 12, 498}
	batches := PackByLength(lengths, 1500, 0)
	if len(batches) != 2 {
		t.Fatalf("got %d batches, want 2: %v", len(batches), batches)
	}
	short, long := batches[0], batches[1]
	if PaddedTokens(lengths, short) != 36 || PaddedTokens(lengths, long) != 1500 {
		t.Fatalf("batches %v pad badly", batches)
	}
}
