// The supervisor's copy of each served file (src/cli/serve-workers.ts,
// ServedFiles): with --watch two workers may reload a file that changed twice,
// and their messages may arrive in either order; a replacement worker must
// start from the newer version, not whichever message came last.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServedFiles } from '../src/cli/serve-workers.ts';
import { readVersioned } from '../src/serve/watch.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const text = (b: Uint8Array | null) => (b ? Buffer.from(b).toString() : null);

test('a reload read later is kept over one read earlier, whatever order they arrive in', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weir-served-'));
  try {
    const file = join(dir, 'a.wasm');
    writeFileSync(file, 'v1');
    const served = new ServedFiles([file, join(dir, 'missing.wasm')]);
    assert.equal(text(served.bytes[0]), 'v1');
    assert.equal(served.bytes[1], null);
    assert.ok(served.bytes[0]!.buffer instanceof SharedArrayBuffer, 'one shared copy for every worker');
    // the file's change time has a clock tick's granularity: wait past it between versions
    await sleep(30);
    writeFileSync(file, 'v2');
    const v2 = readVersioned(file);
    await sleep(30);
    writeFileSync(file, 'v3');
    const v3 = readVersioned(file);
    assert.ok(v3.version > v2.version);
    // worker B's reload of v3 arrives first, worker A's of v2 after it
    served.reloaded(0, v3.bytes, v3.version);
    served.reloaded(0, v2.bytes, v2.version);
    assert.equal(text(served.bytes[0]), 'v3');
    // in order, each is taken
    await sleep(30);
    writeFileSync(file, 'v4');
    const v4 = readVersioned(file);
    served.reloaded(0, v4.bytes, v4.version);
    assert.equal(text(served.bytes[0]), 'v4');
    // an index no file has is ignored
    served.reloaded(5, v4.bytes, v4.version);
    assert.equal(served.bytes.length, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
