// The cost of `weir serve`'s request-level limits (src/serve/limits.ts):
// hello-world requests/s through the WAT p3 hello (test/helpers/http-serve-
// fixtures.ts helloWat) with the default limits, and with -W timeout on top
// (a timer-free deadline per request, src/serve/deadline.ts), each against the same server
// with every limit off (0) in the same run: the median of per-pair ratios of
// adjacent runs (order alternating) over fresh process pairs (serve-harness.ts
// pairedRatioFresh), so neither a noisy neighbour nor one process's JIT luck
// decides; an A/A row (limits off on both sides) shows how far apart equal
// servers land. Needs wrk; without it the rows say so. Figures are printed,
// never asserted.

import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bench, BenchResult } from './harness.ts';
import { haveWrk, pairedNote, pairedRatioFresh, startWeirServe as start, weir } from './serve-harness.ts';

const SECONDS = Number(process.env.WEIR_BENCH_SERVE_SECONDS ?? 3);
const PROCESSES = Number(process.env.WEIR_BENCH_SERVE_PROCESSES ?? 3);
const PAIRS = Number(process.env.WEIR_BENCH_SERVE_PAIRS ?? 3);
// Both sides run weir serve's default workers and watchdog; only the limits differ. Since -W timeout (30 s)
// and -W max-memory-size (512M) are serve defaults, "off" turns them off too.
const OFF = ['--max-concurrent-requests', '0', '--max-connections', '0', '--max-request-body-size', '0', '--max-header-size', '0',
  '--header-timeout', '0', '--body-timeout', '0', '--idle-timeout', '0', '-W', 'timeout=0', '-W', 'max-memory-size=0'];

function compare(wasm: string, on: string[]): ReturnType<typeof pairedRatioFresh> {
  return pairedRatioFresh((c) => start([...on, wasm], c), (c) => start([...OFF, wasm], c), SECONDS, PROCESSES, PAIRS);
}

const row = (name: string, r: Awaited<ReturnType<typeof compare>>, target: boolean): BenchResult => ({
  name: `${name} (median of ${PROCESSES}×${PAIRS} per-pair ratios over fresh process pairs)`, value: r.ratio, unit: '×',
  ...(target ? { target: '≥ 0.95', targetMet: r.ratio >= 0.95 } : {}),
  note: pairedNote(r),
});

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
    out.push(row('serve limits: p3 hello (WAT), every limit off vs every limit off (A/A noise floor), wrk -c50', await compare(hello, OFF), false));
    out.push(row('serve limits: p3 hello (WAT), default limits without -W timeout vs every limit off, wrk -c50', await compare(hello, ['-W', 'timeout=0']), true));
    out.push(row('serve limits: p3 hello (WAT), default limits (with -W timeout 30 s) vs every limit off, wrk -c50', await compare(hello, []), true));
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const benches: Bench[] = [{ name: 'serve-limits', run }];
