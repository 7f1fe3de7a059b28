#!/usr/bin/env node
// tokenizer-unicode-tables.mjs regenerates encode/tokenizer/tables_hf.go: the
// per-character Unicode data that Hugging Face `tokenizers` (the npm package
// pinned in package.json) really uses, measured by asking it about every code
// point. HF's BertNormalizer and BertPreTokenizer rely on old crates
// (unicode_categories, unicode-normalization-alignments) whose tables differ
// from Go's unicode package (Unicode 15) in hundreds of places, e.g. their
// "nonspacing mark" set also holds spacing marks (Devanagari U+093E), and
// characters assigned after about Unicode 9 have no canonical combining class
// there. Measuring the reference keeps the Go tokenizer id-for-id identical.
//
// Usage (from the repository root, takes ~20 s):
//
//	node scripts/tokenizer-unicode-tables.mjs > encode/tokenizer/tables_hf.go && gofmt -w encode/tokenizer/tables_hf.go
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));
const tk = require('tokenizers');
const version = require('tokenizers/package.json').version;

const clean = tk.bertNormalizer({ cleanText: true, handleChineseChars: false, stripAccents: false, lowercase: false });
const chinese = tk.bertNormalizer({ cleanText: false, handleChineseChars: true, stripAccents: false, lowercase: false });
const pre = tk.bertPreTokenizer();
const wsPre = tk.whitespacePreTokenizer();
const bertStrip = tk.bertNormalizer({ cleanText: false, handleChineseChars: false, stripAccents: true, lowercase: false });
const strip = tk.stripAccentsNormalizer();
const lower = tk.lowercase();
const nfd = tk.nfdNormalizer();

const drop = []; // removed by BertNormalizer clean_text
const cleanSpace = []; // mapped to ' ' by clean_text
const preSpace = []; // removed as whitespace by BertPreTokenizer
const punct = []; // isolated as punctuation by BertPreTokenizer
const mn = []; // removed by BertNormalizer strip_accents after NFD (is_mark_nonspacing)
const marks = []; // removed by the StripAccents normalizer (is_combining_mark)
const combining = []; // non-zero canonical combining class in HF's NFD
const cjk = []; // spaced by handle_chinese_chars
const word = []; // \w of the Whitespace pre-tokenizer (and of single_word)
const wsSpace = []; // \s of the Whitespace pre-tokenizer
const decomp = []; // [cp, [runes]] NFD of a single code point (Hangul left out)
const lowerMap = []; // [cp, [runes]] lowercase of a single code point

const isHangul = (cp) => cp >= 0xac00 && cp <= 0xd7a3;
function hangulNFD(cp) {
  const s = cp - 0xac00;
  const l = 0x1100 + Math.floor(s / 588);
  const v = 0x1161 + Math.floor((s % 588) / 28);
  const t = 0x11a7 + (s % 28);
  return t === 0x11a7 ? [l, v] : [l, v, t];
}
const runes = (s) => Array.from(s, (c) => c.codePointAt(0));

for (let cp = 0; cp <= 0x10ffff; cp++) {
  if (cp >= 0xd800 && cp <= 0xdfff) continue; // surrogates: not in valid UTF-8
  const c = String.fromCodePoint(cp);
  const s = 'a' + c + 'b';
  const n = clean.normalizeString(s);
  if (n === 'ab') drop.push(cp);
  else if (n === 'a b') cleanSpace.push(cp);
  else if (n !== s) throw new Error(`unexpected clean_text output for U+${cp.toString(16)}: ${JSON.stringify(n)}`);
  const p = pre.preTokenizeString(s);
  if (p.length === 3) punct.push(cp);
  else if (p.length === 2) preSpace.push(cp);
  else if (p.length !== 1) throw new Error(`unexpected pre-tokenization for U+${cp.toString(16)}`);
  if (strip.normalizeString(s) === 'ab') marks.push(cp);
  const wp = wsPre.preTokenizeString('a' + c + 'a');
  if (wp.length === 1) word.push(cp);
  else if (wp.length === 2) wsSpace.push(cp);
  if (chinese.normalizeString(c) !== c) cjk.push(cp);
  // Canonical reordering reveals a non-zero combining class: U+0334 has class 1
  // and U+0301 class 230; NFD moves a mark of class k behind a following U+0334
  // iff k > 1, and in front of a preceding U+0301 iff 0 < k < 230. Together the
  // two probes detect every non-zero class.
  // Only code points NFD leaves alone need a class: the others are replaced by
  // their decomposition first.
  const d = nfd.normalizeString(c);
  if (d === c && bertStrip.normalizeString(s) === 'ab') mn.push(cp);
  if (d === c && (nfd.normalizeString('a' + c + '\u0334') !== 'a' + c + '\u0334' ||
      nfd.normalizeString('a\u0301' + c) !== 'a\u0301' + c)) combining.push(cp);
  if (d !== c) {
    if (isHangul(cp)) {
      if (JSON.stringify(runes(d)) !== JSON.stringify(hangulNFD(cp))) throw new Error(`Hangul U+${cp.toString(16)} not algorithmic`);
    } else {
      if (runes(d).length > 4) throw new Error(`decomposition of U+${cp.toString(16)} longer than 4`);
      decomp.push([cp, runes(d)]);
    }
  }
  const l = lower.normalizeString(c);
  if (l !== c) {
    if (runes(l).length > 3) throw new Error(`lowercase of U+${cp.toString(16)} longer than 3`);
    lowerMap.push([cp, runes(l)]);
  }
}

function ranges(list) {
  const r = [];
  for (const x of list) {
    if (r.length && r[r.length - 1][1] === x - 1) r[r.length - 1][1] = x;
    else r.push([x, x]);
  }
  return r;
}
// Rank the canonical combining classes: NFD puts two adjacent marks in
// ascending class order, so asking it about each pair orders them; equal
// classes keep their order both ways. Only the order matters to the
// canonical reordering algorithm, so the ranks stand in for the classes.
const cmpClass = (x, y) => {
  const a = String.fromCodePoint(x);
  const b = String.fromCodePoint(y);
  if (nfd.normalizeString('a' + a + b) === 'a' + b + a) return 1;
  if (nfd.normalizeString('a' + b + a) === 'a' + a + b) return -1;
  return 0;
};
const byClass = [...combining].sort(cmpClass);
const rank = new Map();
let cls = 0;
for (let i = 0; i < byClass.length; i++) {
  if (i === 0 || cmpClass(byClass[i - 1], byClass[i]) !== 0) cls++;
  rank.set(byClass[i], cls);
}
if (cls > 255) throw new Error('too many combining classes');

const hex = (x) => '0x' + x.toString(16).toUpperCase().padStart(4, '0');
const out = [];
const w = (s) => out.push(s);
function table(name, doc, list) {
  w(`// ${name}: ${doc}`);
  w(`var ${name} = runeRanges{`);
  for (const [lo, hi] of ranges(list)) w(`\t{${hex(lo)}, ${hex(hi)}},`);
  w('}');
  w('');
}

w(`// Code generated by scripts/tokenizer-unicode-tables.mjs from the npm package tokenizers ${version}; DO NOT EDIT.`);
w('');
w('package tokenizer');
w('');
w(`// hfTablesVersion is the version of the reference these tables were measured on.`);
w(`const hfTablesVersion = "tokenizers@${version}"`);
w('');
table('hfDrop', 'code points BertNormalizer clean_text removes (NUL, U+FFFD and what HF calls "other").', drop);
table('hfCleanSpace', 'code points BertNormalizer clean_text maps to U+0020 (besides U+0020 itself).', cleanSpace);
table('hfPreSpace', 'code points BertPreTokenizer splits on and removes (Rust char::is_whitespace).', preSpace);
table('hfPunct', 'code points BertPreTokenizer isolates (ASCII punctuation or HF\'s Unicode P*).', punct);
table('hfMn', 'code points BertNormalizer strip_accents removes after NFD (HF\'s is_mark_nonspacing); only code\n// points that NFD leaves alone are listed.', mn);
table('hfMarks', 'code points the StripAccents normalizer removes (HF\'s is_combining_mark).', marks);
w('// hfCombining: code points with a non-zero canonical combining class in HF\'s NFD, with the');
w(`// rank of their class (1..${cls}; the order of the ranks is the order of the classes).`);
w('var hfCombining = [...]classRange{');
{
  let cur = null;
  const flush = () => { if (cur) w(`\t{${hex(cur[0])}, ${hex(cur[1])}, ${cur[2]}},`); };
  for (const cp of combining) {
    const k = rank.get(cp);
    if (cur && cur[1] === cp - 1 && cur[2] === k) cur[1] = cp;
    else { flush(); cur = [cp, cp, k]; }
  }
  flush();
}
w('}');
w('');
if (JSON.stringify(ranges(wsSpace)) !== JSON.stringify(ranges(preSpace))) throw new Error('\\s differs from char::is_whitespace');
table('hfWord', 'the regex class \\w of HF\'s Whitespace pre-tokenizer and of single_word added tokens.', word);
table('hfCJK', 'code points BertNormalizer handle_chinese_chars surrounds with spaces.', cjk);
w('// hfDecomp: full canonical decomposition (NFD) of single code points, Hangul syllables left out');
w('// (they decompose algorithmically), sorted by code point.');
w('var hfDecomp = [...]decompEntry{');
for (const [cp, d] of decomp) w(`\t{${hex(cp)}, ${d.length}, [4]rune{${d.map(hex).join(', ')}}},`);
w('}');
w('');
w('// hfLower: lowercase mapping of single code points (Rust char::to_lowercase), sorted by code point.');
w('var hfLower = [...]lowerEntry{');
for (const [cp, l] of lowerMap) w(`\t{${hex(cp)}, ${l.length}, [3]rune{${l.map(hex).join(', ')}}},`);
w('}');
process.stdout.write(out.join('\n') + '\n');
