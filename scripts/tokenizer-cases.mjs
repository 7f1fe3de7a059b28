#!/usr/bin/env node
// tokenizer-cases.mjs writes the test cases of encode/tokenizer
// (encode/tokenizer/testdata/cases.jsonl): hand-written edge cases, seeded
// random strings of code points, and ~100 real texts from the Cranfield
// collection, each with a max_length (0: no truncation). It is deterministic.
// It uses the reference tokenizer only to pick max_length values at, just
// below and just above a text's token count.
//
// Usage (from the repository root):
//
//	node scripts/tokenizer-cases.mjs testdata/cranfield/cran.all.1400 \
//	    testdata/tokenizers/bert-base-uncased/tokenizer.json > encode/tokenizer/testdata/cases.jsonl
//
// then regenerate expected.jsonl with scripts/tokenizer-reference.mjs.
// With a third argument "llm" it adds cases aimed at the BPE tokenizers of
// causal language models (runs of spaces, tabs and newlines, contractions,
// digit runs, and the tokenizer's own added tokens inside text); without it
// the output is the BERT case list, unchanged.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));
const { Tokenizer } = require('tokenizers');

const [cranPath, tokenizerPath, mode] = process.argv.slice(2);
if (!cranPath || !tokenizerPath) {
  process.stderr.write('usage: tokenizer-cases.mjs CRAN_ALL_1400 TOKENIZER_JSON\n');
  process.exit(2);
}
const tokenizer = Tokenizer.fromFile(tokenizerPath);
const count = async (text) => (await tokenizer.encode(text)).getLength();

// Deterministic PRNG (mulberry32).
let seed = 0x5eed1234;
function rand() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];
const randInt = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));

const cases = [];
const add = (text, maxLength = 0) => cases.push({ text, max_length: maxLength });

// 1. Hand-written edge cases, each without truncation.
const hand = [
  '', ' ', '   \t\n  ', 'a', 'A', 'hello world', 'Hello, World!', 'HELLO WORLD',
  // accents and Latin scripts
  'café', 'naïve résumé', 'Ångström', 'Crème brûlée à la française', 'Ærøskøbing Ødegaard',
  'Tiếng Việt có dấu: Cụ thể, bạn sẽ tham gia một nhóm các giám đốc điều hành',
  'Đà Nẵng đẹp lắm', 'ẞ straße STRASSE', 'İstanbul ıi İI', 'Łódź Żółć Gęślą jaźń', 'ﬁnance ﬂow ﬀ',
  'ǅemal ǈ ǋ', 'e\u0301 vs \u00e9', 'a\u0308\u0301 o\u0323\u0302', 'q\u0307\u0323 q\u0323\u0307',
  'x\u0315\u0300 x\u0300\u0315', 'cafe\u0301s', '\u0301leading combining', 'combining at end\u0301',
  // CJK, Japanese, Korean
  '北京大学的学生', '我爱自然语言处理。', '東京都庁', '日本語の文章です。カタカナとひらがな',
  'ひらがな カタカナ ｶﾀｶﾅ', '한국어 텍스트입니다', '한국어a한국어', 'mixed中文and English',
  '㐀㐁 䶵 𠀀𠀁 𪜀 𫝀 𫠝 𫠠 𬺰 𮯠 丽 豈 兀', '\u{2B81F}\u{2B820}\u{2B91F}\u{2B920}',
  '\u{2CEAF}\u{2CEB0}\u{2EBE0}\u{30000}\u{31350}', '\u4DBF\u4DC0\u4E00\u9FFF\uA000\uF8FF\uF900\uFAFF\uFB00',
  '\u{2F7FF}\u{2F800}\u{2FA1F}\u{2FA20}', '⺀⻳⼀ ㈠ ㊀ ㋀', '〇〆〒', '３０００円 ＡＢＣ ａｂｃ',
  // other scripts
  'Ελληνικά: Καλημέρα κόσμε, ΆΈΉ ΐΰ', 'ὈΔΥΣΣΕΎΣ ᾼ ᾳ', 'Русский текст: Привет, мир! Ёё Йй',
  'Українська: ґ Ґ ї Ї', 'العربية: مرحبا بالعالم، كيف حالك؟', 'مَرْحَبًا', 'עברית: שלום עולם',
  'שָׁלוֹם', 'ภาษาไทย: สวัสดีครับ', 'ำน\u0e49ำ3ลำ', 'हिन्दी: नमस्ते दुनिया', 'क़ ख़ ग़',
  'বাংলা ভাষা', 'தமிழ் மொழி', 'ქართული', 'Հայերեն', 'አማርኛ', 'ᐃᓄᒃᑎᑐᑦ', 'ᚠᚢᚦ', '𐌰𐌱𐌲',
  'Монгол ᠮᠣᠩᠭᠣᠯ', 'ꦗꦮ', 'ߒߞߏ', '\u0890\u0891\u08E2 arabic format', '\u{13430}\u{13438} hieroglyph format',
  // emoji
  '😀 😃 😄', 'I ❤️ NY', '👍🏽 👍🏿', '👩‍👩‍👧‍👦 family', '👨‍💻 coder', '🇫🇷🇯🇵🇺🇸 flags',
  '🏳️‍🌈 🏴󠁧󠁢󠁳󠁣󠁴󠁿', 'keycap 1️⃣ #️⃣', '🥰🥲🫠🫨 newer emoji', 'text😀text', '☃★☆♥',
  // zero-width and format characters
  'zero\u200Bwidth', 'zero\u200Cnon\u200Djoiner', '\uFEFFbom at start', 'soft\u00ADhyphen',
  'word\u2060joiner', 'rtl\u200Fmark\u200E', '\u202Aembed\u202C', 'a\u00AD\u200B\u200C\u200D\uFEFFb',
  'variation\uFE0Fselector\uFE0E', 'tag\u{E0041}\u{E0042}', 'private\uE000use\u{F0000}\u{10FFFD}',
  'unassigned\u0378\u{E0080}\u{3FFFF}', 'nonchar\uFFFE\uFFFF', 'repl\uFFFDchar',
  // control characters and odd whitespace
  'nul\u0000byte', 'bell\u0007char', 'carriage\rreturn', 'escape\u001B[31mred\u001B[0m',
  'next\u0085line', 'del\u007Fchar', 'vt\u000Bff\u000Cfs\u001Cgs\u001Dus\u001Frs\u001E',
  'c1\u0080\u0090\u009F', 'tab\tseparated\tvalues', 'line\nfeed\r\nwindows',
  'nbsp\u00A0space', 'em\u2003space', 'ideographic\u3000space', 'line\u2028separator\u2029para',
  'ogham\u1680space', 'narrow\u202Fnbsp\u205Fmath', 'thin\u2009hair\u200Aspace', 'mongolian\u180Evowel',
  '\u3000\u3000leading and trailing\u2003\u2003', ' \t\r\n\u00A0\u2000\u2028\u3000 ',
  // special tokens inside text
  '[MASK]', '[CLS]', '[SEP]', '[PAD]', '[UNK]', 'a[MASK]b', 'a [MASK] b', '[MASK][MASK]',
  'the [MASK] is [MASK].', '[mask] lowercase', '[Mask] mixed', '[ MASK ]', '[MASK', 'MASK]',
  '[[MASK]]', '[CLS] hello [SEP] world [SEP]', 'x[CLS]y[SEP]z[PAD]w[UNK]v', '[UNK][UNK]',
  '  [MASK]  ', '\t[SEP]\n', 'é[MASK]é', '中[MASK]文', '[MASK]😀[MASK]', '[MA\u0000SK]',
  '[MA\u200BSK]', '[PAD][PAD][PAD]', '##ing ##s', '[unused0] [unused99]',
  // punctuation
  '?!...---', '!!!???', '"quoted" \'single\' `back`', '(parens) [brackets] {braces} <angles>',
  'a.b.c', 'e.g., i.e., etc.', '¿Qué? ¡Hola!', '«guillemets» „Anführung“ “curly” ‘single’',
  '—em–en‐hyphen−minus', '…ellipsis‥', '§1 ¶2 †‡ • ‣ ※', '、。「」『』【】', '،؛؟', '।॥',
  '$100 €50 £30 ¥20 ₹10 ₿1', '+-*/=<>^|~', '@#%&_\\', '\u2E50\u2E5D new punctuation', '\u166D\u0F14',
  '\u061D\u09FD\u0A76\u0C77\u0C84 newer punct', '\u1B7D\u1B7E\u2E43\u2E4F \u{10EAD}\u{10F55}\u{10F86}',
  // numbers, URLs, emails, code
  '3.14159 2,718 1e-10 -42 +7', '1,000,000 ١٢٣ ۴۵۶ ४५६ ๑๒๓', '½ ¾ ² ³ ⅓ Ⅻ ⑳',
  'https://www.example.com/path/to/page?query=1&x=y#frag', 'http://localhost:8080/api/v1',
  'Contact john.doe+tag@example.co.uk now', 'user@sub.domain.org', 'C:\\Users\\name\\file.txt',
  'foo_bar_baz camelCaseWord snake_case', 'func main() { fmt.Println("hi") }', '<div class="x">y</div>',
  '#hashtag @mention', 'ISBN 978-3-16-148410-0', '2024-01-31T12:34:56Z',
  // math and symbols
  '∑∫∂√∞≈≠≤≥', 'E = mc²', '𝔸𝕓𝒞 𝐁𝐨𝐥𝐝', 'α + β = γ', '∀x∈ℝ: x² ≥ 0', '⊕⊗⊥∥', '℃ ℉ Ω Å K',
  '←↑→↓ ⇒ ⇔', '♠♣♥♦ ♩♪', '①②③ ⓐⓑⓒ Ⓐ', '™ © ®', '° ′ ″ ‰',
  // long words
  'a'.repeat(100), 'a'.repeat(101), 'b'.repeat(99) + 'é', 'é'.repeat(100), 'é'.repeat(101),
  '中'.repeat(150), 'ab'.repeat(60) + ' short', 'x'.repeat(250) + ' after', 'super' + 'cali'.repeat(30),
  'antidisestablishmentarianism', 'pneumonoultramicroscopicsilicovolcanoconiosis',
  'Ω'.repeat(101), 'a\u0301'.repeat(60), '😀'.repeat(101), '😀'.repeat(100),
  // mixed
  'The quick brown fox jumps over the lazy dog.', 'ÀÉÎÕÜ àéîõü', 'ÇA VA? Ça va.',
  'naïve café résumé 北京 Москва 😀 [MASK] 3.14', 'mIxEd CaSe WoRdS', 'don\'t won\'t it\'s',
  'state-of-the-art', 'U.S.A. vs U.K.', '10:30am', 'a\u00A0b\u2003c\u3000d',
];
for (const t of hand) add(t);

// 1b. (llm) Whitespace runs, contractions, digits, and the file's added tokens.
if (mode === 'llm') {
  const llm = [
    'a  b', 'a   b', 'a    b c', 'a \n b', 'a\n\n\nb', '  leading', 'trailing  ', 'trailing \n',
    '\t\tx', ' \n\n ', 'a \t b', 'x\r\n\r\ny', '\n', '\n\n', ' ', '  ', '\t', '\r\n', 'a\n  b',
    'a \u3000b', '\u3000word', '\u00a0word', 'x \u00a0 y', 'end.\n\n', 'x!!!\n\n y', '?\r\n', ' !!\n',
    '(word', '.word', '"word"', '  (x)  ', '\tword', '\vword\f', 'a\u2028b', '\u0085x',
    "don't", "DON'T", "I'm", "we'll", "they've", "she'd", "you're", "it'S", "IT'LL", "'s", "''s",
    "'sup", "'\u017F", "x'Re y'VE", "rock 'n' roll", "'", "''", " 'm", "l'amour d'été",
    '12345678', '1234 5678', '3.14', ' 2024', 'x1y2', '١٢٣٤٥', '1,234,567.89', '007', 'v1.2.3-rc4',
    '٣٤٥٦ ४५६७ ½½½', 'Ⅻ Ⅻ ⅫⅫ', 'a1b22c333d4444', 'word123word', '   123', '#1!2?3',
    'def f(x):\n    return x  # comment\n', '    indented\n\tcode\n', 'if (a && b) { c(); }\n',
    'camelCase PascalCase snake_case kebab-case', 'HTTPServer XMLHttpRequest',
    'ありがとう ございます', '안녕하세요 세계', '中文 English 日本語', 'Ünïcödé Wörds',
    // Unicode 16 letters and digits (newer than Go's tables)
    'u16 a\u1C89b x\u{105C0}y 1\u{10D40}2 z\u{116D0}\u{116D1}\u{116D2}9 \uA7CBq \u{10D40}\u{10D41}\u{10D42}\u{10D43}',
    "'\u{105C0} 1\u{11BF0}\u{11BF1}\u{11BF2}\u{11BF3} !\u1C89! \u1C89\u1C8Aa",
  ];
  for (const t of llm) add(t);
  const config = JSON.parse(fs.readFileSync(tokenizerPath, 'utf8'));
  for (const { content } of config.added_tokens ?? []) {
    for (const t of [content, `a${content}b`, `a ${content} b`, content + content, ` ${content}`, `${content} `,
      `\n${content}\n`, `${content}hello`, `hello${content}`, `x  ${content}  y`, content.toUpperCase() + ' x',
      `${content.slice(0, -1)} ${content.slice(-1)}`, `Hello ${content} world${content}`]) add(t);
  }
}

// 2. Truncation of a sample of the hand-written cases.
const truncSample = [
  'Hello, World!', 'naïve café résumé 北京 Москва 😀 [MASK] 3.14', 'the [MASK] is [MASK].',
  '?!...---', 'https://www.example.com/path/to/page?query=1&x=y#frag', '我爱自然语言处理。',
  '[CLS] hello [SEP] world [SEP]', 'a'.repeat(101), '', 'a',
];
for (const t of truncSample) for (const n of [2, 3, 4, 8, 16]) add(t, n);

// 3. Seeded random strings from many blocks (and from anywhere).
const blocks = [
  [0x20, 0x7e], [0x00, 0x1f], [0xa0, 0x24f], [0x300, 0x36f], [0x370, 0x3ff], [0x400, 0x52f],
  [0x590, 0x5ff], [0x600, 0x6ff], [0x750, 0x8ff], [0x900, 0xdff], [0xe00, 0xeff], [0x1000, 0x10ff],
  [0x1100, 0x11ff], [0x1ab0, 0x1dff], [0x1e00, 0x1fff], [0x2000, 0x206f], [0x2070, 0x2bff],
  [0x2e00, 0x2e7f], [0x3000, 0x30ff], [0x3100, 0x33ff], [0x3400, 0x4dbf], [0x4e00, 0x9fff],
  [0xa000, 0xa4cf], [0xa640, 0xabff], [0xac00, 0xd7af], [0xf900, 0xfaff], [0xfb00, 0xfdff],
  [0xfe00, 0xfe6f], [0xff00, 0xffef], [0xfff0, 0xfffd], [0x10000, 0x1014f], [0x10300, 0x10fff],
  [0x11000, 0x11fff], [0x13000, 0x1343f], [0x16a40, 0x16fff], [0x1d100, 0x1d1ff], [0x1d400, 0x1d7ff],
  [0x1e800, 0x1efff], [0x1f000, 0x1faff], [0x20000, 0x2a6df], [0x2a6e0, 0x2ffff], [0x30000, 0x323af],
  [0xe0000, 0xe01ef], [0xf0000, 0xf00ff],
];
function randomCodePoint() {
  if (rand() < 0.1) {
    for (;;) {
      const cp = randInt(0, 0x10ffff);
      if (cp < 0xd800 || cp > 0xdfff) return cp;
    }
  }
  const [lo, hi] = pick(blocks);
  const cp = randInt(lo, hi);
  return cp >= 0xd800 && cp <= 0xdfff ? 0x20 : cp;
}
for (let i = 0; i < 60; i++) {
  let s = '';
  const n = randInt(5, 120);
  for (let j = 0; j < n; j++) {
    const r = rand();
    if (r < 0.15) s += ' ';
    else if (r < 0.35) s += pick(['a', 'e', 'the', 'in', 'E', 'Q', '1', '.', '-', 'é', '[MASK]']);
    else s += String.fromCodePoint(randomCodePoint());
  }
  add(s, i % 5 === 0 ? pick([8, 16, 32]) : 0);
}
// Marks from many combining classes in random order, on random bases.
const marks = [0x0300, 0x0301, 0x0308, 0x0315, 0x0316, 0x031b, 0x0321, 0x0327, 0x0334, 0x0345,
  0x035c, 0x035d, 0x05b0, 0x05bc, 0x064b, 0x0670, 0x093c, 0x094d, 0x0e38, 0x0e48, 0x0f71, 0x0f72,
  0x1dce, 0x20d0, 0x302a, 0x302e, 0x3099, 0x07fd, 0x0898, 0x08d3, 0x0c3c, 0x1715, 0x1e944];
for (let i = 0; i < 20; i++) {
  let s = '';
  for (let w = 0; w < 8; w++) {
    s += pick(['a', 'E', 'o', 'ı', 'ø', 'Ω', 'и', 'ا', 'क', 'ก', '한', '中', '1', '(']);
    for (let k = randInt(0, 4); k > 0; k--) s += String.fromCodePoint(pick(marks));
    if (rand() < 0.5) s += ' ';
  }
  add(s);
}

// 4. Cranfield: the .W sections of ~100 documents spread over the collection.
const cran = fs.readFileSync(cranPath, 'utf8');
const docs = [];
for (const rec of cran.split(/^\.I /m).slice(1)) {
  const at = rec.indexOf('\n.W\n');
  if (at >= 0) docs.push(rec.slice(at + 4).replace(/\s+$/, ''));
}
if (docs.length < 1000) throw new Error(`only ${docs.length} .W sections in ${cranPath}`);
const sampled = [];
for (let i = 0; i < docs.length && sampled.length < 100; i += Math.floor(docs.length / 100)) sampled.push(docs[i]);
for (const [i, d] of sampled.entries()) {
  const n = [0, 0, 0, 0, 16, 128, 512, 64][i % 8];
  add(d, n);
}

// 5. Exactly at, just below and just above the limit.
for (const d of sampled.slice(0, 8)) {
  const n = await count(d);
  for (const m of [n, n - 1, n + 1]) if (m >= 2) add(d, m);
}
for (const t of ['Hello, World!', '[MASK] [MASK]', 'naïve café']) {
  const n = await count(t);
  for (const m of [n, n - 1, n + 1]) if (m >= 2) add(t, m);
}

// 6. Very long texts (encoded in many pieces; truncation stops early).
const long1 = sampled.slice(0, 10).join('\n\n');
const long2 = sampled.slice(40, 50).join(' [SEP] ') + ' 北京大学 😀 café';
const long3 = sampled.slice(70, 80).join('\u3000') + '\t' + 'x'.repeat(3000);
const long4 = 'a\u0301 '.repeat(1000) + 'é'.repeat(3000);
const long5 = sampled.slice(10, 50).join('\n');
for (const [t, ns] of [[long1, [0, 128, 512]], [long2, [0, 512]], [long3, [0, 128]], [long4, [0, 512]], [long5, [512]]]) {
  for (const n of ns) add(t, n);
}

for (const c of cases) process.stdout.write(JSON.stringify(c) + '\n');
process.stderr.write(`${cases.length} cases\n`);
