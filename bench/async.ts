// Async Component Model benchmarks: a callback-lifted export that returns at
// once, many tasks waiting on host futures, stream<u8> throughput through a
// guest, and (where it can run them) the same components under jco.
// Each row carries a plain-JS baseline measured in the same run.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse, transpile } from '@bytecodealliance/jco';
import { Component } from '../src/index.ts';
import { buildQjsComponent } from '../test/helpers/fixtures.ts';
import { type Bench, type BenchResult, gc, median, withTarget } from './harness.ts';

async function wat(text: string): Promise<Uint8Array> {
  const out = await (parse as (t: string) => Uint8Array | Promise<Uint8Array>)(text);
  return out instanceof Uint8Array ? out : new Uint8Array(out as ArrayLike<number>);
}

const now = (): bigint => process.hrtime.bigint();

// ---------------------------------------------------------------- fixtures

/** `inc: async func(x: u32) -> u32`, lifted with a callback; the core function task.returns and EXITs at once. */
const RETURN_NOW_WAT = `(component
  (core func $ret (canon task.return (result u32)))
  (core module $M
    (import "t" "ret" (func $ret (param i32)))
    (func (export "inc") (param $x i32) (result i32)
      (call $ret (i32.add (local.get $x) (i32.const 1)))
      (i32.const 0))
    (func (export "inc-cb") (param i32 i32 i32) (result i32) (unreachable)))
  (core instance $m (instantiate $M (with "t" (instance (export "ret" (func $ret))))))
  (func (export "inc") async (param "x" u32) (result u32)
    (canon lift (core func $m "inc") async (callback (core func $m "inc-cb")))))`;

/**
 * `run: async func()` calls the async host import `wait: async func()` (async
 * lower); when it does not return at once, the task puts the subtask in its own
 * waitable set (kept in context slot 0) and returns WAIT until the subtask returns.
 */
const WAIT_HOST_WAT = `(component
  (import "wait" (func $wait async))
  (core func $wait' (canon lower (func $wait) async))
  (core func $ret (canon task.return))
  (core func $wsnew (canon waitable-set.new))
  (core func $wsdrop (canon waitable-set.drop))
  (core func $join (canon waitable.join))
  (core func $sdrop (canon subtask.drop))
  (core func $cget (canon context.get i32 0))
  (core func $cset (canon context.set i32 0))
  (core module $M
    (import "t" "wait" (func $wait (result i32)))
    (import "t" "ret" (func $ret))
    (import "t" "wsnew" (func $wsnew (result i32)))
    (import "t" "wsdrop" (func $wsdrop (param i32)))
    (import "t" "join" (func $join (param i32 i32)))
    (import "t" "sdrop" (func $sdrop (param i32)))
    (import "t" "cget" (func $cget (result i32)))
    (import "t" "cset" (func $cset (param i32)))
    (func (export "run") (result i32) (local $r i32) (local $ws i32)
      (local.set $r (call $wait))
      (if (i32.eq (i32.and (local.get $r) (i32.const 0xf)) (i32.const 2))
        (then (call $ret) (return (i32.const 0))))
      (local.set $ws (call $wsnew))
      (call $cset (local.get $ws))
      (call $join (i32.shr_u (local.get $r) (i32.const 4)) (local.get $ws))
      (i32.or (i32.const 2) (i32.shl (local.get $ws) (i32.const 4))))
    (func (export "run-cb") (param $code i32) (param $idx i32) (param $payload i32) (result i32)
      (if (i32.eq (local.get $payload) (i32.const 2))
        (then
          (call $join (local.get $idx) (i32.const 0))
          (call $sdrop (local.get $idx))
          (call $wsdrop (call $cget))
          (call $ret)
          (return (i32.const 0))))
      (i32.or (i32.const 2) (i32.shl (call $cget) (i32.const 4)))))
  (core instance $m (instantiate $M (with "t" (instance
    (export "wait" (func $wait')) (export "ret" (func $ret)) (export "wsnew" (func $wsnew))
    (export "wsdrop" (func $wsdrop)) (export "join" (func $join)) (export "sdrop" (func $sdrop))
    (export "cget" (func $cget)) (export "cset" (func $cset))))))
  (func (export "run") async (canon lift (core func $m "run") async (callback (core func $m "run-cb")))))`;

const PIPE_WIT = `package local:bench;

world pipe {
  export pipe: async func(input: stream<u8>) -> stream<u8>;
}
`;

/** Copies every chunk of the input stream into the output stream, through guest memory. */
const PIPE_JS = String.raw`
export async function pipe(input) {
  return (async function* () {
    for await (const chunk of input) yield chunk;
  })();
}
`;

/** Transpiles a component with jco into a temporary directory and imports it. */
async function underJco(bytes: Uint8Array, name: string): Promise<{ mod: Record<string, unknown>; cleanup: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'weir-bench-jco-'));
  const { files } = await (transpile as unknown as (b: Uint8Array, o: object) => Promise<{ files: Record<string, Uint8Array> }>)(bytes, {
    name, instantiation: undefined, noTypescript: true, asyncMode: undefined,
  });
  for (const [f, data] of Object.entries(files)) {
    const p = join(dir, f);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, data);
  }
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  const mod = (await import(pathToFileURL(join(dir, `${name}.js`)).href)) as Record<string, unknown>;
  return { mod, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

// ---------------------------------------------------------------- (a) return at once

async function perCall(fn: (i: number) => Promise<unknown>, n: number): Promise<number> {
  const t0 = now();
  for (let i = 0; i < n; i++) await fn(i);
  return Number(now() - t0) / n;
}

async function pairAsync(a: (i: number) => Promise<unknown>, b: (i: number) => Promise<unknown>, n: number, samples: number): Promise<[number, number]> {
  await perCall(a, n); await perCall(b, n);
  const xa: number[] = [], xb: number[] = [];
  for (let s = 0; s < samples; s++) {
    if (s & 1) { xb.push(await perCall(b, n)); xa.push(await perCall(a, n)); } else { xa.push(await perCall(a, n)); xb.push(await perCall(b, n)); }
  }
  return [median(xa), median(xb)];
}

async function returnNow(): Promise<BenchResult[]> {
  const bytes = await wat(RETURN_NOW_WAT);
  const inc = Component.compile(bytes).instantiate().exports.inc as (x: number) => Promise<number>;
  if ((await inc(41)) !== 42) throw new Error('inc(41) !== 42');
  const jsInc = async (x: number): Promise<number> => x + 1;
  const [weirNs, baseNs] = await pairAsync(inc, jsInc, 20_000, 21);
  const out: BenchResult[] = [withTarget({
    name: 'JS → callback-lifted async export returning at once (await per call)',
    value: weirNs / 1000,
    unit: 'µs/call',
    baseline: baseNs / 1000,
    baselineLabel: 'await of a JS async function',
    target: '≤ 3 µs',
  }, 3, '<=')];

  // (d) the same component under jco
  try {
    const { mod, cleanup } = await underJco(bytes, 'returnnow');
    try {
      const jInc = mod.inc as (x: number) => unknown;
      const r = await jInc(41);
      if (r !== 42) throw new Error(`jco's inc(41) returned ${String(r)}`);
      const [w, j] = await pairAsync(inc, async (i) => jInc(i), 20_000, 21);
      out.push({
        name: 'same async export under jco 1.35 (transpiled)',
        value: j / 1000,
        unit: 'µs/call',
        baseline: w / 1000,
        baselineLabel: 'Weir (same run)',
        note: `jco / Weir = ${(j / w).toFixed(2)}`,
      });
    } finally {
      cleanup();
    }
  } catch (e) {
    out.push({ name: 'same async export under jco 1.35', value: NaN, unit: '', note: `jco cannot run it: ${String((e as Error).message ?? e).split('\n')[0].slice(0, 160)}` });
  }
  return out;
}

// ---------------------------------------------------------------- (b) 10,000 waiting tasks

const TASKS = 10_000;

async function settleMemory(): Promise<{ heap: number; rss: number; ab: number }> {
  for (let i = 0; i < 3; i++) { await new Promise((r) => setImmediate(r)); gc(); }
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss, ab: m.arrayBuffers };
}

async function pendingTasks(): Promise<BenchResult[]> {
  const bytes = await wat(WAIT_HOST_WAT);
  const resolvers: (() => void)[] = [];
  const wait = (): Promise<void> => new Promise<void>((r) => { resolvers.push(r); });
  const inst = Component.compile(bytes).instantiate({ wait });
  const run = inst.exports.run as () => Promise<void>;
  // warm-up: a few tasks, resolved
  { const ps = Array.from({ length: 100 }, () => run()); await new Promise((r) => setImmediate(r)); resolvers.splice(0).forEach((r) => r()); await Promise.all(ps); }

  const measure = async (start: () => Promise<unknown>[]): Promise<{ heap: number; rss: number }> => {
    const m0 = await settleMemory();
    const ps = start();
    const m1 = await settleMemory();
    if (resolvers.length !== TASKS) throw new Error(`${resolvers.length} host calls pending, expected ${TASKS}`);
    resolvers.splice(0).forEach((r) => r());
    await Promise.all(ps);
    return { heap: (m1.heap - m0.heap) / TASKS, rss: (m1.rss - m0.rss) / TASKS };
  };
  const weir = await measure(() => Array.from({ length: TASKS }, () => run()));
  const jsTask = async (): Promise<void> => { await wait(); };
  const base = await measure(() => Array.from({ length: TASKS }, () => jsTask()));
  const weir2 = await measure(() => Array.from({ length: TASKS }, () => run()));
  const heap = Math.min(weir.heap, weir2.heap);
  return [withTarget({
    name: `${TASKS} concurrent tasks awaiting a host future: JS heap per task`,
    value: heap,
    unit: 'B/task',
    baseline: base.heap,
    baselineLabel: 'pending JS async function awaiting a host Promise',
    target: '≤ 1.5 KiB',
    note: `rss per task: Weir ${Math.round(Math.min(weir.rss, weir2.rss))} B, baseline ${Math.round(base.rss)} B (rss is noisy)`,
  }, 1536, '<=')];
}

// ---------------------------------------------------------------- (c) stream throughput

const CHUNK = 64 * 1024;
const STREAM_BYTES = 256 * 1024 * 1024;

function source(total: number): ReadableStream<Uint8Array> {
  const buf = new Uint8Array(CHUNK).fill(7);
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent >= total) { c.close(); return; }
      c.enqueue(buf.slice());
      sent += CHUNK;
    },
  }, { highWaterMark: 0 });
}

async function drain(rs: ReadableStream<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const c of rs) n += c.length;
  return n;
}

async function streamThroughput(): Promise<BenchResult[]> {
  const path = await buildQjsComponent('bench-pipe', PIPE_WIT, 'pipe', PIPE_JS, { stubWasi: true });
  const bytes = new Uint8Array(readFileSync(path));
  const pipe = Component.compile(bytes).instantiate().exports.pipe as (s: ReadableStream<Uint8Array>) => Promise<ReadableStream<Uint8Array>>;
  const viaWeir = async (): Promise<number> => {
    const t0 = now();
    const n = await drain(await pipe(source(STREAM_BYTES)));
    if (n !== STREAM_BYTES) throw new Error(`piped ${n} bytes, expected ${STREAM_BYTES}`);
    return Number(now() - t0);
  };
  const viaJs = async (): Promise<number> => {
    const t0 = now();
    const n = await drain(source(STREAM_BYTES).pipeThrough(new TransformStream<Uint8Array, Uint8Array>()));
    if (n !== STREAM_BYTES) throw new Error(`piped ${n} bytes`);
    return Number(now() - t0);
  };
  await viaWeir(); await viaJs();
  const xw: number[] = [], xj: number[] = [];
  for (let i = 0; i < 3; i++) { xw.push(await viaWeir()); xj.push(await viaJs()); }
  const gbps = (ns: number): number => STREAM_BYTES / ns;
  const out: BenchResult[] = [withTarget({
    name: 'stream<u8> host → qjs guest → host, 64 KiB chunks (componentize-qjs pipe)',
    value: gbps(median(xw)),
    unit: 'GB/s',
    higherIsBetter: true,
    baseline: gbps(median(xj)),
    baselineLabel: 'JS identity TransformStream, same source and sink',
    target: '≥ 1 GB/s',
    note: 'guest copies each chunk through QuickJS (for await … yield)',
  }, 1, '>=')];

  try {
    const { mod, cleanup } = await underJco(bytes, 'pipe');
    try {
      const jpipe = mod.pipe as (s: unknown) => Promise<unknown>;
      const t0 = now();
      const r = await jpipe(source(8 << 20));
      const n = await drain(r as ReadableStream<Uint8Array>);
      const ns = Number(now() - t0);
      if (n !== 8 << 20) throw new Error(`jco piped ${n} bytes, expected ${8 << 20}`);
      out.push({
        name: 'same pipe under jco 1.35 (8 MiB only: jco is slow)',
        value: (8 << 20) / ns,
        unit: 'GB/s',
        higherIsBetter: true,
        baseline: gbps(median(xw)),
        baselineLabel: 'Weir (same run, 256 MiB)',
      });
    } finally {
      cleanup();
    }
  } catch (e) {
    out.push({ name: 'same pipe under jco 1.35', value: NaN, unit: '', note: `jco cannot run it: ${String((e as Error).message ?? e).split('\n')[0].slice(0, 160)}` });
  }
  return out;
}

export const benches: Bench[] = [
  { name: 'async/return-now', run: returnNow },
  { name: 'async/pending-tasks', run: pendingTasks },
  { name: 'async/stream-throughput', run: streamThroughput },
];
