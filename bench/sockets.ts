// wasi:sockets benchmarks, each beside a plain node:net baseline measured in
// the same run. Printed, never asserted. Loopback only.
//
// Guests: a hand-written WAT echo server (bench/sockets-wat.ts; copies every
// chunk through its linear memory, serves connections one at a time), and
// the componentize-qjs program of
// test/helpers/wasi-sockets-fixtures.ts (`tcp-echo-server`: every accepted
// connection echoed by its own async loop through receive()/send() streams),
// run by the built `weir run -S inherit-network` in its own process. The
// baseline is a node:net echo server (socket.pipe(socket)) in its own process.
// The client (this process) is the same for both.
//
// WEIR_BENCH_SOCKET_MB sets the echo volume (default 128 MiB each way);
// WEIR_BENCH_CONNS the number of held connections (default 1000).

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { repoRoot } from '../test/helpers/fixtures.ts';
import { buildSocketsCmd } from '../test/helpers/wasi-sockets-fixtures.ts';
import { mkdirSync, writeFileSync } from 'node:fs';
import { parse } from '@bytecodealliance/jco';
import { ECHO_WAT } from './sockets-wat.ts';
import { type Bench, type BenchResult, median, withTarget } from './harness.ts';

const node = process.execPath;
const mainJs = join(repoRoot, 'dist', 'cli', 'main.js');
const MB = Number(process.env.WEIR_BENCH_SOCKET_MB ?? 128);
const CONNS = Number(process.env.WEIR_BENCH_CONNS ?? 1000);

const NODE_ECHO = `
const net = require('net');
const s = net.createServer({ allowHalfOpen: true }, (c) => c.pipe(c));
s.listen(0, '127.0.0.1', () => console.log('listening 127.0.0.1:' + s.address().port));
`;

interface Server { proc: ChildProcess; port: number }

async function start(args: string[]): Promise<Server> {
  const proc = spawn(node, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      const m = /listening 127\.0\.0\.1:(\d+)/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    proc.on('exit', (c) => reject(new Error(`server exited (${c}) before listening: ${buf}`)));
    setTimeout(() => reject(new Error('server did not start')), 30000).unref();
  });
  return { proc, port };
}

/** The guest echo server; `splice` hands the receive stream straight to send (bytes never enter the guest). */
async function guestServer(count: number, splice = false): Promise<Server> {
  const wasm = await buildSocketsCmd();
  if (!wasm) throw new Error('WASI 0.3.0 WIT not found');
  return start([mainJs, 'run', '-S', 'inherit-network', wasm, 'tcp-echo-server', '127.0.0.1', '0', String(count), ...(splice ? ['splice'] : [])]);
}
const nodeServer = () => start(['-e', NODE_ECHO]);

let watFile: string | undefined;
/** The WAT guest (bench/sockets-wat.ts) serving `count` connections one after another, in its own process. */
async function watServer(count: number): Promise<Server> {
  if (!watFile) {
    const dir = join(repoRoot, '.cache', 'fixtures');
    mkdirSync(dir, { recursive: true });
    watFile = join(dir, 'bench-sockets-echo-wat.wasm');
    writeFileSync(watFile, await parse(ECHO_WAT));
  }
  return start([join(repoRoot, 'bench', 'sockets-wat.ts'), watFile, String(count)]);
}

function stop(s: Server): void { if (s.proc.exitCode === null) s.proc.kill(); }

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

const open = (port: number) => new Promise<Socket>((resolve, reject) => {
  const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(s));
  s.on('error', reject);
});

/** Sends `bytes` through one connection and reads the echo concurrently; MiB/s of the echoed volume. */
async function echoThroughput(port: number, bytes: number): Promise<number> {
  const s = await open(port);
  const chunk = Buffer.alloc(256 << 10, 0x5a);
  const t0 = performance.now();
  let got = 0;
  const done = new Promise<void>((resolve, reject) => {
    s.on('data', (d: Buffer) => { got += d.length; });
    s.on('end', () => resolve());
    s.on('error', reject);
  });
  let sent = 0;
  while (sent < bytes) {
    const n = Math.min(chunk.length, bytes - sent);
    sent += n;
    if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) await new Promise((r) => s.once('drain', r));
  }
  s.end();
  await done;
  const ms = performance.now() - t0;
  s.destroy();
  if (got !== bytes) throw new Error(`echoed ${got} of ${bytes} bytes`);
  return (bytes / (1 << 20)) / (ms / 1000);
}

async function throughput(): Promise<BenchResult[]> {
  const bytes = MB << 20;
  const g: number[] = [], sp: number[] = [], w: number[] = [], b: number[] = [];
  // Interleaved, so that load from elsewhere on the machine hits all alike.
  for (let i = 0; i < 3; i++) {
    const ws = await watServer(1);
    try { w.push(await echoThroughput(ws.port, bytes)); } finally { stop(ws); }
    const gs = await guestServer(1);
    try { g.push(await echoThroughput(gs.port, bytes)); } finally { stop(gs); }
    const ss = await guestServer(1, true);
    try { sp.push(await echoThroughput(ss.port, bytes)); } finally { stop(ss); }
    const ns = await nodeServer();
    try { b.push(await echoThroughput(ns.port, bytes)); } finally { stop(ns); }
  }
  const base = median(b);
  const label = 'node:net echo server (c.pipe(c)), own process';
  return [withTarget({
    name: `TCP echo, 1 connection, ${MB} MiB each way, WAT p3 guest copying every chunk through its memory (256 KiB reads)`,
    value: median(w), unit: 'MiB/s', higherIsBetter: true, baseline: base, baselineLabel: label, target: '≥ 70% of node',
  }, 0.7 * base, '>='), withTarget({
    name: `TCP echo, 1 connection, ${MB} MiB each way, qjs p3 guest copying every chunk (read → write)`,
    value: median(g), unit: 'MiB/s', higherIsBetter: true, baseline: base, baselineLabel: label, target: '≥ 70% of node',
  }, 0.7 * base, '>='), withTarget({
    name: `TCP echo, 1 connection, ${MB} MiB each way, qjs p3 guest passing receive's stream to send`,
    value: median(sp), unit: 'MiB/s', higherIsBetter: true, baseline: base, baselineLabel: label, target: '≥ 70% of node',
  }, 0.7 * base, '>=')];
}

/** Opens `n` connections, measures the server's RSS growth, then checks every one still echoes. */
async function held(s: Server, n: number): Promise<{ kib: number; echoed: number }> {
  await new Promise((r) => setTimeout(r, 300));
  const idle = rssKiB(s.proc.pid!);
  const socks: Socket[] = [];
  for (let i = 0; i < n; i += 50) {
    socks.push(...await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => open(s.port))));
  }
  // Let the server accept and set up every connection.
  await new Promise((r) => setTimeout(r, 1500));
  const loaded = rssKiB(s.proc.pid!);
  let echoed = 0;
  await Promise.all(socks.map((c, i) => new Promise<void>((resolve) => {
    const msg = `c${i}`;
    let got = '';
    c.setEncoding('utf8').on('data', (d: string) => { got += d; if (got === msg) { echoed++; resolve(); } });
    c.on('error', () => resolve());
    c.write(msg);
    setTimeout(resolve, 20000).unref();
  })));
  for (const c of socks) c.destroy();
  return { kib: loaded - idle, echoed };
}

async function manyConnections(): Promise<BenchResult[]> {
  const gs = await guestServer(CONNS);
  let g;
  try { g = await held(gs, CONNS); } finally { stop(gs); }
  const ns = await nodeServer();
  let b;
  try { b = await held(ns, CONNS); } finally { stop(ns); }
  return [withTarget({
    name: `${CONNS} concurrent TCP connections held by one qjs p3 guest: RSS above idle (${g.echoed}/${CONNS} still echo)`,
    value: g.kib / 1024, unit: 'MB', baseline: b.kib / 1024,
    baselineLabel: `node:net echo server (${b.echoed}/${CONNS} echo)`, target: '≤ 20 MB',
  }, 20, '<=')];
}

/** connect + one 1-byte round trip + close, sequentially; median ms per connection. */
async function perConnection(port: number, n: number): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const s = await open(port);
    await new Promise<void>((resolve, reject) => {
      s.once('data', () => resolve());
      s.once('error', reject);
      s.write('x');
    });
    s.end();
    await new Promise<void>((r) => { s.once('close', () => r()); s.resume(); });
    xs.push(performance.now() - t0);
  }
  return median(xs);
}

async function connectRoundTrip(): Promise<BenchResult[]> {
  const n = 500;
  const gs = await guestServer(n + 50);
  let g;
  try { await perConnection(gs.port, 50); g = await perConnection(gs.port, n); } finally { stop(gs); }
  const ws = await watServer(n + 50);
  let w;
  try { await perConnection(ws.port, 50); w = await perConnection(ws.port, n); } finally { stop(ws); }
  const ns = await nodeServer();
  let b;
  try { await perConnection(ns.port, 50); b = await perConnection(ns.port, n); } finally { stop(ns); }
  return [withTarget({
    name: `connect + 1-byte round trip + close (until the server's FIN), per connection, WAT p3 guest server`,
    value: w, unit: 'ms', baseline: b, baselineLabel: 'node:net echo server', target: '≤ 1.5× node',
  }, 1.5 * b, '<='), withTarget({
    name: `connect + 1-byte round trip + close (until the server's FIN), per connection, qjs p3 guest server`,
    value: g, unit: 'ms', baseline: b, baselineLabel: 'node:net echo server', target: '≤ 1.5× node',
  }, 1.5 * b, '<=')];
}

/** Wall ms of `weir run … tcp-rtt 127.0.0.1 PORT n`. */
async function guestClientRun(port: number, n: number): Promise<number> {
  const wasm = await buildSocketsCmd();
  if (!wasm) throw new Error('WASI 0.3.0 WIT not found');
  const t0 = performance.now();
  const p = spawn(node, [mainJs, 'run', '-S', 'inherit-network', wasm, 'tcp-rtt', '127.0.0.1', String(port), String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  const code = await new Promise<number | null>((r) => p.on('exit', r));
  if (code !== 0 || out.trim() !== `done ${n}`) throw new Error(`tcp-rtt failed (${code}): ${out}`);
  return performance.now() - t0;
}

async function clientRoundTrip(): Promise<BenchResult[]> {
  const n = 1000;
  const ns = await nodeServer();
  try {
    const g: number[] = [], b: number[] = [];
    for (let i = 0; i < 3; i++) {
      // Per connection: the run with n connections minus the same run with none (start-up).
      g.push((await guestClientRun(ns.port, n) - await guestClientRun(ns.port, 0)) / n);
      b.push(await perConnection(ns.port, n));
    }
    return [withTarget({
      name: 'connect + 1-byte round trip + close, qjs p3 guest as the client (sequential, per connection)',
      value: median(g), unit: 'ms', baseline: median(b), baselineLabel: 'node:net client, same loop, same server', target: '≤ 1.5× node',
    }, 1.5 * median(b), '<=')];
  } finally { stop(ns); }
}

export const benches: Bench[] = [
  { name: 'sockets/tcp-echo-throughput', run: throughput },
  { name: 'sockets/held-connections', run: manyConnections },
  { name: 'sockets/connect-round-trip', run: connectRoundTrip },
  { name: 'sockets/client-round-trip', run: clientRoundTrip },
];
