// `weir run` end to end: the built CLI (dist/cli/main.js) running componentize-qjs commands.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tempDir } from './helpers/temp-dir.ts';
import { basename, join } from 'node:path';
import { buildHello, repoRoot } from './helpers/fixtures.ts';
import { buildCmd } from './helpers/wasi-fixtures.ts';

const mainJs = join(repoRoot, 'dist', 'cli', 'main.js');
let wasm: string;

function weir(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
  const r = spawnSync(process.execPath, [mainJs, ...args], {
    encoding: 'utf8', timeout: 60_000, input: opts.input ?? '', env: opts.env ?? process.env, cwd: opts.cwd,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  if (!existsSync(join(repoRoot, 'dist', 'wasi', 'index.js'))) {
    spawnSync(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', repoRoot], { stdio: 'ignore' });
  }
  assert.ok(existsSync(mainJs), `${mainJs} is missing: run npx tsc -p .`);
  wasm = await buildCmd();
});

test('weir run: hello world', () => {
  const r = weir(['run', wasm, 'hello']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'hello, world\n');
  assert.equal(r.stderr, '');
});

test('weir run: arguments after the component go to the guest, argv[0] is its file name', () => {
  const r = weir(['run', wasm, 'args', '--env', 'X=1', '-v', '']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), [basename(wasm), 'args', '--env', 'X=1', '-v', '']);
});

test('weir run: environment is empty unless granted', () => {
  const env = { ...process.env, WEIR_T_A: 'host-a', WEIR_T_B: 'host-b' };
  const none = JSON.parse(weir(['run', wasm, 'env'], { env }).stdout) as [string, string][];
  assert.deepEqual(none, []);
  const some = JSON.parse(weir(['run', '--env', 'X=1', '--env', 'WEIR_T_A', '--env', 'WEIR_T_MISSING', wasm, 'env'], { env }).stdout);
  assert.deepEqual(some, [['X', '1'], ['WEIR_T_A', 'host-a']]);
  const all = new Map(JSON.parse(weir(['run', '--inherit-env', '--env', 'WEIR_T_B=override', wasm, 'env'], { env }).stdout) as [string, string][]);
  assert.equal(all.get('WEIR_T_A'), 'host-a');
  assert.equal(all.get('WEIR_T_B'), 'override');
});

test('weir run: exit status is the guest\'s', () => {
  assert.equal(weir(['run', wasm, 'exit', '0']).status, 0);
  assert.equal(weir(['run', wasm, 'exit', '17']).status, 17);
  assert.equal(weir(['run', wasm, 'exit', '255']).status, 255);
  assert.equal(weir(['run', wasm, 'exit-result', 'err']).status, 1);
  assert.equal(weir(['run', wasm, 'fail']).status, 1);
});

test('weir run: a trap prints the reason and wasm frames, exit status 134', () => {
  const r = weir(['run', wasm, 'trap']);
  assert.equal(r.status, 134);
  assert.match(r.stderr, /^weir: trap: unreachable$/m);
  assert.match(r.stderr, /^wasm stack:\n {2}at .*wasm-function/m);
});

test('weir run: stdin, stdout and stderr are the process\'s', () => {
  const r = weir(['run', wasm, 'stdin'], { input: 'from the pipe' });
  assert.equal(r.stdout, 'stdin:from the pipe\n');
  const e = weir(['run', wasm, 'stderr', 'to stderr']);
  assert.equal(e.stderr, 'to stderr\n');
  assert.equal(e.stdout, '');
});

test('weir run --dir HOST::GUEST, --dir HOST and --dir-readonly', () => {
  const root = tempDir('weir-run-');
  mkdirSync(join(root, 'data'));
  writeFileSync(join(root, 'data', 'in.txt'), 'input file');
  const w = weir(['run', '--dir', `${join(root, 'data')}::/work`, wasm, 'preopens']);
  assert.equal(w.stdout, '["/work"]\n');
  assert.equal(weir(['run', '--dir', `${join(root, 'data')}::/`, wasm, 'cat', 'in.txt']).stdout, 'input file\n');
  const rel = weir(['run', '--dir', 'data', wasm, 'preopens'], { cwd: root });
  assert.equal(rel.stdout, '["data"]\n');
  const wr = weir(['run', '--dir', join(root, 'data'), wasm, 'write', 'out.txt', 'written by the guest']);
  assert.equal(wr.status, 0, wr.stderr);
  assert.equal(readFileSync(join(root, 'data', 'out.txt'), 'utf8'), 'written by the guest');
  const ro = weir(['run', '--dir-readonly', `${join(root, 'data')}::/`, wasm, 'attempt', 'create', 'nope.txt']);
  assert.equal(ro.stdout, 'err:not-permitted\n');
  assert.ok(!existsSync(join(root, 'data', 'nope.txt')));
});

test('weir run: the sandbox holds from the CLI too', () => {
  const root = tempDir('weir-run-');
  mkdirSync(join(root, 'box'));
  writeFileSync(join(root, 'secret.txt'), 'OUTSIDE');
  for (const p of ['../secret.txt', join(root, 'secret.txt')]) {
    const r = weir(['run', '--dir', `${join(root, 'box')}::/`, wasm, 'try-open', p]);
    assert.equal(r.stdout, 'err:not-permitted\n', p);
  }
});

test('weir run: a missing preopen directory is reported, exit 1', () => {
  const r = weir(['run', '--dir', '/nonexistent/weir-dir::/', wasm, 'hello']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /cannot preopen "\/nonexistent\/weir-dir": no such directory/);
});

test('weir run: a component that is not a command is reported, exit 1', async () => {
  const hello = await buildHello();
  const r = weir(['run', hello]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /not a command: it does not export wasi:cli\/run \(it exports init, greet\)/);
});

test('weir run: a missing file is reported, exit 1', () => {
  const r = weir(['run', '/nonexistent/x.wasm']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^weir: \/nonexistent\/x\.wasm: no such file/);
});
