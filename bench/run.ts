// Runs every benchmark suite and prints one table.
//
//   npm run bench                 all suites
//   npm run bench -- instantiate  only benches whose name contains "instantiate"
//
// A suite is a file in bench/ exporting `benches: Bench[]` (see harness.ts).
// Figures are printed, never asserted.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Bench, BenchResult } from './harness.ts';

const here = dirname(fileURLToPath(import.meta.url));
const SUITES = ['foundation.ts', 'async.ts', 'wasi.ts', 'http-client.ts', 'sockets.ts', 'serve.ts', 'serve-observe.ts', 'serve-limits.ts', 'serve-watch.ts', 'serve-workers.ts', 'limits.ts', 'traps.ts'];

function fmt(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '';
  const a = Math.abs(n);
  if (a === 0) return '0';
  if (a >= 100) return n.toFixed(1);
  if (a >= 1) return n.toFixed(3);
  if (a >= 0.01) return n.toFixed(4);
  return n.toPrecision(3);
}

/** How many times worse than the baseline (> 1: slower / less throughput than the baseline). */
function ratio(r: BenchResult): string {
  if (r.baseline === undefined || !r.baseline || !r.value) return '';
  const x = r.higherIsBetter ? r.baseline / r.value : r.value / r.baseline;
  return `${x.toFixed(2)}×`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => [...r[i]].length)));
  const line = (r: string[]) => r.map((c, i) => c + ' '.repeat(widths[i] - [...c].length)).join('  ').trimEnd();
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

async function main(): Promise<void> {
  const filter = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const results: BenchResult[] = [];
  let failed = false;
  for (const file of SUITES) {
    const p = join(here, file);
    if (!existsSync(p)) continue;
    let mod: { benches?: Bench[] };
    try {
      mod = (await import(p)) as { benches?: Bench[] };
    } catch (e) {
      failed = true;
      process.stderr.write(`  bench/${file} failed to load: ${e instanceof Error ? e.stack : String(e)}\n`);
      results.push({ name: `bench/${file} (FAILED TO LOAD)`, value: NaN, unit: '' });
      continue;
    }
    for (const b of mod.benches ?? []) {
      if (filter.length && !filter.some((f) => b.name.includes(f))) continue;
      process.stderr.write(`running ${b.name} ...\n`);
      try {
        results.push(...(await b.run()));
      } catch (e) {
        failed = true;
        process.stderr.write(`  ${b.name} failed: ${e instanceof Error ? e.stack : String(e)}\n`);
        results.push({ name: `${b.name} (FAILED)`, value: NaN, unit: '' });
      }
    }
  }
  const rows = [['benchmark', 'value', 'unit', 'baseline', 'baseline measures', 'ratio', 'target', 'note']];
  for (const r of results) {
    const target = r.target === undefined ? '' : `${r.target}${r.targetMet === undefined ? '' : r.targetMet ? ' ✓' : ' ✗'}`;
    rows.push([r.name, fmt(r.value), r.unit, fmt(r.baseline), r.baselineLabel ?? '', ratio(r), target, r.note ?? '']);
  }
  console.log(`\nWeir benchmarks — node ${process.version}, ${process.platform}/${process.arch}; medians; ratio = times worse than baseline\n`);
  console.log(table(rows));
  if (failed) process.exitCode = 1;
}

await main();
