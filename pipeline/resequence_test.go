package pipeline

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestResequencerRestoresOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		seed uint64
		// window > 0 shuffles only within blocks of that size (workers
		// finishing a little out of order); 0 shuffles everything.
		window int
	}{
		{name: "empty", n: 0, seed: 1},
		{name: "one", n: 1, seed: 1},
		{name: "in order", n: 100, seed: 2, window: 1},
		{name: "reversed whole", n: 500, seed: 3},
		{name: "shuffled whole", n: 10000, seed: 4},
		{name: "shuffled in blocks of 8", n: 10000, seed: 5, window: 8},
		{name: "shuffled in blocks of 64", n: 10000, seed: 6, window: 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(tc.seed, 99))
			perm := make([]int64, tc.n)
			for i := range perm {
				perm[i] = int64(i)
			}
			block := tc.window
			if block == 0 {
				block = max(tc.n, 1)
			}
			for lo := 0; lo < tc.n; lo += block {
				hi := min(lo+block, tc.n)
				rng.Shuffle(hi-lo, func(a, b int) { perm[lo+a], perm[lo+b] = perm[lo+b], perm[lo+a] })
			}
			if tc.name == "reversed whole" {
				for i := range perm {
					perm[i] = int64(tc.n - 1 - i)
				}
			}
			var r Resequencer[string]
			var got []string
			maxPending := 0
			for k, i := range perm {
				due := r.Put(i, label(i))
				got = append(got, due...)
				if int64(len(got)) != r.Next() {
					t.Fatalf("after %d puts: %d delivered, Next %d", k+1, len(got), r.Next())
				}
				if len(got)+r.Pending() != k+1 {
					t.Fatalf("after %d puts: %d delivered + %d pending", k+1, len(got), r.Pending())
				}
				maxPending = max(maxPending, r.Pending())
			}
			for i, s := range got {
				if s != label(int64(i)) {
					t.Fatalf("value %d is %q", i, s)
				}
			}
			if len(got) != tc.n || r.Pending() != 0 || r.Next() != int64(tc.n) {
				t.Fatalf("delivered %d of %d, Pending %d, Next %d", len(got), tc.n, r.Pending(), r.Next())
			}
			if tc.window > 0 && maxPending >= tc.window {
				t.Fatalf("held back %d values with numbers shuffled within blocks of %d", maxPending, tc.window)
			}
		})
	}
}

func label(i int64) string { return string(rune('a'+i%26)) + string(rune('0'+i/26%10)) }

func TestResequencerPutTwice(t *testing.T) {
	for _, tc := range []struct {
		name string
		puts []int64 // before the bad one
		bad  int64
	}{
		{name: "already delivered", puts: []int64{0, 1}, bad: 0},
		{name: "negative", puts: nil, bad: -1},
		{name: "already pending", puts: []int64{2, 5}, bad: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Resequencer[int64]
			for _, i := range tc.puts {
				r.Put(i, i)
			}
			next, pending := r.Next(), r.Pending()
			if due, err := r.PutChecked(tc.bad, -100); !errors.Is(err, ErrResequence) || due != nil {
				t.Fatalf("PutChecked(%d) = %v, %v; want nil and ErrResequence", tc.bad, due, err)
			}
			if due := r.Put(tc.bad, -100); due != nil {
				t.Fatalf("Put(%d) = %v, want nil", tc.bad, due)
			}
			if r.Next() != next || r.Pending() != pending {
				t.Fatalf("a bad put changed Next %d→%d or Pending %d→%d", next, r.Next(), pending, r.Pending())
			}
			// The first value put stays: fill the gaps and read all.
			var got []int64
			for i := range r.Next() + 10 {
				due, _ := r.PutChecked(i, i)
				got = append(got, due...)
			}
			for _, v := range got {
				if v == -100 {
					t.Fatalf("the value of a bad put came out: %v", got)
				}
			}
		})
	}
}

func BenchmarkResequencer(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	perm := make([]int64, b.N)
	for i := range perm {
		perm[i] = int64(i)
	}
	for lo := 0; lo < b.N; lo += 16 {
		hi := min(lo+16, b.N)
		rng.Shuffle(hi-lo, func(x, y int) { perm[lo+x], perm[lo+y] = perm[lo+y], perm[lo+x] })
	}
	b.ReportAllocs()
	b.ResetTimer()
	var r Resequencer[int64]
	for _, i := range perm {
		r.Put(i, i)
	}
}
