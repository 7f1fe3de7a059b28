package main

import (
	"cmp"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/splash-encode/splash/shards"
	"github.com/splash-encode/splash/shards/export/exporttest"
)

// interopDoc is the page whose DuckDB statements TestInteropDuckDB runs.
const interopDoc = "../../docs/INTEROP.md"

// duckDBNodeModule finds the npm package @duckdb/node-api as the shards
// package's tests do: in the repository's node_modules (scripts/setup.sh
// installs package.json's packages), else in the folders of
// $SPLASH_NODE_MODULES. It skips the test, saying why, without node or the
// package.
func duckDBNodeModule(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: the DuckDB check needs it (scripts/setup.sh installs the test tools)")
	}
	dirs := []string{"../../node_modules"}
	for _, d := range filepath.SplitList(os.Getenv("SPLASH_NODE_MODULES")) {
		if d != "" {
			dirs = append(dirs, d, filepath.Join(d, "node_modules"))
		}
	}
	for _, d := range dirs {
		mod, err := filepath.Abs(filepath.Join(d, "@duckdb", "node-api"))
		if err == nil {
			if _, err := os.Stat(filepath.Join(mod, "package.json")); err == nil {
				return mod
			}
		}
	}
	t.Skip("npm package @duckdb/node-api is not in ../../node_modules nor in $SPLASH_NODE_MODULES: the DuckDB check is skipped (scripts/setup.sh installs it)")
	return ""
}

// duckDBRunScript runs every statement of $DUCKDB_STATEMENTS (a JSON list)
// and prints the rows of each, as JSON.
const duckDBRunScript = `
const { DuckDBInstance } = require(process.env.DUCKDB_MODULE);
(async () => {
  const inst = await DuckDBInstance.create(':memory:');
  const con = await inst.connect();
  const out = [];
  for (const sql of JSON.parse(process.env.DUCKDB_STATEMENTS)) {
    out.push((await con.runAndReadAll(sql)).getRowObjectsJson());
  }
  process.stdout.write(JSON.stringify(out));
})().catch(e => { console.error(e); process.exit(1); });
`

// sqlBlocks returns the ```sql blocks of a Markdown file.
func sqlBlocks(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(string(data), -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// TestInteropDuckDB runs the DuckDB statements of docs/INTEROP.md against a
// real output of splash encode (Cranfield, bert-base-uncased vocabulary),
// 'out/' replaced by its path, and checks each result against the shards
// and vocabulary as splash reads them: the document and posting counts, the
// token " at id 1000, document 1's ten heaviest tokens with their weights,
// and the five tokens with the largest document frequency.
func TestInteropDuckDB(t *testing.T) {
	mod := duckDBNodeModule(t)
	blocks := sqlBlocks(t, interopDoc)
	if len(blocks) != 4 {
		t.Fatalf("%s has %d sql blocks, the test knows 4", interopDoc, len(blocks))
	}
	out, _ := encodeCranfieldForIndex(t)
	bases, err := shards.ListManifests(out)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, b := range bases {
		paths = append(paths, filepath.Join(out, b+".parquet"))
	}
	rows, err := exporttest.ReadRows(paths)
	if err != nil {
		t.Fatal(err)
	}
	vocab, err := shards.ReadVocabulary(filepath.Join(out, shards.VocabularyFile))
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		t.Fatal(err)
	}
	var stmts []string
	for _, b := range blocks {
		if !strings.Contains(b, "'out/") {
			t.Fatalf("a statement reads no 'out/...':\n%s", b)
		}
		stmts = append(stmts, strings.ReplaceAll(b, "'out/", "'"+strings.ReplaceAll(abs, "'", "''")+"/"))
	}
	arg, _ := json.Marshal(stmts)
	cmd := exec.Command("node", "-e", duckDBRunScript)
	cmd.Env = append(os.Environ(), "DUCKDB_MODULE="+mod, "DUCKDB_STATEMENTS="+string(arg))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var res [4][]map[string]any
	if err := json.Unmarshal(stdout, &res); err != nil {
		t.Fatalf("%v: %.300s", err, stdout)
	}
	num := func(v any) string { // DuckDB's JSON gives big integers as strings
		switch x := v.(type) {
		case string:
			return x
		case float64:
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
		return "?"
	}

	// Documents and postings.
	var postings int
	df := map[uint32]int{}
	var doc1 *shards.Row
	for i, r := range rows {
		postings += len(r.Vec.Terms)
		for _, term := range r.Vec.Terms {
			df[term]++
		}
		if r.DocID == "1" {
			doc1 = &rows[i]
		}
	}
	if len(res[0]) != 1 || num(res[0][0]["documents"]) != strconv.Itoa(len(rows)) || num(res[0][0]["postings"]) != strconv.Itoa(postings) {
		t.Errorf("counts %v, want %d documents and %d postings", res[0], len(rows), postings)
	}
	// The vocabulary.
	if len(vocab) != 30522 || vocab[1000] != `"` || len(res[1]) != 1 || num(res[1][0]["id"]) != "1000" || res[1][0]["token"] != `"` {
		t.Errorf("id 1000: %v (splash reads %d tokens)", res[1], len(vocab))
	}
	// Document 1's heaviest tokens.
	if doc1 == nil || len(doc1.Vec.Terms) < 10 {
		t.Fatal("document 1 is missing or has fewer than 10 terms")
	}
	type tw struct {
		tok string
		w   float32
	}
	var top []tw
	for k, term := range doc1.Vec.Terms {
		top = append(top, tw{vocab[term], doc1.Vec.Weights[k]})
	}
	slices.SortFunc(top, func(a, b tw) int { return cmp.Or(cmp.Compare(b.w, a.w), strings.Compare(a.tok, b.tok)) })
	if len(res[2]) != 10 {
		t.Fatalf("document 1: %d rows, want 10", len(res[2]))
	}
	for i, r := range res[2] {
		w, _ := r["weight"].(float64)
		if r["token"] != top[i].tok || float32(w) != top[i].w {
			t.Errorf("document 1 row %d: %v, want %q %v", i, r, top[i].tok, top[i].w)
		}
	}
	// Document frequencies.
	type tdf struct {
		tok string
		df  int
	}
	var dfs []tdf
	for term, n := range df {
		dfs = append(dfs, tdf{vocab[term], n})
	}
	slices.SortFunc(dfs, func(a, b tdf) int { return cmp.Or(cmp.Compare(b.df, a.df), strings.Compare(a.tok, b.tok)) })
	if len(res[3]) != 5 {
		t.Fatalf("document frequencies: %d rows, want 5", len(res[3]))
	}
	for i, r := range res[3] {
		if r["token"] != dfs[i].tok || num(r["df"]) != strconv.Itoa(dfs[i].df) {
			t.Errorf("df row %d: %v, want %q %d", i, r, dfs[i].tok, dfs[i].df)
		}
	}
}
