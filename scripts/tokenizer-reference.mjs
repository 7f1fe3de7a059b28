#!/usr/bin/env node
// tokenizer-reference.mjs encodes test cases with Hugging Face `tokenizers`
// (the npm package pinned in package.json), the reference that
// encode/tokenizer must match id for id.
//
// Usage (from the repository root):
//
//	node scripts/tokenizer-reference.mjs TOKENIZER_JSON CASES_JSONL [PATCH_JSON] > EXPECTED_JSONL
//
//	node scripts/tokenizer-reference.mjs testdata/tokenizers/bert-base-uncased/tokenizer.json \
//	    encode/tokenizer/testdata/cases.jsonl > encode/tokenizer/testdata/expected.jsonl
//
// CASES_JSONL holds one {"text": "...", "max_length": N} per line (N <= 0: no
// truncation). Each output line is {"ids": [...], "truncated": bool} for the
// case on the same line; truncated means the untruncated encoding is longer
// than max_length (HF's own overflowing list is not reliable for that).
// PATCH_JSON, if given, is an object whose top-level keys replace those of
// the tokenizer.json (used for variants such as other normalizer settings).
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));
const { Tokenizer } = require('tokenizers');

const [tokenizerPath, casesPath, patchPath] = process.argv.slice(2);
if (!tokenizerPath || !casesPath) {
  process.stderr.write('usage: tokenizer-reference.mjs TOKENIZER_JSON CASES_JSONL [PATCH_JSON]\n');
  process.exit(2);
}

let tokenizer;
if (patchPath) {
  const config = JSON.parse(fs.readFileSync(tokenizerPath, 'utf8'));
  Object.assign(config, JSON.parse(fs.readFileSync(patchPath, 'utf8')));
  tokenizer = Tokenizer.fromString(JSON.stringify(config));
} else {
  tokenizer = Tokenizer.fromFile(tokenizerPath);
}

const lines = fs.readFileSync(casesPath, 'utf8').split('\n').filter((l) => l !== '');
const out = [];
for (const [i, line] of lines.entries()) {
  const c = JSON.parse(line);
  if (typeof c.text !== 'string') throw new Error(`${casesPath}:${i + 1}: no "text"`);
  const maxLength = c.max_length ?? 0;
  tokenizer.disableTruncation();
  const full = await tokenizer.encode(c.text);
  let e = full;
  if (maxLength > 0) {
    tokenizer.setTruncation(maxLength);
    e = await tokenizer.encode(c.text);
  }
  // HF's overflowing encodings do not always say whether content was cut
  // (they come out empty for some multi-piece texts), so compare with the
  // untruncated encoding instead.
  const truncated = maxLength > 0 && full.getLength() > maxLength;
  out.push(JSON.stringify({ ids: e.getIds(), truncated }));
}
process.stdout.write(out.join('\n') + '\n');
