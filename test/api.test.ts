// The public embedding API as users call it: compile, instantiate with JS
// imports, call exports, link two separately compiled components, typed errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from '@bytecodealliance/jco';
import { Component, DecodeError, HostResource, LinkError, ResourceHandle, Trap, ValidationError } from '../src/index.ts';

const BUMP = `
    (memory (export "mem") 1)
    (global $bump (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $r i32)
      (global.set $bump (i32.and (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
                                 (i32.xor (i32.sub (local.get 2) (i32.const 1)) (i32.const -1))))
      (local.set $r (global.get $bump))
      (global.set $bump (i32.add (global.get $bump) (local.get 3)))
      ;; a realloc must keep the old contents (string transcoding grows allocations)
      (if (local.get 0) (then (memory.copy (local.get $r) (local.get 0) (select (local.get 1) (local.get 3) (i32.lt_u (local.get 1) (local.get 3))))))
      (local.get $r))`;

/** A component exporting a byte-list processor `sum: func(l: list<u8>) -> u32` and `echo: func(s: string) -> string`. */
const PRODUCER = `(component
  (core module $M ${BUMP}
    (func (export "sum") (param $p i32) (param $n i32) (result i32)
      (local $i i32) (local $s i32)
      (block $d (loop $l
        (br_if $d (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $s (i32.add (local.get $s) (i32.load8_u (i32.add (local.get $p) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
      (local.get $s))
    (func (export "echo") (param i32 i32) (result i32)
      (i32.store (i32.const 0) (local.get 0)) (i32.store (i32.const 4) (local.get 1)) (i32.const 0)))
  (core instance $m (instantiate $M))
  (func $sum (param "l" (list u8)) (result u32)
    (canon lift (core func $m "sum") (memory (core memory $m "mem")) (realloc (core func $m "realloc"))))
  (func $echo (param "s" string) (result string)
    (canon lift (core func $m "echo") (memory (core memory $m "mem")) (realloc (core func $m "realloc"))))
  (instance $api (export "sum" (func $sum)) (export "echo" (func $echo)))
  (export "weir:test/api@1.2.0" (instance $api))
)`;

/** A component importing the producer's interface at an older compatible version, re-exporting a use of it. */
const CONSUMER = `(component
  (import "weir:test/api@1.0.0" (instance $api
    (export "sum" (func (param "l" (list u8)) (result u32)))
    (export "echo" (func (param "s" string) (result string)))))
  (core module $Mem ${BUMP})
  (core instance $mem (instantiate $Mem))
  (core func $sum (canon lower (func $api "sum") (memory (core memory $mem "mem"))))
  (core func $echo (canon lower (func $api "echo") (memory (core memory $mem "mem")) (realloc (core func $mem "realloc"))))
  (core module $M
    (import "" "mem" (memory 1))
    (import "" "sum" (func $sum (param i32 i32) (result i32)))
    (import "" "echo" (func $echo (param i32 i32 i32)))
    (func (export "run") (param $n i32) (result i32)
      (local $i i32)
      (block $d (loop $l
        (br_if $d (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store8 (i32.add (i32.const 4096) (local.get $i)) (i32.const 3))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
      (call $sum (i32.const 4096) (local.get $n)))
    (func (export "shout") (param i32 i32) (result i32)
      (call $echo (local.get 0) (local.get 1) (i32.const 16))
      (i32.const 16)))
  (core instance $m (instantiate $M (with "" (instance
    (export "mem" (memory $mem "mem")) (export "sum" (func $sum)) (export "echo" (func $echo))))))
  (func (export "run") (param "n" u32) (result u32) (canon lift (core func $m "run")))
  (func (export "shout") (param "s" string) (result string)
    (canon lift (core func $m "shout") (memory (core memory $mem "mem")) (realloc (core func $mem "realloc"))))
)`;

test('compile, instantiate and call an export', async () => {
  const c = Component.compile(await parse(PRODUCER));
  assert.deepEqual([...c.type.exports.keys()], ['weir:test/api@1.2.0']);
  const api = c.instantiate().exports['weir:test/api@1.2.0'];
  assert.equal(api.sum(new Uint8Array([1, 2, 3, 250])), 256);
  assert.equal(api.sum([1, 2]), 3);
  assert.equal(api.echo('héllo ☃ 🚀'), 'héllo ☃ 🚀');
  assert.throws(() => api.sum('nope'), TypeError);
});

test('two separately compiled components link through the public API (semver-matched)', async () => {
  const producer = Component.compile(await parse(PRODUCER)).instantiate();
  const consumer = Component.compile(await parse(CONSUMER));
  const inst = consumer.instantiate({ 'weir:test/api@1.2.0': producer.exports['weir:test/api@1.2.0'] });
  assert.equal(inst.exports.run(1000), 3000);
  assert.equal(inst.exports.shout('ok ✓'), 'ok ✓');
});

test('the same import is satisfied by plain JS functions', async () => {
  const consumer = Component.compile(await parse(CONSUMER));
  const seen: Uint8Array[] = [];
  const inst = consumer.instantiate({
    'weir:test/api@1.0.0': {
      sum: (l: Uint8Array) => { seen.push(l); return l.reduce((a, b) => a + b, 0); },
      echo: (s: string) => s.toUpperCase(),
    },
  });
  assert.equal(inst.exports.run(5), 15);
  assert.ok(seen[0] instanceof Uint8Array);
  assert.equal(inst.exports.shout('abc'), 'ABC');
});

test('an incompatible major version does not link', async () => {
  const consumer = Component.compile(await parse(CONSUMER));
  assert.throws(() => consumer.instantiate({ 'weir:test/api@2.0.0': { sum: () => 0, echo: () => '' } }), LinkError);
});

test('decode errors carry a byte offset; validation errors name the rule', async () => {
  const bytes = await parse(PRODUCER);
  const truncated = bytes.subarray(0, bytes.length - 7);
  assert.throws(() => Component.compile(truncated), (e: unknown) => e instanceof DecodeError && e.offset > 0 && /byte offset/.test(e.message));
  const bad = await parse(`(component (core module $m (func (export "f") (result i32) unreachable)) (core instance $i (instantiate $m))
    (func (export "f") (result string) (canon lift (core func $i "f"))))`);
  assert.throws(() => Component.compile(bad), (e: unknown) => e instanceof ValidationError && /memory/.test(e.rule));
});

test('a trap has the reason and a wasm stack, and poisons the instance', async () => {
  const c = Component.compile(await parse(`(component
    (core module $m (func $inner unreachable) (func (export "boom") call $inner) (func (export "ok") (result i32) i32.const 1))
    (core instance $i (instantiate $m))
    (func (export "boom") (canon lift (core func $i "boom")))
    (func (export "ok") (result u32) (canon lift (core func $i "ok"))))`));
  const inst = c.instantiate();
  assert.equal(inst.exports.ok(), 1);
  assert.throws(() => inst.exports.boom(), (e: unknown) => e instanceof Trap && e.kind === 'wasm-unreachable' && e.code === 'WEIR_TRAP' && e.wasmStack.length >= 2);
  assert.throws(() => inst.exports.ok(), (e: unknown) => e instanceof Trap && e.kind === 'instance-poisoned');
  // a fresh instance of the same compiled component is unaffected
  assert.equal(c.instantiate().exports.ok(), 1);
});

test('host resources: the guest holds handles to the host\'s own objects; drop runs the destructor', async () => {
  const c = Component.compile(await parse(`(component
    (import "counter" (type $c (sub resource)))
    (import "[constructor]counter" (func $new (param "start" u32) (result (own $c))))
    (import "[method]counter.bump" (func $bump (param "self" (borrow $c)) (result u32)))
    (core func $new (canon lower (func $new)))
    (core func $bump (canon lower (func $bump)))
    (core func $drop (canon resource.drop $c))
    (core module $m
      (import "" "new" (func $new (param i32) (result i32)))
      (import "" "bump" (func $bump (param i32) (result i32)))
      (import "" "drop" (func $drop (param i32)))
      (func (export "run") (result i32)
        (local $h i32) (local $r i32)
        (local.set $h (call $new (i32.const 40)))
        (drop (call $bump (local.get $h)))
        (local.set $r (call $bump (local.get $h)))
        (call $drop (local.get $h))
        (local.get $r)))
    (core instance $i (instantiate $m (with "" (instance (export "new" (func $new)) (export "bump" (func $bump)) (export "drop" (func $drop))))))
    (func (export "run") (result u32) (canon lift (core func $i "run"))))`));
  const dropped: unknown[] = [];
  class Counter { n: number; constructor(n: number) { this.n = n; } }
  const inst = c.instantiate({
    counter: new HostResource('counter', { drop: (rep) => dropped.push(rep) }),
    '[constructor]counter': (start: number) => new Counter(start),
    '[method]counter.bump': (self: Counter) => ++self.n,
  });
  assert.equal(inst.exports.run(), 42);
  assert.equal(dropped.length, 1);
  assert.ok(dropped[0] instanceof Counter);
});

test('guest resources reach the host as handles that can be passed back and dropped', async () => {
  const c = Component.compile(await parse(`(component
    (core module $dtor (global (export "drops") (mut i32) (i32.const 0))
      (func (export "dtor") (param i32) (global.set 0 (i32.add (global.get 0) (local.get 0)))))
    (core instance $d (instantiate $dtor))
    (type $r' (resource (rep i32) (dtor (core func $d "dtor"))))
    (export $r "r" (type $r'))
    (core func $new (canon resource.new $r'))
    (core func $rep (canon resource.rep $r'))
    (core module $m
      (import "" "new" (func $new (param i32) (result i32)))
      (import "" "rep" (func $rep (param i32) (result i32)))
      (import "" "drops" (global $drops (mut i32)))
      (func (export "make") (param i32) (result i32) (call $new (local.get 0)))
      ;; a borrow of a resource this instance defines arrives as the rep itself
      (func (export "get") (param i32) (result i32) (local.get 0))
      (func (export "rep-of") (param i32) (result i32) (call $rep (local.get 0)))
      (func (export "drops") (result i32) (global.get $drops)))
    (core instance $i (instantiate $m (with "" (instance (export "new" (func $new)) (export "rep" (func $rep)) (export "drops" (global $d "drops"))))))
    (func (export "[constructor]r") (param "v" u32) (result (own $r)) (canon lift (core func $i "make")))
    (func (export "[method]r.get") (param "self" (borrow $r)) (result u32) (canon lift (core func $i "get")))
    (func (export "drops") (result u32) (canon lift (core func $i "drops"))))`));
  const e = c.instantiate().exports;
  const h = e['[constructor]r'](7);
  assert.ok(h instanceof ResourceHandle);
  assert.equal(e['[method]r.get'](h), 7);
  assert.equal(e['[method]r.get'](h), 7);
  assert.equal(e.drops(), 0);
  h.drop();
  assert.equal(e.drops(), 7);
  assert.throws(() => e['[method]r.get'](h), TypeError);
});
