// End-to-end tests of the built `weir` command (dist/cli/main.js).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tempDir } from './helpers/temp-dir.ts';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { buildHello, repoRoot } from './helpers/fixtures.ts';

const mainJs = join(repoRoot, 'dist', 'cli', 'main.js');

function weir(args: string[], node = process.execPath) {
  const r = spawnSync(node, [mainJs, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(() => {
  if (!existsSync(mainJs)) {
    // `npm test` builds first; when run on its own, build here (type errors elsewhere don't stop emit).
    spawnSync(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', repoRoot], { stdio: 'ignore' });
  }
  assert.ok(existsSync(mainJs), `${mainJs} is missing: run npx tsc -p .`);
});

test('weir --help exits 0 and lists the commands and flags', () => {
  const r = weir(['--help']);
  assert.equal(r.status, 0, r.stderr);
  for (const s of ['run', 'serve', 'inspect', '--version', '--verbose']) assert.ok(r.stdout.includes(s), `help mentions ${s}`);
});

test('weir <cmd> --help documents every flag', () => {
  const run = weir(['run', '--help']);
  assert.equal(run.status, 0, run.stderr);
  for (const s of ['--dir HOST[::GUEST]', '--dir-readonly', '--env NAME=VALUE', '--env NAME', '--inherit-env', '--']) {
    assert.ok(run.stdout.includes(s), `run help mentions ${s}`);
  }
  const serve = weir(['serve', '--help']);
  assert.equal(serve.status, 0, serve.stderr);
  assert.match(serve.stdout, /--addr HOST:PORT/);
  const inspect = weir(['help', 'inspect']);
  assert.equal(inspect.status, 0, inspect.stderr);
  assert.match(inspect.stdout, /weir inspect/);
});

test('weir --version prints the package version', () => {
  const r = weir(['--version']);
  assert.equal(r.status, 0, r.stderr);
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
  assert.equal(r.stdout.trim(), `weir ${pkg.version}`);
});

test('usage errors exit 2 with a pointer to --help', () => {
  for (const args of [['frobnicate'], ['run'], ['inspect'], ['serve', '--addr', 'nowhere', 'x.wasm'], ['run', '--bogus', 'x.wasm']]) {
    const r = weir(args);
    assert.equal(r.status, 2, `weir ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^weir: /);
    assert.match(r.stderr, /--help/);
  }
});

test('weir inspect prints the WIT of a componentize-qjs component', async () => {
  const wasm = await buildHello();
  const r = weir(['inspect', wasm]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^package root:component;/);
  assert.match(r.stdout, /world root \{/);
  assert.match(r.stdout, /export greet: func\(name: string\) -> string;/);
  // componentize-qjs output imports WASI 0.2 interfaces
  assert.match(r.stdout, /import wasi:cli\/environment@0\.2\.\d+;/);
  assert.match(r.stdout, /package wasi:cli@0\.2\.\d+ \{/);
});

test('weir inspect on a truncated component reports a DecodeError with a byte offset', async () => {
  const wasm = await buildHello({ stubWasi: true });
  const bytes = readFileSync(wasm);
  const dir = tempDir('weir-cli-');
  const truncated = join(dir, 'truncated.wasm');
  writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
  const r = weir(['inspect', truncated]);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^weir: .*truncated\.wasm: malformed component at byte offset \d+/);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace without --verbose');
  const v = weir(['inspect', '--verbose', truncated]);
  assert.equal(v.status, 1);
  assert.match(v.stderr, /^\s+at /m, 'stack trace with --verbose');
});

test('weir inspect on a missing file exits 1 without a stack', () => {
  const r = weir(['inspect', join(tmpdir(), 'weir-does-not-exist.wasm')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /weir-does-not-exist\.wasm: no such file/);
  assert.doesNotMatch(r.stderr, /^\s+at /m);
});

/** A Node older than 24 on PATH (the system Node here is 20), or null. */
function findOldNode(): string | null {
  const seen = new Set<string>();
  const candidates = ['/usr/bin/node', '/usr/local/bin/node', ...(process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'node'))];
  for (const c of candidates) {
    if (seen.has(c) || !existsSync(c)) continue;
    seen.add(c);
    try {
      const v = execFileSync(c, ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim();
      if (Number(/^v(\d+)/.exec(v)?.[1] ?? 99) < 24) return c;
    } catch { /* not runnable */ }
  }
  return null;
}

test('an old Node prints the version requirement and exits non-zero', (t) => {
  const old = findOldNode();
  if (!old) {
    t.skip('no Node older than 24 found');
    return;
  }
  for (const args of [['--help'], ['inspect', 'x.wasm']]) {
    const r = weir(args, old);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /weir needs Node 24\.21\+ or 26 \(JSPI\); this is Node v\d+\.\d+\.\d+\. Run through npm \(npx weir\)/);
    assert.doesNotMatch(r.stderr, /SyntaxError/);
  }
});
