import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  alignment, elemSize, flattenType, flattenFuncType, createContext, planValue, planFunc, planAsyncLift, planAsyncLower,
  lowerCamelCase, loadValues, storeValues, checkRange,
  type CanonOptions, type HandleOps, type LiftLowerContext, type FlatIter,
} from '../src/abi/index.ts';
import { Trap } from '../src/errors.ts';
import type { TrapKind } from '../src/trap-reasons.ts';
import { ResourceType } from '../src/types/types.ts';
import type { FuncType, ValType, PrimName } from '../src/types/types.ts';

// ---------------------------------------------------------------- helpers

const P = (k: PrimName): ValType => ({ kind: k });
const list = (elem: ValType, length: number | null = null): ValType => ({ kind: 'list', elem, length });
const tuple = (...types: ValType[]): ValType => ({ kind: 'tuple', types });
const record = (fields: [string, ValType][]): ValType => ({ kind: 'record', fields: fields.map(([name, type]) => ({ name, type })) });
const variant = (cases: [string, ValType | null][]): ValType => ({ kind: 'variant', cases: cases.map(([name, type]) => ({ name, type })) });
const option = (type: ValType): ValType => ({ kind: 'option', type });
const result = (ok: ValType | null, err: ValType | null): ValType => ({ kind: 'result', ok, err });
const enm = (...names: string[]): ValType => ({ kind: 'enum', names });
const flags = (...names: string[]): ValType => ({ kind: 'flags', names });
const func = (params: ValType[], res: ValType | null): FuncType => ({
  kind: 'func', async: false, params: params.map((type, i) => ({ name: `p${i}`, type })), result: res,
});

interface ReallocCall { old: number; oldSize: number; align: number; newSize: number; ret: number }

/** A JS bump allocator over a WebAssembly.Memory, growing the memory when needed (detaching views). */
function makeEnv(opts: Partial<CanonOptions> & { memory64?: boolean } = {}) {
  const memory64 = opts.memory64 ?? false;
  const memory = memory64
    ? new WebAssembly.Memory({ initial: 1n, address: 'i64' } as unknown as WebAssembly.MemoryDescriptor)
    : new WebAssembly.Memory({ initial: 1 });
  let bump = 16;
  const calls: ReallocCall[] = [];
  const state = { misalign: false, outOfBounds: false };
  const realloc = (o: number | bigint, os: number | bigint, a: number | bigint, ns: number | bigint): number | bigint => {
    const old = Number(o), oldSize = Number(os), align = Number(a), newSize = Number(ns);
    let ret = Math.ceil(bump / align) * align;
    if (state.misalign) ret += 1;
    if (state.outOfBounds) ret = memory.buffer.byteLength - 4;
    else {
      bump = ret + newSize;
      while (bump > memory.buffer.byteLength) memory.grow(memory64 ? (1n as unknown as number) : 1);
      if (oldSize) new Uint8Array(memory.buffer).copyWithin(ret, old, old + Math.min(oldSize, newSize));
    }
    calls.push({ old, oldSize, align, newSize, ret });
    return memory64 ? BigInt(ret) : ret;
  };
  const rt = new ResourceType('res');
  const handles: HandleOps = {
    liftOwn: (r, i) => ({ own: i, r: r.name }),
    lowerOwn: (_r, v) => (v as { own: number }).own,
    liftBorrow: (r, i) => ({ borrow: i, r: r.name }),
    lowerBorrow: (_r, v) => (v as { borrow: number }).borrow,
    liftStream: (_t, i) => ({ stream: i }),
    lowerStream: (_t, v) => (v as { stream: number }).stream,
    liftFuture: (_t, i) => ({ future: i }),
    lowerFuture: (_t, v) => (v as { future: number }).future,
    liftErrorContext: (i) => ({ ec: i }),
    lowerErrorContext: (v) => (v as { ec: number }).ec,
  };
  const cx = createContext({
    memory, realloc, postReturn: null, stringEncoding: 'utf8', memory64, ...opts,
  } as CanonOptions, handles);
  return { memory, cx, calls, state, rt, grow: () => memory.grow(memory64 ? (1n as unknown as number) : 1) };
}

/** Simulate passing flat values through a wasm boundary (i32 → signed number, i64 → signed bigint). */
function throughWasm(vals: unknown[], types: string[]): unknown[] {
  return vals.map((v, i) => {
    switch (types[i]) {
      case 'i32': return Number(v) | 0;
      case 'i64': return BigInt.asIntN(64, BigInt(v as bigint));
      case 'f32': return Math.fround(v as number);
      default: return v;
    }
  });
}

function roundTrip(cx: LiftLowerContext, t: ValType, v: unknown, memory64 = false): { mem: unknown; flat: unknown } {
  const p = planValue(t, memory64);
  const ptr = Number((cx.opts.realloc!)(memory64 ? 0n : 0, memory64 ? 0n : 0, memory64 ? BigInt(p.align) : p.align, memory64 ? BigInt(p.size) : p.size));
  refresh(cx);
  p.store(cx, v, ptr);
  const mem = p.load(cx, ptr);
  const out: unknown[] = [];
  p.lowerFlat(cx, v, out);
  assert.equal(out.length, p.flat.length, 'flat count');
  const it: FlatIter = { vals: throughWasm(out, p.flat), i: 0 };
  const flat = p.liftFlat(cx, it);
  assert.equal(it.i, p.flat.length);
  return { mem, flat };
}

function refresh(cx: LiftLowerContext) {
  const b = cx.opts.memory!.buffer as ArrayBuffer;
  if (b !== cx.buf) { cx.buf = b; cx.u8 = new Uint8Array(b); cx.dv = new DataView(b); cx.nb = Buffer.from(b); }
}

function rt(cx: LiftLowerContext, t: ValType, v: unknown, expected: unknown, memory64 = false) {
  const r = roundTrip(cx, t, v, memory64);
  assert.deepEqual(r.mem, expected, `memory round trip of ${JSON.stringify(t)}`);
  assert.deepEqual(r.flat, expected, `flat round trip of ${JSON.stringify(t)}`);
}

/** The trap's named reason (src/trap-reasons.ts), not its text: the spec suite holds the texts. */
const trapWith = (kind: TrapKind) => (e: unknown) => e instanceof Trap && e.kind === kind;

// ---------------------------------------------------------------- layout

test('layout: alignment, elem_size, flatten_type', () => {
  const cases: [ValType, number, number, string[]][] = [
    [P('bool'), 1, 1, ['i32']],
    [P('u16'), 2, 2, ['i32']],
    [P('s64'), 8, 8, ['i64']],
    [P('f32'), 4, 4, ['f32']],
    [P('char'), 4, 4, ['i32']],
    [P('string'), 4, 8, ['i32', 'i32']],
    [list(P('u8')), 4, 8, ['i32', 'i32']],
    [list(P('u16'), 3), 2, 6, ['i32', 'i32', 'i32']],
    [record([['a', P('u8')], ['b', P('u32')], ['c', P('u8')]]), 4, 12, ['i32', 'i32', 'i32']],
    [tuple(P('u8'), P('u64')), 8, 16, ['i32', 'i64']],
    [option(P('u8')), 1, 2, ['i32', 'i32']],
    [option(P('u64')), 8, 16, ['i32', 'i64']],
    [result(null, null), 1, 1, ['i32']],
    [variant([['a', P('f32')], ['b', P('u32')]]), 4, 8, ['i32', 'i32']],
    [variant([['a', P('f32')], ['b', P('f64')], ['c', P('string')]]), 8, 16, ['i32', 'i64', 'i32']],
    [enm(...Array.from({ length: 257 }, (_, i) => `c${i}`)), 2, 2, ['i32']],
    [flags('a'), 1, 1, ['i32']],
    [flags(...Array.from({ length: 9 }, (_, i) => `f${i}`)), 2, 2, ['i32']],
    [flags(...Array.from({ length: 17 }, (_, i) => `f${i}`)), 4, 4, ['i32']],
    [{ kind: 'map', key: P('string'), value: P('u8') }, 4, 8, ['i32', 'i32']],
  ];
  for (const [t, a, s, f] of cases) {
    assert.equal(alignment(t, 'i32'), a, `align ${JSON.stringify(t).slice(0, 80)}`);
    assert.equal(elemSize(t, 'i32'), s, `size ${JSON.stringify(t).slice(0, 80)}`);
    assert.deepEqual(flattenType(t, 'i32'), f);
    const p = planValue(t);
    assert.equal(p.align, a); assert.equal(p.size, s); assert.deepEqual(p.flat, f);
  }
  assert.equal(elemSize(P('string'), 'i64'), 16);
  assert.equal(alignment(list(P('u8')), 'i64'), 8);
  assert.deepEqual(flattenType(P('string'), 'i64'), ['i64', 'i64']);
});

test('flatten_functype', () => {
  const many = func(Array.from({ length: 17 }, () => P('u32')), P('string'));
  assert.deepEqual(flattenFuncType(many, 'lift'), { params: ['i32'], results: ['i32'] });
  assert.deepEqual(flattenFuncType(many, 'lower'), { params: ['i32', 'i32'], results: [] });
  const f = func([P('string')], P('u64'));
  assert.deepEqual(flattenFuncType(f, 'lift'), { params: ['i32', 'i32'], results: ['i64'] });
  assert.deepEqual(flattenFuncType(f, 'lower', { memory64: true }), { params: ['i64', 'i64'], results: ['i64'] });
  const a = func([P('u32'), P('u32'), P('u32'), P('u32'), P('u32')], P('u32'));
  assert.deepEqual(flattenFuncType(a, 'lower', { async: true }), { params: ['i32', 'i32'], results: ['i32'] });
  assert.deepEqual(flattenFuncType(a, 'lift', { async: true, callback: true }), { params: ['i32', 'i32', 'i32', 'i32', 'i32'], results: ['i32'] });
  assert.deepEqual(flattenFuncType(a, 'lift', { async: true, callback: false }).results, []);
  const ad = planFunc(many);
  assert.deepEqual(ad.liftCoreType, { params: ['i32'], results: ['i32'] });
  assert.deepEqual(ad.lowerCoreType, { params: ['i32', 'i32'], results: [] });
  assert.equal(planFunc(many), ad, 'cached per FuncType');
});

test('lowerCamelCase', () => {
  assert.equal(lowerCamelCase('foo'), 'foo');
  assert.equal(lowerCamelCase('foo-bar-baz'), 'fooBarBaz');
  assert.equal(lowerCamelCase('get-HTTP-method'), 'getHTTPMethod');
  assert.equal(lowerCamelCase('HTTP-method'), 'httpMethod');
  assert.equal(lowerCamelCase('a1-b2'), 'a1B2');
});

// ---------------------------------------------------------------- round trips

for (const memory64 of [false, true]) {
  for (const enc of ['utf8', 'utf16', 'latin1+utf16'] as const) {
    test(`round trips of every type (${enc}, ${memory64 ? 'memory64' : 'memory32'})`, () => {
      const { cx, rt: res } = makeEnv({ stringEncoding: enc, memory64 });
      const R = (t: ValType, v: unknown, ...e: unknown[]) => rt(cx, t, v, e.length ? e[0] : v, memory64);
      R(P('bool'), true); R(P('bool'), false);
      R(P('u8'), 255); R(P('s8'), -128); R(P('u16'), 65535); R(P('s16'), -32768);
      R(P('u32'), 0xffffffff); R(P('s32'), -0x80000000); R(P('u32'), 0);
      R(P('u64'), 0xffffffffffffffffn); R(P('s64'), -(1n << 63n)); R(P('s64'), 5n);
      R(P('f32'), 1.5); R(P('f32'), -Infinity); R(P('f64'), Math.PI); R(P('f64'), NaN);
      R(P('char'), 'a'); R(P('char'), '😀'); R(P('char'), 'é');
      for (const s of ['', 'hello', 'héllo wörld', 'ÿ', '日本語', 'a😀b', 'x'.repeat(200), 'é'.repeat(100) + '😀']) R(P('string'), s);
      R(list(P('u8')), new Uint8Array([1, 2, 3]));
      R(list(P('u8')), [4, 5], new Uint8Array([4, 5]));
      R(list(P('s16')), new Int16Array([-1, 2]));
      R(list(P('u32')), new Uint32Array([1, 0xffffffff]));
      R(list(P('s64')), new BigInt64Array([-1n, 2n]));
      R(list(P('u64')), [1n, 2n], new BigUint64Array([1n, 2n]));
      R(list(P('f32')), new Float32Array([1.5, NaN]));
      R(list(P('f64')), new Float64Array([1.5, -0]));
      R(list(P('string')), ['a', 'bc', 'déf']);
      R(list(P('bool')), [true, false]);
      R(list(list(P('u8'))), [new Uint8Array([1]), new Uint8Array([])]);
      R(list(P('u8'), 4), new Uint8Array([1, 2, 3, 4]));
      R(list(P('string'), 2), ['x', 'y']);
      R(list(P('f32'), 2), new Float32Array([1, 2]));
      R(record([['field-one', P('u8')], ['b', P('string')], ['c', P('u64')]]), { fieldOne: 1, b: 'hi', c: 3n });
      R(tuple(P('u8'), P('string'), P('f64')), [1, 'x', 2.5]);
      R(tuple(), []);
      const v = variant([['a', null], ['b-c', P('u32')], ['c', P('string')], ['d', P('f32')], ['e', P('u64')], ['f', P('f64')]]);
      R(v, { tag: 'a' }); R(v, { tag: 'b-c', val: 7 }); R(v, { tag: 'c', val: 'str' }); R(v, { tag: 'd', val: 1.25 });
      R(v, { tag: 'e', val: 1n << 40n }); R(v, { tag: 'f', val: -2.5 }); R(v, { tag: 'd', val: NaN });
      const vs = variant([['i', P('s32')], ['f', P('f32')], ['l', P('s64')]]);
      R(vs, { tag: 'i', val: -5 }); R(vs, { tag: 'f', val: -0.5 }); R(vs, { tag: 'l', val: -5n });
      R(enm('red', 'green', 'blue'), 'blue');
      R(option(P('u32')), undefined); R(option(P('u32')), 5); R(option(P('string')), 'x');
      R(option(P('u32')), null, undefined);
      R(option(option(P('u32'))), { tag: 'none' }); R(option(option(P('u32'))), { tag: 'some', val: undefined });
      R(option(option(P('u32'))), { tag: 'some', val: 3 });
      R(result(P('u32'), P('string')), { tag: 'ok', val: 1 }); R(result(P('u32'), P('string')), { tag: 'err', val: 'bad' });
      R(result(null, null), { tag: 'ok' }); R(result(null, P('u8')), { tag: 'err', val: 2 });
      R(result(P('f32'), P('f64')), { tag: 'ok', val: 0.5 });
      R(flags('read', 'write-all', 'exec'), { read: true, writeAll: false, exec: true });
      const f40 = Array.from({ length: 32 }, (_, i) => `f${i}`);
      R(flags(...f40), Object.fromEntries(f40.map((n, i) => [n, i % 3 === 0])));
      R({ kind: 'map', key: P('string'), value: P('u32') }, new Map([['a', 1], ['b', 2]]), [['a', 1], ['b', 2]]);
      // duplicate keys survive: maps lift as entry arrays
      R({ kind: 'map', key: P('string'), value: P('u32') }, [['k', 1], ['k', 2]]);
      R({ kind: 'own', resource: res }, { own: 7, r: 'res' });
      R({ kind: 'borrow', resource: res }, { borrow: 9, r: 'res' });
      R({ kind: 'stream', elem: P('u8') }, { stream: 3 });
      R({ kind: 'future', elem: null }, { future: 4 });
      R(P('error-context'), { ec: 2 });
      R(list(record([['a', P('u8')], ['s', P('string')], ['o', option(P('u16'))]])), [{ a: 1, s: 'x', o: undefined }, { a: 2, s: 'yz', o: 9 }]);
    });
  }
}

test('char/float/bool details', () => {
  const { cx } = makeEnv();
  const c = planValue(P('char'));
  assert.throws(() => c.liftFlat(cx, { vals: [0xd800], i: 0 }), trapWith('char-surrogate'));
  assert.throws(() => c.liftFlat(cx, { vals: [0x110000], i: 0 }), trapWith('char-out-of-range'));
  assert.equal(planValue(P('bool')).liftFlat(cx, { vals: [2], i: 0 }), true);
  assert.equal(planValue(P('u8')).liftFlat(cx, { vals: [0x1ff], i: 0 }), 0xff);
  assert.equal(planValue(P('s8')).liftFlat(cx, { vals: [0xff], i: 0 }), -1);
  assert.equal(planValue(P('u32')).liftFlat(cx, { vals: [-1], i: 0 }), 0xffffffff);
  assert.equal(planValue(P('u64')).liftFlat(cx, { vals: [-1n], i: 0 }), 0xffffffffffffffffn);
  // f32 lists: NaN payloads are canonicalized on lift
  cx.dv.setUint32(64, 0x7fa00001, true);
  cx.dv.setUint32(72, 0xffc00001, true);
  const fl = planValue(list(P('f32')));
  cx.dv.setUint32(80, 64, true); cx.dv.setUint32(84, 3, true);
  const a = fl.load(cx, 80) as Float32Array;
  const bits = new Uint32Array(a.buffer);
  assert.equal(bits[0], 0x7fc00000); assert.equal(bits[2], 0x7fc00000);
  // flags: extra bits are ignored
  assert.deepEqual(planValue(flags('a', 'b')).liftFlat(cx, { vals: [0xff], i: 0 }), { a: true, b: true });
});

// ---------------------------------------------------------------- strings

test('strings: utf8 realloc sizing per spec', () => {
  const { cx, calls } = makeEnv({ stringEncoding: 'utf8' });
  const p = planValue(P('string'));
  const out: unknown[] = [];
  p.lowerFlat(cx, 'abc', out);
  assert.deepEqual(calls.map((c) => [c.old ? 'old' : 0, c.oldSize, c.align, c.newSize]), [[0, 0, 1, 3]]);
  assert.equal(out[1], 3);
  calls.length = 0; out.length = 0;
  p.lowerFlat(cx, 'aé', out); // 2 code units, 3 bytes
  assert.deepEqual(calls.map((c) => [c.oldSize, c.align, c.newSize]), [[0, 1, 2], [2, 1, 6], [6, 1, 3]]);
  assert.equal(out[1], 3);
  assert.equal(p.liftFlat(cx, { vals: out, i: 0 }), 'aé');
  // lone surrogates become U+FFFD
  out.length = 0;
  p.lowerFlat(cx, 'a\ud800b', out);
  assert.equal(p.liftFlat(cx, { vals: out, i: 0 }), 'a\ufffdb');
  // long non-ascii strings
  const long = 'ü'.repeat(1000) + 'x';
  out.length = 0;
  p.lowerFlat(cx, long, out);
  assert.equal(out[1], 2001);
  assert.equal(p.liftFlat(cx, { vals: out, i: 0 }), long);
  // a BOM is kept
  out.length = 0;
  p.lowerFlat(cx, '\ufeffx', out);
  assert.equal(p.liftFlat(cx, { vals: out, i: 0 }), '\ufeffx');
});

test('strings: utf16 and latin1+utf16', () => {
  {
    const { cx, calls } = makeEnv({ stringEncoding: 'utf16' });
    const p = planValue(P('string'));
    const out: unknown[] = [];
    p.lowerFlat(cx, 'a😀', out);
    assert.deepEqual(calls.map((c) => [c.align, c.newSize]), [[2, 6]]);
    assert.equal(out[1], 3);
    assert.equal(p.liftFlat(cx, { vals: out, i: 0 }), 'a😀');
    out.length = 0;
    p.lowerFlat(cx, 'a\udc00', out); // lone surrogate kept as a code unit...
    assert.equal(cx.dv.getUint16((out[0] as number) + 2, true), 0xdc00);
    // ...which is invalid UTF-16 when lifted
    assert.throws(() => p.liftFlat(cx, { vals: out, i: 0 }), trapWith('invalid-utf16'));
    assert.throws(() => p.liftFlat(cx, { vals: [1, 1], i: 0 }), trapWith('misaligned-pointer'));
  }
  {
    const { cx, calls } = makeEnv({ stringEncoding: 'latin1+utf16' });
    const p = planValue(P('string'));
    const out: unknown[] = [];
    p.lowerFlat(cx, 'café', out);
    assert.deepEqual(calls.map((c) => [c.align, c.newSize]), [[2, 4]]);
    assert.equal(out[1], 4, 'latin1: untagged byte count');
    assert.equal(p.liftFlat(cx, { vals: out, i: 0 }), 'café');
    calls.length = 0; out.length = 0;
    p.lowerFlat(cx, 'ab€d', out);
    assert.deepEqual(calls.map((c) => [c.oldSize, c.align, c.newSize]), [[0, 2, 4], [4, 2, 8]]);
    assert.equal(out[1], (4 | 0x80000000) >>> 0, 'utf16 tag set');
    assert.equal(p.liftFlat(cx, { vals: throughWasm(out, ['i32', 'i32']), i: 0 }), 'ab€d');
    // memory64 tag is bit 63
    const e64 = makeEnv({ stringEncoding: 'latin1+utf16', memory64: true });
    const p64 = planValue(P('string'), true);
    const o64: unknown[] = [];
    p64.lowerFlat(e64.cx, 'x€', o64);
    assert.equal(o64[1], (1n << 63n) | 2n);
    assert.equal(p64.liftFlat(e64.cx, { vals: throughWasm(o64, ['i64', 'i64']), i: 0 }), 'x€');
  }
});

test('strings: traps', () => {
  const { cx } = makeEnv({ stringEncoding: 'utf8' });
  const p = planValue(P('string'));
  cx.u8.set([0xc3, 0x28], 100);
  assert.throws(() => p.liftFlat(cx, { vals: [100, 2], i: 0 }), trapWith('invalid-utf8'));
  cx.u8.set([0xed, 0xa0, 0x80], 100); // encoded surrogate
  assert.throws(() => p.liftFlat(cx, { vals: [100, 3], i: 0 }), trapWith('invalid-utf8'));
  assert.throws(() => p.liftFlat(cx, { vals: [65530, 10], i: 0 }), trapWith('out-of-bounds'));
  assert.throws(() => p.liftFlat(cx, { vals: [0, 1 << 28], i: 0 }), trapWith('string-too-long'));
  const u16 = makeEnv({ stringEncoding: 'utf16' });
  assert.throws(() => p.liftFlat(u16.cx, { vals: [0, (1 << 27)], i: 0 }), trapWith('string-too-long'));
  const l1 = makeEnv({ stringEncoding: 'latin1+utf16' });
  assert.throws(() => p.liftFlat(l1.cx, { vals: [3, 1], i: 0 }), trapWith('misaligned-pointer'));
});

// ---------------------------------------------------------------- traps & validation

test('traps: discriminants, lists, realloc results', () => {
  const { cx, state } = makeEnv();
  const v = planValue(variant([['a', null], ['b', P('u8')]]));
  assert.throws(() => v.liftFlat(cx, { vals: [2, 0], i: 0 }), trapWith('invalid-discriminant'));
  cx.u8[200] = 5;
  assert.throws(() => v.load(cx, 200), trapWith('invalid-discriminant'));
  assert.throws(() => planValue(enm('x')).liftFlat(cx, { vals: [1], i: 0 }), trapWith('invalid-discriminant'));
  const l = planValue(list(P('u32')));
  assert.throws(() => l.liftFlat(cx, { vals: [2, 1], i: 0 }), trapWith('misaligned-pointer'));
  assert.throws(() => l.liftFlat(cx, { vals: [65532, 2], i: 0 }), trapWith('out-of-bounds'));
  assert.throws(() => l.liftFlat(cx, { vals: [0, 1 << 27], i: 0 }), trapWith('list-too-long'));
  state.misalign = true;
  assert.throws(() => l.lowerFlat(cx, [1], []), trapWith('misaligned-pointer'));
  state.misalign = false; state.outOfBounds = true;
  assert.throws(() => l.lowerFlat(cx, [1, 2], []), trapWith('out-of-bounds'));
  assert.throws(() => planValue(P('string')).lowerFlat(cx, 'hello', []), trapWith('out-of-bounds'));
  // no realloc
  const nr = makeEnv({ realloc: null });
  assert.throws(() => planValue(P('string')).lowerFlat(nr.cx, 'x', []), trapWith('missing-realloc'));
});

test('lowering validates JS values', () => {
  const { cx } = makeEnv();
  const low = (t: ValType, v: unknown) => planValue(t).lowerFlat(cx, v, []);
  assert.throws(() => low(P('u8'), 256), /RangeError|out of range for u8/);
  assert.throws(() => low(P('u8'), 256), RangeError);
  assert.throws(() => low(P('s8'), -129), RangeError);
  assert.throws(() => low(P('u32'), -1), RangeError);
  assert.throws(() => low(P('s32'), 2 ** 31), RangeError);
  assert.throws(() => low(P('u32'), 1.5), TypeError);
  assert.throws(() => low(P('u32'), '1'), /expected u32, got string "1"/);
  assert.throws(() => low(P('u64'), -1n), RangeError);
  assert.throws(() => low(P('s64'), 1n << 63n), RangeError);
  assert.doesNotThrow(() => low(P('u64'), 5));
  assert.throws(() => low(P('bool'), 1), /expected bool/);
  assert.throws(() => low(P('f32'), 1n), TypeError);
  assert.throws(() => low(P('char'), 'ab'), /char/);
  assert.throws(() => low(P('char'), '\ud800'), /char/);
  assert.throws(() => low(P('string'), 5), /expected string/);
  assert.throws(() => low(enm('a', 'b'), 'c'), /enum/);
  assert.throws(() => low(variant([['a', null]]), { tag: 'z' }), /invalid variant tag/);
  assert.throws(() => low(result(P('u8'), null), { tag: 'ok', val: 300 }), /case 'ok': .*u8/);
  assert.throws(() => low(record([['my-field', P('u8')]]), { myField: 'x' }), /field 'myField': expected u8/);
  assert.throws(() => low(record([['a', P('u8')]]), null), /record/);
  assert.throws(() => low(list(P('u8'), 3), [1, 2]), /exactly 3/);
  assert.throws(() => low(list(P('string')), 'abc'), /array/);
  assert.throws(() => low(list(P('u16')), [1, 70000]), /list element 1: .*u16/);
  assert.throws(() => low(tuple(P('u8'), P('u8')), [1]), /tuple/);
  const f = planFunc({ kind: 'func', async: false, params: [{ name: 'count', type: P('u32') }], result: null });
  assert.throws(() => f.lowerArgs(cx, ['x']), /argument 1 'count': expected u32/);
});

// ---------------------------------------------------------------- function adapters

test('func: flat params/results and spills beyond MAX_FLAT_PARAMS', () => {
  const { cx, calls } = makeEnv();
  const few = planFunc(func([P('u32'), P('string'), P('s64')], P('u8')));
  const core = few.lowerArgs(cx, [7, 'hi', -3n]);
  assert.equal(core.length, 4);
  assert.deepEqual([core[0], core[3]], [7, -3n]);
  assert.deepEqual(few.liftArgs(cx, throughWasm(core, ['i32', 'i32', 'i32', 'i64'])), [7, 'hi', -3n]);
  assert.equal(few.liftResult(cx, 200), 200);
  assert.equal(few.lowerResult(cx, 200, []), 200);

  const params17 = Array.from({ length: 17 }, (_, i) => (i === 3 ? P('string') : P('u32')));
  const many = planFunc(func(params17, null));
  const args = params17.map((t, i) => (t.kind === 'string' ? 'spilled' : i * 10));
  calls.length = 0;
  const spilled = many.lowerArgs(cx, args);
  assert.equal(spilled.length, 1);
  assert.equal(calls[0]!.align, 4);
  assert.equal(calls[0]!.newSize, 16 * 4 + 8);
  assert.deepEqual(many.liftArgs(cx, spilled), args);
  assert.throws(() => many.liftArgs(cx, [2]), trapWith('misaligned-pointer'));
  assert.throws(() => many.liftArgs(cx, [65532]), trapWith('out-of-bounds'));
  // 16 flat params stay flat
  const sixteen = planFunc(func(Array.from({ length: 16 }, () => P('u32')), null));
  assert.equal(sixteen.lowerArgs(cx, Array.from({ length: 16 }, (_, i) => i)).length, 16);
});

test('func: retptr results (lift and lower)', () => {
  const { cx } = makeEnv();
  const t = record([['name', P('string')], ['age', P('u8')]]);
  const f = planFunc(func([], t));
  assert.deepEqual(f.liftCoreType, { params: [], results: ['i32'] });
  assert.deepEqual(f.lowerCoreType, { params: ['i32'], results: [] });
  // guest → JS: the import stores through the retptr (last core arg)
  const retptr = 1000;
  assert.equal(f.lowerResult(cx, { name: 'bob', age: 42 }, [retptr]), undefined);
  // JS ← guest: the callee returned a pointer to the result
  assert.deepEqual(f.liftResult(cx, retptr), { name: 'bob', age: 42 });
  assert.throws(() => f.liftResult(cx, 1002), trapWith('misaligned-pointer'));
  assert.throws(() => f.lowerResult(cx, { name: 'x', age: 1 }, [65532]), trapWith('out-of-bounds'));
  const s = planFunc(func([P('string')], P('string')));
  assert.deepEqual(s.lowerCoreType, { params: ['i32', 'i32', 'i32'], results: [] });
  const args = s.lowerArgs(cx, ['in']);
  s.lowerResult(cx, 'out', [...args, 2000]);
  assert.equal(s.liftResult(cx, 2000), 'out');
  const none = planFunc(func([], null));
  assert.equal(none.liftResult(cx, undefined), undefined);
});

for (const [enc, m64] of [['utf8', false], ['utf16', false], ['latin1+utf16', false], ['latin1+utf16', true]] as const) test(`memory growth during lowering refreshes views (${enc}${m64 ? ', memory64' : ''})`, () => {
  const { cx, memory } = makeEnv({ stringEncoding: enc, memory64: m64 });
  const f = planFunc(func([list(P('string'))], null), m64);
  const big = Array.from({ length: 50 }, (_, i) => `str-${i}-` + (i % 2 ? 'é' : 'x').repeat(3000) + (i % 3 ? '€' : ''));
  const before = memory.buffer.byteLength;
  const core = f.lowerArgs(cx, [big]);
  assert.ok(memory.buffer.byteLength > before, 'memory grew');
  assert.deepEqual(f.liftArgs(cx, core), [big]);
  // growth by the guest between calls is noticed on entry
  memory.grow(m64 ? (1n as unknown as number) : 1);
  assert.deepEqual(f.liftArgs(cx, core), [big]);
});

test('async adapters', () => {
  const { cx } = makeEnv();
  const ft: FuncType = { kind: 'func', async: true, params: Array.from({ length: 5 }, (_, i) => ({ name: `a${i}`, type: P('u32') })), result: P('string') };
  const lo = planAsyncLower(ft);
  assert.deepEqual(lo.coreType, { params: ['i32', 'i32'], results: ['i32'] });
  const lifted = planFunc(ft);
  const spilledArgs = (() => {
    // store 5 u32 params as a tuple in memory
    for (let i = 0; i < 5; i++) cx.dv.setUint32(512 + 4 * i, i + 1, true);
    return [512, 768];
  })();
  assert.deepEqual(lo.liftArgs(cx, spilledArgs), [1, 2, 3, 4, 5]);
  lo.lowerResult(cx, 'done', spilledArgs);
  assert.equal(lifted.liftResult(cx, 768), 'done');
  const li = planAsyncLift(ft, false, true);
  assert.deepEqual(li.coreType, { params: ['i32', 'i32', 'i32', 'i32', 'i32'], results: ['i32'] });
  assert.deepEqual(li.taskReturnType, { params: ['i32', 'i32'], results: [] });
  const flat: unknown[] = [];
  planValue(P('string')).lowerFlat(cx, 'returned', flat);
  assert.equal(li.liftTaskReturn(cx, flat), 'returned');
  assert.deepEqual(li.lowerArgs(cx, [1, 2, 3, 4, 5]), [1, 2, 3, 4, 5]);
});

test('loadValues / storeValues / checkRange', () => {
  const { cx } = makeEnv();
  storeValues(cx, P('u16'), [1, 2, 3], 300);
  assert.deepEqual(loadValues(cx, P('u16'), 300, 3), [1, 2, 3]);
  assert.throws(() => loadValues(cx, P('u16'), 301, 1), trapWith('misaligned-pointer'));
  assert.throws(() => checkRange(cx, 65535, 1, 2), trapWith('out-of-bounds'));
});

// ---------------------------------------------------------------- a real wasm guest

function leb(n: number): number[] {
  const out: number[] = [];
  do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; out.push(b); } while (n);
  return out;
}
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f; n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) { out.push(b); return out; }
    out.push(b | 0x80);
  }
}
const str = (s: string) => [...leb(s.length), ...Buffer.from(s)];
const section = (id: number, body: number[]) => [id, ...leb(body.length), ...body];
const vec = (items: number[][]) => [...leb(items.length), ...items.flat()];

/** (memory import) realloc (bump, copies), echo(ptr,len)->retptr, post_return resets the bump. */
function echoModule(): Uint8Array<ArrayBuffer> {
  const I32 = 0x7f;
  const types = vec([
    [0x60, 4, I32, I32, I32, I32, 1, I32],
    [0x60, 2, I32, I32, 1, I32],
    [0x60, 1, I32, 0],
  ]);
  const imports = vec([[...str('env'), ...str('mem'), 0x02, 0x00, 0x01]]);
  const funcs = vec([[0], [1], [2]]);
  const globals = vec([[I32, 1, 0x41, ...sleb(1024), 0x0b]]);
  const exports = vec([[...str('realloc'), 0, 0], [...str('echo'), 0, 1], [...str('post'), 0, 2]]);
  const body = (locals: number[][], code: number[]) => { const b = [...vec(locals), ...code, 0x0b]; return [...leb(b.length), ...b]; };
  const realloc = body([[1, I32]], [
    0x23, 0, 0x20, 2, 0x6a, 0x41, 1, 0x6b, 0x41, 0, 0x20, 2, 0x6b, 0x71, 0x21, 4,
    0x20, 4, 0x20, 3, 0x6a, 0x24, 0,
    0x20, 4, 0x20, 0, 0x20, 1, 0x20, 3, 0x20, 1, 0x20, 3, 0x49, 0x1b, 0xfc, 0x0a, 0, 0,
    0x20, 4,
  ]);
  const echo = body([], [0x41, 16, 0x20, 0, 0x36, 2, 0, 0x41, 16, 0x20, 1, 0x36, 2, 4, 0x41, 16]);
  const post = body([], [0x41, ...sleb(1024), 0x24, 0]);
  const code = [...leb(3), ...realloc, ...echo, ...post];
  return new Uint8Array([
    0, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, types), ...section(2, imports), ...section(3, funcs), ...section(6, globals),
    ...section(7, exports), ...section(10, code),
  ]);
}

test('real wasm guest: func(s: string) -> string round trip and speed', () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(echoModule()), { env: { mem: memory } });
  const ex = inst.exports as { realloc: (...a: number[]) => number; echo: (p: number, l: number) => number; post: (p: number) => void };
  const handles = {} as HandleOps;
  for (const enc of ['utf8', 'utf16', 'latin1+utf16'] as const) {
    const cx = createContext({ memory, realloc: ex.realloc as CanonOptions['realloc'], postReturn: ex.post, stringEncoding: enc, memory64: false }, handles);
    const f = planFunc(func([P('string')], P('string')));
    assert.deepEqual(f.liftCoreType, { params: ['i32', 'i32'], results: ['i32'] });
    const call = (s: string) => {
      const a = f.lowerArgs(cx, [s]);
      const r = ex.echo(a[0] as number, a[1] as number);
      const out = f.liftResult(cx, r);
      ex.post(r);
      return out;
    };
    for (const s of ['', 'hello, world 1234', 'ünïcödé', '😀 emoji', 'x'.repeat(5000)]) assert.equal(call(s), s);
    if (enc === 'utf8') {
      const s = 'hello world 1234';
      for (let i = 0; i < 200_000; i++) call(s);
      const N = 500_000;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < N; i++) call(s);
      const ns = Number(process.hrtime.bigint() - t0) / N;
      console.log(`# func(s: string) -> string, 16-byte string, utf8: ${ns.toFixed(0)} ns/call`);
      assert.ok(ns < 5000, `call took ${ns} ns`);
    }
  }
});
