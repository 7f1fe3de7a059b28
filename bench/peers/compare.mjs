#!/usr/bin/env node
// compare.mjs compares peers' SPLADE vectors (JSON Lines from
// splade_torch.py / transformersjs.mjs --output) with splash's impact shards
// (read with DuckDB, as another tool would: the weights column, float32).
//
// Usage (from the repository root):
//
//	node bench/peers/compare.mjs --splash OUT_DIR --peer NAME=FILE [--peer NAME=FILE ...]
//	    [--rel-tol 1e-4] [--floor 0.1]
//
// For each document and each term in either vector (a missing term weighs 0),
// with a = splash's weight and b = the peer's: the allowed difference is
// rel-tol × max(|a|, |b|, floor), i.e. relative for weights above floor and
// absolute (rel-tol × floor = 1e-5) below it. Small weights have no relative
// precision in float32: w = log(1 + z) for a logit z that is a sum of terms
// of size ~10 computed with another summation order (PyTorch's GEMM against
// ONNX Runtime's) differs by ~1e-6 absolutely, i.e. 1e-4 relatively at
// w = 0.01. max_rel is reported over weights >= floor, max_rel_ge_0_01 over
// weights >= 0.01 (information only). Documents splash left empty (num_tokens 0: no tokens
// besides [CLS] and [SEP], never run through the model) are not compared.
// Prints one JSON line per peer (max_abs, max_rel over weights >= floor,
// terms only one side has and their largest weight, token count mismatches,
// documents outside the tolerance) and exits 1 when any peer fails.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(path.join(root, 'package.json'));

function parseArgs(argv) {
  const a = { splash: '', peers: [], relTol: 1e-4, floor: 0.1 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
      return argv[++i];
    };
    switch (k) {
      case '--splash': a.splash = v(); break;
      case '--peer': {
        const s = v();
        const eq = s.indexOf('=');
        if (eq < 1) throw new Error('--peer wants NAME=FILE');
        a.peers.push({ name: s.slice(0, eq), file: s.slice(eq + 1) });
        break;
      }
      case '--rel-tol': a.relTol = Number(v()); break;
      case '--floor': a.floor = Number(v()); break;
      default: throw new Error(`unknown argument ${k}`);
    }
  }
  if (!a.splash || a.peers.length === 0) throw new Error('--splash and at least one --peer are required');
  return a;
}

const q = (s) => "'" + s.replaceAll("'", "''") + "'";

async function readSplash(dir) {
  const { DuckDBInstance } = require('@duckdb/node-api');
  const inst = await DuckDBInstance.create(':memory:');
  const con = await inst.connect();
  // [!_]: not the sidecars (_vocabulary.parquet), which DuckDB's * matches.
  const glob = path.join(path.resolve(dir), '[!_]*.parquet');
  const reader = await con.runAndReadAll(
    `SELECT doc_id, term_ids, weights, num_tokens FROM read_parquet(${q(glob)}, filename = true, file_row_number = true) ` +
    'ORDER BY filename, file_row_number');
  const docs = new Map();
  for (const r of reader.getRowObjectsJson()) {
    const terms = new Map();
    r.term_ids.forEach((t, k) => terms.set(Number(t), Number(r.weights[k])));
    docs.set(r.doc_id, { numTokens: Number(r.num_tokens), terms });
  }
  return docs;
}

function readPeer(file) {
  const docs = new Map();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const d = JSON.parse(line);
    docs.set(d.id, { numTokens: d.num_tokens, terms: new Map(Object.entries(d.terms).map(([k, w]) => [Number(k), w])) });
  }
  return docs;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const splash = await readSplash(args.splash);
  let failed = false;
  for (const peer of args.peers) {
    const other = readPeer(peer.file);
    const s = {
      peer: peer.name, docs: 0, empty_skipped: 0, missing_docs: 0, token_mismatch_docs: 0, terms: 0,
      max_abs: 0, max_rel: 0, max_rel_ge_0_01: 0, one_sided_terms: 0, one_sided_max_weight: 0, docs_out_of_tol: 0, out_of_tol_ids: [],
    };
    for (const [id, a] of splash) {
      if (a.numTokens === 0) { s.empty_skipped++; continue; }
      const b = other.get(id);
      if (!b) { s.missing_docs++; continue; }
      s.docs++;
      if (b.numTokens !== a.numTokens) s.token_mismatch_docs++;
      let bad = false;
      const keys = new Set([...a.terms.keys(), ...b.terms.keys()]);
      for (const t of keys) {
        const x = a.terms.get(t) ?? 0;
        const y = b.terms.get(t) ?? 0;
        const d = Math.abs(x - y);
        const m = Math.max(Math.abs(x), Math.abs(y));
        s.terms++;
        s.max_abs = Math.max(s.max_abs, d);
        if (m >= args.floor) s.max_rel = Math.max(s.max_rel, d / m);
        if (m >= 0.01) s.max_rel_ge_0_01 = Math.max(s.max_rel_ge_0_01, d / m);
        if (!a.terms.has(t) || !b.terms.has(t)) {
          s.one_sided_terms++;
          s.one_sided_max_weight = Math.max(s.one_sided_max_weight, m);
        }
        if (d > args.relTol * Math.max(m, args.floor)) bad = true;
      }
      if (bad) {
        s.docs_out_of_tol++;
        if (s.out_of_tol_ids.length < 10) s.out_of_tol_ids.push(id);
      }
    }
    s.max_abs = Number(s.max_abs.toPrecision(3));
    s.max_rel = Number(s.max_rel.toPrecision(3));
    s.max_rel_ge_0_01 = Number(s.max_rel_ge_0_01.toPrecision(3));
    s.floor = args.floor;
    s.rel_tol = args.relTol;
    s.pass = s.docs > 0 && s.missing_docs === 0 && s.docs_out_of_tol === 0;
    if (!s.pass) failed = true;
    process.stdout.write(JSON.stringify(s) + '\n');
  }
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  process.stderr.write(`compare.mjs: ${e.stack || e}\n`);
  process.exit(2);
});
