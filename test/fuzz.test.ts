// Mutation fuzzing of Component.compile (and instantiate, for components
// without imports).
//
// A corpus of valid components (every valid top-level component in the spec
// .wast files, a few hand-written ones, and one componentize-qjs output) is
// mutated with seeded, reproducible mutations: bit flips, byte replacement,
// insertion, deletion, truncation, LEB inflation, section duplication, swap,
// deletion and splicing (structure-aware ones keep every enclosing size right,
// so they reach deep into the decoder and validator). Compiling a mutant must
// either succeed or throw DecodeError / ValidationError (V8's CompileError
// arrives wrapped in a ValidationError); instantiating one must succeed or
// throw Trap / LinkError / DecodeError / ValidationError.
//
// The mutants run in a worker thread. The worker publishes the iteration and
// phase it is in through shared memory; the main thread terminates it when one
// step takes too long. A compile that hangs fails the test; an instantiation
// that runs too long (a mutated start function can loop forever, which is the
// guest's right) is skipped. Failures are reported with the seed and the
// mutant's bytes in hex, which `mutant(baseSeed, i)` regenerates.
//
// FUZZ_ITERS / FUZZ_SEED environment variables override the defaults.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Component, DecodeError, ValidationError, LinkError, Trap } from '../src/index.ts';
import { mulberry32, type Rng } from './helpers/prng.ts';

// ---------------------------------------------------------------- configuration

const SMALL_ITERS = Number(process.env.FUZZ_ITERS ?? 25_000);
const BIG_ITERS = Math.min(200, Math.ceil(SMALL_ITERS / 50));
const BASE_SEED = Number(process.env.FUZZ_SEED ?? 0x5eed_c0de);
/** One compile may take at most this long before it counts as a hang. */
const COMPILE_HANG_MS = Number(process.env.FUZZ_HANG_MS ?? 15_000);
/** An instantiation that runs longer is abandoned (guest code may loop), not failed. */
const INSTANTIATE_LIMIT_MS = 3_000;

const FEATURES: Record<string, boolean> = {
  reference_types: true,
  multi_memory: true,
  bulk_memory: true,
  gc: true,
  exceptions: true,
  component_model_implements: true,
  component_model_async: true,
  component_model_more_async_builtins: true,
  component_model_async_stackful: true,
  component_model_threading: true,
  component_model_error_context: true,
  component_model_map: true,
  component_model_fixed_length_lists: true,
};

// ---------------------------------------------------------------- seeded randomness


const int = (rng: Rng, n: number): number => Math.floor(rng() * n);
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[int(rng, xs.length)];

// ---------------------------------------------------------------- binary structure

/** A component or core module: its 8-byte preamble and its sections. */
interface Node { header: Uint8Array; sections: Section[]; core: boolean }
/** A section; nested components (id 4) and core modules (id 1) are parsed as child nodes when they can be. */
interface Section { id: number; body: Uint8Array; child: Node | null }

function readLeb(b: Uint8Array, pos: number, end: number): { value: number; next: number } | null {
  let value = 0;
  for (let i = 0; i < 5 && pos + i < end; i++) {
    const byte = b[pos + i];
    value += (byte & 0x7f) * 2 ** (7 * i);
    if (!(byte & 0x80)) return { value, next: pos + i + 1 };
  }
  return null;
}

function leb(value: number, minBytes = 1): number[] {
  const out: number[] = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v || out.length + 1 < minBytes) byte |= 0x80;
    out.push(byte);
  } while (v || out.length < minBytes);
  return out;
}

function parseNode(b: Uint8Array, core: boolean): Node | null {
  if (b.length < 8) return null;
  const sections: Section[] = [];
  let pos = 8;
  while (pos < b.length) {
    const id = b[pos];
    const size = readLeb(b, pos + 1, b.length);
    if (!size || size.next + size.value > b.length) return null;
    const body = b.subarray(size.next, size.next + size.value);
    let child: Node | null = null;
    if (!core && id === 4) child = parseNode(body, false);
    else if (!core && id === 1) child = parseNode(body, true);
    sections.push({ id, body, child });
    pos = size.next + size.value;
  }
  return { header: b.subarray(0, 8), sections, core };
}

/** Size overrides: a section's size field written as something else (LEB inflation). */
type SizeOverride = Map<Section, number[]>;

function serialize(n: Node, over?: SizeOverride): Uint8Array {
  const parts: Uint8Array[] = [n.header];
  let total = n.header.length;
  for (const s of n.sections) {
    const body = s.child ? serialize(s.child, over) : s.body;
    const size = over?.get(s) ?? leb(body.length);
    const head = Uint8Array.from([s.id, ...size]);
    parts.push(head, body);
    total += head.length + body.length;
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** A copy of the tree whose section lists can be edited (byte arrays are shared, never written). */
function cloneNode(n: Node): Node {
  return { header: n.header, core: n.core, sections: n.sections.map((s) => ({ id: s.id, body: s.body, child: s.child && cloneNode(s.child) })) };
}

function allNodes(n: Node, out: Node[] = []): Node[] {
  out.push(n);
  for (const s of n.sections) if (s.child) allNodes(s.child, out);
  return out;
}

// ---------------------------------------------------------------- mutations

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x40, 0x3f, 0x60, 0x70, 0x0b, 0x0d, 0x02];
const INTERESTING_U32 = [0, 1, 2, 0x7f, 0x80, 0x3fff, 0x4000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

function mutateBytes(rng: Rng, b: Uint8Array): Uint8Array {
  const op = int(rng, 9);
  const at = (extra = 0) => int(rng, b.length + extra);
  switch (op) {
    case 0: { // bit flips
      if (!b.length) return b;
      const c = b.slice();
      for (let k = 1 + int(rng, 3); k > 0; k--) { const i = at(); c[i] ^= 1 << int(rng, 8); }
      return c;
    }
    case 1: { // byte replacement
      if (!b.length) return b;
      const c = b.slice();
      c[at()] = rng() < 0.5 ? pick(rng, INTERESTING_BYTES) : int(rng, 256);
      return c;
    }
    case 2: { // insertion
      const i = at(1);
      const ins = Array.from({ length: 1 + int(rng, 4) }, () => (rng() < 0.5 ? pick(rng, INTERESTING_BYTES) : int(rng, 256)));
      return Uint8Array.from([...b.subarray(0, i), ...ins, ...b.subarray(i)]);
    }
    case 3: { // deletion of a range
      if (!b.length) return b;
      const i = at();
      const n = 1 + int(rng, Math.min(16, b.length - i));
      return Uint8Array.from([...b.subarray(0, i), ...b.subarray(i + n)]);
    }
    case 4: // truncation
      return b.subarray(0, at());
    case 5: { // LEB inflation: the LEB at a random offset becomes a larger value or a padded encoding
      if (!b.length) return b;
      const i = at();
      const l = readLeb(b, i, b.length);
      if (!l) return b;
      const r = rng();
      const v = r < 0.25 ? l.value : r < 0.5 ? l.value + 1 + int(rng, 8) : r < 0.75 ? l.value * 2 + 1 : pick(rng, INTERESTING_U32);
      const enc = leb(Math.min(v, 0xffffffff), r < 0.25 ? 5 : 1);
      return Uint8Array.from([...b.subarray(0, i), ...enc, ...b.subarray(l.next)]);
    }
    case 6: case 7: { // nudge the LEB at a random offset (often an index or a count) by a little
      if (!b.length) return b;
      const i = at();
      const l = readLeb(b, i, b.length);
      if (!l) return b;
      const v = Math.max(0, l.value + (rng() < 0.5 ? -1 : 1) * (1 + int(rng, 3)));
      return Uint8Array.from([...b.subarray(0, i), ...leb(v), ...b.subarray(l.next)]);
    }
    default: { // copy a run of bytes over another place
      if (b.length < 2) return b;
      const c = b.slice();
      const from = at();
      const to = at();
      const n = 1 + int(rng, Math.min(32, b.length - Math.max(from, to)));
      c.set(b.subarray(from, from + n), to);
      return c;
    }
  }
}

/** A structure-aware mutation of the tree, in place; every enclosing size stays consistent. */
function mutateTree(rng: Rng, root: Node, donors: Node[], over: SizeOverride): string {
  const nodes = allNodes(root);
  const withSections = nodes.filter((n) => n.sections.length > 0);
  const node = withSections.length ? pick(rng, withSections) : root;
  const secs = node.sections;
  const op = secs.length ? int(rng, 7) : 4;
  switch (op) {
    case 0: { // mutate one section's payload (a leaf: children are flattened to bytes first)
      const s = pick(rng, secs);
      const bytes = s.child ? serialize(s.child) : s.body;
      s.body = mutateBytes(rng, bytes);
      s.child = null;
      return `payload of section ${s.id}`;
    }
    case 1: { // duplicate a section
      const i = int(rng, secs.length);
      const s = secs[i];
      secs.splice(int(rng, secs.length + 1), 0, { id: s.id, body: s.body, child: s.child && cloneNode(s.child) });
      return `duplicate section ${s.id}`;
    }
    case 2: { // swap two sections
      const i = int(rng, secs.length), j = int(rng, secs.length);
      [secs[i], secs[j]] = [secs[j], secs[i]];
      return 'swap sections';
    }
    case 3: { // delete a section
      secs.splice(int(rng, secs.length), 1);
      return 'delete section';
    }
    case 4: { // splice in a section from another corpus entry (same kind of node)
      const donorNodes = allNodes(pick(rng, donors)).filter((n) => n.core === node.core && n.sections.length);
      if (!donorNodes.length) return 'splice (no donor)';
      const s = pick(rng, pick(rng, donorNodes).sections);
      secs.splice(int(rng, secs.length + 1), 0, { id: s.id, body: s.body, child: s.child && cloneNode(s.child) });
      return `splice section ${s.id}`;
    }
    case 5: { // section size LEB inflation (or padding, which is valid)
      const s = pick(rng, secs);
      const size = s.child ? serialize(s.child).length : s.body.length;
      const r = rng();
      const v = r < 0.3 ? size : r < 0.6 ? size + 1 + int(rng, 16) : r < 0.8 ? Math.max(0, size - 1 - int(rng, 4)) : pick(rng, INTERESTING_U32);
      over.set(s, leb(v, r < 0.3 ? 2 + int(rng, 4) : 1));
      return `size of section ${s.id} := ${v}`;
    }
    default: { // change a section id
      const s = pick(rng, secs);
      s.id = rng() < 0.5 ? int(rng, 16) : int(rng, 256);
      return `section id := ${s.id}`;
    }
  }
}

export interface CorpusEntry { name: string; bytes: Uint8Array }

/** The mutant of iteration `i`: which corpus entry, what was done, and the bytes. Deterministic. */
export function mutant(corpus: CorpusEntry[], trees: (Node | null)[], baseSeed: number, i: number, bigIndex: number): { entry: number; ops: string[]; bytes: Uint8Array } {
  const rng = mulberry32((baseSeed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
  const smallCount = bigIndex >= 0 ? corpus.length - 1 : corpus.length;
  // iterations at or beyond SMALL_ITERS go to the big (qjs) component
  const entry = i >= SMALL_ITERS && bigIndex >= 0 ? bigIndex : int(rng, smallCount);
  const donors = trees.filter((t): t is Node => t !== null);
  const ops: string[] = [];
  let bytes: Uint8Array;
  const tree = trees[entry];
  const rounds = 1 + int(rng, 3);
  if (tree && rng() < 0.6) {
    const t = cloneNode(tree);
    const over: SizeOverride = new Map();
    for (let k = 0; k < rounds; k++) ops.push(mutateTree(rng, t, donors, over));
    bytes = serialize(t, over);
    if (rng() < 0.2) { bytes = mutateBytes(rng, bytes); ops.push('raw'); }
  } else {
    bytes = corpus[entry].bytes;
    for (let k = 0; k < rounds; k++) { bytes = mutateBytes(rng, bytes); ops.push('raw'); }
  }
  return { entry, ops, bytes };
}

// ---------------------------------------------------------------- the worker

interface Failure {
  i: number;
  entry: string;
  ops: string[];
  phase: 'compile' | 'instantiate';
  kind: 'error' | 'hang' | 'crash';
  error: string;
  stack: string;
  size: number;
  hex: string | null;
}

interface WorkerInput {
  corpus: CorpusEntry[];
  bigIndex: number;
  baseSeed: number;
  start: number;
  end: number;
  shared: SharedArrayBuffer;
  /** Self-test hooks: pretend compiling iteration `hangAt` hangs, or that it throws a TypeError at `throwAt`. */
  hangAt?: number;
  throwAt?: number;
}

/**
 * Shared slots: [0] iteration, [1] phase (1 compile, 2 instantiate, 0 between), [2] compiled ok,
 * [3] instantiated ok, [4] DecodeErrors, [5] ValidationErrors, [6] of which wrap a V8 CompileError,
 * [7] typed errors from instantiate.
 */
const SLOTS = 8;
const PHASE_COMPILE = 1, PHASE_INSTANTIATE = 2;

const hexOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

function describeError(e: unknown): { name: string; text: string; stack: string } {
  if (e instanceof Error) return { name: e.name, text: `${e.constructor?.name ?? e.name}: ${e.message}`, stack: e.stack ?? '' };
  return { name: typeof e, text: `thrown ${typeof e}: ${String(e)}`, stack: '' };
}

function runWorker(input: WorkerInput): void {
  const state = new Int32Array(input.shared);
  const trees = input.corpus.map((c) => parseNode(c.bytes, false));
  for (let i = input.start; i < input.end; i++) {
    Atomics.store(state, 1, 0);
    Atomics.store(state, 0, i);
    const m = mutant(input.corpus, trees, input.baseSeed, i, input.bigIndex);
    const report = (phase: Failure['phase'], e: unknown): void => {
      const d = describeError(e);
      const f: Failure = {
        i, entry: input.corpus[m.entry].name, ops: m.ops, phase, kind: 'error',
        error: d.text, stack: d.stack, size: m.bytes.length, hex: m.bytes.length <= 65536 ? hexOf(m.bytes) : null,
      };
      parentPort!.postMessage({ failure: f });
    };
    let component: Component;
    Atomics.store(state, 1, PHASE_COMPILE);
    try {
      if (i === input.hangAt) for (;;);
      if (i === input.throwAt) throw new TypeError('self-test: an untyped error');
      component = Component.compile(m.bytes, { features: FEATURES });
    } catch (e) {
      if (e instanceof DecodeError) Atomics.add(state, 4, 1);
      else if (e instanceof ValidationError) {
        Atomics.add(state, 5, 1);
        if (e.message.includes('WebAssembly.Module()')) Atomics.add(state, 6, 1);
      }
      if (!(e instanceof DecodeError || e instanceof ValidationError)) report('compile', e);
      else if (e instanceof ValidationError && !(typeof e.rule === 'string' && e.rule.length > 0)) report('compile', e);
      continue;
    }
    Atomics.add(state, 2, 1);
    let hasImports: boolean;
    try {
      hasImports = component.type.imports.size > 0;
    } catch (e) {
      report('compile', e);
      continue;
    }
    if (hasImports) continue;
    Atomics.store(state, 1, PHASE_INSTANTIATE);
    try {
      component.instantiate();
      Atomics.add(state, 3, 1);
    } catch (e) {
      if (!(e instanceof Trap || e instanceof LinkError || e instanceof DecodeError || e instanceof ValidationError)) report('instantiate', e);
      else Atomics.add(state, 7, 1);
    }
  }
  Atomics.store(state, 1, 0);
  Atomics.store(state, 0, input.end);
}

// ---------------------------------------------------------------- corpus

const SPEC_DIRS = [
  '/work/shared/spec-data/component-model-test',
  '/work/shared/spec-data/wasmtime-misc_testsuite-component-model',
];

/** The top-level `(component ...)` forms of a .wast file (not those inside assertions). */
function topLevelComponents(src: string): string[] {
  const out: string[] = [];
  let depth = 0, start = -1;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === ';' && src[i + 1] === ';') { while (i < src.length && src[i] !== '\n') i++; continue; }
    if (c === '(' && src[i + 1] === ';') { // block comment, nestable
      let d = 0;
      for (; i < src.length; i++) {
        if (src[i] === '(' && src[i + 1] === ';') { d++; i++; } else if (src[i] === ';' && src[i + 1] === ')') { d--; i++; if (!d) break; }
      }
      continue;
    }
    if (c === '"') { for (i++; i < src.length && src[i] !== '"'; i++) if (src[i] === '\\') i++; continue; }
    if (c === '(') { if (depth === 0) start = i; depth++; continue; }
    if (c === ')') {
      depth--;
      if (depth === 0 && start >= 0) {
        const form = src.slice(start, i + 1);
        if (/^\(component[\s)]/.test(form) && !/^\(component\s+instance\b/.test(form)) {
          out.push(form.replace(/^\(component\s+definition\b/, '(component'));
        }
        start = -1;
      }
    }
  }
  return out;
}

function wastFiles(dir: string, out: string[] = []): string[] {
  if (!existsSync(dir)) return out;
  for (const f of readdirSync(dir).sort()) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) wastFiles(p, out);
    else if (p.endsWith('.wast')) out.push(p);
  }
  return out;
}

/** Hand-written components covering what the spec files may not (plain names, interfaces, resources, streams). */
const HANDWRITTEN: Record<string, string> = {
  'kitchen-sink': `(component
  (type $r (resource (rep i32)))
  (type $rec0 (record (field "a" u32) (field "b-c" string)))
  (export $rec "rec" (type $rec0))
  (type $var0 (variant (case "x" u8) (case "y") (case "z" (list $rec))))
  (export $var "var" (type $var0))
  (type $fl0 (flags "one" "two" "three"))
  (export $fl "fl-t" (type $fl0))
  (type $en (enum "red" "green"))
  (type $s (stream u8))
  (type $fu (future string))
  (export $re "r" (type $r))
  (core module $Libc
    (memory (export "mem") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 64)))
  (core instance $libc (instantiate $Libc))
  (core func $rnew (canon resource.new $r))
  (core func $rdrop (canon resource.drop $r))
  (core func $snew (canon stream.new $s))
  (core module $M
    (import "" "new" (func (param i32) (result i32)))
    (import "" "drop" (func (param i32)))
    (import "" "snew" (func (result i64)))
    (import "libc" "mem" (memory 1))
    (func (export "make") (param i32) (result i32) (call 0 (local.get 0)))
    (func (export "take") (param i32 i32 i32) (result i32) (local.get 2))
    (func (export "fl") (param i32) (result i32) (local.get 0)))
  (core instance $m (instantiate $M
    (with "" (instance (export "new" (func $rnew)) (export "drop" (func $rdrop)) (export "snew" (func $snew))))
    (with "libc" (instance $libc))))
  (func $make (param "rep" u32) (result (own $re)) (canon lift (core func $m "make")))
  (func $take (param "v" $var) (result u32)
    (canon lift (core func $m "take") (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))))
  (func $fl (param "f" $fl) (result $fl) (canon lift (core func $m "fl")))
  (core module $U (func (export "id") (param i32) (result i32) (local.get 0)))
  (core instance $u (instantiate $U))
  (func $fl-u32 (param "x" u32) (result u32) (canon lift (core func $u "id")))
  (component $Inner
    (import "f" (func $f (param "x" u32) (result u32)))
    (export "g" (func $f)))
  (instance $i (instantiate $Inner (with "f" (func $fl-u32))))
  (alias export $i "g" (func $g))
  (instance $iface
    (export "make" (func $make)))
  (export "x:y/iface@1.0.0" (instance $iface))
  (export "take" (func $take))
  (export "fl" (func $fl))
  (export "g" (func $g))
)`,
};

async function buildCorpus(): Promise<CorpusEntry[]> {
  const { parse } = await import('@bytecodealliance/jco');
  const assemble = async (text: string): Promise<Uint8Array | null> => {
    try {
      const out = await (parse as (t: string) => Uint8Array | Promise<Uint8Array>)(text);
      return out instanceof Uint8Array ? out : new Uint8Array(out as ArrayLike<number>);
    } catch {
      return null;
    }
  };
  const corpus: CorpusEntry[] = [];
  const seen = new Set<string>();
  const add = (name: string, bytes: Uint8Array): boolean => {
    const key = hexOf(bytes);
    if (seen.has(key)) return false;
    try {
      Component.compile(bytes, { features: FEATURES });
    } catch {
      return false; // only valid components seed the corpus
    }
    seen.add(key);
    corpus.push({ name, bytes });
    return true;
  };
  for (const [name, text] of Object.entries(HANDWRITTEN)) {
    const b = await assemble(text);
    assert.ok(b, `hand-written component ${name} assembles`);
    assert.ok(add(name, b), `hand-written component ${name} compiles`);
  }
  for (const dir of SPEC_DIRS) {
    for (const file of wastFiles(dir)) {
      const forms = topLevelComponents(readFileSync(file, 'utf8'));
      for (let k = 0; k < forms.length; k++) {
        const b = await assemble(forms[k]);
        if (b && b.length <= 32_768) add(`${file.slice(dir.length + 1)}#${k}`, b);
      }
    }
  }
  return corpus;
}

async function bigComponent(): Promise<CorpusEntry | null> {
  try {
    const { buildHello } = await import('./helpers/fixtures.ts');
    const path = await Promise.race([
      buildHello({ stubWasi: true }),
      new Promise<never>((_, rej) => setTimeout(() => rej(new Error('timeout')), 20_000).unref()),
    ]);
    return { name: 'qjs-hello-stub', bytes: new Uint8Array(readFileSync(path)) };
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- the driver

interface RunStats {
  iterations: number; compiled: number; instantiated: number; abandoned: number;
  decodeErrors: number; validationErrors: number; wrappedCompileErrors: number; instantiateErrors: number;
}

interface FuzzOptions { hangMs?: number; hangAt?: number; throwAt?: number }

async function fuzz(corpus: CorpusEntry[], bigIndex: number, start: number, end: number, opts: FuzzOptions = {}): Promise<{ failures: Failure[]; stats: RunStats }> {
  const hangMs = opts.hangMs ?? COMPILE_HANG_MS;
  const failures: Failure[] = [];
  const stats: RunStats = {
    iterations: end - start, compiled: 0, instantiated: 0, abandoned: 0,
    decodeErrors: 0, validationErrors: 0, wrappedCompileErrors: 0, instantiateErrors: 0,
  };
  let next = start;
  while (next < end) {
    const shared = new SharedArrayBuffer(4 * SLOTS);
    const state = new Int32Array(shared);
    Atomics.store(state, 0, next);
    const input: WorkerInput = { corpus, bigIndex, baseSeed: BASE_SEED, start: next, end, shared, hangAt: opts.hangAt, throwAt: opts.throwAt };
    const worker = new Worker(new URL(import.meta.url), {
      workerData: { fuzzWorker: input },
      resourceLimits: { maxOldGenerationSizeMb: 1536, stackSizeMb: 4 },
    });
    const outcome = await new Promise<{ resumeAt: number }>((resolve) => {
      let lastIter = -1, lastPhase = -1, since = Date.now();
      let crash: Error | null = null;
      let killedAt = -1;
      const timer = setInterval(() => {
        const it = Atomics.load(state, 0), ph = Atomics.load(state, 1);
        if (it !== lastIter || ph !== lastPhase) { lastIter = it; lastPhase = ph; since = Date.now(); return; }
        const stuck = Date.now() - since;
        if (ph === PHASE_COMPILE && stuck > hangMs) {
          failures.push(describeHang(corpus, bigIndex, it, 'compile', `compile did not finish within ${hangMs} ms`));
          clearInterval(timer);
          killedAt = it;
          void worker.terminate();
        } else if (ph === PHASE_INSTANTIATE && stuck > INSTANTIATE_LIMIT_MS) {
          stats.abandoned++;
          clearInterval(timer);
          killedAt = it;
          void worker.terminate();
        }
      }, 100);
      worker.on('message', (msg: { failure?: Failure }) => { if (msg.failure) failures.push(msg.failure); });
      worker.on('error', (e) => { crash = e; });
      worker.on('exit', () => {
        clearInterval(timer);
        if (killedAt >= 0) { resolve({ resumeAt: killedAt + 1 }); return; }
        const it = Atomics.load(state, 0), ph = Atomics.load(state, 1);
        if (it >= end) { resolve({ resumeAt: end }); return; }
        if (crash || ph !== 0) {
          const phase = ph === PHASE_INSTANTIATE ? 'instantiate' : 'compile';
          failures.push(describeHang(corpus, bigIndex, it, phase, `worker died: ${crash ? describeError(crash).text : 'exited'}`, 'crash'));
        }
        resolve({ resumeAt: it + 1 });
      });
    });
    stats.compiled += Atomics.load(state, 2);
    stats.instantiated += Atomics.load(state, 3);
    stats.decodeErrors += Atomics.load(state, 4);
    stats.validationErrors += Atomics.load(state, 5);
    stats.wrappedCompileErrors += Atomics.load(state, 6);
    stats.instantiateErrors += Atomics.load(state, 7);
    next = outcome.resumeAt;
  }
  return { failures, stats };
}

function describeHang(corpus: CorpusEntry[], bigIndex: number, i: number, phase: Failure['phase'], what: string, kind: Failure['kind'] = 'hang'): Failure {
  const trees = corpus.map((c) => parseNode(c.bytes, false));
  const m = mutant(corpus, trees, BASE_SEED, i, bigIndex);
  return { i, entry: corpus[m.entry].name, ops: m.ops, phase, kind, error: what, stack: '', size: m.bytes.length, hex: m.bytes.length <= 65536 ? hexOf(m.bytes) : null };
}

/** Groups failures by error kind and origin and keeps the smallest mutant of each. */
function summarize(failures: Failure[]): string {
  const groups = new Map<string, { count: number; smallest: Failure }>();
  for (const f of failures) {
    const frame = f.stack.split('\n').find((l) => /^\s+at /.test(l))?.trim() ?? '';
    const key = `${f.phase}|${f.kind}|${f.error.split(':')[0]}|${f.error.replace(/\d+/g, 'N').slice(0, 80)}|${frame.replace(/:\d+:\d+\)?$/, '')}`;
    const g = groups.get(key);
    if (!g) groups.set(key, { count: 1, smallest: f });
    else { g.count++; if (f.size < g.smallest.size) g.smallest = f; }
  }
  const lines: string[] = [`${failures.length} failing mutants, ${groups.size} distinct:`];
  for (const { count, smallest: f } of groups.values()) {
    lines.push(
      `- [${f.phase}/${f.kind}] ×${count}: ${f.error.split('\n')[0]}`,
      `  iteration ${f.i} (seed 0x${BASE_SEED.toString(16)}), from ${f.entry}, mutations: ${f.ops.join('; ')}`,
      `  ${f.stack.split('\n').slice(1, 4).map((l) => l.trim()).join(' | ')}`,
      `  bytes (${f.size}): ${f.hex === null ? '(too large; regenerate with mutant())' : f.hex.length > 4000 ? f.hex.slice(0, 4000) + '…' : f.hex}`,
    );
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------- entry

if (!isMainThread && (workerData as { fuzzWorker?: WorkerInput } | null)?.fuzzWorker) {
  runWorker((workerData as { fuzzWorker: WorkerInput }).fuzzWorker);
} else if (isMainThread) {
  test('the fuzz driver reports untyped errors and hangs, and carries on after a hang', { timeout: 60_000 }, async () => {
    const corpus: CorpusEntry[] = [];
    for (const text of Object.values(HANDWRITTEN)) {
      const { parse } = await import('@bytecodealliance/jco');
      corpus.push({ name: 'kitchen-sink', bytes: await (parse as (t: string) => Promise<Uint8Array>)(text) });
    }
    const { failures, stats } = await fuzz(corpus, -1, 0, 12, { hangMs: 500, hangAt: 3, throwAt: 7 });
    assert.equal(stats.iterations, 12);
    assert.deepEqual(failures.map((f) => [f.i, f.kind, f.phase]), [[3, 'hang', 'compile'], [7, 'error', 'compile']]);
    assert.match(failures[1].error, /TypeError: self-test/);
    assert.ok(failures[0].hex && failures[0].hex.length > 0, 'a hang names the mutant');
    assert.match(summarize(failures), /2 failing mutants, 2 distinct/);
  });

  test(`mutated components only ever fail with typed errors (${SMALL_ITERS} small mutants + a few on a qjs component)`, { timeout: 240_000 }, async (t) => {
    const t0 = Date.now();
    const corpus = await buildCorpus();
    if (SPEC_DIRS.some((d) => existsSync(d))) assert.ok(corpus.length >= 20, `corpus has ${corpus.length} valid components`);
    else t.diagnostic('spec .wast files not found: the corpus is only the hand-written components');
    const big = await bigComponent();
    let bigIndex = -1;
    if (big) { bigIndex = corpus.length; corpus.push(big); }
    const total = SMALL_ITERS + (big ? BIG_ITERS : 0);
    // two workers share the iterations (this machine has two cores)
    const mid = Math.floor(total / 2);
    const [a, b] = await Promise.all([fuzz(corpus, bigIndex, 0, mid), fuzz(corpus, bigIndex, mid, total)]);
    const failures = [...a.failures, ...b.failures];
    const sum = (k: keyof RunStats): number => a.stats[k] + b.stats[k];
    t.diagnostic(`corpus: ${corpus.length} components${big ? ` (incl. ${big.name}, ${big.bytes.length} bytes, ${BIG_ITERS} mutants)` : ''}`);
    t.diagnostic(`${total} mutants in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${sum('decodeErrors')} DecodeError, ` +
      `${sum('validationErrors')} ValidationError (${sum('wrappedCompileErrors')} wrapping a V8 CompileError), ${sum('compiled')} compiled; ` +
      `${sum('instantiated')} instantiated, ${sum('instantiateErrors')} typed instantiation errors, ${sum('abandoned')} instantiations abandoned (ran too long)`);
    assert.equal(failures.length, 0, summarize(failures));
  });
}
