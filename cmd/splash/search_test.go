package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/splash-encode/splash/shards"
)

const cranfieldQrels = "../../testdata/cranfield/qrels.tsv"

// runSearchCLI runs the root command with search and eval added (the
// constructors under test; root.go may register them as well).
func runSearchCLI(t *testing.T, args ...string) (string, int, error) {
	t.Helper()
	root := newRootCommand()
	for _, c := range []*cobra.Command{newSearchCommand(), newEvalCommand()} {
		if !slices.ContainsFunc(root.Commands(), func(r *cobra.Command) bool { return r.Name() == c.Name() }) {
			root.AddCommand(c)
		}
	}
	var out bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&bytes.Buffer{})
	ctx := context.Background()
	err := root.ExecuteContext(ctx)
	return out.String(), exitCode(ctx, err), err
}

// encodeCranfieldForSearch encodes the first Cranfield document shard
// (350 documents, 64 tokens each at most, to keep the test short) and the
// 225 queries with `splash encode` and a one-layer test model.
func encodeCranfieldForSearch(t *testing.T) (docs, queries string) {
	t.Helper()
	requireORT(t)
	shard := cranfieldShards(t)[0]
	if filepath.Base(shard) != "docs-00000.parquet" {
		t.Fatalf("first Cranfield shard is %s", shard)
	}
	model := genTinyModel(t)
	root := t.TempDir()
	docs, queries = filepath.Join(root, "docs"), filepath.Join(root, "queries")
	for _, args := range [][]string{
		{"encode", "--model", model, "--input", shard, "--output", docs, "--title-column", "title", "--max-length", "64", "--log-level", "warn"},
		{"encode", "--model", model, "--input", filepath.Join(filepath.Dir(shard), "queries.parquet"), "--output", queries, "--max-length", "32", "--log-level", "warn"},
	} {
		if out, code, err := runCLI(t, "", args...); code != exitOK {
			t.Fatalf("%v: exit %d (%v)\n%s", args, code, err, out)
		}
	}
	return docs, queries
}

func readDirRows(t *testing.T, dir string) []shards.Row {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "[^_]*.parquet")) // not _vocabulary.parquet
	var rows []shards.Row
	for _, f := range files {
		if err := shards.ReadShard(f, func(r shards.Row) error { rows = append(rows, r); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return rows
}

type scored struct {
	id    string
	score int64
}

// bruteRanking scores q against every document (impacts, merged term
// lists) and returns the documents with a positive score, best first, ties
// by id ascending: what splash search documents.
func bruteRanking(q shards.Row, docs []shards.Row) []scored {
	var out []scored
	for _, d := range docs {
		var s int64
		for i, t := range q.Vec.Terms {
			if j, ok := slices.BinarySearch(d.Vec.Terms, t); ok {
				s += int64(q.Vec.Impacts[i]) * int64(d.Vec.Impacts[j])
			}
		}
		if s > 0 {
			out = append(out, scored{d.DocID, s})
		}
	}
	slices.SortFunc(out, func(a, b scored) int {
		if a.score != b.score {
			return int(b.score - a.score)
		}
		return strings.Compare(a.id, b.id)
	})
	return out
}

// bruteMetrics computes nDCG@10, MRR@10, R@100 and R@1000 of one query's
// retrieved list the plain way: reorder as trec_eval does (score as
// float32 descending, id descending), then linear gains rel with
// 1/log2(rank+1), the ideal from the sorted positive judgements.
func bruteMetrics(list []scored, judged map[string]int) [4]float64 {
	list = slices.Clone(list)
	slices.SortStableFunc(list, func(a, b scored) int {
		fa, fb := float32(a.score), float32(b.score)
		if fa != fb {
			if fa > fb {
				return -1
			}
			return 1
		}
		return strings.Compare(b.id, a.id)
	})
	var ideal []int
	for _, rel := range judged {
		if rel > 0 {
			ideal = append(ideal, rel)
		}
	}
	slices.Sort(ideal)
	slices.Reverse(ideal)
	var dcg, idcg, rr float64
	var found100, found1000 int
	for i, s := range list {
		rel := judged[s.id]
		if rel <= 0 {
			continue
		}
		if i < 10 {
			dcg += float64(rel) / math.Log2(float64(i+2))
			if rr == 0 {
				rr = 1 / float64(i+1)
			}
		}
		if i < 100 {
			found100++
		}
		if i < 1000 {
			found1000++
		}
	}
	for i, rel := range ideal[:min(10, len(ideal))] {
		idcg += float64(rel) / math.Log2(float64(i+2))
	}
	return [4]float64{dcg / idcg, rr, float64(found100) / float64(len(ideal)), float64(found1000) / float64(len(ideal))}
}

// TestSearchThenEvalMatchBruteForce runs splash search and splash eval
// --format json on the Cranfield encoding and checks the run against a
// brute-force ranking and eval's numbers against metrics computed from
// that ranking.
func TestSearchThenEvalMatchBruteForce(t *testing.T) {
	docsDir, queriesDir := encodeCranfieldForSearch(t)
	run := filepath.Join(t.TempDir(), "run.txt")
	if out, code, err := runSearchCLI(t, "search", "--index", docsDir, "--queries", queriesDir, "--k", "100", "--output", run, "--tag", "tiny", "--workers", "2", "--log-level", "warn"); code != exitOK {
		t.Fatalf("search: exit %d (%v)\n%s", code, err, out)
	}
	docs, queries := readDirRows(t, docsDir), readDirRows(t, queriesDir)
	if len(docs) != 350 || len(queries) != 225 {
		t.Fatalf("%d documents, %d queries", len(docs), len(queries))
	}
	// The run: queries in shard order, each the brute-force top 100.
	var want strings.Builder
	rankings := map[string][]scored{}
	for _, q := range queries {
		r := bruteRanking(q, docs)
		r = r[:min(100, len(r))]
		rankings[q.DocID] = r
		for i, s := range r {
			want.WriteString(q.DocID + " Q0 " + s.id + " " + strconv.Itoa(i+1) + " " + strconv.FormatInt(s.score, 10) + " tiny\n")
		}
	}
	got, err := os.ReadFile(run)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want.String() {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(want.String(), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("run line %d: %q, brute force %q (%d and %d lines)", i+1, gl[i], wl[i], len(gl), len(wl))
			}
		}
		t.Fatalf("run has %d lines, brute force %d", len(gl), len(wl))
	}

	// The metrics: parse the qrels here, independently of package trec.
	qrelsText, err := os.ReadFile(cranfieldQrels)
	if err != nil {
		t.Fatal(err)
	}
	qrels := map[string]map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(qrelsText)), "\n") {
		f := strings.Fields(line)
		rel, _ := strconv.Atoi(f[3])
		if qrels[f[0]] == nil {
			qrels[f[0]] = map[string]int{}
		}
		qrels[f[0]][f[2]] = rel
	}
	var sums [4]float64
	n := 0
	for qid, list := range rankings {
		judged := qrels[qid]
		relevant := 0
		for _, rel := range judged {
			if rel > 0 {
				relevant++
			}
		}
		if len(list) == 0 || relevant == 0 {
			continue // not in the run, or nothing to find
		}
		m := bruteMetrics(list, judged)
		for i := range sums {
			sums[i] += m[i]
		}
		n++
	}
	out, code, err := runSearchCLI(t, "eval", "--run", run, "--qrels", cranfieldQrels, "--format", "json")
	if code != exitOK {
		t.Fatalf("eval: exit %d (%v)\n%s", code, err, out)
	}
	var res map[string]float64
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("eval --format json printed %q: %v", out, err)
	}
	if len(res) != 5 || int(res["queries"]) != n {
		t.Errorf("eval: %v, want 5 keys and %d queries", res, n)
	}
	for i, name := range []string{"ndcg@10", "mrr@10", "recall@100", "recall@1000"} {
		if want := sums[i] / float64(n); math.Abs(res[name]-want) > 1e-12 {
			t.Errorf("%s = %.15f, brute force %.15f", name, res[name], want)
		}
	}
	// Random weights retrieve little, but something: the figures are not
	// all zero, so the comparison above means something.
	if res["recall@100"] == 0 || res["ndcg@10"] == 0 {
		t.Errorf("no relevant document retrieved at all: %v", res)
	}
	t.Logf("eval: %v", res)

	// Text output: one metric per line, then the query count.
	out, code, _ = runSearchCLI(t, "eval", "--run", run, "--qrels", cranfieldQrels, "--metrics", "mrr@10,recall@5")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != exitOK || len(lines) != 3 || !strings.HasPrefix(lines[0], "mrr@10 ") || !strings.HasPrefix(lines[1], "recall@5 ") ||
		lines[2] != "queries      "+strconv.Itoa(n) {
		t.Errorf("text output (exit %d):\n%s", code, out)
	}

	// --score weights writes a run too, of the same queries.
	wrun := filepath.Join(t.TempDir(), "weights.txt")
	if out, code, err := runSearchCLI(t, "search", "--index", filepath.Join(docsDir, "docs-00000.parquet"), "--queries", queriesDir,
		"--k", "5", "--output", wrun, "--score", "weights", "--log-level", "warn"); code != exitOK {
		t.Fatalf("search --score weights: exit %d (%v)\n%s", code, err, out)
	}
	if data, _ := os.ReadFile(wrun); strings.Count(string(data), "\n") == 0 {
		t.Errorf("weights run is empty")
	}

	// Bad input and bad usage.
	other := filepath.Join(t.TempDir(), "other-vocab")
	if err := os.CopyFS(other, os.DirFS(queriesDir)); err != nil {
		t.Fatal(err)
	}
	vocabPath := filepath.Join(other, shards.VocabularyFile)
	vocab, err := shards.ReadVocabulary(vocabPath)
	if err != nil {
		t.Fatal(err)
	}
	for i := range vocab {
		if vocab[i] == "the" {
			vocab[i] = "THE"
		}
	}
	if err := os.Remove(vocabPath); err != nil {
		t.Fatal(err)
	}
	if err := shards.WriteVocabulary(other, vocab); err != nil {
		t.Fatal(err)
	}
	badQrels := filepath.Join(t.TempDir(), "qrels.txt")
	os.WriteFile(badQrels, []byte("1 0 5 1\n1 0 6\n"), 0o644)
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"search", "--index", docsDir, "--queries", other, "--output", filepath.Join(t.TempDir(), "r")}, exitBadData, `"the"`},
		{[]string{"search", "--index", docsDir, "--queries", queriesDir, "--output", run, "--k", "0"}, exitUsage, "--k 0"},
		{[]string{"search", "--index", docsDir, "--queries", queriesDir, "--output", run, "--score", "bm25"}, exitUsage, "bm25"},
		{[]string{"search", "--index", t.TempDir(), "--queries", queriesDir, "--output", run}, exitBadData, "no impact shard manifest"},
		{[]string{"eval", "--run", run, "--qrels", badQrels}, exitBadData, badQrels + ":2:"},
		{[]string{"eval", "--run", run, "--qrels", cranfieldQrels, "--metrics", "map@10"}, exitUsage, "map"},
		{[]string{"eval", "--run", run, "--qrels", cranfieldQrels, "--format", "csv"}, exitUsage, "csv"},
	} {
		_, code, err := runSearchCLI(t, c.args...)
		if code != c.code || err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%v: exit %d (%v), want exit %d mentioning %s", c.args, code, err, c.code, c.msg)
		}
	}
	// The failed searches left the earlier run alone and no temp file.
	if data, _ := os.ReadFile(run); string(data) != want.String() {
		t.Errorf("a failed search changed %s", run)
	}
	entries, err := os.ReadDir(filepath.Dir(run))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != filepath.Base(run) {
			t.Errorf("file left beside the run: %s", e.Name())
		}
	}
}
