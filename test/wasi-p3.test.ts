// WASI 0.3 host: componentize-qjs commands that import wasi:*@0.3.0 and export
// wasi:cli/run@0.3.0 (an async func), run through the built CLI and the API;
// plus the OS-facing parts the 0.3 bindings added to the shared cores.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tempDir } from './helpers/temp-dir.ts';
import { join } from 'node:path';
import { repoRoot } from './helpers/fixtures.ts';
import { buildP3Cmd } from './helpers/wasi-p3-fixtures.ts';
import { Component } from '../src/index.ts';
import { createWasi, createWasiP3Imports, findRunExport, runCommand } from '../src/wasi/index.ts';
import { Clocks } from '../src/wasi/core/clocks.ts';
import { FdSink, FdSource } from '../src/wasi/core/streams.ts';
import { pumpToSink, sourceToStream } from '../src/wasi/p3/streams.ts';

const mainJs = join(repoRoot, 'dist', 'cli', 'main.js');
let wasm: string | undefined;

function weir(args: string[], opts: { input?: string } = {}) {
  const r = spawnSync(process.execPath, [mainJs, ...args], { encoding: 'utf8', timeout: 60_000, input: opts.input ?? '' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  if (!existsSync(join(repoRoot, 'dist', 'wasi', 'p3', 'index.js'))) {
    spawnSync(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', repoRoot], { stdio: 'ignore' });
  }
  wasm = await buildP3Cmd();
});

function box(): string {
  const d = tempDir('weir-p3-');
  writeFileSync(join(d, 'a.txt'), 'file content');
  return d;
}

test('p3: the command exports wasi:cli/run@0.3.0 and imports only 0.3 interfaces it uses', (t) => {
  if (!wasm) return t.skip('WASI 0.3.0 WIT not available');
  const c = Component.compile(readFileSync(wasm));
  const imports = [...c.type.imports.keys()];
  assert.ok(imports.includes('wasi:cli/stdout@0.3.0'));
  assert.ok([...c.type.exports.keys()].includes('wasi:cli/run@0.3.0'));
  // The 0.3 imports alone satisfy every wasi:*@0.3.0 import.
  const p3 = createWasiP3Imports();
  for (const name of imports.filter((n) => n.includes('@0.3.'))) {
    assert.ok(Object.keys(p3).some((k) => k.split('@')[0] === name.split('@')[0]), name);
  }
});

test('p3 weir run: hello through the stdout stream', (t) => {
  if (!wasm) return t.skip('WASI 0.3.0 WIT not available');
  const r = weir(['run', wasm, 'hello']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'hello, world\n');
});

test('p3 weir run: arguments and environment', (t) => {
  if (!wasm) return t.skip('WASI 0.3.0 WIT not available');
  assert.deepEqual(JSON.parse(weir(['run', wasm, 'args', 'x y', 'ü']).stdout), ['wasi-p3-cmd.wasm', 'args', 'x y', 'ü']);
  assert.deepEqual(JSON.parse(weir(['run', wasm, 'env']).stdout), []);
  assert.deepEqual(JSON.parse(weir(['run', '--env', 'A=1', '--env', 'B=two=2', wasm, 'env']).stdout), [['A', '1'], ['B', 'two=2']]);
});

test('p3 weir run: exit status: exit-with-code, exit(err), run returning err', (t) => {
  if (!wasm) return t.skip('WASI 0.3.0 WIT not available');
  assert.equal(weir(['run', wasm, 'exit', '0']).status, 0);
  const r = weir(['run', wasm, 'exit', '17']);
  assert.equal(r.status, 17);
  assert.equal(r.stdout, '', 'nothing after exit');
  assert.equal(weir(['run', wasm, 'exit', '255']).status, 255);
  assert.equal(weir(['run', wasm, 'exit-result', 'err']).status, 1);
  assert.equal(weir(['run', wasm, 'exit-result', 'ok']).status, 0);
  assert.equal(weir(['run', wasm, 'fail']).status, 1);
});

test('p3 weir run: stdin and stderr streams', (t) => {
  if (!wasm) return t.skip('WASI 0.3.0 WIT not available');
  assert.equal(weir(['run', wasm, 'stdin'], { input: 'from the pipe' }).stdout, 'stdin:from the pipe ok\n');
  assert.equal(weir(['run', wasm, 'stdin']).stdout, 'stdin: ok\n');
  const e = weir(['run', wasm, 'stderr', 'to stderr']);
  assert.equal(e.stderr, 'to stderr\n');
  assert.equal(e.stdout, '');
  const big = 'x'.repeat(300_000) + '\n';
  assert.equal(weir(['run', wasm, 'cat'], { input: big }).stdout, big);
  assert.equal(weir(['run', wasm, 'cat-direct'], { input: big }).stdout, big);
});

test('p3 weir run: files in a preopen through read-via-stream, write-via-stream, append-via-stream', (t) => {
  if (!wasm) return t.skip('WASI 0.3.0 WIT not available');
  const d = box();
  assert.equal(weir(['run', '--dir', `${d}::/`, wasm, 'read', 'a.txt']).stdout, 'read:file content ok\n');
  assert.equal(weir(['run', '--dir', d, wasm, 'read', 'a.txt', '5']).stdout, 'read:content ok\n');
  assert.equal(weir(['run', '--dir', d, wasm, 'write', 'b.txt', 'hello']).stdout, 'size:5 ok\n');
  assert.equal(weir(['run', '--dir', d, wasm, 'append', 'b.txt', ' there']).stdout, 'size:11 ok\n');
  assert.equal(weir(['run', '--dir', d, wasm, 'write', 'b.txt', 'HEY', '13']).stdout, 'size:16 ok\n');
  assert.deepEqual(readFileSync(join(d, 'b.txt')), Buffer.from('hello there\0\0HEY'));
  assert.equal(weir(['run', '--dir', d, wasm, 'ls']).stdout, '["a.txt:regular-file","b.txt:regular-file"] ok\n');
  // a stream-returning call that fails: empty stream, error in the future
  assert.equal(weir(['run', '--dir', d, wasm, 'read-dir-as-file']).stdout, '0 err:is-directory\n');
  // the sandbox is the same as 0.2's
  assert.equal(weir(['run', '--dir', d, wasm, 'attempt', 'open', '../a.txt']).stdout, 'err:not-permitted\n');
  assert.equal(weir(['run', '--dir', d, wasm, 'attempt', 'open', '/etc/passwd']).stdout, 'err:not-permitted\n');
  assert.equal(weir(['run', '--dir', d, wasm, 'attempt', 'open', 'missing']).stdout, 'err:no-entry\n');
  assert.equal(weir(['run', '--dir-readonly', d, wasm, 'attempt', 'mkdir', 'sub']).stdout, 'err:not-permitted\n');
  assert.equal(weir(['run', '--dir', d, wasm, 'attempt', 'stat', 'a.txt']).stdout, '{"tag":"regular-file"}\nok\n');
});

test('p3 weir run: monotonic-clock wait-for waits at least that long', (t) => {
  if (!wasm) return t.skip('WASI 0.3.0 WIT not available');
  const t0 = process.hrtime.bigint();
  const r = weir(['run', wasm, 'sleep', '50']);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.deepEqual(JSON.parse(r.stdout), { slept: true, wall: true }, r.stderr);
  assert.ok(ms >= 50, `${ms}ms`);
});

test('p3 API: run is async; stdout and stderr captured by callbacks', async (t) => {
  if (!wasm) return t.skip('WASI 0.3.0 WIT not available');
  const c = Component.compile(readFileSync(wasm));
  const out: Uint8Array[] = [];
  const wasi = createWasi({ args: ['cmd', 'args', 'q'], stdout: (b) => out.push(b) });
  try {
    const inst = c.instantiate(wasi.imports);
    assert.equal(findRunExport(inst)?.version, '0.3');
    assert.equal(await runCommand(inst), 0);
    assert.deepEqual(JSON.parse(Buffer.concat(out).toString()), ['cmd', 'args', 'q']);
  } finally {
    wasi.close();
  }
});

// ---- the OS-facing parts, without a guest --------------------------------

test('core clocks: waitUntil never returns early, honours sub-millisecond deadlines, and can be aborted', async () => {
  const clocks = new Clocks();
  for (const ns of [0n, 50_000n, 300_000n, 900_000n, 1_700_000n, 5_000_000n]) {
    const when = clocks.monotonicNow() + ns;
    await clocks.waitUntil(when);
    const late = clocks.monotonicNow() - when;
    assert.ok(late >= 0n, `woke ${-late}ns early for ${ns}ns`);
  }
  const ctrl = new AbortController();
  const p = clocks.waitUntil(clocks.monotonicNow() + 10_000_000_000n, ctrl.signal);
  ctrl.abort(new Error('cancelled'));
  await assert.rejects(p, /cancelled/);
});

test('core streams: a file source reads asynchronously and only when pulled', async () => {
  const d = box();
  const path = join(d, 'big.bin');
  const data = new Uint8Array(3 << 20).map((_, i) => i * 7);
  writeFileSync(path, data);
  const fd = openSync(path, 'r');
  let closed = false;
  const src = new FdSource(fd, 10n, () => { closed = true; });
  const [stream, done] = sourceToStream(src, 1 << 20);
  const it = stream[Symbol.asyncIterator]();
  const first = await it.next();
  assert.equal(first.done, false);
  assert.equal((first.value as Uint8Array)[0], data[10]);
  assert.equal(src.position, 10n + BigInt((first.value as Uint8Array).length), 'read one chunk, no more');
  const parts: Uint8Array[] = [first.value as Uint8Array];
  for (;;) { const r = await it.next(); if (r.done) break; parts.push(r.value); }
  assert.deepEqual(Buffer.concat(parts), Buffer.from(data.subarray(10)));
  assert.equal(await done, null);
  assert.ok(closed);
  closeSync(fd);
});

test('core streams: a failed read ends the stream and reports the error code', async () => {
  const src = new FdSource(987654, 0n);
  const [stream, done] = sourceToStream(src, 1 << 16);
  const it = stream[Symbol.asyncIterator]();
  assert.equal((await it.next()).done, true);
  assert.equal(await done, 'bad-descriptor');
});

test('core streams: pumping a guest stream into a file sink writes every chunk at its offset', async () => {
  const d = box();
  const path = join(d, 'out.bin');
  writeFileSync(path, '0123456789');
  const fd = openSync(path, 'r+');
  const chunks = [Buffer.from('ab'), Buffer.from('cd')];
  const rs = new ReadableStream<Uint8Array>({ pull(c) { const x = chunks.shift(); if (x) c.enqueue(x); else c.close(); } });
  assert.equal(await pumpToSink(rs, new FdSink(fd, 3n), true), null);
  assert.equal(readFileSync(path, 'utf8'), '012abcd789');
  closeSync(fd);
  // a failing sink cancels the stream and reports the code
  let cancelled = false;
  const rs2 = new ReadableStream<Uint8Array>({ pull(c) { c.enqueue(Buffer.from('x')); }, cancel() { cancelled = true; } });
  assert.equal(await pumpToSink(rs2, new FdSink(987654, 0n), false), 'bad-descriptor');
  assert.ok(cancelled);
});

test('core streams: a pipe source does not keep the process alive once the guest stops reading', () => {
  // A child reads one chunk from its stdin pipe through FdSource.read, then returns: it must exit
  // although the pipe stays open (the parent never closes it within the timeout).
  const script = `
    import { FdSource } from ${JSON.stringify(join(repoRoot, 'src', 'wasi', 'core', 'streams.ts'))};
    const s = new FdSource(0, null);
    const b = await s.read(100);
    process.stdout.write('got:' + Buffer.from(b).toString());
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { input: 'abc', encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.stdout, 'got:abc', r.stderr);
  assert.equal(r.status, 0);
});
