// JS-side behaviour of the async Component Model: async exports return
// Promises, async host imports, streams as web ReadableStreams with
// backpressure, futures as Promises, AbortSignal cancellation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from '@bytecodealliance/jco';
import { Component, Trap } from '../src/index.ts';

async function build(wat: string, imports: Record<string, unknown> = {}) {
  const bytes = await parse(wat);
  return Component.compile(bytes).instantiate(imports);
}

const tick = () => new Promise((r) => setImmediate(r));

test('an async export returns a Promise', async () => {
  const inst = await build(`(component
    (core module $m
      (import "" "task.return" (func $tr (param i32)))
      (func (export "f") (param i32) (result i32) (call $tr (i32.add (local.get 0) (i32.const 1))) (i32.const 0))
      (func (export "cb") (param i32 i32 i32) (result i32) unreachable))
    (core func $tr (canon task.return (result u32)))
    (core instance $i (instantiate $m (with "" (instance (export "task.return" (func $tr))))))
    (func (export "inc") async (param "x" u32) (result u32) (canon lift (core func $i "f") async (callback (core func $i "cb")))))`);
  const p = inst.exports.inc(41);
  assert.ok(p instanceof Promise);
  assert.equal(await p, 42);
  const many = await Promise.all(Array.from({ length: 100 }, (_, i) => inst.exports.inc(i)));
  assert.deepEqual(many, Array.from({ length: 100 }, (_, i) => i + 1));
});

const CALL_HOST = `(component
  (import "slow" (func $slow async (param "x" u32) (result u32)))
  (core module $mem (memory (export "m") 1))
  (core instance $mi (instantiate $mem))
  (core func $slow' (canon lower (func $slow) async (memory (core memory $mi "m"))))
  (core func $tr (canon task.return (result u32)))
  (core func $wsnew (canon waitable-set.new))
  (core func $join (canon waitable.join))
  (core func $sdrop (canon subtask.drop))
  (core func $cget (canon context.get i32 0))
  (core func $cset (canon context.set i32 0))
  (core module $m
    (import "" "m" (memory 1))
    (import "" "slow" (func $slow (param i32 i32) (result i32)))
    (import "" "task.return" (func $tr (param i32)))
    (import "" "ws.new" (func $wsnew (result i32)))
    (import "" "join" (func $join (param i32 i32)))
    (import "" "sdrop" (func $sdrop (param i32)))
    (import "" "cget" (func $cget (result i32)))
    (import "" "cset" (func $cset (param i32)))
    (global $next (mut i32) (i32.const 64))
    ;; each task keeps its result slot in context slot 0, its waitable set in memory after it
    (func (export "f") (param $x i32) (result i32) (local $r i32) (local $ret i32) (local $ws i32)
      (local.set $ret (global.get $next))
      (global.set $next (i32.add (global.get $next) (i32.const 8)))
      (call $cset (local.get $ret))
      (local.set $r (call $slow (local.get $x) (local.get $ret)))
      (if (i32.eq (local.get $r) (i32.const 2))
        (then (call $tr (i32.load (local.get $ret))) (return (i32.const 0))))
      (local.set $ws (call $wsnew))
      (i32.store offset=4 (local.get $ret) (local.get $ws))
      (call $join (i32.shr_u (local.get $r) (i32.const 4)) (local.get $ws))
      (i32.or (i32.const 2) (i32.shl (local.get $ws) (i32.const 4))))
    (func (export "cb") (param $code i32) (param $idx i32) (param $payload i32) (result i32) (local $ret i32)
      (local.set $ret (call $cget))
      (if (i32.eq (local.get $payload) (i32.const 2))
        (then
          (call $join (local.get $idx) (i32.const 0))
          (call $sdrop (local.get $idx))
          (call $tr (i32.load (local.get $ret)))
          (return (i32.const 0))))
      (i32.or (i32.const 2) (i32.shl (i32.load offset=4 (local.get $ret)) (i32.const 4)))))
  (core instance $i (instantiate $m (with "" (instance
    (export "m" (memory $mi "m")) (export "slow" (func $slow')) (export "task.return" (func $tr))
    (export "ws.new" (func $wsnew)) (export "join" (func $join)) (export "sdrop" (func $sdrop))
    (export "cget" (func $cget)) (export "cset" (func $cset))))))
  (func (export "double") async (param "x" u32) (result u32)
    (canon lift (core func $i "f") async (callback (core func $i "cb")))))`;

test('an async host import may be an async function; many tasks wait concurrently', async () => {
  const inst = await build(CALL_HOST, { slow: async (x: number) => { await tick(); return x * 2; } });
  assert.equal(await inst.exports.double(21), 42);
  const n = 1000;
  const rs = await Promise.all(Array.from({ length: n }, (_, i) => inst.exports.double(i)));
  assert.deepEqual(rs, Array.from({ length: n }, (_, i) => i * 2));
});

test('a host import that resolves at once completes the subtask synchronously', async () => {
  const inst = await build(CALL_HOST, { slow: (x: number) => x + 100 });
  assert.equal(await inst.exports.double(1), 101);
});

test('a rejected host promise traps the calling task', async () => {
  const inst = await build(CALL_HOST, { slow: async () => { throw new Error('boom'); } });
  await assert.rejects(inst.exports.double(1), (e: unknown) => e instanceof Trap && e.kind === 'host-function-failed' && /boom/.test(e.message));
});

const STREAMS = `(component
  (core module $mem (memory (export "m") 1))
  (core instance $mi (instantiate $mem))
  (type $S (stream u8))
  (core func $snew (canon stream.new $S))
  (core func $swrite (canon stream.write $S async (memory (core memory $mi "m"))))
  (core func $sread (canon stream.read $S async (memory (core memory $mi "m"))))
  (core func $wdrop (canon stream.drop-writable $S))
  (core func $rdrop (canon stream.drop-readable $S))
  (core func $trs (canon task.return (result $S)))
  (core func $tru (canon task.return (result u32)))
  (core func $wsnew (canon waitable-set.new))
  (core func $join (canon waitable.join))
  (core module $m
    (import "" "m" (memory 1))
    (import "" "snew" (func $snew (result i64)))
    (import "" "swrite" (func $swrite (param i32 i32 i32) (result i32)))
    (import "" "sread" (func $sread (param i32 i32 i32) (result i32)))
    (import "" "wdrop" (func $wdrop (param i32)))
    (import "" "rdrop" (func $rdrop (param i32)))
    (import "" "trs" (func $trs (param i32)))
    (import "" "tru" (func $tru (param i32)))
    (import "" "wsnew" (func $wsnew (result i32)))
    (import "" "join" (func $join (param i32 i32)))
    (global $tx (mut i32) (i32.const 0))
    (global $rx (mut i32) (i32.const 0))
    (global $ws (mut i32) (i32.const 0))
    (global $remain (mut i32) (i32.const 0))
    (global $count (mut i32) (i32.const 0))
    (global $limit (mut i32) (i32.const 0))
    (data (i32.const 1024) "0123456789abcdef")
    ;; produce(n): a stream of n bytes, written in chunks of up to 16
    (func (export "produce") (param $n i32) (result i32) (local $s i64)
      (local.set $s (call $snew))
      (global.set $rx (i32.wrap_i64 (local.get $s)))
      (global.set $tx (i32.wrap_i64 (i64.shr_u (local.get $s) (i64.const 32))))
      (global.set $remain (local.get $n))
      (call $trs (global.get $rx))
      (global.set $ws (call $wsnew))
      (call $join (global.get $tx) (global.get $ws))
      (call $wstep))
    (func $wfinish (result i32)
      (call $join (global.get $tx) (i32.const 0))
      (call $wdrop (global.get $tx))
      (i32.const 0))
    (func $wstep (result i32) (local $r i32) (local $len i32)
      (loop $l
        (if (i32.eqz (global.get $remain)) (then (return (call $wfinish))))
        (local.set $len (select (global.get $remain) (i32.const 16) (i32.lt_u (global.get $remain) (i32.const 16))))
        (local.set $r (call $swrite (global.get $tx) (i32.const 1024) (local.get $len)))
        (if (i32.eq (local.get $r) (i32.const -1))
          (then (return (i32.or (i32.const 2) (i32.shl (global.get $ws) (i32.const 4))))))
        (if (i32.eq (i32.and (local.get $r) (i32.const 0xf)) (i32.const 1)) (then (return (call $wfinish))))
        (global.set $remain (i32.sub (global.get $remain) (i32.shr_u (local.get $r) (i32.const 4))))
        (br $l))
      unreachable)
    (func (export "produce-cb") (param $code i32) (param $idx i32) (param $p i32) (result i32)
      (if (i32.eq (i32.and (local.get $p) (i32.const 0xf)) (i32.const 1)) (then (return (call $wfinish))))
      (global.set $remain (i32.sub (global.get $remain) (i32.shr_u (local.get $p) (i32.const 4))))
      (call $wstep))
    ;; consume(s, limit): counts the bytes of s (reading 16 at a time) until it ends or limit bytes were read
    (func (export "consume") (param $s i32) (param $limit i32) (result i32)
      (global.set $rx (local.get $s))
      (global.set $limit (local.get $limit))
      (global.set $count (i32.const 0))
      (global.set $ws (call $wsnew))
      (call $join (global.get $rx) (global.get $ws))
      (call $rstep))
    (func $rfinish (result i32)
      (call $join (global.get $rx) (i32.const 0))
      (call $rdrop (global.get $rx))
      (call $tru (global.get $count))
      (i32.const 0))
    (func $rstep (result i32) (local $r i32)
      (loop $l
        (if (i32.ge_u (global.get $count) (global.get $limit)) (then (return (call $rfinish))))
        (local.set $r (call $sread (global.get $rx) (i32.const 2048) (i32.const 16)))
        (if (i32.eq (local.get $r) (i32.const -1))
          (then (return (i32.or (i32.const 2) (i32.shl (global.get $ws) (i32.const 4))))))
        (global.set $count (i32.add (global.get $count) (i32.shr_u (local.get $r) (i32.const 4))))
        (if (i32.eq (i32.and (local.get $r) (i32.const 0xf)) (i32.const 1)) (then (return (call $rfinish))))
        (br $l))
      unreachable)
    (func (export "consume-cb") (param $code i32) (param $idx i32) (param $p i32) (result i32)
      (global.set $count (i32.add (global.get $count) (i32.shr_u (local.get $p) (i32.const 4))))
      (if (i32.eq (i32.and (local.get $p) (i32.const 0xf)) (i32.const 1)) (then (return (call $rfinish))))
      (call $rstep)))
  (core instance $i (instantiate $m (with "" (instance
    (export "m" (memory $mi "m")) (export "snew" (func $snew)) (export "swrite" (func $swrite))
    (export "sread" (func $sread)) (export "wdrop" (func $wdrop)) (export "rdrop" (func $rdrop))
    (export "trs" (func $trs)) (export "tru" (func $tru)) (export "wsnew" (func $wsnew)) (export "join" (func $join))))))
  (func (export "produce") async (param "n" u32) (result (stream u8))
    (canon lift (core func $i "produce") async (callback (core func $i "produce-cb"))))
  (func (export "consume") async (param "s" (stream u8)) (param "limit" u32) (result u32)
    (canon lift (core func $i "consume") async (callback (core func $i "consume-cb")))))`;

test('a guest stream<u8> is a ReadableStream of Uint8Array chunks', async () => {
  const inst = await build(STREAMS);
  const rs = await inst.exports.produce(100);
  assert.ok(rs instanceof ReadableStream);
  let total = 0;
  let text = '';
  for await (const chunk of rs as ReadableStream<Uint8Array>) {
    assert.ok(chunk instanceof Uint8Array);
    total += chunk.length;
    text += Buffer.from(chunk).toString('latin1');
  }
  assert.equal(total, 100);
  assert.ok(text.startsWith('0123456789abcdef0123'));
});

test('the guest writes only as fast as the host reads (guest → host backpressure)', async () => {
  const inst = await build(STREAMS);
  const rs = (await inst.exports.produce(1000)) as ReadableStream<Uint8Array>;
  const reader = rs.getReader();
  const first = await reader.read();
  assert.equal(first.value!.length, 16);
  await tick(); await tick();
  // nothing was buffered beyond what was asked for: the next read gets the next chunk
  const second = await reader.read();
  assert.equal(second.value!.length, 16);
  await reader.cancel();
});

test('a host ReadableStream or AsyncIterable becomes a guest stream, pulled on demand', async () => {
  const inst = await build(STREAMS);
  let pulled = 0;
  async function* gen() {
    for (let i = 0; i < 100; i++) { pulled++; yield new Uint8Array(64).fill(i); }
  }
  // the guest stops after 40 bytes: only the first chunk was pulled
  assert.equal(await inst.exports.consume(gen(), 40), 48);
  assert.ok(pulled <= 2, `pulled ${pulled} chunks`);
  const rs = new ReadableStream<Uint8Array>({
    start(c) { c.enqueue(new Uint8Array(10)); c.enqueue(new Uint8Array(25)); c.close(); },
  });
  assert.equal(await inst.exports.consume(rs, 1000), 35);
});

test('a guest stream handed to another component passes through unchanged', async () => {
  const a = await build(STREAMS);
  const b = await build(STREAMS);
  const rs = await a.exports.produce(50);
  assert.equal(await b.exports.consume(rs, 1000), 50);
});

const FUTURES = `(component
  (core module $mem (memory (export "m") 1))
  (core instance $mi (instantiate $mem))
  (type $F (future u32))
  (core func $fnew (canon future.new $F))
  (core func $fwrite (canon future.write $F async (memory (core memory $mi "m"))))
  (core func $fread (canon future.read $F async (memory (core memory $mi "m"))))
  (core func $wdrop (canon future.drop-writable $F))
  (core func $rdrop (canon future.drop-readable $F))
  (core func $trf (canon task.return (result $F)))
  (core func $tru (canon task.return (result u32)))
  (core func $wsnew (canon waitable-set.new))
  (core func $join (canon waitable.join))
  (core module $m
    (import "" "m" (memory 1))
    (import "" "fnew" (func $fnew (result i64)))
    (import "" "fwrite" (func $fwrite (param i32 i32) (result i32)))
    (import "" "fread" (func $fread (param i32 i32) (result i32)))
    (import "" "wdrop" (func $wdrop (param i32)))
    (import "" "rdrop" (func $rdrop (param i32)))
    (import "" "trf" (func $trf (param i32)))
    (import "" "tru" (func $tru (param i32)))
    (import "" "wsnew" (func $wsnew (result i32)))
    (import "" "join" (func $join (param i32 i32)))
    (global $h (mut i32) (i32.const 0))
    (global $ws (mut i32) (i32.const 0))
    ;; make(v): returns a future that resolves to v
    (func (export "make") (param $v i32) (result i32) (local $s i64) (local $r i32)
      (local.set $s (call $fnew))
      (global.set $h (i32.wrap_i64 (i64.shr_u (local.get $s) (i64.const 32))))
      (call $trf (i32.wrap_i64 (local.get $s)))
      (i32.store (i32.const 0) (local.get $v))
      (local.set $r (call $fwrite (global.get $h) (i32.const 0)))
      (if (i32.ne (local.get $r) (i32.const -1)) (then (call $wdrop (global.get $h)) (return (i32.const 0))))
      (global.set $ws (call $wsnew))
      (call $join (global.get $h) (global.get $ws))
      (i32.or (i32.const 2) (i32.shl (global.get $ws) (i32.const 4))))
    (func (export "make-cb") (param i32 i32 i32) (result i32)
      (call $join (global.get $h) (i32.const 0))
      (call $wdrop (global.get $h))
      (i32.const 0))
    ;; await(f): the value of f plus one
    (func (export "await") (param $f i32) (result i32) (local $r i32)
      (global.set $h (local.get $f))
      (local.set $r (call $fread (global.get $h) (i32.const 8)))
      (if (i32.ne (local.get $r) (i32.const -1))
        (then (call $rdrop (global.get $h)) (call $tru (i32.add (i32.load (i32.const 8)) (i32.const 1))) (return (i32.const 0))))
      (global.set $ws (call $wsnew))
      (call $join (global.get $h) (global.get $ws))
      (i32.or (i32.const 2) (i32.shl (global.get $ws) (i32.const 4))))
    (func (export "await-cb") (param i32 i32 i32) (result i32)
      (call $join (global.get $h) (i32.const 0))
      (call $rdrop (global.get $h))
      (call $tru (i32.add (i32.load (i32.const 8)) (i32.const 1)))
      (i32.const 0)))
  (core instance $i (instantiate $m (with "" (instance
    (export "m" (memory $mi "m")) (export "fnew" (func $fnew)) (export "fwrite" (func $fwrite))
    (export "fread" (func $fread)) (export "wdrop" (func $wdrop)) (export "rdrop" (func $rdrop))
    (export "trf" (func $trf)) (export "tru" (func $tru)) (export "wsnew" (func $wsnew)) (export "join" (func $join))))))
  (func (export "make") async (param "v" u32) (result (future u32))
    (canon lift (core func $i "make") async (callback (core func $i "make-cb"))))
  (func (export "await") async (param "f" (future u32)) (result u32)
    (canon lift (core func $i "await") async (callback (core func $i "await-cb")))))`;

test('future<T> ↔ Promise<T>; any thenable is accepted', async () => {
  const inst = await build(FUTURES);
  // (a Promise resolved with a Promise adopts it: awaiting the call gives the future's value)
  assert.equal(await inst.exports.make(7), 7);
  let resolve!: (v: number) => void;
  const later = new Promise<number>((r) => { resolve = r; });
  const p = inst.exports.await(later);
  await tick();
  resolve(41);
  assert.equal(await p, 42);
  const thenable = { then(ok: (v: number) => void) { setImmediate(() => ok(9)); } };
  assert.equal(await inst.exports.await(thenable), 10);
});

const BLOCK = `(component
  (core func $wsnew (canon waitable-set.new))
  (core func $cancel (canon task.cancel))
  (core module $m
    (import "" "wsnew" (func $wsnew (result i32)))
    (import "" "cancel" (func $cancel))
    (func (export "f") (result i32) (i32.or (i32.const 2) (i32.shl (call $wsnew) (i32.const 4))))
    (func (export "cb") (param $code i32) (param i32 i32) (result i32)
      (if (i32.ne (local.get $code) (i32.const 6)) (then unreachable))
      (call $cancel)
      (i32.const 0)))
  (core instance $i (instantiate $m (with "" (instance (export "wsnew" (func $wsnew)) (export "cancel" (func $cancel))))))
  (func (export "block") async (result u32) (canon lift (core func $i "f") async (callback (core func $i "cb")))))`;

test('an AbortSignal (extra last argument) cancels the task', async () => {
  const inst = await build(BLOCK);
  const ac = new AbortController();
  const p = inst.exports.block({ signal: ac.signal });
  await tick();
  ac.abort(new Error('stop'));
  await assert.rejects(p, /stop/);
  const pre = AbortSignal.abort(new Error('early'));
  await assert.rejects(inst.exports.block({ signal: pre }), /early/);
});

test('a task that can never finish is reported as a deadlock instead of hanging', async () => {
  const inst = await build(BLOCK);

  await assert.rejects(inst.exports.block(), (e: unknown) => e instanceof Trap && e.kind === 'deadlock');
});
