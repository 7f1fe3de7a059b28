package shards

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"github.com/splash-encode/splash/encode"
)

// arrowJSScript reads an Arrow IPC file with the npm package apache-arrow
// (tableFromIPC) and prints its schema, metadata and rows as JSON. Types are
// spelled as in the shard format: utf8, int32, uint16, float32, bool,
// list<...>.
const arrowJSScript = `
const arrow = require(process.env.ARROW_MODULE);
const fs = require('fs');
const table = arrow.tableFromIPC(fs.readFileSync(process.argv[2]));
function desc(t) {
  switch (t.typeId) {
    case arrow.Type.Utf8: return 'utf8';
    case arrow.Type.LargeUtf8: return 'large_utf8';
    case arrow.Type.Bool: return 'bool';
    case arrow.Type.Int: return (t.isSigned ? 'int' : 'uint') + t.bitWidth;
    case arrow.Type.Float: return ['float16', 'float32', 'float64'][t.precision];
    case arrow.Type.List: return 'list<' + desc(t.children[0].type) + '>';
    default: return 'other:' + String(t);
  }
}
const fields = table.schema.fields.map(f => ({
  name: f.name, type: desc(f.type), nullable: f.nullable, js: String(f.type),
  children: (f.type.children || []).map(c => ({ name: c.name, type: desc(c.type), nullable: c.nullable })),
}));
const rows = [];
for (let i = 0; i < table.numRows; i++) {
  const r = table.get(i);
  const list = v => v === null ? null : Array.from(v.toArray());
  rows.push({
    doc_id: r.doc_id, term_ids: list(r.term_ids), weights: list(r.weights), impacts: list(r.impacts),
    num_tokens: r.num_tokens, truncated: r.truncated,
  });
}
process.stdout.write(JSON.stringify({
  fields, rows, batches: table.batches.length,
  metadata: Object.fromEntries(table.schema.metadata),
}));
`

// TestArrowReadByApacheArrowJS reads an Arrow IPC shard with the JavaScript
// Arrow implementation (npm apache-arrow), independent of arrow-go, and
// compares the schema, every value and the schema metadata.
func TestArrowReadByApacheArrowJS(t *testing.T) {
	mod := nodeModule(t, "apache-arrow", "the independent Arrow IPC check")
	dir := t.TempDir()
	rows := testRows(700, 11)
	// Extremes of every column type.
	rows = append(rows,
		Row{DocID: "", Vec: encode.SparseVec{Terms: []uint32{0, 1<<32 - 1}, Weights: []float32{1e-38, 3.4e38}, Impacts: []uint16{0, 65535}}, NumTokens: 1<<31 - 1},
		Row{DocID: "日本語 \t\"quoted\"\n🙂", NumTokens: 0, Truncated: true},
	)
	out := writeShard(t, dir, "docs", FormatArrow, rows, WriterOptions{BatchRows: 128})
	stdout := runNode(t, dir, arrowJSScript, []string{"ARROW_MODULE=" + mod}, out.Path)
	var res struct {
		Fields []struct {
			Name     string `json:"name"`
			Type     string `json:"type"`
			Nullable bool   `json:"nullable"`
			JS       string `json:"js"`
			Children []struct {
				Name     string `json:"name"`
				Type     string `json:"type"`
				Nullable bool   `json:"nullable"`
			} `json:"children"`
		} `json:"fields"`
		Rows []struct {
			DocID     *string   `json:"doc_id"`
			TermIDs   []uint32  `json:"term_ids"`
			Weights   []float64 `json:"weights"`
			Impacts   []uint16  `json:"impacts"`
			NumTokens *int32    `json:"num_tokens"`
			Truncated *bool     `json:"truncated"`
		} `json:"rows"`
		Batches  int               `json:"batches"`
		Metadata map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal(stdout, &res); err != nil {
		t.Fatalf("%v: %.300s", err, stdout)
	}

	type field struct {
		name, typ string
		nullable  bool
	}
	want := []field{
		{ColDocID, "utf8", false},
		{ColTermIDs, "list<uint32>", false},
		{ColWeights, "list<float32>", true},
		{ColImpacts, "list<uint16>", true},
		{ColNumTokens, "int32", true},
		{ColTruncated, "bool", true},
	}
	if len(res.Fields) != len(want) {
		t.Fatalf("apache-arrow read %d fields, want %d: %+v", len(res.Fields), len(want), res.Fields)
	}
	for i, f := range res.Fields {
		w := want[i]
		if f.Name != w.name || f.Type != w.typ || f.Nullable != w.nullable {
			t.Errorf("field %d: apache-arrow reads %s %s (%s) nullable=%v, want %s %s nullable=%v",
				i, f.Name, f.Type, f.JS, f.Nullable, w.name, w.typ, w.nullable)
		}
		if len(f.Children) > 0 {
			c := f.Children[0]
			if len(f.Children) != 1 || c.Name != listElement || c.Nullable {
				t.Errorf("field %s: list element %+v, want one non-nullable %q", f.Name, f.Children, listElement)
			}
		}
	}
	if want := (len(rows) + 127) / 128; res.Batches != want {
		t.Errorf("apache-arrow read %d record batches, want %d", res.Batches, want)
	}

	if len(res.Rows) != len(rows) {
		t.Fatalf("apache-arrow read %d rows, want %d", len(res.Rows), len(rows))
	}
	for i, r := range res.Rows {
		if r.DocID == nil || r.TermIDs == nil || r.Weights == nil || r.Impacts == nil || r.NumTokens == nil || r.Truncated == nil {
			t.Fatalf("row %d: apache-arrow read a null: %+v", i, r)
		}
		weights := make([]float32, len(r.Weights))
		for j, x := range r.Weights {
			weights[j] = float32(x)
			if float64(weights[j]) != x {
				t.Fatalf("row %d: weight %v is not a float32", i, x)
			}
		}
		got := Row{DocID: *r.DocID, Vec: encode.SparseVec{Terms: r.TermIDs, Weights: weights, Impacts: r.Impacts},
			NumTokens: *r.NumTokens, Truncated: *r.Truncated}
		if !rowsEqual(got, rows[i]) {
			t.Fatalf("row %d: apache-arrow read %+v, want %+v", i, got, rows[i])
		}
	}

	wantMeta, err := testMetadata().Map()
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(res.Metadata, wantMeta) {
		keys := slices.Sorted(maps.Keys(res.Metadata))
		t.Errorf("apache-arrow reads schema metadata %v (keys %v), want %v", res.Metadata, keys, wantMeta)
	}
}
