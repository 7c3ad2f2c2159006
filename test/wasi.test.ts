// WASI 0.2 host through the embedding API, with a componentize-qjs command.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tempDir } from './helpers/temp-dir.ts';
import { join } from 'node:path';
import { buildCmd, runWithApi } from './helpers/wasi-fixtures.ts';
import { Component, Trap } from '../src/index.ts';
import { createWasi, createWasiP2Imports, ExitSignal, findRunExport } from '../src/wasi/index.ts';

let wasm: string;
before(async () => { wasm = await buildCmd(); });

test('hello world to stdout', async () => {
  const r = await runWithApi(wasm, ['hello']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hello, world\n');
});

test('arguments are exactly the given ones', async () => {
  const r = await runWithApi(wasm, ['args', 'x y', '--z', 'ü']);
  assert.deepEqual(JSON.parse(r.stdout), ['cmd', 'args', 'x y', '--z', 'ü']);
});

test('environment: empty by default, set by config', async () => {
  assert.deepEqual(JSON.parse((await runWithApi(wasm, ['env'])).stdout), []);
  const r = await runWithApi(wasm, ['env'], { env: { A: '1', B: 'two=2' } });
  assert.deepEqual(JSON.parse(r.stdout), [['A', '1'], ['B', 'two=2']]);
});

test('stderr goes to its own sink', async () => {
  const r = await runWithApi(wasm, ['stderr', 'oops']);
  assert.equal(r.code, 0);
  assert.equal(r.stderr, 'oops\n');
  assert.equal(r.stdout, '');
});

test('exit codes: exit-with-code, exit(ok|err), run returning err', async () => {
  assert.equal((await runWithApi(wasm, ['exit', '0'])).code, 0);
  assert.equal((await runWithApi(wasm, ['exit', '42'])).code, 42);
  const r = await runWithApi(wasm, ['exit', '3']);
  assert.equal(r.code, 3);
  assert.equal(r.stdout, '', 'nothing runs after exit');
  assert.equal((await runWithApi(wasm, ['exit-result', 'ok'])).code, 0);
  assert.equal((await runWithApi(wasm, ['exit-result', 'err'])).code, 1);
  assert.equal((await runWithApi(wasm, ['fail'])).code, 1);
});

test('a trap propagates as Trap with wasm frames', async () => {
  await assert.rejects(runWithApi(wasm, ['trap']), (e: unknown) => {
    assert.ok(e instanceof Trap);
    assert.ok(e.wasmStack.length > 0);
    return true;
  });
});

test('ExitSignal unwinds a direct call to run', () => {
  const c = Component.compile(readFileSync(wasm));
  const wasi = createWasi({ args: ['cmd', 'exit', '9'], stdout: () => {} });
  const inst = c.instantiate(wasi.imports);
  const run = findRunExport(inst)!;
  assert.throws(() => run.run(), (e: unknown) => e instanceof ExitSignal && e.code === 9);
});

test('stdin from bytes; empty by default', async () => {
  assert.equal((await runWithApi(wasm, ['stdin'])).stdout, 'stdin:\n');
  assert.equal((await runWithApi(wasm, ['stdin'], { stdin: 'some input\n' })).stdout, 'stdin:some input\n\n');
});

test('clocks: subscribe-duration blocks at least that long; wall clock is sane', async () => {
  const t0 = performance.now();
  const r = await runWithApi(wasm, ['sleep', '20']);
  assert.ok(performance.now() - t0 >= 19);
  assert.deepEqual(JSON.parse(r.stdout), { slept: true, wall: true });
});

test('random and insecure-seed', async () => {
  assert.deepEqual(JSON.parse((await runWithApi(wasm, ['random'])).stdout), { len: 32, seed: 2 });
});

test('no preopens by default', async () => {
  assert.equal((await runWithApi(wasm, ['preopens'])).stdout, '[]\n');
  const r = await runWithApi(wasm, ['cat', 'x']);
  assert.equal(r.code, 1);
});

function box(): string {
  const dir = tempDir('weir-wasi-');
  mkdirSync(join(dir, 'box'));
  writeFileSync(join(dir, 'box', 'a.txt'), 'file a');
  return dir;
}

test('reading and writing files in a preopen', async () => {
  const dir = box();
  const preopens = [{ host: join(dir, 'box'), guest: '/' }];
  assert.equal((await runWithApi(wasm, ['preopens'], { preopens })).stdout, '["/"]\n');
  assert.equal((await runWithApi(wasm, ['cat', 'a.txt'], { preopens })).stdout, 'file a\n');
  assert.equal((await runWithApi(wasm, ['write', 'b.txt', 'new content'], { preopens })).stdout, 'wrote\n');
  assert.equal(readFileSync(join(dir, 'box', 'b.txt'), 'utf8'), 'new content');
  const s = await runWithApi(wasm, ['stream-write', 'c.txt', 'streamed'], { preopens });
  assert.equal(s.stdout, 'streamed+appended\n', s.stderr);
  assert.equal(readFileSync(join(dir, 'box', 'c.txt'), 'utf8'), 'streamed+appended');
  assert.equal((await runWithApi(wasm, ['ls'], { preopens })).stdout, '["a.txt:regular-file","b.txt:regular-file","c.txt:regular-file"]\n');
});

test('directory operations: mkdir, create exclusive, rename, symlink, readlink, rmdir, unlink', async () => {
  const dir = box();
  const r = await runWithApi(wasm, ['fsops'], { preopens: { '/': join(dir, 'box') } });
  assert.equal(r.stdout.trim().split('\n').join('|'), [
    'ok:undefined', 'err:exist', 'ok:3', 'ok:"regular-file"', 'ok:undefined', 'err:no-entry',
    'ok:undefined', 'ok:"g.txt"', 'ok:3', 'ok:"symbolic-link"', 'err:not-empty', 'ok:undefined', 'ok:undefined',
    'ok:undefined', 'err:no-entry',
  ].join('|'));
  assert.ok(!existsSync(join(dir, 'box', 'sub')));
});

test('read-only preopen: reads work, every change is refused', async () => {
  const dir = box();
  const preopens = [{ host: join(dir, 'box'), guest: '/', readonly: true }];
  assert.equal((await runWithApi(wasm, ['cat', 'a.txt'], { preopens })).stdout, 'file a\n');
  for (const op of [['create', 'n.txt'], ['write', 'a.txt'], ['truncate', 'a.txt'], ['mkdir', 'd'], ['unlink', 'a.txt'], ['symlink', 'a.txt', 'l'], ['rename', 'a.txt', 'z.txt']]) {
    const r = await runWithApi(wasm, ['attempt', ...op], { preopens });
    assert.equal(r.stdout, 'err:not-permitted\n', `${op.join(' ')}: ${r.stdout}${r.stderr}`);
  }
  assert.equal(readFileSync(join(dir, 'box', 'a.txt'), 'utf8'), 'file a');
});

test('createWasiP2Imports offers every wasi:*@0.2 interface a qjs command imports', () => {
  const imports = createWasiP2Imports();
  const c = Component.compile(readFileSync(wasm));
  for (const name of c.type.imports.keys()) {
    const base = name.replace(/@.*/, '');
    assert.ok(Object.keys(imports).some((k) => k.startsWith(`${base}@0.2.`)), name);
  }
});

test('a preopen that does not exist is a clear host error', () => {
  assert.throws(() => createWasi({ preopens: [{ host: '/nonexistent/weir', guest: '/' }] }), /cannot preopen "\/nonexistent\/weir": no such directory/);
});

test('closing the host releases every fd, even ones the guest never dropped', async () => {
  const { readdirSync } = await import('node:fs');
  const { Filesystem } = await import('../src/wasi/core/fs.ts');
  const dir = box();
  const before = readdirSync('/proc/self/fd').length;
  const fs = new Filesystem([{ host: join(dir, 'box'), guest: '/' }]);
  const [root] = fs.getDirectories()[0];
  const f = fs.openAt(root, false, 'a.txt', {}, { read: true });
  const stream = fs.readStream(f, 0n);
  f.close(); // the stream keeps the fd alive...
  assert.equal(new TextDecoder().decode(stream.readSync(100)!), 'file a');
  fs.close(); // ...until the host goes away
  assert.equal(readdirSync('/proc/self/fd').length, before);
  assert.throws(() => stream.readSync(100), /bad-descriptor/);
});
