package tokenizer

import (
	"os"
	"testing"
)

func TestZZDiff(t *testing.T) {
	cases := readJSONL[testCase](t, readFile(t, "/tmp/diff/cases.jsonl"), "cases")
	t.Run("bert", func(t *testing.T) {
		compareAll(t, loadBert(t), cases, readJSONL[expectation](t, readFile(t, "/tmp/diff/bert.jsonl"), "bert"))
	})
	for _, v := range []string{"cased", "keep-accents", "sequence", "nfkc", "bare", "added"} {
		if _, err := os.Stat("/tmp/diff/" + v + ".jsonl"); err != nil {
			continue
		}
		t.Run(v, func(t *testing.T) {
			compareAll(t, loadVariant(t, v), cases, readJSONL[expectation](t, readFile(t, "/tmp/diff/"+v+".jsonl"), v))
		})
	}
}
