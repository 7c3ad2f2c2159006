// The admission Gate shared by worker threads (`weir serve --workers N
// --max-concurrent-requests/--max-connections`): two Gates on one shared
// count stand in for two workers. A release wakes a waiting worker at once (by
// its release counter, not the 250 ms safety net); with nobody waiting a
// release leaves the counter alone; each worker's share is where the
// supervisor reads it back if the worker dies.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Gate, type SharedCount } from '../src/serve/limits.ts';

function pair(max: number): { a: Gate; b: Gate; ctl: Int32Array; heldA: Int32Array; heldB: Int32Array } {
  const ctl = new Int32Array(new SharedArrayBuffer(3 * 4));
  const heldA = new Int32Array(new SharedArrayBuffer(4 * 4));
  const heldB = new Int32Array(new SharedArrayBuffer(4 * 4));
  const shared = (held: Int32Array): SharedCount => ({ ctl, at: 0, held: { ctl: held, at: 0 } });
  return { a: new Gate(max, 5_000, shared(heldA)), b: new Gate(max, 5_000, shared(heldB)), ctl, heldA, heldB };
}

test('a shared gate: the count spans workers; with no one waiting a release does not touch the release counter', () => {
  const { a, b, ctl, heldA, heldB } = pair(2);
  assert.equal(a.tryEnter(), true);
  assert.equal(b.tryEnter(), true);
  assert.equal(a.tryEnter(), false, 'the limit counts both workers');
  assert.deepEqual([ctl[0], heldA[0], heldB[0]], [2, 1, 1]);
  a.leave();
  b.leave();
  assert.deepEqual([ctl[0], ctl[1], ctl[2], heldA[0], heldB[0]], [0, 0, 0, 0, 0]);
});

test('a shared gate: a worker waiting for a slot is admitted as soon as another worker releases one, and stops waiting', async () => {
  const { a, b, ctl, heldB } = pair(1);
  assert.equal(a.tryEnter(), true);
  const t0 = performance.now();
  const admitted = new Promise<number>((resolve, reject) => b.enter(() => resolve(performance.now() - t0), () => reject(new Error('refused'))));
  assert.equal(ctl[2], 1, 'b is registered as waiting');
  assert.equal(heldB[2], 1, 'b\'s share says it waits');
  setTimeout(() => a.leave(), 20);
  const ms = await admitted;
  assert.ok(ms < 200, `admitted after ${ms.toFixed(0)} ms: the release did not wake it (the 250 ms safety net did)`);
  assert.equal(ctl[1], 1, 'the release bumped the counter for the waiter');
  assert.deepEqual([ctl[0], heldB[0]], [1, 1]);
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual([ctl[2], heldB[2]], [0, 0], 'b no longer waits');
  b.leave();
  assert.equal(ctl[1], 1, 'no one waits: the release left the counter alone');
});

test('a shared gate: a release between a worker\'s failed try and its wait is not missed', async () => {
  const { a, b } = pair(1);
  assert.equal(a.tryEnter(), true);
  const t0 = performance.now();
  const admitted = new Promise<number>((resolve) => b.enter(() => resolve(performance.now() - t0), () => resolve(-1)));
  a.leave(); // at once, in the same turn as b's enter
  const ms = await admitted;
  assert.ok(ms >= 0 && ms < 200, `admitted after ${ms.toFixed(0)} ms`);
  b.leave();
});
