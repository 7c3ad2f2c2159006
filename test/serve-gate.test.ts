// The admission Gate shared by worker threads (`weir serve --workers N
// --max-concurrent-requests/--max-connections`): two Gates on one shared
// count stand in for two workers. A release wakes a waiting worker at once (by
// its release counter, not the 250 ms safety net); with nobody waiting a
// release leaves the counter alone; each worker's share is where the
// supervisor reads it back if the worker dies. Also the watchdog heartbeat's
// request path (src/serve/watchdog.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { Gate, type SharedCount } from '../src/serve/limits.ts';
import { BEAT, BEAT_MS, ConnectionTable, nowMs, watchdogBuffer } from '../src/serve/watchdog.ts';

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
  // The release lands exactly in the window: b has tried (and failed) to claim and is about to wait.
  const waitAsync = Atomics.waitAsync;
  let injected = false;
  Atomics.waitAsync = ((...args: Parameters<typeof Atomics.waitAsync>) => {
    if (!injected) { injected = true; a.leave(); }
    return waitAsync(...args);
  }) as typeof Atomics.waitAsync;
  try {
    const t0 = performance.now();
    const admitted = new Promise<number>((resolve) => b.enter(() => resolve(performance.now() - t0), () => resolve(-1)));
    assert.ok(injected, 'b waited');
    const ms = await admitted;
    assert.ok(ms >= 0 && ms < 200, `admitted after ${ms.toFixed(0)} ms: the release in the window was missed (the 250 ms safety net admitted it)`);
  } finally {
    Atomics.waitAsync = waitAsync;
  }
  b.leave();
});

test('the watchdog heartbeat: a busy worker writes it from every 32nd request (a loaded worker\'s timer never fires)', async () => {
  const buffer = watchdogBuffer();
  const ctl = new Int32Array(buffer);
  const table = new ConnectionTable(buffer);
  try {
    table.start();
    assert.notEqual(ctl[BEAT], 0, 'start() beats at once');
    const req = { httpVersionMajor: 2, socket: null } as unknown as IncomingMessage; // not tracked (h2): only the beat
    ctl[BEAT] = 0;
    for (let i = 0; i < 31; i++) table.begin(req);
    assert.equal(ctl[BEAT], 0, 'no beat before the 32nd request');
    table.begin(req);
    const beat = ctl[BEAT];
    assert.ok(Math.abs((nowMs() - beat) | 0) < 50, `the 32nd request beat (${beat} vs now ${nowMs()})`);
    // and the timer beats an idle worker within BEAT_MS (plus timer slack)
    ctl[BEAT] = 0;
    await new Promise((r) => setTimeout(r, BEAT_MS * 3));
    assert.notEqual(ctl[BEAT], 0, 'the idle timer did not beat');
  } finally {
    table.close();
  }
});
