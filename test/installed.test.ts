// The package as a user installs it: `npm pack`, install the tarball into an
// empty project, then use the `weir` bin and the package's public entry point.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parse } from '@bytecodealliance/jco';

const repo = resolve(import.meta.dirname, '..');
const nodeDir = dirname(process.execPath); // the JSPI-capable Node running the tests

test('npm pack → install → the weir bin and `import "weir"` work', { timeout: 180_000 }, async (t) => {
  if (!existsSync(join(repo, 'dist', 'index.js'))) execFileSync(join(repo, 'node_modules', '.bin', 'tsc'), ['-p', repo]);
  const work = mkdtempSync(join(tmpdir(), 'weir-installed-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const env = { ...process.env, PATH: `${nodeDir}:${process.env.PATH}`, npm_config_loglevel: 'error' };
  const tgz = execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', work], { cwd: repo, env, encoding: 'utf8' }).trim().split('\n').pop()!;
  writeFileSync(join(work, 'package.json'), JSON.stringify({ name: 'user-project', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', join(work, tgz)], { cwd: work, env, stdio: 'pipe' });

  const wasm = join(work, 'add.wasm');
  writeFileSync(wasm, await parse(`(component
    (core module $m (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))
    (core instance $i (instantiate $m))
    (func (export "add") (param "a" u32) (param "b" u32) (result u32) (canon lift (core func $i "add"))))`));

  const bin = join(work, 'node_modules', '.bin', 'weir');
  const inspect = spawnSync(bin, ['inspect', wasm], { env, encoding: 'utf8' });
  assert.equal(inspect.status, 0, inspect.stderr);
  assert.match(inspect.stdout, /export add: func\(a: u32, b: u32\) -> u32;/);

  writeFileSync(join(work, 'use.mjs'), `
    import { readFileSync } from 'node:fs';
    import { Component } from 'weir';
    const i = Component.compile(readFileSync(${JSON.stringify(wasm)})).instantiate();
    console.log(i.exports.add(40, 2));`);
  const use = spawnSync(process.execPath, ['use.mjs'], { cwd: work, env, encoding: 'utf8' });
  assert.equal(use.status, 0, use.stderr);
  assert.equal(use.stdout.trim(), '42');
});
