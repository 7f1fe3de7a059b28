#!/usr/bin/env node
// corpus.mjs writes the benchmark corpora as one Parquet shard (columns id,
// title, text, as in the Cranfield shards), with DuckDB (npm
// @duckdb/node-api, the repository's test tool):
//
//   --join 1: the first --docs documents of the inputs, in input order;
//   --join K: long documents, each the titles and texts of K consecutive
//             input documents joined with spaces (ids long-00000, ...), so
//             that documents exceed 512 tokens and truncation happens.
//
//	node bench/corpus.mjs --input 'GLOB' --output FILE.parquet [--docs N] [--join K]
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));
const q = (s) => "'" + s.replaceAll("'", "''") + "'";

const { values: a } = parseArgs({
  options: {
    input: { type: 'string' },
    output: { type: 'string' },
    docs: { type: 'string', default: '0' },
    join: { type: 'string', default: '1' },
  },
});
if (!a.input || !a.output) throw new Error('--input and --output are required');
const docs = Number(a.docs), join = Number(a.join);
if (!Number.isInteger(docs) || docs < 0 || !Number.isInteger(join) || join < 1) {
  throw new Error('--docs must be an integer >= 0 (0: all) and --join an integer >= 1');
}

const { DuckDBInstance } = require('@duckdb/node-api');
const inst = await DuckDBInstance.create(':memory:');
const con = await inst.connect();
await con.run(`CREATE TABLE d AS SELECT row_number() OVER (ORDER BY filename, file_row_number) - 1 AS n, id, title, text
  FROM read_parquet(${q(a.input)}, filename = true, file_row_number = true)`);
const limit = docs > 0 ? `WHERE g < ${docs}` : '';
const select = join === 1
  ? `SELECT id, title, text, n AS g FROM d`
  : `SELECT printf('long-%05d', n // ${join}) AS id, '' AS title,
       string_agg(concat_ws(' ', title, text), ' ' ORDER BY n) AS text, n // ${join} AS g
     FROM d GROUP BY n // ${join} HAVING count(*) = ${join}`;
await con.run(`COPY (SELECT id, title, text FROM (${select}) ${limit} ORDER BY g)
  TO ${q(a.output)} (FORMAT parquet)`);
const r = (await con.runAndReadAll(`SELECT count(*) AS n, sum(length(text)) AS chars FROM read_parquet(${q(a.output)})`)).getRowObjectsJson();
process.stderr.write(`corpus.mjs: wrote ${r[0].n} documents (${r[0].chars} characters of text) to ${a.output}\n`);
