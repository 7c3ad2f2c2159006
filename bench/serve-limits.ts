// The cost of `weir serve`'s request-level limits (src/serve/limits.ts):
// hello-world requests/s through the WAT p3 hello (test/helpers/http-serve-
// fixtures.ts helloWat) with the default limits, and with -W timeout on top
// (a timer-free deadline per request, src/serve/deadline.ts), each against the same server
// with every limit off (0) in the same run. Runs alternate A/B twice and the
// best of each is kept, so a noisy neighbour hurts both sides alike; an A/A
// row (limits off on both sides) shows how far apart equal servers land.
// Needs wrk; without it the rows say so. Figures are printed, never asserted.

import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bench, BenchResult } from './harness.ts';
import { bestOfAlternating, haveWrk, startWeirServe as start, weir } from './serve-harness.ts';

const SECONDS = Number(process.env.WEIR_BENCH_SERVE_SECONDS ?? 4);
// Both sides run weir serve's default workers and watchdog; only the limits differ. Since -W timeout (30 s)
// and -W max-memory-size (512M) are serve defaults, "off" turns them off too.
const OFF = ['--max-concurrent-requests', '0', '--max-connections', '0', '--max-request-body-size', '0', '--max-header-size', '0',
  '--header-timeout', '0', '--body-timeout', '0', '--idle-timeout', '0', '-W', 'timeout=0', '-W', 'max-memory-size=0'];

async function compare(wasm: string, on: string[]): Promise<{ on: number; off: number }> {
  const a = await start([...on, wasm]);
  const b = await start([...OFF, wasm]);
  try {
    const r = await bestOfAlternating(a.url, b.url, SECONDS);
    return { on: r.a, off: r.b };
  } finally {
    await a.stop();
    await b.stop();
  }
}

async function run(): Promise<BenchResult[]> {
  if (!existsSync(weir)) throw new Error('run npm run build first');
  const wrkState = haveWrk();
  if (!wrkState.ok) return [{ name: 'serve limits: wrk rows', value: NaN, unit: '', note: wrkState.note }];
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
    const d = await compare(hello, ['-W', 'timeout=0']);
    out.push({ name: 'serve limits: p3 hello (WAT), default limits without -W timeout, wrk -c50', value: d.on, unit: 'req/s', baseline: d.off, baselineLabel: 'every limit off',
      higherIsBetter: true, target: '≥ 0.95× baseline', targetMet: d.on >= 0.95 * d.off });
    const t = await compare(hello, []);
    out.push({ name: 'serve limits: p3 hello (WAT), default limits (with -W timeout 30 s), wrk -c50', value: t.on, unit: 'req/s', baseline: t.off, baselineLabel: 'every limit off',
      higherIsBetter: true, target: '≥ 0.95× baseline', targetMet: t.on >= 0.95 * t.off });
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const benches: Bench[] = [{ name: 'serve-limits', run }];
