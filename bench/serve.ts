// `weir serve` throughput, latency and memory, each beside a plain node:http
// server doing the same job in the same run (all on loopback):
//   - hello: a minimal WAT p3 service (test/helpers/http-serve-fixtures.ts
//     helloWat) and the componentize-qjs service's `/` vs a node:http hello;
//     wrk, 50 connections; requests/s and p99.
//   - 1,000 requests in flight in ONE instance, each awaiting a 1 s sleep
//     (qjs `/sleep?ms=1000`, --max-instance-concurrent-reuse-count 1000): RSS
//     above idle vs a node:http server holding 1,000 requests open for 1 s.
//   - a long run of the WAT hello: RSS after warm-up vs at the end (flat = no
//     per-request leak).
// Needs wrk (Debian: apt-get install -y wrk); when it is missing and cannot be
// installed the wrk rows are skipped and say so. Figures are printed, never asserted.
// Every row runs weir serve with --workers 1 (one thread, like the node:http
// baseline); bench/serve-workers.ts compares worker counts.

import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bench, BenchResult } from './harness.ts';
import { haveWrk, rssMiB, startServer as start, weir, wrk } from './serve-harness.ts';

const SECONDS = Number(process.env.WEIR_BENCH_SERVE_SECONDS ?? 5);
const LONG_SECONDS = Number(process.env.WEIR_BENCH_SERVE_LONG_SECONDS ?? 20);

const PLAIN_HELLO = `require('node:http').createServer((q, r) => { r.writeHead(200, { 'content-type': 'text/plain' }); r.end('hello'); })
  .listen(0, '127.0.0.1', function () { process.stderr.write('Serving HTTP on http://127.0.0.1:' + this.address().port + '/\\n'); });`;
const PLAIN_SLEEP = `require('node:http').createServer((q, r) => { setTimeout(() => { r.end('slept'); }, 1000); })
  .listen(0, '127.0.0.1', function () { process.stderr.write('Serving HTTP on http://127.0.0.1:' + this.address().port + '/\\n'); });`;

async function buildFixtures(): Promise<{ hello: string; qjs: string | undefined; dir: string }> {
  const { helloWat, buildService } = await import('../test/helpers/http-serve-fixtures.ts');
  const { assembleText } = await import('../src/wast/assemble.ts');
  const dir = mkdtempSync(join(tmpdir(), 'weir-bench-serve-'));
  const hello = join(dir, 'hello.wasm');
  writeFileSync(hello, await assembleText(helloWat()));
  return { hello, qjs: await buildService(), dir };
}

/** Fires `n` requests at once (one connection each); resolves when all answered, sampling the server's RSS meanwhile. */
async function holdOpen(url: string, pid: number, n: number): Promise<{ peakMiB: number; ok: number }> {
  const agent = new Agent({ keepAlive: false, maxSockets: n + 10 });
  let peak = 0;
  const sampler = setInterval(() => { peak = Math.max(peak, rssMiB(pid)); }, 50);
  let ok = 0;
  await Promise.all(Array.from({ length: n }, () => new Promise<void>((res) => {
    const req = httpRequest(url, { agent }, (r) => { r.resume(); r.on('end', () => { if (r.statusCode === 200) ok++; res(); }); });
    req.on('error', () => res());
    req.end();
  })));
  clearInterval(sampler);
  agent.destroy();
  return { peakMiB: peak, ok };
}

async function run(): Promise<BenchResult[]> {
  if (!existsSync(weir)) throw new Error('run npm run build first');
  const out: BenchResult[] = [];
  const wrkState = haveWrk();
  const { hello, qjs, dir } = await buildFixtures();
  try {
    if (wrkState.ok) {
      const plain = await start(['-e', PLAIN_HELLO]);
      const wat = await start([weir, 'serve', '--addr', '127.0.0.1:0', '--workers', '1', hello]);
      await wrk(plain.url, 1); await wrk(wat.url, 1); // warm-up
      const base = await wrk(plain.url, SECONDS);
      const w = await wrk(wat.url, SECONDS);
      await wat.stop();
      out.push({ name: 'serve: p3 hello (WAT guest), wrk -c50', value: w.rps, unit: 'req/s', baseline: base.rps, baselineLabel: 'node:http hello', higherIsBetter: true,
        target: '≥ 0.8× baseline', targetMet: w.rps >= 0.8 * base.rps, note: wrkState.note || undefined });
      out.push({ name: 'serve: p3 hello (WAT guest) p99', value: w.p99ms, unit: 'ms', baseline: base.p99ms, baselineLabel: 'node:http hello p99' });
      if (qjs) {
        const q = await start([weir, 'serve', '--addr', '127.0.0.1:0', '--workers', '1', qjs]);
        await wrk(q.url, 1);
        const r = await wrk(q.url, SECONDS);
        await q.stop();
        out.push({ name: 'serve: p3 hello (componentize-qjs), wrk -c50', value: r.rps, unit: 'req/s', baseline: base.rps, baselineLabel: 'node:http hello', higherIsBetter: true });
        out.push({ name: 'serve: p3 hello (componentize-qjs) p99', value: r.p99ms, unit: 'ms', baseline: base.p99ms, baselineLabel: 'node:http hello p99' });
      }
      await plain.stop();
      // long run: RSS flat?
      const long = await start([weir, 'serve', '--addr', '127.0.0.1:0', '--workers', '1', hello]);
      await wrk(long.url, 2);
      const rss0 = rssMiB(long.pid);
      const lr = await wrk(long.url, LONG_SECONDS);
      const rss1 = rssMiB(long.pid);
      await long.stop();
      out.push({ name: `serve: long run, ~${Math.round(lr.rps * LONG_SECONDS / 1000)}k requests (WAT hello)`, value: rss1 - rss0, unit: 'MiB RSS growth',
        note: `RSS ${rss0.toFixed(0)} → ${rss1.toFixed(0)} MiB after warm-up` });
    } else {
      out.push({ name: 'serve: wrk rows', value: NaN, unit: '', note: wrkState.note });
    }
    if (qjs) {
      const N = 1000;
      const plain = await start(['-e', PLAIN_SLEEP]);
      const idleP = rssMiB(plain.pid);
      const p = await holdOpen(`${plain.url}`, plain.pid, N);
      await plain.stop();
      const w = await start([weir, 'serve', '--addr', '127.0.0.1:0', '--workers', '1', '--max-instance-concurrent-reuse-count', String(N), qjs]);
      await holdOpen(`${w.url}sleep?ms=0`, w.pid, 10); // the instance exists
      const idleW = rssMiB(w.pid);
      const t0 = performance.now();
      const h = await holdOpen(`${w.url}sleep?ms=1000`, w.pid, N);
      const ms = performance.now() - t0;
      await w.stop();
      const above = h.peakMiB - idleW;
      const baseAbove = p.peakMiB - idleP;
      out.push({ name: `serve: ${N} requests in flight in one instance (1 s sleep each)`, value: above, unit: 'MiB above idle', baseline: baseAbove,
        baselineLabel: `node:http holding ${N} requests`, target: '≤ 1.3× baseline', targetMet: above <= 1.3 * baseAbove,
        note: `${h.ok}/${N} ok in ${ms.toFixed(0)} ms; idle RSS ${idleW.toFixed(0)} MiB (node ${idleP.toFixed(0)})` });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

export const benches: Bench[] = [{ name: 'serve', run }];
