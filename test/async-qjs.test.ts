// The async Component Model against real components: guests built with
// componentize-qjs (component-model async runtime, WASI stubbed out) that
// return streams and futures, call async host imports, and serve each
// other's async imports.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { buildQjsComponent } from './helpers/fixtures.ts';
import { Component } from '../src/index.ts';
import { createWasi } from '../src/wasi/index.ts';
import { wasiP3DepsWit, wasiP3WitDir } from './helpers/wasi-p3-fixtures.ts';

// ------------------------------------------------------------------ fixtures

const PRODUCER_WIT = `package local:demo;

world producer {
  export bytes: async func(total: u32, chunk: u32) -> stream<u8>;
  export greeting: async func(name: string) -> future<string>;
  export words: async func(n: u32) -> stream<string>;
}
`;

// bytes(total, chunk): total bytes written in writes of `chunk` bytes. Chunk i
// carries the pattern (k * 7 + 3) & 255 at offset k, with byte 0 set to i & 255,
// so the host can recompute the content without buffering it.
const PRODUCER_JS = String.raw`
export async function bytes(total, chunk) {
  const { readable, writable } = wit.Stream(wit.Stream.U8);
  const buf = new Uint8Array(chunk);
  for (let k = 0; k < chunk; k++) buf[k] = (k * 7 + 3) & 255;
  (async () => {
    let sent = 0;
    let i = 0;
    while (sent < total) {
      const n = Math.min(chunk, total - sent);
      buf[0] = i & 255;
      await writable.writeAll(n === chunk ? buf : buf.subarray(0, n));
      sent += n;
      i++;
    }
    writable.drop();
  })();
  return readable;
}

export async function greeting(name) {
  const { readable, writable } = wit.Future(wit.Future.STRING);
  writable.write('hello, ' + name);
  return readable;
}

export async function words(n) {
  return (async function* () {
    for (let i = 0; i < n; i++) yield 'word-' + i;
  })();
}
`;

const PAIR_WIT = `package local:demo;

interface api {
  f: async func(x: string) -> string;
}

world server {
  export api;
}

world client {
  import api;
  export run: async func(x: string) -> string;
}
`;

const SERVER_JS = String.raw`
export const api = {
  async f(x) {
    await Promise.resolve();
    return '[' + x.toUpperCase() + ']';
  },
};
`;

const CLIENT_JS = String.raw`
import api from 'local:demo/api';

export async function run(x) {
  const a = await api.f(x);
  const both = await Promise.all([api.f(a + '1'), api.f(a + '2')]);
  return a + '|' + both.join(',');
}
`;

// componentize-qjs 0.4.5 cannot build a component whose *non-WASI* imports
// include an `async func`: its Wizer step links every import, stubs the
// non-WASI ones with sync functions, and wasmtime refuses them ("type mismatch
// with async"), with or without --stub-wasi. Async imports of WASI interfaces
// link (Wizer provides wasmtime-wasi for them), so the host-import and
// guest → guest cases below also go through an async WASI function,
// wasi:clocks/monotonic-clock@0.3.0 `wait-for: async func(how-long: duration)`,
// served by JS or by another qjs component.
const QJS_ASYNC_IMPORT_LIMITATION = /type mismatch with async/;

const CLOCKS = 'wasi:clocks/monotonic-clock@0.3.0';

function clocksWit(): string | undefined {
  const dir = wasiP3WitDir();
  return dir ? wasiP3DepsWit(dir, ['clocks']) : undefined;
}

/** Imports the 0.3 monotonic clock; `run(ms)` waits twice through the async import. */
const SLEEPER_WIT = (deps: string) => `package local:demo;

world sleeper {
  import ${CLOCKS};
  export run: async func(ms: u32) -> string;
}

${deps}`;

const SLEEPER_JS = String.raw`
import mono from 'wasi:clocks/monotonic-clock@0.3.0';

export async function run(ms) {
  const t0 = mono.now();
  await mono.waitFor(ms * 1000000);
  const t1 = mono.now();
  await Promise.all([mono.waitFor(1), mono.waitFor(2)]);
  return 'slept ' + ms + ' ms: ' + ((t1 - t0) >= ms * 1000000 ? 'ok' : 'too short ' + (t1 - t0));
}
`;

/** Exports the 0.3 monotonic clock interface (a virtual clock) and a log of the waits. */
const CLOCK_SERVER_WIT = (deps: string) => `package local:demo;

world clock-server {
  export ${CLOCKS};
  export waits: func() -> string;
}

${deps}`;

const CLOCK_SERVER_JS = String.raw`
let virtualNs = 1000;
const log = [];
export const monotonicClock = {
  now() { return virtualNs; },
  getResolution() { return 1; },
  async waitUntil(when) { await Promise.resolve(); if (when > virtualNs) virtualNs = when; log.push('until:' + when); },
  async waitFor(ns) { await Promise.resolve(); virtualNs += ns; log.push('for:' + ns); },
};
export function waits() { return log.join(','); }
`;

let producer: Component;
let server: Component | Error;
let client: Component | Error;
let sleeper: Component | Error | undefined;
let clockServer: Component | Error | undefined;

const settle = (p: Promise<string>): Promise<Component | Error> =>
  p.then((path) => Component.compile(readFileSync(path)), (e: unknown) => (e instanceof Error ? e : new Error(String(e))));

before(async () => {
  const deps = clocksWit();
  const [p, s, c, sl, cs] = await Promise.all([
    buildQjsComponent('async-qjs-producer', PRODUCER_WIT, 'producer', PRODUCER_JS, { stubWasi: true }),
    settle(buildQjsComponent('async-qjs-server', PAIR_WIT, 'server', SERVER_JS, { stubWasi: true })),
    settle(buildQjsComponent('async-qjs-client', PAIR_WIT, 'client', CLIENT_JS, { stubWasi: true })),
    deps ? settle(buildQjsComponent('async-qjs-sleeper', SLEEPER_WIT(deps), 'sleeper', SLEEPER_JS)) : undefined,
    deps ? settle(buildQjsComponent('async-qjs-clock-server', CLOCK_SERVER_WIT(deps), 'clock-server', CLOCK_SERVER_JS, { stubWasi: true })) : undefined,
  ]);
  producer = Component.compile(readFileSync(p));
  server = s;
  client = c;
  sleeper = sl;
  clockServer = cs;
});

// A full GC, so that memory figures count what is retained, not garbage not yet collected.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function instantiateProducer() {
  return producer.instantiate();
}

/** The sleeper's imports: Weir's WASI (for the qjs runtime's 0.2 imports) with `clock` as the 0.3 monotonic clock. */
function sleeperImports(clock: object) {
  const wasi = createWasi({});
  return { imports: { ...wasi.imports, [CLOCKS]: clock }, wasi };
}

// ------------------------------------------------------------------ tests

/** The position-sensitive checksum used on both sides: h = h * 31 + byte (mod 2^32). */
function expectedChecksum(total: number, chunk: number): number {
  const buf = new Uint8Array(chunk);
  for (let k = 0; k < chunk; k++) buf[k] = (k * 7 + 3) & 255;
  let h = 0;
  let sent = 0;
  for (let i = 0; sent < total; i++) {
    const n = Math.min(chunk, total - sent);
    buf[0] = i & 255;
    for (let k = 0; k < n; k++) h = (Math.imul(h, 31) + buf[k]) >>> 0;
    sent += n;
  }
  return h;
}

test('stream<u8>: 100 MB generated by the guest in 64 KiB writes; memory stays bounded', async (t) => {
  const TOTAL = 100 * 1024 * 1024;
  const CHUNK = 64 * 1024;
  const inst = instantiateProducer();
  const expected = expectedChecksum(TOTAL, CHUNK);
  // Warm up with 8 MiB first, so that V8's tier-up compilation of the large
  // QuickJS core module (tens of MB of machine code) is not counted below.
  let warm = 0;
  for await (const c of (await inst.exports.bytes(8 << 20, CHUNK)) as ReadableStream<Uint8Array>) warm += c.length;
  assert.equal(warm, 8 << 20);

  gc();
  const start = process.memoryUsage();
  let peakRss = start.rss;
  let peakAb = start.arrayBuffers;
  const sample = () => {
    const m = process.memoryUsage();
    if (m.rss > peakRss) peakRss = m.rss;
    if (m.arrayBuffers > peakAb) peakAb = m.arrayBuffers;
  };
  const timer = setInterval(sample, 5);

  const rs = (await inst.exports.bytes(TOTAL, CHUNK)) as ReadableStream<Uint8Array>;
  assert.ok(rs instanceof ReadableStream);
  let total = 0;
  let h = 0;
  let chunks = 0;
  try {
    for await (const chunk of rs) {
      assert.ok(chunk instanceof Uint8Array);
      for (let k = 0; k < chunk.length; k++) h = (Math.imul(h, 31) + chunk[k]) >>> 0;
      total += chunk.length;
      if ((++chunks & 63) === 0) sample();
      if ((chunks & 255) === 0) gc(); // every 16 MiB
    }
  } finally {
    clearInterval(timer);
  }
  sample();
  assert.equal(total, TOTAL);
  assert.equal(h, expected, 'checksum');
  const MB = 1024 * 1024;
  const rssGrowth = (peakRss - start.rss) / MB;
  const abGrowth = (peakAb - start.arrayBuffers) / MB;
  t.diagnostic(`peak growth while reading: rss ${rssGrowth.toFixed(1)} MB, arrayBuffers ${abGrowth.toFixed(1)} MB`);
  assert.ok(rssGrowth < 64, `rss grew by ${rssGrowth.toFixed(1)} MB while reading 100 MB`);
  assert.ok(abGrowth < 64, `arrayBuffers grew by ${abGrowth.toFixed(1)} MB while reading 100 MB`);
});

test('stream<u8>: a stalled reader stops the guest writer (backpressure)', async () => {
  const inst = instantiateProducer();
  const rs = (await inst.exports.bytes(200 << 20, 64 << 10)) as ReadableStream<Uint8Array>;
  const reader = rs.getReader();
  const first = await reader.read();
  assert.equal(first.value!.length, 64 << 10);
  gc();
  const before = process.memoryUsage().arrayBuffers;
  await new Promise((r) => setTimeout(r, 200));
  gc();
  const grew = (process.memoryUsage().arrayBuffers - before) / 1048576;
  assert.ok(grew < 8, `arrayBuffers grew by ${grew.toFixed(1)} MB while nobody read`);
  const second = await reader.read();
  assert.equal(second.value![0], 1, 'the next chunk is the guest\'s second write');
  await reader.cancel();
});

test('future<string> → a Promise resolving to the string', async () => {
  const inst = instantiateProducer();
  const p = inst.exports.greeting('weir');
  assert.ok(p instanceof Promise);
  // The call's Promise adopts the future's Promise, so awaiting it yields the string.
  assert.equal(await p, 'hello, weir');
  const all = await Promise.all(['a', 'b', 'c'].map((n) => inst.exports.greeting(n)));
  assert.deepEqual(all, ['hello, a', 'hello, b', 'hello, c']);
});

test('stream<string> → a ReadableStream of strings, one element per chunk', async () => {
  const inst = instantiateProducer();
  const rs = (await inst.exports.words(50)) as ReadableStream<string>;
  assert.ok(rs instanceof ReadableStream);
  const got: string[] = [];
  for await (const w of rs) {
    assert.equal(typeof w, 'string');
    got.push(w);
  }
  assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => `word-${i}`));
  // an empty stream ends at once
  const empty = (await inst.exports.words(0)) as ReadableStream<string>;
  const r = await empty.getReader().read();
  assert.equal(r.done, true);
});

test('a qjs async export awaits an async host import (a JS async function)', async (t) => {
  if (!sleeper) return t.skip('WASI 0.3.0 WIT not available');
  if (sleeper instanceof Error) throw sleeper;
  const waits: number[] = [];
  let now = 5_000_000n;
  const clock = {
    now: () => now,
    'get-resolution': () => 1n,
    'wait-until': async (when: bigint) => { await new Promise((r) => setImmediate(r)); if (when > now) now = when; },
    // a JS async function: the guest's task waits on its Promise
    'wait-for': async (ns: bigint) => {
      waits.push(Number(ns));
      await new Promise((r) => setTimeout(r, Number(ns / 1_000_000n)));
      now += ns;
    },
  };
  const { imports, wasi } = sleeperImports(clock);
  try {
    const inst = sleeper.instantiate(imports);
    const t0 = performance.now();
    assert.equal(await inst.exports.run(30), 'slept 30 ms: ok');
    assert.ok(performance.now() - t0 >= 29, 'the host Promise was awaited');
    assert.deepEqual(waits, [30_000_000, 1, 2]);
    // several tasks in one instance, all waiting on host Promises at once
    waits.length = 0;
    const rs = await Promise.all([10, 20, 5].map((ms) => inst.exports.run(ms)));
    assert.deepEqual(rs, ['slept 10 ms: ok', 'slept 20 ms: ok', 'slept 5 ms: ok']);
    assert.equal(waits.length, 9);
  } finally {
    wasi.close();
  }
});

test('two qjs components: one async export serves the other async import (local:demo/api)', async (t) => {
  if (client instanceof Error && QJS_ASYNC_IMPORT_LIMITATION.test(client.message)) {
    return t.skip(`componentize-qjs cannot build a component importing a non-WASI async func: ${client.message.split('\n').find((l) => QJS_ASYNC_IMPORT_LIMITATION.test(l))?.trim()}`);
  }
  if (server instanceof Error) throw server;
  if (client instanceof Error) throw client;
  const a = server.instantiate();
  const api = a.exports['local:demo/api'];
  assert.ok(api && typeof api.f === 'function');
  assert.equal(await api.f('direct'), '[DIRECT]');
  const b = client.instantiate({ 'local:demo/api': api });
  assert.equal(await b.exports.run('x'), '[X]|[[X]1],[[X]2]');
  const rs = await Promise.all(['p', 'q', 'r'].map((s) => b.exports.run(s)));
  assert.deepEqual(rs, ['p', 'q', 'r'].map((s) => `[${s.toUpperCase()}]|[[${s.toUpperCase()}]1],[[${s.toUpperCase()}]2]`));
});

test('the qjs server alone: its async export called from JS', async () => {
  if (server instanceof Error) throw server;
  const api = server.instantiate().exports['local:demo/api'];
  assert.equal(await api.f('direct'), '[DIRECT]');
  assert.deepEqual(await Promise.all(['a', 'b'].map((x) => api.f(x))), ['[A]', '[B]']);
});

test('two qjs components: one\'s async export (monotonic-clock wait-for) serves the other\'s async import', async (t) => {
  if (!sleeper || !clockServer) return t.skip('WASI 0.3.0 WIT not available');
  if (sleeper instanceof Error) throw sleeper;
  if (clockServer instanceof Error) throw clockServer;
  const a = clockServer.instantiate();
  const clock = a.exports[CLOCKS];
  // (members of instance exports and imports keep their WIT (kebab-case) names)
  assert.ok(clock && typeof clock['wait-for'] === 'function');
  const { imports, wasi } = sleeperImports(clock);
  try {
    const b = sleeper.instantiate(imports);
    // the virtual clock advances by exactly what was waited for
    assert.equal(await b.exports.run(7), 'slept 7 ms: ok');
    const log = (a.exports.waits as () => string)().split(',');
    assert.equal(log[0], 'for:7000000');
    assert.deepEqual(log.slice(1).sort(), ['for:1', 'for:2']);
    assert.equal(await b.exports.run(0), 'slept 0 ms: ok');
    assert.equal((a.exports.waits as () => string)().split(',').length, 6);
  } finally {
    wasi.close();
  }
});
