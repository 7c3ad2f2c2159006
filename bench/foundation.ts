// Foundation benchmarks: compile, instantiate, a string call from JS, and a
// guest → guest call between two separately compiled components. Each prints
// a plain-JS / plain-wasm baseline from the same run next to Weir's figure.

import { readFileSync } from 'node:fs';
import { parse } from '@bytecodealliance/jco';
import { Component } from '../src/index.ts';
import { decodeComponent } from '../src/binary/decode.ts';
import type { ComponentAst } from '../src/binary/ast.ts';
import { buildHello } from '../test/helpers/fixtures.ts';
import { type Bench, type BenchResult, gc, timeNs, timePair, withTarget } from './harness.ts';

const NS_PER_MS = 1e6;

async function wat(text: string): Promise<Uint8Array> {
  const out = await (parse as (t: string) => Uint8Array | Promise<Uint8Array>)(text);
  return out instanceof Uint8Array ? out : new Uint8Array(out as ArrayLike<number>);
}

/** Every core module in a component binary, depth first through nested components. */
export function coreModules(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const walk = (c: ComponentAst): void => {
    for (const d of c.definitions) {
      if (d.kind === 'core-module') out.push(d.bytes);
      else if (d.kind === 'component') walk(d.component);
    }
  };
  walk(decodeComponent(bytes));
  return out;
}

// ---------------------------------------------------------------- fixtures

/**
 * A small component: three core modules (an allocator owning the memory, the
 * main code, and a module whose start function initialises memory), lifted
 * exports `echo: func(s: string) -> string` and `add: func(a: u32, b: u32) -> u32`.
 */
export const SMALL_WAT = `(component
  (core module $Libc
    (memory (export "mem") 1)
    (global $bump (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (local $p i32)
      (local.set $p
        (i32.and
          (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
          (i32.sub (i32.const 0) (local.get 2))))
      (global.set $bump (i32.add (local.get $p) (local.get 3)))
      (local.get $p))
    (func (export "reset") (global.set $bump (i32.const 1024))))
  (core module $Init
    (import "libc" "mem" (memory 1))
    (func $start (i32.store (i32.const 0) (i32.const 0x57454952)))
    (start $start))
  (core module $Main
    (import "libc" "mem" (memory 1))
    (import "libc" "reset" (func $reset))
    (func (export "echo") (param $p i32) (param $l i32) (result i32)
      (i32.store (i32.const 8) (local.get $p))
      (i32.store (i32.const 12) (local.get $l))
      (i32.const 8))
    (func (export "echo-post") (param i32) (call $reset))
    (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))
  (core instance $libc (instantiate $Libc))
  (core instance $init (instantiate $Init (with "libc" (instance $libc))))
  (core instance $main (instantiate $Main (with "libc" (instance $libc))))
  (func (export "echo") (param "s" string) (result string)
    (canon lift (core func $main "echo")
      (memory (core memory $libc "mem")) (realloc (core func $libc "realloc")) (post-return (core func $main "echo-post"))))
  (func (export "add") (param "a" u32) (param "b" u32) (result u32)
    (canon lift (core func $main "add")))
)`;

const LIST_BYTES = 64 * 1024;

/** Component A: exports instance `x:y/z` with `consume: func(data: list<u8>) -> u32`. */
export const CALLEE_WAT = `(component
  (core module $A
    (memory (export "mem") 2)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 16))
    (func (export "consume") (param $p i32) (param $l i32) (result i32)
      (i32.add (i32.load8_u (local.get $p)) (local.get $l))))
  (core instance $a (instantiate $A))
  (func $consume (param "data" (list u8)) (result u32)
    (canon lift (core func $a "consume") (memory (core memory $a "mem")) (realloc (core func $a "realloc"))))
  (instance $z (export "consume" (func $consume)))
  (export "x:y/z" (instance $z))
)`;

/** Component B: imports `x:y/z`, exports `run: func(n: u32) -> u32` calling `consume` n times with 64 KiB. */
export const CALLER_WAT = `(component
  (import "x:y/z" (instance $z
    (export "consume" (func (param "data" (list u8)) (result u32)))))
  (core module $Mem (memory (export "mem") 2))
  (core instance $mem (instantiate $Mem))
  (core func $consume (canon lower (func $z "consume") (memory (core memory $mem "mem"))))
  (core module $B
    (import "m" "mem" (memory 2))
    (import "z" "consume" (func $c (param i32 i32) (result i32)))
    (func (export "run") (param $n i32) (result i32) (local $acc i32)
      (block $done
        (loop $l
          (br_if $done (i32.eqz (local.get $n)))
          (local.set $acc (i32.add (local.get $acc) (call $c (i32.const 0) (i32.const ${LIST_BYTES}))))
          (local.set $n (i32.sub (local.get $n) (i32.const 1)))
          (br $l)))
      (local.get $acc)))
  (core instance $b (instantiate $B
    (with "m" (instance $mem))
    (with "z" (instance (export "consume" (func $consume))))))
  (func (export "run") (param "n" u32) (result u32) (canon lift (core func $b "run")))
)`;

// ---------------------------------------------------------------- benches

/** (a) Component.compile of a componentize-qjs component vs new WebAssembly.Module of its largest core module. */
async function compileQjs(): Promise<BenchResult[]> {
  const path = await buildHello({ stubWasi: true });
  const bytes = new Uint8Array(readFileSync(path));
  const largest = coreModules(bytes).reduce((a, m) => (m.length > a.length ? m : a));
  // V8 reuses a compiled module for identical bytes while the first is alive:
  // collect garbage before each sample so every sample really compiles.
  const opts = { warmup: 2, samples: 9, before: gc };
  const [weirNs, baseNs] = timePair(() => Component.compile(bytes), () => new WebAssembly.Module(largest as BufferSource), opts);
  return [{
    name: `compile qjs component (${(bytes.length / 1048576).toFixed(2)} MiB)`,
    value: weirNs / NS_PER_MS,
    unit: 'ms',
    baseline: baseNs / NS_PER_MS,
    baselineLabel: `new WebAssembly.Module, largest core module (${(largest.length / 1048576).toFixed(2)} MiB)`,
  }];
}

/** (b) instantiate a compiled small component vs new WebAssembly.Instance of the same core modules. */
async function instantiateSmall(): Promise<BenchResult[]> {
  const bytes = await wat(SMALL_WAT);
  const component = Component.compile(bytes);
  const [libcM, initM, mainM] = coreModules(bytes).map((b) => new WebAssembly.Module(b as BufferSource));
  const baseline = (): unknown => {
    const libc = new WebAssembly.Instance(libcM).exports;
    new WebAssembly.Instance(initM, { libc });
    return new WebAssembly.Instance(mainM, { libc }).exports;
  };
  const [weirNs, baseNs] = timePair(() => component.instantiate(), baseline, { warmup: 200, samples: 1000 });
  const ms = weirNs / NS_PER_MS;
  const out: BenchResult[] = [withTarget({
    name: 'instantiate small component (3 core modules, memory, 2 lifted exports)',
    value: ms,
    unit: 'ms',
    baseline: baseNs / NS_PER_MS,
    baselineLabel: 'new WebAssembly.Instance × 3 (same core modules)',
    target: '≤ 0.2 ms (jco: 1.5 ms)',
  }, 0.2, '<=')];

  const qjsBytes = new Uint8Array(readFileSync(await buildHello({ stubWasi: true })));
  const qjs = Component.compile(qjsBytes);
  const qjsNs = timeNs(() => qjs.instantiate(), { warmup: 3, samples: 50 });
  out.push({
    name: 'instantiate qjs component (stub WASI), info',
    value: qjsNs / NS_PER_MS,
    unit: 'ms',
  });
  return out;
}

/** (c) JS → export `echo: func(s: string) -> string` with a 16-byte string, vs TextEncoder/TextDecoder in JS. */
async function callString(): Promise<BenchResult[]> {
  const component = Component.compile(await wat(SMALL_WAT));
  const echo = component.instantiate().exports.echo as (s: string) => string;
  const input = 'sixteen-byte-str';
  if (new TextEncoder().encode(input).length !== 16) throw new Error('input must be 16 bytes');
  if (echo(input) !== input) throw new Error(`echo returned ${JSON.stringify(echo(input))}`);

  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const mem = new Uint8Array(65536);
  const plain = (s: string): string => {
    const { written } = enc.encodeInto(s, mem.subarray(1024));
    return dec.decode(mem.subarray(1024, 1024 + written));
  };
  let sink = '';
  const [weirNs, baseNs] = timePair(() => { sink = echo(input); }, () => { sink = plain(input); }, { warmup: 20_000, samples: 101, batch: 1_000 });
  if (sink !== input) throw new Error('unexpected result');
  return [withTarget({
    name: 'call export echo(string) -> string, 16 bytes',
    value: weirNs / 1000,
    unit: 'µs/call',
    baseline: baseNs / 1000,
    baselineLabel: 'JS: TextEncoder.encodeInto + TextDecoder.decode',
    target: '≤ 1 µs',
  }, 1, '<=')];
}

/** (d) guest → guest: B calls A's `consume(list<u8>)` with 64 KiB, linked through the public API. */
async function guestToGuest(): Promise<BenchResult[]> {
  const a = Component.compile(await wat(CALLEE_WAT));
  const b = Component.compile(await wat(CALLER_WAT));
  const instA = a.instantiate();
  const instB = b.instantiate({ 'x:y/z': instA.exports['x:y/z'] });
  const run = instB.exports.run as (n: number) => number;
  if (run(1) !== LIST_BYTES) throw new Error(`run(1) returned ${run(1)}`);

  const CALLS = 64; // 4 MiB per sample
  const src = new Uint8Array(new WebAssembly.Memory({ initial: 2 }).buffer);
  const dst = new Uint8Array(new WebAssembly.Memory({ initial: 2 }).buffer);
  const view = src.subarray(0, LIST_BYTES);
  const copyN = (): void => { for (let i = 0; i < CALLS; i++) dst.set(view, 16); };
  let [weirNs, baseNs] = timePair(() => run(CALLS), copyN, { warmup: 5, samples: 51 });
  weirNs /= CALLS;
  baseNs /= CALLS;

  // for reference: the same copy between two plain (non-wasm) ArrayBuffers
  const plainSrc = new Uint8Array(LIST_BYTES), plainDst = new Uint8Array(2 * LIST_BYTES);
  const plainNs = timeNs(() => { plainDst.set(plainSrc, 16); }, { warmup: 100, samples: 21, batch: CALLS });

  const gbps = (ns: number): number => LIST_BYTES / ns; // bytes per ns = GB/s
  return [withTarget({
    name: 'guest → guest call, list<u8> 64 KiB',
    value: gbps(weirNs),
    unit: 'GB/s',
    higherIsBetter: true,
    baseline: gbps(baseNs),
    baselineLabel: 'Uint8Array.set 64 KiB between two WebAssembly.Memory',
    target: '≥ 2 GB/s',
    note: `${(weirNs / 1000).toFixed(2)} µs/call; Uint8Array.set between plain ArrayBuffers: ${gbps(plainNs).toFixed(1)} GB/s`,
  }, 2, '>=')];
}

export const benches: Bench[] = [
  { name: 'foundation/compile', run: compileQjs },
  { name: 'foundation/instantiate', run: instantiateSmall },
  { name: 'foundation/call-string', run: callString },
  { name: 'foundation/guest-to-guest', run: guestToGuest },
];
