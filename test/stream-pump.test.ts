// A WASI 0.3 guest stream<u8> handed to a host sink (wasi:cli/stdout
// write-via-stream) is read straight from guest memory into a reused host
// buffer (src/wasi/p3/streams.ts pumpDirect). The guest is bench/fixtures/cat.wat,
// which copies stdin to stdout through its own memory, 64 KiB at a time.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tempDir } from './helpers/temp-dir.ts';
import { join } from 'node:path';
import { parse } from '@bytecodealliance/jco';
import { repoRoot } from './helpers/fixtures.ts';
import { Component } from '../src/index.ts';
import { createWasi, runCommand } from '../src/wasi/index.ts';

const mainJs = join(repoRoot, 'dist', 'cli', 'main.js');
let wasm = '';

before(async () => {
  if (!existsSync(join(repoRoot, 'dist', 'wasi', 'p3', 'index.js'))) {
    spawnSync(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', repoRoot], { stdio: 'ignore' });
  }
  const out = await (parse as (t: string) => Uint8Array | Promise<Uint8Array>)(readFileSync(join(repoRoot, 'bench', 'fixtures', 'cat.wat'), 'utf8'));
  wasm = join(tempDir('weir-pump-'), 'cat.wasm');
  writeFileSync(wasm, out instanceof Uint8Array ? out : new Uint8Array(out as ArrayLike<number>));
});

test('weir run: 3 MiB of random bytes pass through the guest unchanged', () => {
  const input = randomBytes(3 * (1 << 20) + 12345);
  const r = spawnSync(process.execPath, [mainJs, 'run', wasm], { input, timeout: 60_000, maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, String(r.stderr));
  assert.equal(Buffer.compare(r.stdout, input), 0);
  const empty = spawnSync(process.execPath, [mainJs, 'run', wasm], { input: '', timeout: 60_000 });
  assert.equal(empty.status, 0);
  assert.equal(empty.stdout.length, 0);
});

test('API: stdout given as a callback receives every byte, each chunk its own copy', async () => {
  const input = randomBytes(1 << 20);
  const chunks: Uint8Array[] = [];
  const wasi = createWasi({ stdin: input, stdout: (b) => chunks.push(b) });
  try {
    const inst = Component.compile(readFileSync(wasm)).instantiate(wasi.imports);
    assert.equal(await runCommand(inst), 0);
  } finally {
    wasi.close();
  }
  // the pump reuses its buffer: a sink that kept views would see them overwritten
  assert.equal(Buffer.compare(Buffer.concat(chunks), input), 0);
  assert.ok(chunks.length > 1);
});

test('weir run: stdout closed by its reader: the guest sees its stream dropped and exits 1, no hang', async () => {
  const child = spawn(process.execPath, [mainJs, 'run', wasm], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => {});
  child.stdout.once('data', () => child.stdout.destroy());
  const chunk = Buffer.alloc(1 << 16, 7);
  let written = 0;
  const feed = (): void => {
    while (written < (64 << 20)) {
      written += chunk.length;
      if (!child.stdin.write(chunk)) { child.stdin.once('drain', feed); return; }
    }
    child.stdin.end();
  };
  feed();
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill(); reject(new Error('weir did not exit')); }, 30_000);
    child.on('exit', (c) => { clearTimeout(timer); resolve(c); });
  });
  assert.equal(code, 1);
});
