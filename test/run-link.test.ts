// `weir run --link FILE`: the run component's imports that the host does not
// provide are linked to exports of the --link components (composition as in
// `weir serve a.wasm b.wasm`), through the built command.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assembleText } from '../src/wast/assemble.ts';
import { weirBin } from './helpers/http-serve-fixtures.ts';

const APP = `(component
  (import "test:lib/answer@0.1.0" (instance $a (export "get" (func (result u32)))))
  (alias export $a "get" (func $get))
  (core func $get' (canon lower (func $get)))
  (core module $M
    (import "" "get" (func $get (result i32)))
    (func (export "run") (result i32)
      (if (result i32) (i32.eq (call $get) (i32.const 42)) (then (i32.const 0)) (else (i32.const 1)))))
  (core instance $m (instantiate $M (with "" (instance (export "get" (func $get'))))))
  (func $run async (result (result)) (canon lift (core func $m "run")))
  (instance $r (export "run" (func $run)))
  (export "wasi:cli/run@0.3.0" (instance $r)))`;

const lib = (n: number, version = '0.1.3') => `(component
  (core module $M (func (export "get") (result i32) (i32.const ${n})))
  (core instance $m (instantiate $M))
  (func $get (result u32) (canon lift (core func $m "get")))
  (instance $i (export "get" (func $get)))
  (export "test:lib/answer@${version}" (instance $i)))`;

test('weir run --link: imports no host interface provides link to a later component (semver match); unlinked imports are named', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weir-link-'));
  try {
    const app = join(dir, 'app.wasm');
    writeFileSync(app, await assembleText(APP));
    writeFileSync(join(dir, 'lib42.wasm'), await assembleText(lib(42)));
    writeFileSync(join(dir, 'lib41.wasm'), await assembleText(lib(41)));
    writeFileSync(join(dir, 'lib2.wasm'), await assembleText(lib(42, '0.2.0')));
    const run = (...args: string[]) => spawnSync(process.execPath, [weirBin, 'run', ...args], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(run('--link', join(dir, 'lib42.wasm'), app).status, 0);
    assert.equal(run('--link', join(dir, 'lib41.wasm'), app).status, 1, 'the linked export really answers');
    assert.equal(run('--link', join(dir, 'lib42.wasm'), '--link', join(dir, 'lib41.wasm'), app).status, 0, 'the first --link that has it');
    const none = run(app);
    assert.equal(none.status, 1);
    assert.match(none.stderr, /import "test:lib\/answer@0\.1\.0".*the import is missing/);
    const wrong = run('--link', join(dir, 'lib2.wasm'), app);
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /not provided by the host nor exported by lib2\.wasm/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
