// The examples a newcomer runs first (examples/README.md, README "Quick start"):
// the committed .wasm files are what their sources build to, and they run
// through the built `weir` command and the package API.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './helpers/fixtures.ts';
import { JS_EXAMPLES, WAT_EXAMPLES, buildJs, buildWat } from '../examples/build.ts';
import { Component, createWasi, runCommand } from '../src/index.ts';

const mainJs = join(repoRoot, 'dist', 'cli', 'main.js');
const hello = join(repoRoot, 'examples', 'hello', 'hello.wasm');
const HELLO_LINE = 'Hello from a WebAssembly component (WASI 0.3)!\n';

before(() => {
  if (!existsSync(mainJs)) spawnSync(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', repoRoot], { stdio: 'ignore' });
  assert.ok(existsSync(mainJs), `${mainJs} is missing: run npx tsc -p .`);
});

test('committed example components are exactly what their sources build to', async () => {
  for (const [src, dst] of WAT_EXAMPLES) {
    const fresh = await buildWat(src);
    const committed = readFileSync(join(repoRoot, 'examples', dst));
    assert.ok(Buffer.compare(Buffer.from(fresh), committed) === 0, `${dst} is stale: run node examples/build.ts`);
  }
});

test('quick start: weir run examples/hello/hello.wasm prints its line and exits 0', () => {
  const r = spawnSync(process.execPath, [mainJs, 'run', hello], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, HELLO_LINE);
  assert.equal(r.status, 0);
});

test('the hello example through the API, output captured', async () => {
  const chunks: Uint8Array[] = [];
  const wasi = createWasi({ stdout: (c: Uint8Array) => { chunks.push(c.slice()); } });
  try {
    const inst = Component.compile(readFileSync(hello)).instantiate(wasi.imports);
    assert.equal(await runCommand(inst), 0);
  } finally {
    wasi.close();
  }
  assert.equal(Buffer.concat(chunks).toString('utf8'), HELLO_LINE);
});

test('the JavaScript example builds with componentize-qjs and greets its argument', () => {
  const out = buildJs(JS_EXAMPLES.find((e) => e.dir === 'hello-js')!);
  const r = spawnSync(process.execPath, [mainJs, 'run', out, 'Ada'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, 'Hello, Ada! (from JavaScript, WASI 0.3)\n');
  assert.equal(r.status, 0);
});
