// idle-gc.ts: a serving thread that goes quiet collects once, giving back the
// heap a burst grew; never while a request is in flight; again only after
// something changed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getHeapStatistics } from 'node:v8';
import { IdleCollector, mallocTrim } from '../src/serve/idle-gc.ts';
import { glibcRuntime } from '../src/serve/libc.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('IdleCollector: once quiet, one collection gives back what a burst grew; not again until something changes', async () => {
  const state = { pending: 0, started: 0, instances: 1 };
  const c = new IdleCollector({ pending: () => state.pending, started: () => state.started, instances: () => state.instances }, 200);
  try {
    // a "burst": garbage that survives into old space, then is dropped
    let keep: number[][] | null = [];
    for (let i = 0; i < 300; i++) keep.push(new Array(20_000).fill(i));
    state.started = 300;
    await sleep(100);
    keep = null;
    const before = getHeapStatistics().used_heap_size;
    await sleep(500); // quiet for 200 ms, checked every 50 ms
    assert.equal(c.collections, 1);
    const after = getHeapStatistics().used_heap_size;
    assert.ok(after < before - 20 * 1024 * 1024, `used heap ${before} -> ${after}: the dropped ~48 MiB was collected`);
    await sleep(400);
    assert.equal(c.collections, 1, 'nothing changed: no second collection');
    state.instances = 0; // an instance retired
    await sleep(150);
    assert.equal(c.collections, 2, 'an instance retired: collect again');
    state.pending = 1; // a request in flight, for longer than the quiet time
    await sleep(500);
    assert.equal(c.collections, 2, 'never while a request is in flight');
    state.pending = 0;
    state.started++;
    await sleep(100);
    assert.equal(c.collections, 2, 'quiet again for less than the quiet time');
    await sleep(400);
    assert.equal(c.collections, 3);
    // On glibc Linux with node:ffi (the Node this repo installs) every collection gives the arenas' free pages back too.
    if (glibcRuntime() && process.getBuiltinModule('node:ffi')) {
      assert.ok(mallocTrim(), 'malloc_trim through node:ffi');
      assert.equal(c.trims, 3);
    }
  } finally {
    c.close();
  }
});

test('IdleCollector: the malloc_trim after a collection waits until the whole process is quiet (another thread serving)', async (t) => {
  if (!glibcRuntime() || !mallocTrim()) { t.skip('needs glibc and node:ffi'); return; }
  const { Worker } = await import('node:worker_threads');
  // another thread of this process keeps a core busy for 1.2 s
  const spinner = new Worker('const end = Date.now() + 1200; while (Date.now() < end) {}', { eval: true });
  const done = new Promise((r) => spinner.once('exit', r));
  const c = new IdleCollector({ pending: () => 0, started: () => 0, instances: () => 0 }, 200);
  try {
    await sleep(700);
    assert.equal(c.collections, 1, 'this thread is quiet: it collects');
    assert.equal(c.trims, 0, 'the process is busy: no trim yet');
    await done;
    await sleep(300);
    assert.equal(c.trims, 1, 'the process went quiet: trimmed');
  } finally {
    c.close();
  }
});
