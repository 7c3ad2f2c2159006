// The cost of `weir serve`'s request-level limits (src/serve/limits.ts):
// hello-world requests/s through the WAT p3 hello (test/helpers/http-serve-
// fixtures.ts helloWat) with the default limits, and with -W timeout on top
// (a timer and an AbortController per request), each against the same server
// with every limit off (0) in the same run. Runs alternate A/B twice and the
// best of each is kept, so a noisy neighbour hurts both sides alike; an A/A
// row (limits off on both sides) shows how far apart equal servers land.
// Needs wrk; without it the rows say so. Figures are printed, never asserted.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bench, BenchResult } from './harness.ts';
import { startWeirServe as start, weir, wrkRps as wrk } from './serve-harness.ts';

const SECONDS = Number(process.env.WEIR_BENCH_SERVE_SECONDS ?? 4);
const OFF = ['--max-concurrent-requests', '0', '--max-connections', '0', '--max-request-body-size', '0', '--max-header-size', '0',
  '--header-timeout', '0', '--body-timeout', '0', '--idle-timeout', '0'];

async function compare(wasm: string, on: string[]): Promise<{ on: number; off: number }> {
  const a = await start([...on, wasm]);
  const b = await start([...OFF, wasm]);
  try {
    await wrk(a.url, 1); await wrk(b.url, 1); // warm-up
    let bestOn = 0;
    let bestOff = 0;
    for (let i = 0; i < 2; i++) {
      bestOn = Math.max(bestOn, await wrk(a.url, SECONDS));
      bestOff = Math.max(bestOff, await wrk(b.url, SECONDS));
    }
    return { on: bestOn, off: bestOff };
  } finally {
    await a.stop();
    await b.stop();
  }
}

async function run(): Promise<BenchResult[]> {
  if (!existsSync(weir)) throw new Error('run npm run build first');
  if (spawnSync('wrk', ['--version']).error !== undefined) {
    return [{ name: 'serve limits: wrk rows', value: NaN, unit: '', note: 'wrk not installed (apt-get install -y wrk): skipped' }];
  }
  const { helloWat } = await import('../test/helpers/http-serve-fixtures.ts');
  const { assembleText } = await import('../src/wast/assemble.ts');
  const dir = mkdtempSync(join(tmpdir(), 'weir-bench-serve-limits-'));
  try {
    const hello = join(dir, 'hello.wasm');
    writeFileSync(hello, await assembleText(helloWat()));
    const out: BenchResult[] = [];
    // the noise floor of this comparison on this machine: the same server on both sides
    const n = await compare(hello, OFF);
    out.push({ name: 'serve limits: p3 hello (WAT), every limit off (A/A noise floor), wrk -c50', value: n.on, unit: 'req/s', baseline: n.off, baselineLabel: 'every limit off',
      higherIsBetter: true });
    const d = await compare(hello, []);
    out.push({ name: 'serve limits: p3 hello (WAT), default limits, wrk -c50', value: d.on, unit: 'req/s', baseline: d.off, baselineLabel: 'every limit off',
      higherIsBetter: true, target: '≥ 0.95× baseline', targetMet: d.on >= 0.95 * d.off });
    const t = await compare(hello, ['-W', 'timeout=30s']);
    out.push({ name: 'serve limits: p3 hello (WAT), defaults + -W timeout=30s, wrk -c50', value: t.on, unit: 'req/s', baseline: t.off, baselineLabel: 'every limit off',
      higherIsBetter: true, target: '≥ 0.95× baseline', targetMet: t.on >= 0.95 * t.off });
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const benches: Bench[] = [{ name: 'serve-limits', run }];
