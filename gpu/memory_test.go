package gpu

import "testing"

func TestBatchTokens(t *testing.T) {
	base := ModelShape{Vocab: 30522, Hidden: 768, Heads: 12, Intermediate: 3072, MaxLength: 512, WeightBytes: 438 << 20}
	// BERT-base: the head dominates, 4·(3·30522 + 2·768) bytes a token.
	if got, want := base.BytesPerToken(), uint64(4*(3*30522+2*768)); got != want {
		t.Errorf("BytesPerToken = %d, want %d", got, want)
	}
	// A long-context model with few words: attention scores dominate.
	long := ModelShape{Vocab: 1000, Hidden: 256, Heads: 16, Intermediate: 1024, MaxLength: 8192}
	if got, want := long.BytesPerToken(), uint64(4*(12*256+2*1024+2*16*8192+2*256)); got != want {
		t.Errorf("long BytesPerToken = %d, want %d", got, want)
	}
	cases := []struct {
		name string
		free uint64
		want int
	}{
		{"unknown memory", 0, 2048},
		{"weights do not fit", 400 << 20, 2048},
		// (8 GiB - 1.2·438 MiB) / 2 / 372,408 bytes = 10,825 tokens.
		{"8 GiB", 8 << 30, int((8<<30 - (438<<20 + (438<<20)/5)) / 2 / (4 * (3*30522 + 2*768)))},
		{"80 GiB, capped", 80 << 30, MaxBatchTokens},
	}
	for _, c := range cases {
		if got := BatchTokens(c.free, base); got != c.want {
			t.Errorf("%s: BatchTokens = %d, want %d", c.name, got, c.want)
		}
	}
	if got := BatchTokens(8<<30, ModelShape{MaxLength: 4096}); got < 4096 {
		t.Errorf("budget %d below the max length 4096", got)
	}
	// Unknown dimensions are BERT-base's.
	if BatchTokens(8<<30, ModelShape{WeightBytes: 438 << 20}) != BatchTokens(8<<30, base) {
		t.Error("zero shape does not default to BERT-base")
	}
}
