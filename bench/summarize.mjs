#!/usr/bin/env node
// summarize.mjs turns bench/run.sh's results.jsonl into the Markdown table of
// docs/BENCHMARKS.md: per case and system, min / median / max of documents/s
// and tokens/s over the repeated runs, padding waste, the largest peak RSS,
// and the ratios that issue 5 sets targets for (splash / bare session, splash
// / the faster peer, both on medians).
//
//	node bench/summarize.mjs results.jsonl [machine.txt]
import fs from 'node:fs';

const [resultsPath, machinePath] = process.argv.slice(2);
if (!resultsPath) throw new Error('usage: summarize.mjs results.jsonl [machine.txt]');
const rows = fs.readFileSync(resultsPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (x, d = 1) => (x == null || Number.isNaN(x) ? '–' : x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }));
const triple = (xs, d) => `${fmt(median(xs), d)} (${fmt(Math.min(...xs), d)}–${fmt(Math.max(...xs), d)})`;

const order = ['bare-session', 'splash', 'torch', 'transformers.js'];
const cases = [...new Set(rows.map((r) => r.case))];
const out = [];
if (machinePath && fs.existsSync(machinePath)) {
  out.push('```', fs.readFileSync(machinePath, 'utf8').trim(), '```', '');
}
// The OpenBLAS core(s) the torch peer's GEMMs ran on (splade_torch.py's
// `openblas`), as run, next to machine.txt's account of how it was chosen.
const cores = [...new Set(rows.filter((r) => r.system === 'torch' && r.openblas)
  .map((r) => r.openblas.core + (r.openblas.coretype_env ? ` (OPENBLAS_CORETYPE=${r.openblas.coretype_env})` : '')))];
if (cores.length) out.push(`torch peer ran on OpenBLAS core: ${cores.join(', ')}`, '');
out.push('| case | system | runs | docs | docs/s median (min–max) | tokens/s median (min–max) | padding waste | peak RSS MiB |');
out.push('| --- | --- | --- | --- | --- | --- | --- | --- |');
const ratios = [];
for (const c of cases) {
  const med = {};
  for (const sys of order) {
    const rs = rows.filter((r) => r.case === c && r.system === sys);
    if (!rs.length) continue;
    med[sys] = median(rs.map((r) => r.docs_per_s));
    const e2e = rs.filter((r) => r.e2e_docs_per_s != null).map((r) => r.e2e_docs_per_s);
    const name = sys === 'splash' && e2e.length ? `splash (process: ${fmt(median(e2e), 2)} docs/s)` : sys;
    out.push(`| ${c} | ${name} | ${rs.length} | ${rs[0].docs} | ${triple(rs.map((r) => r.docs_per_s), 2)} | ` +
      `${triple(rs.map((r) => r.tokens_per_s), 0)} | ${fmt(100 * rs[0].padding_waste, 1)}% | ` +
      `${fmt(Math.max(...rs.map((r) => r.peak_rss_mb)), 0)} |`);
  }
  const peers = ['torch', 'transformers.js'].filter((p) => med[p] != null);
  const best = peers.length ? peers.reduce((a, b) => (med[a] >= med[b] ? a : b)) : null;
  ratios.push(`| ${c} | ${med['bare-session'] ? fmt(med.splash / med['bare-session'], 2) : '–'} | ` +
    `${best ? `${fmt(med.splash / med[best], 2)} (${best})` : '–'} |`);
}
out.push('', '| case | splash / bare session (docs/s) | splash / faster peer (docs/s) |', '| --- | --- | --- |', ...ratios);
console.log(out.join('\n'));
