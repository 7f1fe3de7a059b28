#!/usr/bin/env node
// subset.mjs writes a small Parquet document shard for the parity check
// (check.sh): the first --first documents of the inputs, plus the --longest
// longest ones (which exceed 512 tokens, so truncation is exercised) and
// every document whose title and text are both empty, in input order.
// Columns id, title, text, as in the Cranfield shards. Uses DuckDB (npm
// @duckdb/node-api, the repository's test tool).
//
//	node bench/peers/subset.mjs --input 'GLOB' --output FILE.parquet [--first 44] [--longest 4]
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(path.join(root, 'package.json'));
const q = (s) => "'" + s.replaceAll("'", "''") + "'";

const a = { input: '', output: '', first: 44, longest: 4 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const [k, v] = [argv[i], argv[i + 1]];
  if (v === undefined) throw new Error(`${k} needs a value`);
  if (k === '--input') a.input = v;
  else if (k === '--output') a.output = v;
  else if (k === '--first') a.first = Number(v);
  else if (k === '--longest') a.longest = Number(v);
  else throw new Error(`unknown argument ${k}`);
}
if (!a.input || !a.output) throw new Error('--input and --output are required');

const { DuckDBInstance } = require('@duckdb/node-api');
const inst = await DuckDBInstance.create(':memory:');
const con = await inst.connect();
await con.run(`CREATE TABLE d AS SELECT row_number() OVER (ORDER BY filename, file_row_number) AS n, id, title, text
  FROM read_parquet(${q(a.input)}, filename = true, file_row_number = true)`);
await con.run(`COPY (SELECT id, title, text FROM d WHERE n <= ${a.first}
    OR n IN (SELECT n FROM d ORDER BY length(coalesce(title, '') || coalesce(text, '')) DESC LIMIT ${a.longest})
    OR (coalesce(title, '') = '' AND coalesce(text, '') = '')
  ORDER BY n) TO ${q(a.output)} (FORMAT parquet)`);
const r = (await con.runAndReadAll(`SELECT count(*) AS n FROM read_parquet(${q(a.output)})`)).getRowObjectsJson();
process.stderr.write(`subset.mjs: wrote ${r[0].n} documents to ${a.output}\n`);
