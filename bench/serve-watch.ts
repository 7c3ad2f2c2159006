// `weir serve --watch` (src/serve/watch.ts): (1) hello-world requests/s
// through the WAT p3 hello with --watch against the same server without it
// (the MachineSwitch indirection on every request), runs alternating, best of
// two each; (2) how long a reload takes, rename → first response from the new
// version (150 ms of it is the debounce), against restarting the server
// (spawn → first stderr line) in the same run. Needs wrk for (1). Figures are
// printed, never asserted.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bench, BenchResult } from './harness.ts';
import { bestOfAlternating, haveWrk, startWeirServe as start, weir } from './serve-harness.ts';

const SECONDS = Number(process.env.WEIR_BENCH_SERVE_SECONDS ?? 4);

async function run(): Promise<BenchResult[]> {
  if (!existsSync(weir)) throw new Error('run npm run build first');
  const { helloWat } = await import('../test/helpers/http-serve-fixtures.ts');
  const { assembleText } = await import('../src/wast/assemble.ts');
  const dir = mkdtempSync(join(tmpdir(), 'weir-bench-serve-watch-'));
  const out: BenchResult[] = [];
  try {
    const hello = join(dir, 'hello.wasm');
    const plain = join(dir, 'plain.wasm');
    const bytesA = await assembleText(helloWat());
    const bytesB = await assembleText(helloWat().replace('"hello"', '"BBBBB"'));
    writeFileSync(hello, bytesA);
    writeFileSync(plain, bytesA);
    const wrkState = haveWrk();
    if (!wrkState.ok) {
      out.push({ name: 'serve --watch: wrk row', value: NaN, unit: '', note: wrkState.note });
    } else {
      const a = await start(['--watch', hello]);
      const b = await start([plain]);
      try {
        const { a: bestOn, b: bestOff } = await bestOfAlternating(a.url, b.url, SECONDS);
        out.push({ name: 'serve --watch: p3 hello (WAT), steady state, wrk -c50', value: bestOn, unit: 'req/s', baseline: bestOff, baselineLabel: 'same server without --watch',
          higherIsBetter: true, target: '≥ 0.95× baseline', targetMet: bestOn >= 0.95 * bestOff });
      } finally {
        await a.stop();
        await b.stop();
      }
    }
    // Reload latency: median of 5 rename-overs, alternating A and B.
    const s = await start(['--watch', hello]);
    const restarts: number[] = [];
    const reloads: number[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const want = i % 2 === 0 ? 'BBBBB' : 'hello';
        writeFileSync(join(dir, '.tmp'), i % 2 === 0 ? bytesB : bytesA);
        const t0 = performance.now();
        renameSync(join(dir, '.tmp'), hello);
        for (;;) {
          if (performance.now() - t0 > 10_000) throw new Error('reload did not happen');
          if ((await (await fetch(`${s.url}`)).text()) === want) break;
          await new Promise((r) => setTimeout(r, 2));
        }
        reloads.push(performance.now() - t0);
        const r = await start([plain]);
        restarts.push(r.startedMs);
        await r.stop();
      }
    } finally {
      await s.stop();
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    out.push({ name: 'serve --watch: reload, rename → first answer from the new version (incl. 150 ms debounce), median of 5', value: median(reloads), unit: 'ms',
      baseline: median(restarts), baselineLabel: 'restart weir serve (spawn → listening)', higherIsBetter: false });
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const benches: Bench[] = [{ name: 'serve-watch', run }];
