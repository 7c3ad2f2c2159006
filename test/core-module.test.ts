import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from '@bytecodealliance/jco';
import { parseCoreModuleType } from '../src/binary/core-module.ts';
import { Reader } from '../src/binary/reader.ts';
import { DecodeError } from '../src/errors.ts';

const wat = async (src: string): Promise<Uint8Array> => parse(src);

function throwsDecode(f: () => unknown, offset?: number): DecodeError {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof DecodeError, `expected DecodeError, got ${String(err)}`);
  if (offset !== undefined) assert.equal(err.offset, offset);
  return err;
}

// ---------------- Reader ----------------

test('reader: u32 LEB128', () => {
  assert.equal(new Reader(Uint8Array.of(0x00)).u32(), 0);
  assert.equal(new Reader(Uint8Array.of(0x7f)).u32(), 127);
  assert.equal(new Reader(Uint8Array.of(0x80, 0x01)).u32(), 128);
  assert.equal(new Reader(Uint8Array.of(0xe5, 0x8e, 0x26)).u32(), 624485);
  assert.equal(new Reader(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f)).u32(), 0xffffffff);
  assert.equal(new Reader(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x00)).u32(), 0);
  // overflow / too long / truncated
  throwsDecode(() => new Reader(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x1f)).u32(), 4);
  throwsDecode(() => new Reader(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x00)).u32(), 4);
  throwsDecode(() => new Reader(Uint8Array.of(0x80, 0x80), 100).u32(), 102);
  throwsDecode(() => new Reader(new Uint8Array(0), 7).u32(), 7);
});

test('reader: s32 / s33', () => {
  const s32 = (...b: number[]) => new Reader(Uint8Array.from(b)).s32();
  assert.equal(s32(0x00), 0);
  assert.equal(s32(0x7f), -1);
  assert.equal(s32(0x3f), 63);
  assert.equal(s32(0x40), -64);
  assert.equal(s32(0xc0, 0xbb, 0x78), -123456);
  assert.equal(s32(0xff, 0xff, 0xff, 0xff, 0x07), 0x7fffffff);
  assert.equal(s32(0x80, 0x80, 0x80, 0x80, 0x78), -0x80000000);
  assert.equal(s32(0xff, 0xff, 0xff, 0xff, 0x7f), -1);
  throwsDecode(() => s32(0xff, 0xff, 0xff, 0xff, 0x0f)); // 2^31 + ... too large
  throwsDecode(() => s32(0x80, 0x80, 0x80, 0x80, 0x70));
  throwsDecode(() => s32(0x80, 0x80, 0x80, 0x80, 0x80, 0x00));

  const s33 = (...b: number[]) => new Reader(Uint8Array.from(b)).s33();
  assert.equal(s33(0x70), -16);
  assert.equal(s33(0x05), 5);
  assert.equal(s33(0xff, 0xff, 0xff, 0xff, 0x0f), 0xffffffff);
  assert.equal(s33(0x80, 0x80, 0x80, 0x80, 0x70), -(2 ** 32));
  assert.equal(s33(0xff, 0x7f), -1);
  throwsDecode(() => s33(0xff, 0xff, 0xff, 0xff, 0x1f));
  throwsDecode(() => s33(0x80, 0x80, 0x80, 0x80, 0x60));
});

test('reader: s64 / u64', () => {
  const s64 = (...b: number[]) => new Reader(Uint8Array.from(b)).s64();
  const u64 = (...b: number[]) => new Reader(Uint8Array.from(b)).u64();
  assert.equal(s64(0x7f), -1n);
  assert.equal(s64(0x01), 1n);
  assert.equal(s64(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00), 0x7fffffffffffffffn);
  assert.equal(s64(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f), -0x8000000000000000n);
  assert.equal(s64(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40), -(2n ** 62n));
  assert.equal(s64(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40), -(2n ** 55n));
  assert.equal(s64(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40), -(2n ** 48n));
  throwsDecode(() => s64(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01));
  throwsDecode(() => s64(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00));
  assert.equal(u64(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), 0xffffffffffffffffn);
  assert.equal(u64(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01), 2n ** 56n);
  assert.equal(u64(0xe5, 0x8e, 0x26), 624485n);
  throwsDecode(() => u64(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02));
  throwsDecode(() => u64(0xff, 0xff, 0xff));
});

test('reader: floats, bytes, names, vec, sub', () => {
  const buf = new Uint8Array(12);
  const dv = new DataView(buf.buffer);
  dv.setFloat32(0, 1.5, true);
  dv.setFloat64(4, -2.25, true);
  const r = new Reader(buf);
  assert.equal(r.f32(), 1.5);
  assert.equal(r.f64(), -2.25);
  assert.ok(r.eof);
  throwsDecode(() => new Reader(new Uint8Array(3)).f32(), 0);
  throwsDecode(() => new Reader(new Uint8Array(7), 10).f64(), 10);

  const enc = new TextEncoder();
  const nm = (s: string) => Uint8Array.from([enc.encode(s).length, ...enc.encode(s)]);
  assert.equal(new Reader(nm('hello')).name(), 'hello');
  assert.equal(new Reader(nm('héllo ☃ 😀')).name(), 'héllo ☃ 😀');
  throwsDecode(() => new Reader(Uint8Array.of(2, 0xc3, 0x28), 50).name(), 51);
  throwsDecode(() => new Reader(Uint8Array.of(1, 0xff)).name());
  throwsDecode(() => new Reader(Uint8Array.of(5, 0x61)).name(), 0);

  // vec with huge length fails fast
  throwsDecode(() => new Reader(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f)).vec((x) => x.byte()), 0);
  assert.deepEqual(new Reader(Uint8Array.of(3, 1, 2, 3)).vec((x) => x.byte()), [1, 2, 3]);

  // sub-readers keep absolute offsets
  const outer = new Reader(Uint8Array.of(9, 9, 1, 2, 3, 4), 1000);
  outer.pos = 2;
  const s = outer.sub(2);
  assert.equal(outer.offset, 1004);
  assert.equal(s.offset, 1002);
  assert.equal(s.byte(), 1);
  assert.equal(s.byte(), 2);
  assert.ok(s.eof);
  throwsDecode(() => s.byte(), 1004);
  throwsDecode(() => outer.sub(3), 1004);
  const b = new Reader(Uint8Array.of(1, 2, 3)).bytes(2);
  assert.deepEqual([...b], [1, 2]);
  throwsDecode(() => new Reader(Uint8Array.of(1, 2, 3)).bytes(4));
});

// ---------------- core modules ----------------

test('core module: imports of all kinds', async () => {
  const bytes = await wat(`(module
    (type $t (func (param i32 i64) (result f32 f64)))
    (import "env" "f" (func (type $t)))
    (import "env" "g" (func (param v128 funcref externref)))
    (import "env" "tab" (table 1 10 funcref))
    (import "env" "tab64" (table i64 2 externref))
    (import "env" "mem" (memory 1 2))
    (import "env" "mem64" (memory i64 3))
    (import "env" "smem" (memory 1 4 shared))
    (import "env" "glob" (global i32))
    (import "env" "mglob" (global (mut i64)))
    (import "env" "tag" (tag (param i32)))
    (import "" "" (func))
  )`);
  const t = parseCoreModuleType(bytes, 0);
  assert.equal(t.kind, 'module');
  assert.deepEqual(t.imports, [
    { module: 'env', name: 'f', type: { kind: 'func', type: { kind: 'func', params: ['i32', 'i64'], results: ['f32', 'f64'] } } },
    { module: 'env', name: 'g', type: { kind: 'func', type: { kind: 'func', params: ['v128', 'funcref', 'externref'], results: [] } } },
    { module: 'env', name: 'tab', type: { kind: 'table', elem: 'funcref', min: 1, max: 10 } },
    { module: 'env', name: 'tab64', type: { kind: 'table', elem: 'externref', min: 2, max: null, is64: true } },
    { module: 'env', name: 'mem', type: { kind: 'memory', min: 1, max: 2, shared: false, is64: false } },
    { module: 'env', name: 'mem64', type: { kind: 'memory', min: 3, max: null, shared: false, is64: true } },
    { module: 'env', name: 'smem', type: { kind: 'memory', min: 1, max: 4, shared: true, is64: false } },
    { module: 'env', name: 'glob', type: { kind: 'global', type: 'i32', mutable: false } },
    { module: 'env', name: 'mglob', type: { kind: 'global', type: 'i64', mutable: true } },
    { module: 'env', name: 'tag', type: { kind: 'tag', type: { kind: 'func', params: ['i32'], results: [] } } },
    { module: '', name: '', type: { kind: 'func', type: { kind: 'func', params: [], results: [] } } },
  ]);
  assert.equal(t.exports.size, 0);
});

test('core module: exports resolve through index spaces (imports first)', async () => {
  const bytes = await wat(`(module
    (import "env" "imp" (func $imp (param i32)))
    (import "env" "g0" (global $g0 i32))
    (import "env" "t0" (table 1 funcref))
    (import "env" "m0" (memory 1))
    (import "env" "e0" (tag (param f64)))
    (func $a (result i64) i64.const 1)
    (func $b (param f32) (result f32) local.get 0)
    (table $t1 5 20 externref)
    (table $t2 i64 7 funcref)
    (memory $m1 i64 2 100)
    (global $g1 (mut f32) (f32.const 1.5))
    (global $g2 i64 (i64.const -9223372036854775808))
    (global $g3 v128 (v128.const i32x4 1 2 3 4))
    (global $g4 i32 (i32.add (global.get $g0) (i32.mul (i32.const 3) (i32.const -100000))))
    (global $g5 funcref (ref.func $a))
    (global $g6 externref (ref.null extern))
    (global $g7 f64 (f64.const 2.5))
    (global $g8 i64 (i64.sub (i64.const 5) (i64.add (i64.const 1) (i64.mul (i64.const 2) (i64.const 3)))))
    (tag $e1 (param i32 i64))
    (export "imp" (func $imp))
    (export "a" (func $a))
    (export "b" (func $b))
    (export "t0" (table 0))
    (export "t1" (table $t1))
    (export "t2" (table $t2))
    (export "m0" (memory 0))
    (export "g0" (global $g0))
    (export "g1" (global $g1))
    (export "g4" (global $g4))
    (export "g8" (global $g8))
    (export "g5" (global $g5))
    (export "e0" (tag 0))
    (export "e1" (tag $e1))
    (start $a2)
    (func $a2)
    (elem declare func $a)
    (data (memory 1) (i64.const 0) "hello")
  )`);
  const t = parseCoreModuleType(bytes, 0);
  assert.equal(t.imports.length, 5);
  const ex = Object.fromEntries(t.exports);
  assert.deepEqual(Object.keys(ex), ['imp', 'a', 'b', 't0', 't1', 't2', 'm0', 'g0', 'g1', 'g4', 'g8', 'g5', 'e0', 'e1']);
  assert.deepEqual(ex.imp, { kind: 'func', type: { kind: 'func', params: ['i32'], results: [] } });
  assert.deepEqual(ex.a, { kind: 'func', type: { kind: 'func', params: [], results: ['i64'] } });
  assert.deepEqual(ex.b, { kind: 'func', type: { kind: 'func', params: ['f32'], results: ['f32'] } });
  assert.deepEqual(ex.t0, { kind: 'table', elem: 'funcref', min: 1, max: null });
  assert.deepEqual(ex.t1, { kind: 'table', elem: 'externref', min: 5, max: 20 });
  assert.deepEqual(ex.t2, { kind: 'table', elem: 'funcref', min: 7, max: null, is64: true });
  assert.deepEqual(ex.m0, { kind: 'memory', min: 1, max: null, shared: false, is64: false });
  assert.deepEqual(ex.g0, { kind: 'global', type: 'i32', mutable: false });
  assert.deepEqual(ex.g1, { kind: 'global', type: 'f32', mutable: true });
  assert.deepEqual(ex.g4, { kind: 'global', type: 'i32', mutable: false });
  assert.deepEqual(ex.g8, { kind: 'global', type: 'i64', mutable: false });
  assert.deepEqual(ex.g5, { kind: 'global', type: 'funcref', mutable: false });
  assert.deepEqual(ex.e0, { kind: 'tag', type: { kind: 'func', params: ['f64'], results: [] } });
  assert.deepEqual(ex.e1, { kind: 'tag', type: { kind: 'func', params: ['i32', 'i64'], results: [] } });
  // V8 agrees this is a valid module
  new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
});

test('core module: memory64 limits and big bounds', async () => {
  const bytes = await wat(`(module
    (memory (export "m") i64 4294967296 8589934592)
    (memory (export "s") 0 65536 shared)
  )`);
  const t = parseCoreModuleType(bytes, 0);
  assert.deepEqual(t.exports.get('m'), { kind: 'memory', min: 2 ** 32, max: 2 ** 33, shared: false, is64: true });
  assert.deepEqual(t.exports.get('s'), { kind: 'memory', min: 0, max: 65536, shared: true, is64: false });
});

test('core module: GC types keep type indices aligned', async () => {
  const bytes = await wat(`(module
    (type $s (struct (field i32) (field (mut i64)) (field i8) (field (mut i16))))
    (type $arr (array (mut f64)))
    (rec
      (type $node (sub (struct (field (ref null $node)) (field anyref))))
      (type $leaf (sub final $node (struct (field (ref null $node)) (field anyref) (field i31ref))))
      (type $f (func (param (ref $node) (ref null $arr)) (result eqref)))
    )
    (type $g (sub (func (param i32 (ref null func) (ref extern) (ref null extern)) (result structref arrayref nullref nullfuncref nullexternref))))
    (type $h (sub final $g (func (param i32 (ref null func) (ref extern) (ref null extern)) (result structref arrayref nullref nullfuncref nullexternref))))
    (type $a2 (array i8))
    (import "m" "f" (func $imp (type $f)))
    (import "m" "h" (func (type $h)))
    (import "m" "glob" (global (ref null $s)))
    (import "m" "tab" (table 0 (ref null $f)))
    (func $mk (type $f) ref.null eq)
    (global $gs (ref $s) (struct.new $s (i32.const 1) (i64.const 2) (i32.const 3) (i32.const 4)))
    (global $gsd (ref $s) (struct.new_default $s))
    (global $ga (ref $arr) (array.new $arr (f64.const 1) (i32.const 3)))
    (global $gad (ref $arr) (array.new_default $arr (i32.const 3)))
    (global $gaf (ref $a2) (array.new_fixed $a2 3 (i32.const 1) (i32.const 2) (i32.const 3)))
    (global $gi (ref i31) (ref.i31 (i32.const 7)))
    (global $gx externref (extern.convert_any (ref.i31 (i32.const 7))))
    (global $gany anyref (any.convert_extern (ref.null extern)))
    (global $gn (ref null $f) (ref.null $f))
    (table $t 10 (ref $f) (ref.func $mk))
    (export "mk" (func $mk))
    (export "imp" (func $imp))
    (export "gs" (global $gs))
    (export "gn" (global $gn))
    (export "gx" (global $gx))
    (export "t" (table $t))
    (elem declare func $mk)
  )`);
  const t = parseCoreModuleType(bytes, 0);
  const f = { kind: 'func', params: ['ref', 'ref'], results: ['ref'] };
  assert.deepEqual(t.imports[0], { module: 'm', name: 'f', type: { kind: 'func', type: f } });
  assert.deepEqual(t.imports[1]!.type, {
    kind: 'func',
    type: { kind: 'func', params: ['i32', 'funcref', 'ref', 'externref'], results: ['ref', 'ref', 'ref', 'ref', 'ref'] },
  });
  assert.deepEqual(t.imports[2]!.type, { kind: 'global', type: 'ref', mutable: false });
  assert.deepEqual(t.imports[3]!.type, { kind: 'table', elem: 'ref', min: 0, max: null });
  assert.deepEqual(t.exports.get('mk'), { kind: 'func', type: f });
  assert.deepEqual(t.exports.get('imp'), { kind: 'func', type: f });
  assert.deepEqual(t.exports.get('gs'), { kind: 'global', type: 'ref', mutable: false });
  assert.deepEqual(t.exports.get('gn'), { kind: 'global', type: 'ref', mutable: false });
  assert.deepEqual(t.exports.get('gx'), { kind: 'global', type: 'externref', mutable: false });
  assert.deepEqual(t.exports.get('t'), { kind: 'table', elem: 'ref', min: 10, max: null });
  new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
});

test('core module: custom sections and code are skipped', async () => {
  const bytes = await wat(`(module
    (@custom "hello" "world")
    (func (export "run") (param i32) (result i32)
      block (result i32) local.get 0 i32.const 1 i32.add end)
    (@custom "after" (after code) "x")
  )`);
  const t = parseCoreModuleType(bytes, 0);
  assert.deepEqual(t.exports.get('run'), { kind: 'func', type: { kind: 'func', params: ['i32'], results: ['i32'] } });
});

test('core module: empty module', async () => {
  const t = parseCoreModuleType(await wat('(module)'), 0);
  assert.deepEqual(t.imports, []);
  assert.equal(t.exports.size, 0);
});

test('core module: malformed input → DecodeError with absolute offsets', async () => {
  const bytes = await wat(`(module
    (import "env" "f" (func (param i32)))
    (memory (export "m") 1)
    (global (export "g") i32 (i32.const 42))
    (func (export "x") (result i32) i32.const 0)
  )`);
  parseCoreModuleType(bytes, 0);
  // every strict prefix that does not end on a section boundary is malformed
  const boundaries = new Set<number>();
  for (const r = new Reader(bytes, 0, 8); !r.eof; ) {
    boundaries.add(r.pos);
    r.byte();
    r.skip(r.u32());
  }
  assert.ok(boundaries.size >= 5);
  for (let n = 0; n < bytes.length; n++) {
    if (boundaries.has(n)) {
      parseCoreModuleType(bytes.subarray(0, n), 500);
      continue;
    }
    const err = throwsDecode(() => parseCoreModuleType(bytes.subarray(0, n), 500));
    assert.ok(err.offset >= 500 && err.offset <= 500 + n, `offset ${err.offset} for prefix ${n}`);
  }
  // bad magic / version
  const bad = bytes.slice();
  bad[0] = 1;
  throwsDecode(() => parseCoreModuleType(bad, 10), 10);
  const badv = bytes.slice();
  badv[4] = 0x0d; // component layer
  throwsDecode(() => parseCoreModuleType(badv, 10), 14);
  // unknown section id
  throwsDecode(() => parseCoreModuleType(Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0x20, 0), 0), 8);
  // section size larger than its content
  throwsDecode(() => parseCoreModuleType(Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0x01, 0x05, 0x00), 0));
  // section content shorter than declared size: type section says 2 bytes but holds an empty vec + junk
  throwsDecode(() => parseCoreModuleType(Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0x01, 0x02, 0x00, 0x00), 0), 11);
  // huge vector length
  throwsDecode(() => parseCoreModuleType(Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0x01, 0x05, 0xff, 0xff, 0xff, 0xff, 0x0f), 0), 10);
  // function referencing a missing type
  throwsDecode(() => parseCoreModuleType(Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0x03, 0x02, 0x01, 0x00), 0), 11);
  // invalid UTF-8 in an import name
  throwsDecode(() =>
    parseCoreModuleType(Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0x02, 0x07, 0x01, 0x01, 0xff, 0x00, 0x02, 0x00, 0x00), 0), 12);
  // export of a function index out of range
  throwsDecode(() =>
    parseCoreModuleType(Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0x07, 0x05, 0x01, 0x01, 0x61, 0x00, 0x00), 0), 11);
  // non-constant instruction in a global initializer
  throwsDecode(() =>
    parseCoreModuleType(Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0x06, 0x06, 0x01, 0x7f, 0x00, 0x41, 0x00, 0x1a, 0x0b), 0), 15);
});

test('core module: mutated modules fail only with DecodeError', async () => {
  const bytes = await wat(`(module
    (type $s (struct (field i32) (field (mut i64))))
    (rec (type $f (func (param (ref null $s)) (result i32))) (type $a (array i8)))
    (import "env" "f" (func (type $f)))
    (import "env" "t" (table i64 1 2 funcref))
    (import "env" "m" (memory i64 1 2))
    (import "env" "tag" (tag (param i32)))
    (memory (export "mem") 1 2 shared)
    (global (export "g") (mut i64) (i64.add (i64.const 1) (i64.const 2)))
    (global (export "gs") (ref $s) (struct.new $s (i32.const 1) (i64.const 2)))
    (func (export "x") (type $f) i32.const 0)
  )`);
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let iter = 0; iter < 3000; iter++) {
    const m = bytes.slice();
    const flips = 1 + Math.floor(rand() * 3);
    for (let k = 0; k < flips; k++) m[8 + Math.floor(rand() * (m.length - 8))] = Math.floor(rand() * 256);
    try {
      parseCoreModuleType(m, 0);
    } catch (e) {
      assert.ok(e instanceof DecodeError, `iteration ${iter}: ${String(e)}`);
      assert.ok(e.offset >= 0 && e.offset <= m.length);
    }
  }
});
