// The CPU watchdog's verdict on a quiet worker (src/cli/serve-workers.ts judgeQuiet): a worker whose
// heartbeat is --cpu-timeout old is stopped only if its thread ran in the last window before the limit;
// one that had no CPU (a loaded machine, a throttled cgroup) or was blocked is looked at again, and
// stopped once quiet for twice the limit; without a CPU reading the quiet time alone decides.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { judgeQuiet } from '../src/cli/serve-workers.ts';

const LIMIT = 320;
const MS = 1e6; // ns

test('judgeQuiet: a spinning worker is stopped at the limit, a starved one waits (until twice the limit), no reading stops at the limit', () => {
  // healthy: far from the limit, nothing sampled; look again when the window before the limit opens
  assert.deepEqual(judgeQuiet(100, LIMIT, 1000, null, null), { waitMs: LIMIT - 20 - 100, sample: null });
  // the window opens: the CPU time is read
  const pre = judgeQuiet(LIMIT - 15, LIMIT, 1000, null, 5000 * MS);
  assert.deepEqual(pre, { waitMs: 15, sample: { at: 1000, cpu: 5000 * MS } });
  // at the limit, having run 14 of the last 15 ms: stuck in guest code
  assert.equal(judgeQuiet(LIMIT, LIMIT, 1015, pre.sample, 5014 * MS).waitMs, 0);
  // at the limit, having run 1 of 15 ms: not spinning; a new window
  const starved = judgeQuiet(LIMIT, LIMIT, 1015, pre.sample, 5001 * MS);
  assert.deepEqual(starved, { waitMs: 20, sample: { at: 1015, cpu: 5001 * MS } });
  // it gets the CPU back and spins: stopped at the next look
  assert.equal(judgeQuiet(LIMIT + 20, LIMIT, 1035, starved.sample, 5017 * MS).waitMs, 0);
  // still not running at twice the limit: stopped all the same, and said to be starved
  const late = judgeQuiet(2 * LIMIT, LIMIT, 1500, starved.sample, 5001 * MS);
  assert.equal(late.waitMs, 0);
  assert.equal(late.starved, true);
  // reached twice the limit while running (a late look): stopped, not said to be starved
  assert.equal(judgeQuiet(2 * LIMIT, LIMIT, 1500, starved.sample, 5400 * MS).starved, false);
  // the window's reading was missed (a late timer): read now, decide after a window
  assert.deepEqual(judgeQuiet(LIMIT + 5, LIMIT, 2000, null, 7000 * MS), { waitMs: 20, sample: { at: 2000, cpu: 7000 * MS } });
  // no CPU reading (not Linux): the quiet time alone decides, as before
  assert.equal(judgeQuiet(LIMIT, LIMIT, 1000, null, null).waitMs, 0);
  // a heartbeat came: the sample is dropped
  assert.equal(judgeQuiet(50, LIMIT, 3000, pre.sample, 9000 * MS).sample, null);
});

test('the CPU time judgeQuiet reads: /proc/self/task/TID/schedstat counts a busy thread\'s nanoseconds', { skip: process.platform !== 'linux' ? 'Linux only' : false }, () => {
  const read = () => Number(readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ', 1)[0]);
  const a = read();
  const t0 = performance.now();
  while (performance.now() - t0 < 30) { /* spin */ }
  const ran = (read() - a) / MS;
  assert.ok(ran >= 10, `a 30 ms spin counted ${ran} ms`);
});
