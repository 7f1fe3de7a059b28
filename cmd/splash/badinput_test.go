package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/splash-encode/splash/gpu/ort"
	"github.com/splash-encode/splash/shards"
)

// TestBadInput is the bad-input suite of reliability issue 4, run against
// the CLI: per-document problems are skipped into a dead-letter file and
// counted, per-shard problems fail that shard only (exit code 3, no
// _SUCCESS, the other shards committed), and --max-bad-fraction bounds the
// share of rejected documents. The input files are generated here.
func TestBadInput(t *testing.T) {
	bin := buildSplash(t)
	model := filepath.Join(t.TempDir(), "model")
	if out, err := splashCmd(bin, "model", "gen-test", "--output", model, "--layers", "1", "--hidden", "32", "--heads", "2",
		"--tokenizer", sharedBert).CombinedOutput(); err != nil {
		t.Fatalf("gen-test: %v\n%s", err, out)
	}
	t.Run("documents", func(t *testing.T) { testBadDocuments(t, bin, model) })
	t.Run("shards", func(t *testing.T) { testBadShards(t, bin, model) })
	t.Run("max-bad-fraction", func(t *testing.T) { testMaxBadFraction(t, bin, model) })
}

// badDoc is an input row whose columns are all nullable (optional strings).
type badDoc struct {
	ID    *string `parquet:"id,optional"`
	Title *string `parquet:"title,optional"`
	Text  *string `parquet:"text,optional"`
}

func sp(s string) *string { return &s }

func writeParquetFile[T any](t *testing.T, path string, rows []T, opts ...parquet.WriterOption) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[T](f, opts...)
	if len(rows) > 0 {
		if _, err := w.Write(rows); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// rowGroupOf returns, for every row of a Parquet file, its row group index.
func rowGroupOf(t *testing.T, path string) []int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatalf("fixture %s: %v", path, err)
	}
	var out []int
	for i, rg := range pf.Metadata().RowGroups {
		for range rg.NumRows {
			out = append(out, i)
		}
	}
	return out
}

// splashRun is the outcome of one CLI run.
type splashRun struct {
	code           int
	stdout, stderr string
	errText        string // stderr from the "splash: " line on: the run's error
}

func (r splashRun) String() string {
	return fmt.Sprintf("exit %d\n--- stderr:\n%s--- stdout:\n%s", r.code, r.stderr, r.stdout)
}

// runSplash runs the CLI, as cred's user when cred is not nil.
func runSplash(t *testing.T, bin string, cred *syscall.Credential, stdin io.Reader, args ...string) splashRun {
	t.Helper()
	cmd := splashCmd(bin, args...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &so, &se, stdin
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("splash %s: %v", strings.Join(args, " "), err)
	}
	r := splashRun{code: exitStatus(err), stdout: so.String(), stderr: se.String()}
	if i := strings.Index(r.stderr, "splash: "); i == 0 || i > 0 && r.stderr[i-1] == '\n' {
		r.errText = r.stderr[i:]
	}
	return r
}

func readShardRows(t *testing.T, path string) []shards.Row {
	t.Helper()
	var rows []shards.Row
	if err := shards.ReadShard(path, func(r shards.Row) error { rows = append(rows, r); return nil }); err != nil {
		t.Errorf("read output %s: %v", path, err)
	}
	return rows
}

// rawManifest holds the manifest fields this suite checks, decoded
// leniently (the shards.Manifest type may not have the new fields yet).
type rawManifest struct {
	Input struct {
		Path string `json:"path"`
		Rows *int64 `json:"rows"`
	} `json:"input"`
	Output struct {
		Path string `json:"path"`
		Rows int64  `json:"rows"`
	} `json:"output"`
	Rejected *struct {
		Path   string `json:"path"`
		Rows   int64  `json:"rows"`
		SHA256 string `json:"sha256"`
	} `json:"rejected"`
}

func readRawManifest(t *testing.T, outDir, base string) (rawManifest, bool) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(outDir, shards.ManifestName(base)))
	if err != nil {
		t.Errorf("shard %s: no manifest: %v", base, err)
		return rawManifest{}, false
	}
	var m rawManifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Errorf("shard %s: manifest: %v\n%s", base, err, data)
		return rawManifest{}, false
	}
	return m, true
}

// deadLetter is one line of a _rejected.<base>.jsonl file.
type deadLetter struct {
	Input    *string         `json:"input"`
	RowGroup *int            `json:"row_group"`
	Row      *int64          `json:"row"`
	ID       json.RawMessage `json:"id"` // "null" for a null id, nil when absent
	Reason   string          `json:"reason"`
	Detail   *string         `json:"detail"`
}

func readDeadLetters(t *testing.T, path string) []deadLetter {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("dead-letter file: %v", err)
		return nil
	}
	var out []deadLetter
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		var d deadLetter
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Errorf("%s line %d: not a JSON object: %v: %q", filepath.Base(path), n, err, sc.Text())
			continue
		}
		out = append(out, d)
	}
	return out
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Error(err)
		return ""
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// tokenCounts returns the token count (specials included, truncated at
// maxLength) of each text, as `splash tokenize` gives it. JSON strings
// carry invalid UTF-8 as U+FFFD, as the spec says encode reads it.
func tokenCounts(t *testing.T, bin, model string, maxLength int, texts []string) []int {
	t.Helper()
	var in bytes.Buffer
	for _, s := range texts {
		b, _ := json.Marshal(s)
		in.Write(b)
		in.WriteByte('\n')
	}
	r := runSplash(t, bin, nil, &in, "tokenize", "--model", model, "--max-length", strconv.Itoa(maxLength))
	if r.code != 0 {
		t.Fatalf("tokenize: %s", r)
	}
	var out []int
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var ids []int
		if err := json.Unmarshal([]byte(line), &ids); err != nil {
			t.Fatalf("tokenize output %q: %v", line, err)
		}
		out = append(out, len(ids))
	}
	if len(out) != len(texts) {
		t.Fatalf("tokenize: %d lines for %d texts", len(out), len(texts))
	}
	return out
}

// noTempFiles fails the test for _tmp.* files left in dir.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "_tmp.") {
			t.Errorf("temp file %s left in the output directory", e.Name())
		}
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func rowsEqual(a, b shards.Row) bool {
	if a.DocID != b.DocID || a.NumTokens != b.NumTokens || a.Truncated != b.Truncated ||
		!slices.Equal(a.Vec.Terms, b.Vec.Terms) || !slices.Equal(a.Vec.Impacts, b.Vec.Impacts) || len(a.Vec.Weights) != len(b.Vec.Weights) {
		return false
	}
	for i := range a.Vec.Weights {
		if math.Float32bits(a.Vec.Weights[i]) != math.Float32bits(b.Vec.Weights[i]) {
			return false
		}
	}
	return true
}

func describeRow(r shards.Row) string {
	return fmt.Sprintf("{id %q, %d terms, num_tokens %d, truncated %v}", r.DocID, r.Vec.Len(), r.NumTokens, r.Truncated)
}

// testBadDocuments: one shard mixing good documents with every
// per-document case, a second shard sharing an id with it, an empty shard
// and a README.txt in the input directory.
func testBadDocuments(t *testing.T, bin, model string) {
	const defaultMaxLength = 512 // the test model's max_position_embeddings
	inDir := t.TempDir()
	huge := strings.Repeat("supersonic flow ", (10<<20)/16) // 10 MiB
	docsA := []badDoc{
		0:  {ID: sp("g1"), Title: sp("Flow"), Text: sp("laminar flow over a flat plate")},
		1:  {ID: sp("g2"), Text: sp("heat transfer in hypersonic flow")},
		2:  {ID: nil, Text: sp("a document without an id")},
		3:  {ID: sp(""), Text: sp("a document with an empty id")},
		4:  {ID: sp("nt1"), Title: nil, Text: nil},
		5:  {ID: sp("nt2"), Title: sp(""), Text: nil},
		6:  {ID: sp("empty"), Text: sp("")},
		7:  {ID: sp("ws"), Text: sp(" \t\n  \r\n ")},
		8:  {ID: sp("bad-utf8"), Text: sp("boundary layer ab\xffcd")},
		9:  {ID: sp("utf8-ref"), Text: sp("boundary layer abcd")},
		10: {ID: sp("huge"), Text: sp(huge)},
		11: {ID: sp("g1"), Text: sp("a second document with id g1")},
		12: {ID: sp("titled"), Title: sp("Aerodynamic heating of cones"), Text: nil},
		13: {ID: sp("g3"), Text: sp("shock wave boundary layer interaction")},
		14: {ID: sp("g1"), Title: sp("x"), Text: sp("a third document with id g1")},
		15: {ID: sp("empty-both"), Title: sp(""), Text: sp("")},
		16: {ID: sp("shared"), Text: sp("an id that the other shard has too")},
		17: {ID: sp("g4"), Title: sp("Wings"), Text: sp("swept wing stall")},
	}
	type reject struct {
		row      int
		id       *string
		reason   string
		firstRow int // duplicate_id: the row the detail must name
	}
	rejects := []reject{
		{2, nil, "null_id", -1},
		{3, sp(""), "empty_id", -1},
		{4, sp("nt1"), "null_text", -1},
		{5, sp("nt2"), "null_text", -1},
		{11, sp("g1"), "duplicate_id", 0},
		{14, sp("g1"), "duplicate_id", 0},
	}
	rejected := map[int]bool{}
	for _, r := range rejects {
		rejected[r.row] = true
	}
	var good []badDoc
	for i, d := range docsA {
		if !rejected[i] {
			good = append(good, d)
		}
	}
	docsB := []badDoc{
		{ID: sp("shared"), Text: sp("the same id in another shard")},
		{ID: sp("b1"), Text: sp("wing tip vortices")},
	}
	pathA := filepath.Join(inDir, "docs-a.parquet")
	writeParquetFile(t, pathA, docsA, parquet.MaxRowsPerRowGroup(4))
	writeParquetFile(t, filepath.Join(inDir, "docs-b.parquet"), docsB)
	writeParquetFile[badDoc](t, filepath.Join(inDir, "docs-empty.parquet"), nil)
	if err := os.WriteFile(filepath.Join(inDir, "README.txt"), []byte("not a shard\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rgOf := rowGroupOf(t, pathA)
	if len(rgOf) != len(docsA) || rgOf[len(rgOf)-1] == 0 {
		t.Fatalf("fixture: %d rows in row groups %v", len(rgOf), rgOf)
	}

	out := filepath.Join(t.TempDir(), "out")
	r := runSplash(t, bin, nil, nil, "encode", "--model", model, "--input", inDir, "--output", out,
		"--title-column", "title", "--max-bad-fraction", "1", "--log-format", "json")
	if r.code != exitOK {
		t.Fatalf("encode of the per-document cases: want exit 0 (bad rows skipped into the dead-letter file), got %s", r)
	}
	if !exists(filepath.Join(out, shards.SuccessFile)) {
		t.Error("no _SUCCESS after a successful run")
	}
	noTempFiles(t, out)
	for _, base := range []string{"docs-a", "docs-b", "docs-empty"} {
		if _, err := shards.VerifyShard(out, base); err != nil {
			t.Errorf("shard %s does not verify: %v", base, err)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(out, "*README*")); len(m) > 0 {
		t.Errorf("README.txt in the input directory was taken as a shard: %v", m)
	}

	// Output rows: every good document exactly once, in input order.
	rowsA := readShardRows(t, filepath.Join(out, "docs-a.parquet"))
	var gotIDs, wantIDs []string
	byID := map[string]shards.Row{}
	for _, row := range rowsA {
		gotIDs = append(gotIDs, row.DocID)
		byID[row.DocID] = row
	}
	for _, d := range good {
		wantIDs = append(wantIDs, *d.ID)
	}
	if !slices.Equal(gotIDs, wantIDs) {
		t.Errorf("docs-a output ids:\n got %q\nwant %q", gotIDs, wantIDs)
	}

	// num_tokens, truncated, emptiness of each good document.
	var texts []string
	var textIDs []string
	for _, d := range good {
		if *d.ID == "huge" {
			continue
		}
		text := ""
		if d.Text != nil {
			text = *d.Text
		}
		if d.Title != nil && *d.Title != "" {
			if text == "" {
				text = *d.Title
			} else {
				text = *d.Title + " " + text
			}
		}
		texts = append(texts, text)
		textIDs = append(textIDs, *d.ID)
	}
	counts := tokenCounts(t, bin, model, defaultMaxLength, texts)
	for i, id := range textIDs {
		row, ok := byID[id]
		if !ok {
			continue // reported above
		}
		want := int32(counts[i])
		if counts[i] <= 2 { // [CLS] [SEP] only: an empty document
			if row.NumTokens != 0 || row.Vec.Len() != 0 {
				t.Errorf("document %q (text %q): got %s, want an empty row (no terms, num_tokens 0)", id, texts[i], describeRow(row))
			}
			continue
		}
		if row.NumTokens != want || row.Truncated || row.Vec.Len() == 0 {
			t.Errorf("document %q (text %q): got %s, want num_tokens %d, not truncated, some terms", id, texts[i], describeRow(row), want)
		}
	}
	for _, id := range []string{"empty", "ws", "empty-both"} {
		if row, ok := byID[id]; ok && (row.NumTokens != 0 || row.Vec.Len() != 0 || row.Truncated) {
			t.Errorf("document %q: got %s, want no terms and num_tokens 0", id, describeRow(row))
		}
	}
	if row, ok := byID["huge"]; ok && (row.NumTokens != defaultMaxLength || !row.Truncated || row.Vec.Len() == 0) {
		t.Errorf("10 MB document: got %s, want num_tokens %d (the default max length), truncated, some terms", describeRow(row), defaultMaxLength)
	}
	if row, ok := byID["titled"]; ok && row.Vec.Len() == 0 {
		t.Errorf("title-only document (text null): got %s, want it encoded from the title", describeRow(row))
	}
	if a, ok := byID["bad-utf8"]; ok {
		b := byID["utf8-ref"]
		if !slices.Equal(a.Vec.Terms, b.Vec.Terms) || a.NumTokens != b.NumTokens || !slices.Equal(a.Vec.Impacts, b.Vec.Impacts) {
			t.Errorf(`"ab\xffcd" does not encode like "abcd": %s terms %v vs %s terms %v`, describeRow(a), a.Vec.Terms, describeRow(b), b.Vec.Terms)
		}
	}

	// The dead-letter file.
	dlName := "_rejected.docs-a.jsonl"
	letters := readDeadLetters(t, filepath.Join(out, dlName))
	if len(letters) != len(rejects) {
		t.Errorf("%s has %d lines, want %d (rows %v)", dlName, len(letters), len(rejects), rejects)
	}
	for i, want := range rejects {
		if i >= len(letters) {
			break
		}
		got := letters[i]
		where := fmt.Sprintf("%s line %d (want row %d, %s)", dlName, i+1, want.row, want.reason)
		if got.Input == nil || *got.Input != pathA {
			t.Errorf("%s: input %v, want %q", where, strOrNil(got.Input), pathA)
		}
		if got.Row == nil || *got.Row != int64(want.row) {
			t.Errorf("%s: row %v, want %d", where, intOrNil(got.Row), want.row)
		}
		if got.RowGroup == nil || *got.RowGroup != rgOf[want.row] {
			t.Errorf("%s: row_group %v, want %d", where, intOrNil(got.RowGroup), rgOf[want.row])
		}
		wantID := "null"
		if want.id != nil {
			b, _ := json.Marshal(*want.id)
			wantID = string(b)
		}
		if string(got.ID) != wantID {
			t.Errorf("%s: id %s, want %s", where, orAbsent(got.ID), wantID)
		}
		if got.Reason != want.reason {
			t.Errorf("%s: reason %q, want %q", where, got.Reason, want.reason)
		}
		if got.Detail == nil {
			t.Errorf("%s: no detail", where)
		} else if want.firstRow >= 0 && !regexp.MustCompile(`(?i)row[^0-9]{0,12}\b`+strconv.Itoa(want.firstRow)+`\b`).MatchString(*got.Detail) {
			t.Errorf("%s: detail %q does not name the first row, %d", where, *got.Detail, want.firstRow)
		}
	}
	for _, base := range []string{"docs-b", "docs-empty"} {
		if exists(filepath.Join(out, "_rejected."+base+".jsonl")) {
			t.Errorf("_rejected.%s.jsonl written although the shard rejected no row", base)
		}
	}

	// Manifests: input rows, output rows and rejected rows agree.
	inputRows := map[string]int64{"docs-a": int64(len(docsA)), "docs-b": int64(len(docsB)), "docs-empty": 0}
	for base, n := range inputRows {
		m, ok := readRawManifest(t, out, base)
		if !ok {
			continue
		}
		var rej int64
		if m.Rejected != nil {
			rej = m.Rejected.Rows
		}
		if m.Input.Rows == nil || *m.Input.Rows != n {
			t.Errorf("manifest of %s: input.rows %v, want %d", base, intOrNil(m.Input.Rows), n)
		}
		if m.Output.Rows+rej != n {
			t.Errorf("manifest of %s: output rows %d + rejected rows %d != input rows %d", base, m.Output.Rows, rej, n)
		}
		if base != "docs-a" {
			if m.Rejected != nil {
				t.Errorf("manifest of %s: rejected %+v, want none", base, *m.Rejected)
			}
			continue
		}
		if m.Rejected == nil {
			t.Errorf("manifest of docs-a: no \"rejected\" object")
			continue
		}
		if m.Rejected.Path != dlName || m.Rejected.Rows != int64(len(rejects)) || m.Rejected.SHA256 != fileSHA256(t, filepath.Join(out, dlName)) {
			t.Errorf("manifest of docs-a: rejected %+v, want path %s, rows %d and the file's sha256", *m.Rejected, dlName, len(rejects))
		}
	}
	if rows := readShardRows(t, filepath.Join(out, "docs-empty.parquet")); len(rows) != 0 {
		t.Errorf("docs-empty: %d output rows, want 0", len(rows))
	}

	// The id shared by two shards is encoded in both.
	rowsB := readShardRows(t, filepath.Join(out, "docs-b.parquet"))
	if !slices.ContainsFunc(rowsB, func(r shards.Row) bool { return r.DocID == "shared" }) || byID["shared"].DocID != "shared" {
		t.Errorf("id \"shared\" in two shards: want a row in each output; docs-b has %d rows, docs-a has it: %v", len(rowsB), byID["shared"].DocID == "shared")
	}
	if !strings.Contains(r.stderr, "shared") {
		t.Logf("note: the run's log does not mention the cross-shard duplicate id \"shared\"")
	}

	// The good documents encode exactly as in a file holding only them.
	goodDir := t.TempDir()
	writeParquetFile(t, filepath.Join(goodDir, "docs-a.parquet"), good, parquet.MaxRowsPerRowGroup(4))
	goodOut := filepath.Join(t.TempDir(), "out")
	r = runSplash(t, bin, nil, nil, "encode", "--model", model, "--input", filepath.Join(goodDir, "docs-a.parquet"), "--output", goodOut,
		"--title-column", "title", "--max-bad-fraction", "1", "--log-format", "json")
	if r.code != exitOK {
		t.Fatalf("encode of the good documents alone: %s", r)
	}
	goodRows := readShardRows(t, filepath.Join(goodOut, "docs-a.parquet"))
	if len(goodRows) != len(rowsA) {
		t.Errorf("good documents alone: %d rows; with the bad ones: %d rows", len(goodRows), len(rowsA))
	}
	for i := range min(len(goodRows), len(rowsA)) {
		if !rowsEqual(goodRows[i], rowsA[i]) {
			t.Errorf("row %d differs between the mixed file and the good documents alone: %s vs %s", i, describeRow(rowsA[i]), describeRow(goodRows[i]))
		}
	}
}

func strOrNil(p *string) string {
	if p == nil {
		return "absent"
	}
	return strconv.Quote(*p)
}

func intOrNil[T int | int64](p *T) string {
	if p == nil {
		return "absent"
	}
	return fmt.Sprint(*p)
}

func orAbsent(m json.RawMessage) string {
	if m == nil {
		return "absent"
	}
	return string(m)
}

// goodDocs returns n documents with ids prefix-0, prefix-1, ...
func goodDocs(prefix string, n int) []badDoc {
	words := []string{"laminar", "flow", "supersonic", "wing", "boundary", "layer", "shock", "heat", "transfer", "pressure"}
	docs := make([]badDoc, n)
	for i := range docs {
		text := words[i%len(words)] + " " + words[(i*7+3)%len(words)] + " " + words[(i*3+1)%len(words)] + " number " + strconv.Itoa(i)
		docs[i] = badDoc{ID: sp(fmt.Sprintf("%s-%d", prefix, i)), Text: sp(text)}
	}
	return docs
}

// checkBrokenFixture makes sure the reader itself fails on a broken input
// (the fixture is broken the intended way) and returns the error.
func checkBrokenFixture(t *testing.T, path string) error {
	t.Helper()
	rd, err := shards.OpenInput(path, shards.Columns{})
	if err != nil {
		return err
	}
	defer rd.Close()
	for {
		_, err := rd.Next(context.Background(), 64)
		if err == io.EOF {
			t.Fatalf("fixture %s: the input reader reads it without an error", path)
		}
		if err != nil {
			return err
		}
	}
}

// nobody returns the credential to run the CLI as an unprivileged user when
// the test runs as root (for whom a chmod 000 file is still readable), or
// nil when it does not run as root. skip is set when running as root but
// switching users does not work.
func nobody(t *testing.T, bin string) (cred *syscall.Credential, skip string) {
	if os.Getuid() != 0 {
		return nil, ""
	}
	cred = &syscall.Credential{Uid: 65534, Gid: 65534}
	cmd := splashCmd(bin, "--version")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Sprintf("running as root and the CLI cannot run as uid 65534 (%v: %s), so a chmod 000 file stays readable", err, bytes.TrimSpace(out))
	}
	return cred, ""
}

// openUp makes the temp root above dir (and dir) usable by another user.
func openUp(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}

// testBadShards: a directory with good shards and every broken-shard case.
func testBadShards(t *testing.T, bin, model string) {
	work := t.TempDir()
	inDir := filepath.Join(work, "in")
	if err := os.Mkdir(inDir, 0o755); err != nil {
		t.Fatal(err)
	}
	goodN := map[string]int{"a-good": 20, "m-good": 15, "z-good": 25}
	for base, n := range goodN {
		writeParquetFile(t, filepath.Join(inDir, base+".parquet"), goodDocs(base, n))
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(inDir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A good 3-row-group file to damage.
	src := filepath.Join(work, "src.parquet")
	writeParquetFile(t, src, goodDocs("src", 30), parquet.MaxRowsPerRowGroup(10))
	good, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	type broken struct {
		name string
		// each of want must appear on a line of the run's error that names the file
		want []string
	}
	cases := []broken{{name: "b-empty.parquet"}, {name: "c-csv.parquet"}, {name: "d-badfooter.parquet"},
		{name: "e-nofooter.parquet"}, {name: "f-truncated.parquet"},
		{name: "g-nocolumn.parquet", want: []string{"text", "body", "id"}},
		{name: "h-badtype.parquet", want: []string{"text", "int64"}},
		{name: "i-corrupt.parquet", want: []string{"row group 2", "text"}},
	}
	write("b-empty.parquet", nil)
	write("c-csv.parquet", []byte("id,text\n1,hello world\n2,another document\n"))
	badFooter := bytes.Clone(good)
	binaryPutUint32(badFooter[len(badFooter)-8:], uint32(len(good)+1000)) // footer length past the start of the file
	write("d-badfooter.parquet", badFooter)
	write("e-nofooter.parquet", good[:len(good)-8])
	write("f-truncated.parquet", good[:len(good)/2])
	type noText struct {
		ID   string `parquet:"id"`
		Body string `parquet:"body"`
	}
	writeParquetFile(t, filepath.Join(inDir, "g-nocolumn.parquet"), []noText{{"n1", "a body"}, {"n2", "another"}})
	type intText struct {
		ID   string `parquet:"id"`
		Text int64  `parquet:"text"`
	}
	writeParquetFile(t, filepath.Join(inDir, "h-badtype.parquet"), []intText{{"t1", 1}, {"t2", 2}})
	write("i-corrupt.parquet", corruptTextChunk(t, src, good, 2))
	if os.Getuid() == 0 { // let uid 65534 run the CLI and read the model
		openUp(t, filepath.Dir(model), 0o755)
		openUp(t, filepath.Dir(bin), 0o755)
	}
	cred, skip := nobody(t, bin)
	if cred != nil {
		// uid 65534 must reach ONNX Runtime's library too, which a checkout
		// in a private directory (mktemp -d makes it 0700) hides: give the
		// runs a copy in the opened-up work directory.
		lib, err := ort.ResolveLibrary("")
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(lib)
		if err != nil {
			t.Fatal(err)
		}
		libDir := filepath.Join(work, "ort")
		if err := os.Mkdir(libDir, 0o755); err != nil {
			t.Fatal(err)
		}
		copied := filepath.Join(libDir, filepath.Base(lib))
		if err := os.WriteFile(copied, data, 0o755); err != nil {
			t.Fatal(err)
		}
		openUp(t, work, 0o755)
		t.Setenv(ort.LibraryEnv, copied)
	}
	if skip != "" {
		t.Logf("skipping the unreadable-file case: %s", skip)
	} else {
		p := write("j-unreadable.parquet", good)
		if err := os.Chmod(p, 0); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, broken{name: "j-unreadable.parquet", want: []string{"permission denied"}})
	}
	for _, c := range cases {
		if c.name == "j-unreadable.parquet" {
			continue
		}
		err := checkBrokenFixture(t, filepath.Join(inDir, c.name))
		t.Logf("fixture %s: the reader says: %v", c.name, err)
	}
	outParent := filepath.Join(work, "o")
	if err := os.Mkdir(outParent, 0o777); err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		openUp(t, work, 0o755)
		if err := os.Chmod(outParent, 0o777); err != nil { // umask
			t.Fatal(err)
		}
	}
	out := filepath.Join(outParent, "out")
	args := []string{"encode", "--model", model, "--input", inDir, "--output", out, "--max-length", "128", "--log-format", "json"}

	r := runSplash(t, bin, cred, nil, args...)
	if r.code != exitBadData {
		t.Errorf("run with broken shards: want exit %d (bad data), got %s", exitBadData, r)
	}
	errLines := strings.Split(r.errText, "\n")
	for _, c := range cases {
		p := filepath.Join(inDir, c.name)
		var lines []string
		for _, l := range errLines {
			if strings.Contains(l, p) {
				lines = append(lines, l)
			}
		}
		if len(lines) == 0 {
			t.Errorf("the run's error does not name the broken input %s\nerror: %q", p, r.errText)
			continue
		}
		for _, w := range c.want {
			if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(strings.ToLower(l), strings.ToLower(w)) }) {
				t.Errorf("the run's error about %s does not say %q: %q", c.name, w, lines)
			}
		}
		base := shards.InputBase(c.name)
		for _, f := range []string{base + ".parquet", shards.ManifestName(base), "_rejected." + base + ".jsonl"} {
			if exists(filepath.Join(out, f)) {
				t.Errorf("broken input %s: output %s exists", c.name, f)
			}
		}
	}
	manifests := map[string][]byte{}
	for base, n := range goodN {
		m, err := shards.VerifyShard(out, base)
		if err != nil {
			t.Errorf("good shard %s beside the broken ones: want it committed, got %v", base, err)
			continue
		}
		if m.Output.Rows != int64(n) {
			t.Errorf("good shard %s: %d rows, want %d", base, m.Output.Rows, n)
		}
		manifests[base], _ = os.ReadFile(filepath.Join(out, shards.ManifestName(base)))
	}
	if exists(filepath.Join(out, shards.SuccessFile)) {
		t.Error("_SUCCESS written although shards failed")
	}
	noTempFiles(t, out)

	// Without the broken files the same command completes, skipping the
	// shards already done.
	for _, c := range cases {
		if err := os.Remove(filepath.Join(inDir, c.name)); err != nil {
			t.Fatal(err)
		}
	}
	r = runSplash(t, bin, cred, nil, args...)
	if r.code != exitOK {
		t.Fatalf("re-run without the broken files: want exit 0, got %s", r)
	}
	if !exists(filepath.Join(out, shards.SuccessFile)) {
		t.Error("no _SUCCESS after the re-run")
	}
	for base, before := range manifests {
		after, _ := os.ReadFile(filepath.Join(out, shards.ManifestName(base)))
		if !bytes.Equal(before, after) {
			t.Errorf("re-run re-encoded %s, which the first run had committed", base)
		}
	}
	if vr := runSplash(t, bin, nil, nil, "verify", out); vr.code != exitOK {
		t.Errorf("splash verify after the re-run: %s", vr)
	}
	noTempFiles(t, out)
}

func binaryPutUint32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// corruptTextChunk returns data (the bytes of the Parquet file at path) with
// bytes flipped in the middle of row group rg's text column chunk.
func corruptTextChunk(t *testing.T, path string, data []byte, rg int) []byte {
	t.Helper()
	pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("fixture %s: %v", path, err)
	}
	groups := pf.Metadata().RowGroups
	if len(groups) <= rg {
		t.Fatalf("fixture %s: %d row groups, want > %d", path, len(groups), rg)
	}
	for _, c := range groups[rg].Columns {
		md := c.MetaData
		if len(md.PathInSchema) != 1 || md.PathInSchema[0] != "text" {
			continue
		}
		start := md.DataPageOffset
		if md.DictionaryPageOffset > 0 && md.DictionaryPageOffset < start {
			start = md.DictionaryPageOffset
		}
		mid := start + md.TotalCompressedSize/2
		bad := bytes.Clone(data)
		for i := mid; i < mid+8 && i < start+md.TotalCompressedSize; i++ {
			bad[i] ^= 0xff
		}
		return bad
	}
	t.Fatalf("fixture %s: no text column chunk in row group %d", path, rg)
	return nil
}

// testMaxBadFraction: x has 3 documents without an id among 150, y 150
// good ones: 3 rejected of 300 read, over the default 0.001.
func testMaxBadFraction(t *testing.T, bin, model string) {
	inDir := t.TempDir()
	x := goodDocs("x", 150)
	for _, i := range []int{10, 70, 130} {
		x[i].ID = nil
	}
	px, py := filepath.Join(inDir, "x.parquet"), filepath.Join(inDir, "y.parquet")
	writeParquetFile(t, px, x, parquet.MaxRowsPerRowGroup(50))
	writeParquetFile(t, py, goodDocs("y", 150))
	encode := func(out string, extra ...string) splashRun {
		args := append([]string{"encode", "--model", model, "--input", px, "--input", py, "--output", out, "--max-length", "128", "--log-format", "json"}, extra...)
		return runSplash(t, bin, nil, nil, args...)
	}
	countsRE := regexp.MustCompile(`\b3\b[\s\S]*\b(300|297)\b|\b(300|297)\b[\s\S]*\b3\b`)
	checkOver := func(what string, r splashRun, out string) {
		t.Helper()
		if r.code != exitBadData {
			t.Errorf("%s: 3 rejected of 300 (> 0.001): want exit %d, got %s", what, exitBadData, r)
			return
		}
		if !countsRE.MatchString(r.errText) || !strings.Contains(r.errText, "_rejected.x.jsonl") && !strings.Contains(r.errText, "_rejected.*.jsonl") {
			t.Errorf("%s: the error should name the counts (3 rejected, 300 read) and the dead-letter files (_rejected.x.jsonl): %q", what, r.errText)
		}
		if exists(filepath.Join(out, shards.SuccessFile)) {
			t.Errorf("%s: _SUCCESS written", what)
		}
		// The error sends the user to the dead-letter files: they must be there.
		if !exists(filepath.Join(out, "_rejected.x.jsonl")) {
			t.Errorf("%s: the error points to the dead-letter files, but _rejected.x.jsonl was not written (committed) in %s", what, out)
		}
		for _, base := range []string{"x", "y"} {
			if !exists(filepath.Join(out, shards.ManifestName(base))) {
				t.Logf("%s: shard %s not committed", what, base)
				continue
			}
			if _, err := shards.VerifyShard(out, base); err != nil {
				t.Errorf("%s: committed shard %s does not verify: %v", what, base, err)
			}
		}
		noTempFiles(t, out)
	}
	snapshot := func(out string) map[string][]byte {
		m := map[string][]byte{}
		for _, base := range []string{"x", "y"} {
			if b, err := os.ReadFile(filepath.Join(out, shards.ManifestName(base))); err == nil {
				m[base] = b
			}
		}
		return m
	}

	out := filepath.Join(t.TempDir(), "out")
	checkOver("first run", encode(out), out)
	before := snapshot(out)
	checkOver("same command again", encode(out), out)
	r := encode(out, "--max-bad-fraction", "0.05")
	if r.code != exitOK {
		t.Fatalf("--max-bad-fraction 0.05 (3 of 300 rejected): want exit 0, got %s", r)
	}
	if !exists(filepath.Join(out, shards.SuccessFile)) {
		t.Error("--max-bad-fraction 0.05: no _SUCCESS")
	}
	after := snapshot(out)
	for base, b := range before {
		if !bytes.Equal(b, after[base]) {
			t.Errorf("--max-bad-fraction 0.05 re-encoded shard %s, which an earlier run had committed", base)
		}
	}
	for _, base := range []string{"x", "y"} {
		if _, err := shards.VerifyShard(out, base); err != nil {
			t.Errorf("after the successful run, shard %s: %v", base, err)
		}
	}
	if m, ok := readRawManifest(t, out, "x"); ok && (m.Rejected == nil || m.Rejected.Rows != 3) {
		t.Errorf("manifest of x: rejected %+v, want 3 rows", m.Rejected)
	}

	// Documents rejected by an earlier run count too.
	out2 := filepath.Join(t.TempDir(), "out")
	r = runSplash(t, bin, nil, nil, "encode", "--model", model, "--input", px, "--output", out2, "--max-length", "128",
		"--max-bad-fraction", "1", "--log-format", "json")
	if r.code != exitOK {
		t.Fatalf("x alone with --max-bad-fraction 1: want exit 0, got %s", r)
	}
	checkOver("y added to an output whose x rejected 3 documents in an earlier run", encode(out2), out2)
}
