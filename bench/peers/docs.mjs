#!/usr/bin/env node
// docs.mjs turns Parquet document shards into the JSON Lines that the peers
// read, in input order (files in the order given, globs sorted, rows in file
// order), with the text splash encodes: title + " " + text, or just the one
// that is present when the other is null or empty.
//
// Debian bookworm has no python3-pyarrow, so Parquet is read here with the
// npm package @duckdb/node-api (the repository's own test tool, pinned in the
// root package.json). With --tokenizer, each line also gets the token ids of
// Hugging Face tokenizers (the npm package `tokenizers`, the Rust library
// behind Python's BertTokenizerFast: Debian has no python3-tokenizers or
// python3-transformers either), truncated to --max-length keeping [SEP], as
// `tokenizer(texts, truncation=True, max_length=512)` does in Python. The
// torch peer reads those ids; the time it took is reported here, separately.
//
// Usage (from the repository root):
//
//	node bench/peers/docs.mjs --input 'GLOB_OR_FILE[,...]' [--title-column title]
//	    [--id-column id] [--text-column text] [--limit N]
//	    [--tokenizer MODEL/tokenizer.json --max-length 512] > docs.jsonl
//
// Each output line: {"id": "...", "text": "...", "ids": [101, ..., 102]}
// ("ids" only with --tokenizer). One JSON summary line goes to stderr:
// {"docs", "read_s", "tokenize_s", "tokens", "truncated"} (truncated counts
// the documents whose ids reach --max-length).
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(path.join(root, 'package.json'));

function parseArgs(argv) {
  const a = { input: [], idColumn: 'id', textColumn: 'text', titleColumn: '', limit: 0, tokenizer: '', maxLength: 512 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
      return argv[++i];
    };
    switch (k) {
      case '--input': a.input.push(...v().split(',').filter(Boolean)); break;
      case '--id-column': a.idColumn = v(); break;
      case '--text-column': a.textColumn = v(); break;
      case '--title-column': a.titleColumn = v(); break;
      case '--limit': a.limit = Number(v()); break;
      case '--tokenizer': a.tokenizer = v(); break;
      case '--max-length': a.maxLength = Number(v()); break;
      default: throw new Error(`unknown argument ${k}`);
    }
  }
  if (a.input.length === 0) throw new Error('--input is required');
  return a;
}

const q = (s) => "'" + s.replaceAll("'", "''") + "'";
const ident = (s) => '"' + s.replaceAll('"', '""') + '"';

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const { DuckDBInstance } = require('@duckdb/node-api');
  const inst = await DuckDBInstance.create(':memory:');
  const con = await inst.connect();
  // Expand each input like splash does for globs (sorted); keep the given order of inputs.
  const files = [];
  for (const inp of args.input) {
    const globbed = (await con.runAndReadAll(`SELECT file FROM glob(${q(inp)}) ORDER BY file`)).getRowObjectsJson();
    if (globbed.length === 0) throw new Error(`no file matches ${inp}`);
    files.push(...globbed.map((r) => r.file));
  }
  const title = args.titleColumn ? `${ident(args.titleColumn)}::VARCHAR` : 'NULL::VARCHAR';
  const parts = files.map((f, i) =>
    `SELECT ${i} AS f, file_row_number AS r, ${ident(args.idColumn)}::VARCHAR AS id, ${title} AS title, ` +
    `${ident(args.textColumn)}::VARCHAR AS text FROM read_parquet(${q(f)}, file_row_number = true)`);
  let sql = `SELECT id, title, text FROM (${parts.join(' UNION ALL ')}) ORDER BY f, r`;
  if (args.limit > 0) sql += ` LIMIT ${args.limit}`;
  const rows = (await con.runAndReadAll(sql)).getRowObjectsJson();
  const docs = rows.map((r) => {
    const ti = r.title ?? '';
    const te = r.text ?? '';
    return { id: r.id, text: ti === '' ? te : te === '' ? ti : ti + ' ' + te };
  });
  const readS = (performance.now() - t0) / 1000;

  let tokenizeS = 0;
  let tokens = 0;
  let truncated = 0;
  if (args.tokenizer) {
    const { Tokenizer } = require('tokenizers');
    const tok = Tokenizer.fromFile(args.tokenizer);
    const t1 = performance.now();
    // HF truncation (keeps [CLS] and [SEP]), as Python's tokenizer applies it.
    tok.setTruncation(args.maxLength);
    for (const d of docs) {
      const e = await tok.encode(d.text);
      d.ids = e.getIds();
      tokens += d.ids.length;
      // Documents at the limit: truncated, or (rarely) exactly that long.
      if (d.ids.length >= args.maxLength) truncated++;
    }
    tokenizeS = (performance.now() - t1) / 1000;
  }

  const out = fs.createWriteStream(null, { fd: 1 });
  for (const d of docs) {
    if (!out.write(JSON.stringify(d) + '\n')) await new Promise((r) => out.once('drain', r));
  }
  await new Promise((r) => out.end(r));
  process.stderr.write(JSON.stringify({
    tool: 'docs.mjs', docs: docs.length, read_s: +readS.toFixed(4), tokenize_s: +tokenizeS.toFixed(4), tokens, truncated,
  }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`docs.mjs: ${e.stack || e}\n`);
  process.exit(1);
});
