// Outgoing HTTP: one send per inbound request to a local upstream.
//
// A front server answers each inbound request by sending one request to an
// upstream server and relaying its body. Weir's row sends with HttpClient (the
// pool behind wasi:http client.send / outgoing-handler); the baseline does the
// same with `fetch` in plain Node. Everything is on loopback in this process;
// the load generator keeps CONCURRENCY keep-alive connections busy for a fixed
// time. The figure is inbound requests per second (higher is better).

import { createServer, Agent, request as httpRequest, type Server } from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Bench, BenchResult } from './harness.ts';
import { HttpClient } from '../src/wasi/core/http/client.ts';
import { OutboundPolicy } from '../src/wasi/core/http/policy.ts';

const CONCURRENCY = 16;
const DURATION_MS = 2000;

function listen(s: Server): Promise<number> {
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)));
}

async function load(port: number, path = '/', headers: Record<string, string> = {}): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let done = 0;
  const end = Date.now() + DURATION_MS;
  const one = (): Promise<void> => new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers, agent }, (res) => {
      res.resume();
      res.on('end', () => { done++; resolve(); });
    });
    req.on('error', reject);
    req.end();
  });
  const t0 = Date.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => { while (Date.now() < end) await one(); }));
  const secs = (Date.now() - t0) / 1000;
  agent.destroy();
  return done / secs;
}

async function run(): Promise<BenchResult[]> {
  const payload = Buffer.from('hello from upstream\n');
  const upstream = createServer((_q, r) => { r.setHeader('content-type', 'text/plain'); r.end(payload); });
  const upPort = await listen(upstream);

  const client = new HttpClient({ policy: new OutboundPolicy([`127.0.0.1:${upPort}`]) });
  const weirFront = createServer(async (_q, r) => {
    const res = await client.send({
      method: 'GET', scheme: 'HTTP', authority: `127.0.0.1:${upPort}`, pathWithQuery: '/',
      headers: [], body: { stream: null, trailers: Promise.resolve(null) },
    });
    r.statusCode = res.status;
    for await (const chunk of res.body.stream!) r.write(chunk);
    r.end();
  });
  const fetchFront = createServer(async (_q, r) => {
    const res = await fetch(`http://127.0.0.1:${upPort}/`);
    r.statusCode = res.status;
    r.end(Buffer.from(await res.arrayBuffer()));
  });
  const weirPort = await listen(weirFront);
  const fetchPort = await listen(fetchFront);
  try {
    // Warm both paths (JIT, pools), then alternate measurements.
    await load(weirPort); await load(fetchPort);
    const w: number[] = [];
    const f: number[] = [];
    for (let i = 0; i < 2; i++) { w.push(await load(weirPort)); f.push(await load(fetchPort)); }
    const weir = Math.max(...w);
    const base = Math.max(...f);
    return [{
      name: 'http client: one outgoing send per inbound request',
      value: weir, unit: 'req/s', higherIsBetter: true,
      baseline: base, baselineLabel: 'same front server using fetch (plain Node)',
      target: '≥ 0.7× baseline', targetMet: weir >= 0.7 * base,
      note: `loopback, ${CONCURRENCY} keep-alive connections, ${DURATION_MS / 1000}s runs, best of 2`,
    }];
  } finally {
    client.close();
    for (const s of [upstream, weirFront, fetchFront]) { s.closeAllConnections(); s.close(); }
  }
}

// ---- through `weir serve` ----------------------------------------------
//
// The same shape end to end: `weir serve` runs a WASI 0.3 guest whose handler
// does one client.send (POST "ping" to the upstream's /echo, reads the echoed
// body) per inbound request; the baseline is a plain Node server process doing
// the same with fetch. Both fronts are child processes; the load generator and
// the upstream run here. The guest is wasi-testsuite's http-client component
// (prebuilt; not part of this repository): set WASI_TESTSUITE to a checkout
// (branch prod/testsuite-base), default ../wasi-testsuite.

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const suite = process.env.WASI_TESTSUITE ?? join(repo, '..', 'wasi-testsuite');
const guest = join(suite, 'tests', 'rust', 'testsuite', 'wasm32-wasip3', 'http-client.wasm');

const FETCH_FRONT = `
const { createServer } = require('node:http');
const up = process.env.HTTP_SERVER_MAIN;
const s = createServer(async (q, r) => {
  const res = await fetch('http://' + up + '/echo', { method: 'POST', body: 'ping', headers: { 'content-length': '4' } });
  await res.arrayBuffer();
  r.statusCode = 200;
  r.end();
});
s.listen(0, '127.0.0.1', () => process.stderr.write('Serving HTTP on http://127.0.0.1:' + s.address().port + '/\\n'));
process.on('SIGINT', () => process.exit(0));
`;

function startFront(argv: string[], env: NodeJS.ProcessEnv): Promise<{ port: number; proc: ChildProcess }> {
  return new Promise((ok, fail) => {
    const proc = spawn(process.execPath, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr!.on('data', (d) => {
      err += d;
      const m = /Serving HTTP on http:\/\/[^:]+:(\d+)\//.exec(err);
      if (m) ok({ port: Number(m[1]), proc });
    });
    proc.once('exit', (c) => fail(new Error(`front exited ${c}: ${err}`)));
  });
}

async function runServe(): Promise<BenchResult[]> {
  const name = 'weir serve: a 0.3 guest doing one client.send per inbound request';
  if (!existsSync(guest)) return [{ name: `${name} (skipped: no wasi-testsuite checkout at ${suite}; set WASI_TESTSUITE)`, value: NaN, unit: '' }];
  const upstream = createServer((q, r) => { const b: Buffer[] = []; q.on('data', (d: Buffer) => b.push(d)); q.on('end', () => r.end(Buffer.concat(b))); });
  const upPort = await listen(upstream);
  const up = `127.0.0.1:${upPort}`;
  const weir = await startFront([join(repo, 'dist', 'cli', 'main.js'), 'serve', '--addr', '127.0.0.1:0', '--env', `HTTP_SERVER_MAIN=${up}`, '--allow-outbound', up, guest], {});
  const base = await startFront(['-e', FETCH_FRONT], { HTTP_SERVER_MAIN: up });
  try {
    await load(weir.port); await load(base.port);
    const w: number[] = [];
    const f: number[] = [];
    for (let i = 0; i < 2; i++) { w.push(await load(weir.port)); f.push(await load(base.port)); }
    const wv = Math.max(...w);
    const bv = Math.max(...f);
    return [{
      name, value: wv, unit: 'req/s', higherIsBetter: true,
      baseline: bv, baselineLabel: 'plain Node server process doing the same with fetch',
      target: '≥ 0.7× baseline', targetMet: wv >= 0.7 * bv,
      note: `loopback, ${CONCURRENCY} keep-alive connections, ${DURATION_MS / 1000}s runs, best of 2; guest: wasi-testsuite http-client`,
    }];
  } finally {
    weir.proc.kill('SIGKILL');
    base.proc.kill('SIGKILL');
    upstream.closeAllConnections();
    upstream.close();
  }
}

// A WASI 0.2 proxy (componentize-js / StarlingMonkey, built and cached by the
// test helper): GET /proxy with an x-upstream header does one fetch() through
// outgoing-handler. WASI 0.2 instances serve one request each, so this also
// pays an instantiation per request. Baseline: the same plain Node fetch front.
async function runServeP2(): Promise<BenchResult[]> {
  const { buildJsProxy, PROXY_JS } = await import('../test/helpers/http-fixtures.ts');
  const wasm = await buildJsProxy('p2-proxy', PROXY_JS);
  const upstream = createServer((_q, r) => r.end('pong'));
  const upPort = await listen(upstream);
  const up = `127.0.0.1:${upPort}`;
  const weir = await startFront([join(repo, 'dist', 'cli', 'main.js'), 'serve', '--addr', '127.0.0.1:0', '--allow-outbound', up, wasm], {});
  const base = await startFront(['-e', FETCH_FRONT], { HTTP_SERVER_MAIN: up });
  const headers = { 'x-upstream': `http://${up}/echo` };
  try {
    await load(weir.port, '/proxy', headers); await load(base.port);
    const w: number[] = [];
    const f: number[] = [];
    for (let i = 0; i < 2; i++) { w.push(await load(weir.port, '/proxy', headers)); f.push(await load(base.port)); }
    const wv = Math.max(...w);
    const bv = Math.max(...f);
    return [{
      name: 'weir serve: a 0.2 proxy (componentize-js) doing one fetch per inbound request',
      value: wv, unit: 'req/s', higherIsBetter: true,
      baseline: bv, baselineLabel: 'plain Node server process doing one fetch per request',
      note: `one new instance per request (WASI 0.2); loopback, ${CONCURRENCY} connections, best of 2`,
    }];
  } finally {
    weir.proc.kill('SIGKILL');
    base.proc.kill('SIGKILL');
    upstream.closeAllConnections();
    upstream.close();
  }
}

export const benches: Bench[] = [
  { name: 'http client', run },
  { name: 'http client through weir serve', run: runServe },
  { name: 'http client through weir serve, WASI 0.2', run: runServeP2 },
];
