// `weir serve --workers N` (`npm run bench -- serve-workers`), each row beside
// a baseline from the same run, all on loopback with wrk -c50:
//   - requests/s of the minimal WAT p3 hello with --workers 1 and 2, beside
//     node:http in a cluster of 1 and 2 workers (node's default scheduling:
//     the primary accepts and hands connections round-robin), and the scaling
//     from 1 to 2 workers beside node's. wrk needs a core too: on a 2-core
//     machine neither side can reach 2×.
//   - the cost of isolation: the same hello with the watchdog and every
//     request limit on (the defaults: --workers 1, --cpu-timeout 10s,
//     admission, body/header limits and timeouts, plus -W timeout=30s)
//     against all of them off (--workers 0 --cpu-timeout 0, every limit 0: the
//     main thread serves, as before workers existed).
// The worker rows keep each server's best of 2 runs (one server after the other); the isolation
// rows pool paired runs over several fresh process pairs (a process's JIT luck
// moved a one-process comparison by ±4%), beside the same measurement of the
// baseline against itself. Needs wrk; skipped (and says so) when it is missing.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median, type Bench, type BenchResult } from './harness.ts';
import { haveWrk, pairedNote, pairedRatioFresh, rssMiB, startServer, startWeirServe, weir, wrk, wrkRps } from './serve-harness.ts';

const SECONDS = Number(process.env.WEIR_BENCH_SERVE_SECONDS ?? 5);
const ROUNDS = Number(process.env.WEIR_BENCH_SERVE_ROUNDS ?? 2);
/** The isolation rows: process pairs, and pairs of runs in each (serve-harness.ts pairedRatioFresh). */
const PROCESSES = Number(process.env.WEIR_BENCH_SERVE_PROCESSES ?? 4);
const PAIRS = Number(process.env.WEIR_BENCH_SERVE_PAIRS ?? 4);

const nodeCluster = (n: number) => `const cluster = require('node:cluster');
if (cluster.isPrimary) {
  let up = 0;
  for (let i = 0; i < ${n}; i++) cluster.fork().on('listening', (a) => { if (++up === ${n}) process.stderr.write('Serving HTTP on http://127.0.0.1:' + a.port + '/\\n'); });
} else {
  require('node:http').createServer((q, r) => { r.writeHead(200, { 'content-type': 'text/plain' }); r.end('hello'); }).listen(${PORT_PLACEHOLDER}, '127.0.0.1');
}`;
const PORT_PLACEHOLDER = 'Number(process.env.PORT)';

const OFF = ['--workers', '0', '--cpu-timeout', '0', '-W', 'timeout=0', '-W', 'max-memory-size=0', '--max-concurrent-requests', '0', '--max-connections', '0', '--max-request-body-size', '0',
  '--max-header-size', '0', '--header-timeout', '0', '--body-timeout', '0', '--idle-timeout', '0'];
const ON = ['--workers', '1', '--cpu-timeout', '10s', '-W', 'timeout=30s'];

async function best(url: string, rounds: number): Promise<number> {
  let b = 0;
  for (let i = 0; i < rounds; i++) b = Math.max(b, await wrkRps(url, SECONDS));
  return b;
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((res) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => res(p)); }); });
}

/** The minimal WAT p3 hello service, assembled into a fresh temporary directory (removed by the caller). */
async function helloService(prefix: string): Promise<{ dir: string; hello: string }> {
  const { helloWat } = await import('../test/helpers/http-serve-fixtures.ts');
  const { assembleText } = await import('../src/wast/assemble.ts');
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const hello = join(dir, 'hello.wasm');
  writeFileSync(hello, await assembleText(helloWat()));
  return { dir, hello };
}

async function run(): Promise<BenchResult[]> {
  const wrkState = haveWrk();
  if (!wrkState.ok) return [{ name: 'serve-workers: wrk rows', value: NaN, unit: '', note: wrkState.note }];
  const { dir, hello } = await helloService('weir-bench-workers-');
  const out: BenchResult[] = [];
  try {
    const measure = async (start: () => ReturnType<typeof startServer>) => {
      const s = await start();
      try {
        await wrkRps(s.url, 1); // warm-up
        return await best(s.url, ROUNDS);
      } finally {
        await s.stop();
      }
    };
    // cluster.fork() re-runs the primary's script file (not -e code)
    const cluster = async (n: number) => {
      const file = join(dir, `cluster-${n}.cjs`);
      writeFileSync(file, nodeCluster(n));
      const port = String(await freePort());
      return measure(() => startServer([file], { env: { PORT: port }, signal: 'SIGKILL' }));
    };
    const weirN = (n: number) => measure(() => startWeirServe(['--workers', String(n), hello]));
    const n1 = await cluster(1);
    const w1 = await weirN(1);
    const n2 = await cluster(2);
    const w2 = await weirN(2);
    out.push({ name: 'serve-workers: WAT p3 hello, --workers 1, wrk -c50', value: w1, unit: 'req/s', baseline: n1, baselineLabel: 'node:http, cluster of 1', higherIsBetter: true });
    out.push({ name: 'serve-workers: WAT p3 hello, --workers 2, wrk -c50', value: w2, unit: 'req/s', baseline: n2, baselineLabel: 'node:http, cluster of 2', higherIsBetter: true });
    out.push({ name: 'serve-workers: scaling from 1 to 2 workers', value: w2 / w1, unit: '×', baseline: n2 / n1, baselineLabel: 'node cluster 1 → 2', higherIsBetter: true,
      note: '2 cores shared with wrk' });

    // Isolation cost: fresh process pairs, A/B alternated within each (serve-harness.ts pairedRatioFresh),
    // and the same measurement of the baseline against itself, which says how far apart two servers of one
    // configuration read here (the resolution of the first row).
    const onOff = await pairedRatioFresh((c) => startWeirServe([...ON, hello], c), (c) => startWeirServe([...OFF, hello], c), 3, PROCESSES, PAIRS);
    const offOff = await pairedRatioFresh((c) => startWeirServe([...OFF, hello], c), (c) => startWeirServe([...OFF, hello], c), 3, PROCESSES, PAIRS);
    out.push({ name: `serve-workers: isolation on (worker, --cpu-timeout 10s, default limits, -W timeout=30s) vs all off (--workers 0), paired (median of ${PROCESSES}×${PAIRS} per-pair ratios: fresh process pairs, adjacent 3 s runs, order alternating)`,
      value: onOff.ratio, unit: '×', target: '≥ 0.95', targetMet: onOff.ratio >= 0.95,
      note: pairedNote(onOff) });
    out.push({ name: 'serve-workers: the same measurement, all off against all off (what two servers of one configuration read here)', value: offOff.ratio, unit: '×',
      note: pairedNote(offOff) });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

/**
 * RSS of `--workers 2` serving the componentize-qjs limits service flat out
 * (wrk -c50, one request per instance at a time), with the workers' young
 * generation capped (src/cli/serve-workers.ts) against V8's own sizing
 * (NODE_OPTIONS=--max-semi-space-size=0, which Weir leaves to V8). RSS is the
 * median of samples every 250 ms over the second half of the run; the servers
 * run one after the other, twice each, and each keeps its lower median.
 */
/** How long the RSS row waits after the load before it reads the RSS a quiet server holds. */
const QUIET_WAIT_MS = 20_000;

async function rssUnderLoad(): Promise<BenchResult[]> {
  const wrkState = haveWrk();
  if (!wrkState.ok) return [{ name: 'serve-workers/rss: wrk rows', value: NaN, unit: '', note: wrkState.note }];
  if (process.platform !== 'linux') return [{ name: 'serve-workers/rss', value: NaN, unit: '', note: 'reads /proc: Linux only' }];
  const { buildLimitsService } = await import('../test/helpers/serve-limits-fixtures.ts');
  const svc = await buildLimitsService();
  if (!svc) return [{ name: 'serve-workers/rss', value: NaN, unit: '', note: 'componentize-qjs or the WASI 0.3 WIT missing' }];
  const quiet: { before: number; end: number; after: number }[] = [];
  const once = async (env: Record<string, string>, thenQuiet = false) => {
    const s = await startServer([weir, 'serve', '--addr', '127.0.0.1:0', '--workers', '2', '--max-instance-concurrent-reuse-count', '1', svc], { env, signal: 'SIGKILL' });
    try {
      const url = `${s.url}count?ms=0`;
      const before = rssMiB(s.pid);
      await wrkRps(url, 1);
      const samples: number[] = [];
      const timer = setInterval(() => samples.push(rssMiB(s.pid)), 250);
      const r = await wrk(url, SECONDS);
      clearInterval(timer);
      if (thenQuiet) {
        // the same server left alone: src/serve/idle-gc.ts collects after 5 s quiet
        const end = rssMiB(s.pid);
        await new Promise((res) => setTimeout(res, QUIET_WAIT_MS));
        quiet.push({ before, end, after: rssMiB(s.pid) });
      }
      return { rss: median(samples.slice(Math.floor(samples.length / 2))), rps: r.rps };
    } finally {
      await s.stop();
    }
  };
  const capped: { rss: number; rps: number }[] = [];
  const v8: { rss: number; rps: number }[] = [];
  for (let i = 0; i < 2; i++) {
    capped.push(await once({}, true));
    v8.push(await once({ NODE_OPTIONS: '--max-semi-space-size=0' }));
  }
  const best = (xs: { rss: number; rps: number }[]) => xs.reduce((a, b) => (b.rss < a.rss ? b : a));
  const c = best(capped), d = best(v8);
  const q = quiet.reduce((a, b) => (b.after < a.after ? b : a));
  return [{
    name: `serve-workers/rss: the same server ${QUIET_WAIT_MS / 1000} s after the load stopped (RSS given back once quiet, src/serve/idle-gc.ts)`,
    value: q.after, unit: 'MiB', baseline: q.end, baselineLabel: 'RSS as the load stopped', note: `idle before the load ${q.before.toFixed(1)} MiB; lower of 2 runs`,
  }, {
    name: 'serve-workers/rss: qjs limits service, --workers 2, wrk -c50 flat out, RSS of the process',
    value: c.rss, unit: 'MiB', baseline: d.rss, baselineLabel: "same, V8's own young-generation sizing",
    note: `req/s ${Math.round(Math.max(...capped.map((x) => x.rps)))} vs ${Math.round(Math.max(...v8.map((x) => x.rps)))}`,
  }];
}

/**
 * How the workers accept: one listening socket shared by all (the default,
 * src/serve/shared-listener.ts) against a SO_REUSEPORT listener per worker
 * (WEIR_SERVE_LISTENER=reuseport), --workers 2, WAT hello, with kept-alive
 * connections and with a new connection per request (where every worker
 * wakes for each connection and one accepts it). Fresh process pairs, runs
 * alternating within each, unpinned (both workers need both cores); the
 * median over all runs of each side.
 */
async function listener(): Promise<BenchResult[]> {
  const wrkState = haveWrk();
  if (!wrkState.ok) return [{ name: 'serve-workers/listener: wrk rows', value: NaN, unit: '', note: wrkState.note }];
  const { dir, hello } = await helloService('weir-bench-listener-');
  const start = (env: Record<string, string>) => startServer([weir, 'serve', '--addr', '127.0.0.1:0', '--workers', '2', hello], { env, signal: 'SIGKILL' });
  const out: BenchResult[] = [];
  try {
    for (const [label, extra] of [['kept-alive connections', []], ['a new connection per request (Connection: close)', ['-H', 'Connection: close']]] as const) {
      const shared: number[] = [], reuse: number[] = [];
      for (let p = 0; p < PROCESSES; p++) {
        const a = await start({});
        const b = await start({ WEIR_SERVE_LISTENER: 'reuseport' });
        try {
          const run = async (url: string) => (await wrk(url, SECONDS, undefined, [...extra])).rps;
          await wrk(a.url, 1, undefined, [...extra]); await wrk(b.url, 1, undefined, [...extra]);
          for (let i = 0; i < 2; i++) {
            if ((p + i) % 2 === 0) { shared.push(await run(a.url)); reuse.push(await run(b.url)); } else { reuse.push(await run(b.url)); shared.push(await run(a.url)); }
          }
        } finally {
          await a.stop(); await b.stop();
        }
      }
      out.push({ name: `serve-workers/listener: WAT p3 hello, --workers 2, wrk -c50, ${label}: one shared listening socket`, value: median(shared), unit: 'req/s',
        baseline: median(reuse), baselineLabel: 'a SO_REUSEPORT listener per worker', higherIsBetter: true,
        note: `median of ${shared.length} runs each (${PROCESSES} process pairs, alternating); shared ${Math.round(Math.min(...shared))}-${Math.round(Math.max(...shared))}, SO_REUSEPORT ${Math.round(Math.min(...reuse))}-${Math.round(Math.max(...reuse))}` });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

export const benches: Bench[] = [{ name: 'serve-workers', run }, { name: 'serve-workers/rss', run: rssUnderLoad }, { name: 'serve-workers/listener', run: listener }];
