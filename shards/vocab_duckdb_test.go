package shards

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/splash-encode/splash/encode/tokenizer"
)

// bertTokenizer is bert-base-uncased's tokenizer.json, kept in the
// repository's test data.
const bertTokenizer = "../testdata/tokenizers/bert-base-uncased/tokenizer.json"

const duckDBVocabScript = `
const { DuckDBInstance } = require(process.env.DUCKDB_MODULE);
(async () => {
  const file = "'" + process.argv[2].replaceAll("'", "''") + "'";
  const inst = await DuckDBInstance.create(':memory:');
  const con = await inst.connect();
  const q = async (sql) => (await con.runAndReadAll(sql)).getRowObjectsJson();
  process.stdout.write(JSON.stringify({
    types: (await q("DESCRIBE SELECT * FROM read_parquet(" + file + ")")).map(r => [r.column_name, r.column_type]),
    count: (await q("SELECT count(*)::BIGINT AS n, min(id)::BIGINT AS lo, max(id)::BIGINT AS hi, count(DISTINCT id)::BIGINT AS d FROM read_parquet(" + file + ")"))[0],
    quote: await q("SELECT id, token FROM read_parquet(" + file + ") WHERE id = 1000"),
    ids: await q("SELECT id FROM read_parquet(" + file + ") WHERE token = '\"' OR token = '##ing' OR token = '[CLS]' ORDER BY id"),
    inOrder: (await q("SELECT bool_and(id = file_row_number)::BOOLEAN AS ok FROM read_parquet(" + file + ", file_row_number = true)"))[0].ok,
  }));
})().catch(e => { console.error(e); process.exit(1); });
`

// TestVocabularyReadByDuckDB writes bert-base-uncased's vocabulary and reads
// it with DuckDB, an independent Parquet reader: the columns are id UINTEGER
// and token VARCHAR, one row per id in order, and id 1000 is the token `"`
// that breaks CSV readers.
func TestVocabularyReadByDuckDB(t *testing.T) {
	mod := duckDBModule(t)
	tok, err := tokenizer.Load(bertTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	vocab := tok.Vocab()
	if len(vocab) != 30522 {
		t.Fatalf("%s: %d tokens, want bert-base-uncased's 30522", bertTokenizer, len(vocab))
	}
	dir := t.TempDir()
	if err := WriteVocabulary(dir, vocab); err != nil {
		t.Fatal(err)
	}
	path, err := filepath.Abs(filepath.Join(dir, VocabularyFile))
	if err != nil {
		t.Fatal(err)
	}
	out := runNode(t, dir, duckDBVocabScript, []string{"DUCKDB_MODULE=" + mod}, path)
	var res struct {
		Types [][2]string `json:"types"`
		Count struct {
			N, Lo, Hi, D string
		} `json:"count"`
		Quote []struct {
			ID    json.Number `json:"id"`
			Token string      `json:"token"`
		} `json:"quote"`
		IDs []struct {
			ID json.Number `json:"id"`
		} `json:"ids"`
		InOrder bool `json:"inOrder"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %.300s", err, out)
	}
	if want := [][2]string{{"id", "UINTEGER"}, {"token", "VARCHAR"}}; len(res.Types) != 2 || res.Types[0] != want[0] || res.Types[1] != want[1] {
		t.Errorf("DuckDB types %v, want %v", res.Types, want)
	}
	if res.Count.N != "30522" || res.Count.Lo != "0" || res.Count.Hi != "30521" || res.Count.D != "30522" || !res.InOrder {
		t.Errorf("DuckDB counts %+v, in order %v: want ids 0..30521 once each, in order", res.Count, res.InOrder)
	}
	if len(res.Quote) != 1 || res.Quote[0].ID != "1000" || res.Quote[0].Token != `"` {
		t.Errorf("id 1000 reads as %+v, want the token \"", res.Quote)
	}
	var ids []string
	for _, r := range res.IDs {
		ids = append(ids, string(r.ID))
	}
	if want := []string{"101", "1000", "2075"}; len(ids) != 3 || ids[0] != want[0] || ids[1] != want[1] || ids[2] != want[2] {
		t.Errorf("ids of [CLS], \", ##ing: %v, want %v", ids, want)
	}
	if _, err := os.Stat(filepath.Join(dir, LegacyVocabularyFile)); err == nil {
		t.Errorf("%s was written", LegacyVocabularyFile)
	}
}
