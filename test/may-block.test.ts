// mayBlock: a host function for a synchronous import may return a Promise;
// the guest's stack suspends (JSPI) until it settles, and the export call
// returns a Promise only when it had to wait.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from '@bytecodealliance/jco';
import { Component, Trap, mayBlock } from '../src/index.ts';

// run(x) = get(x) + get(x + 1), both through the synchronous import `get`
const WAT = `(component
  (import "get" (func $get (param "x" u32) (result u32)))
  (core func $get_lowered (canon lower (func $get)))
  (core module $m
    (import "" "get" (func $get (param i32) (result i32)))
    (func (export "run") (param i32) (result i32)
      (i32.add (call $get (local.get 0)) (call $get (i32.add (local.get 0) (i32.const 1))))))
  (core instance $i (instantiate $m (with "" (instance (export "get" (func $get_lowered))))))
  (func (export "run") (param "x" u32) (result u32) (canon lift (core func $i "run"))))`;

test('a may-block import answering at once: the export returns its value, no Promise', async () => {
  const c = Component.compile(await parse(WAT));
  const inst = c.instantiate({ get: mayBlock((x: number) => x * 10) });
  assert.equal(inst.exports.run(1), 30);
});

test('a may-block import returning a Promise suspends the guest; the export returns a Promise; the event loop runs meanwhile', async () => {
  const c = Component.compile(await parse(WAT));
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 5);
  try {
    const inst = c.instantiate({
      get: mayBlock((x: number) => (x % 2 === 0 ? new Promise((r) => setTimeout(() => r(x * 100), 60)) : x)),
    });
    const r = inst.exports.run(1); // get(1) at once, get(2) after 60 ms
    assert.ok(r instanceof Promise);
    assert.equal(await r, 1 + 200);
    assert.ok(ticks >= 3, `only ${ticks} timer ticks while the guest waited`);
    // the instance can be entered again afterwards
    assert.equal(await inst.exports.run(3), 3 + 400);
  } finally {
    clearInterval(timer);
  }
});

test('a rejected Promise fails the call like a thrown error, and poisons the instance', async () => {
  const c = Component.compile(await parse(WAT));
  const failure = new Error('host failed');
  const inst = c.instantiate({ get: mayBlock(() => Promise.reject(failure)) });
  await assert.rejects(Promise.resolve(inst.exports.run(0)), (e: unknown) => e === failure || (e instanceof Trap && e.cause === failure));
  assert.throws(() => inst.exports.run(0), (e: unknown) => e instanceof Trap && e.kind === 'instance-poisoned');
});

test('without mayBlock, a Promise is not awaited (it is a value of the wrong type)', async () => {
  const c = Component.compile(await parse(WAT));
  const inst = c.instantiate({ get: () => Promise.resolve(1) });
  assert.throws(() => inst.exports.run(0));
});
