// The -W timeout deadlines of `weir serve` (src/serve/deadline.ts): they fire
// in order, never before they are due, and a dropped one never fires.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeadlineSweep, type Deadline } from '../src/serve/deadline.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('deadlines fire in start order, not early, and dropped ones never', async () => {
  // 400 ms deadlines started 15 ms apart: the drops below come ~90 ms in, far from any due time
  const sweep = new DeadlineSweep(400);
  const fired: { i: number; late: number }[] = [];
  const ds: Deadline[] = [];
  const started: number[] = [];
  for (let i = 0; i < 6; i++) {
    started.push(performance.now());
    ds.push(sweep.start((d) => { fired.push({ i, late: performance.now() - started[i]! - 400 }); d.abort(new Error(`timeout ${i}`)); }));
    await sleep(15);
  }
  // the head, one in the middle and the tail leave the list
  ds[0]!.drop(); ds[3]!.drop(); ds[5]!.drop();
  let heard = 0;
  ds[2]!.addEventListener('abort', () => { heard++; });
  await sleep(900);
  assert.deepEqual(fired.map((f) => f.i), [1, 2, 4]);
  for (const f of fired) assert.ok(f.late >= 0, `deadline ${f.i} fired ${-f.late} ms early`);
  assert.equal(heard, 1);
  assert.equal(ds[2]!.aborted, true);
  assert.match(String((ds[2]!.reason as Error).message), /timeout 2/);
  assert.equal(ds[0]!.aborted, false);
  // an aborted or dropped deadline can be dropped again; the list stays sound for new ones
  ds[2]!.drop(); ds[0]!.drop();
  const late = await new Promise<number>((resolve) => { const t0 = performance.now(); sweep.start(() => resolve(performance.now() - t0)); });
  assert.ok(late >= 400);
});

test('a deadline aborted from outside fires no expiry and leaves the list', async () => {
  const sweep = new DeadlineSweep(20);
  let expired = 0;
  const a = sweep.start(() => { expired++; });
  const b = sweep.start(() => { expired++; });
  a.abort(new Error('client went away'));
  assert.equal(a.aborted, true);
  await sleep(80);
  assert.equal(expired, 1); // b only
  assert.equal(b.aborted, false); // expiry hands the decision to its owner
});
