// Start-up of the `weir` command: dist/cli/main.js runs the CommonJS bundle
// that `npm run build` writes (scripts/bundle-cli.ts) when it is fresh, falls
// back to tsc's modules when it is stale, keeps a V8 code cache of the bundle
// in a directory of its own (never the user's cwd) and runs the same whether
// or not that cache can be written or read, and a plain `weir run` loads no
// built-in module it does not use. Timings are measured by `npm run bench`,
// not here.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tempDir } from './helpers/temp-dir.ts';
import { join } from 'node:path';
import { repoRoot } from './helpers/fixtures.ts';
import { bundleCli } from '../scripts/bundle-cli.ts';
import { buildP3Cmd } from './helpers/wasi-p3-fixtures.ts';

const hello = join(repoRoot, 'examples', 'hello', 'hello.wasm');
const HELLO_OUT = 'Hello from a WebAssembly component (WASI 0.3)!\n';
let root = '';
let dist = '';

before(async () => {
  if (!existsSync(join(repoRoot, 'dist', 'cli', 'commands.js'))) {
    spawnSync(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', repoRoot], { stdio: 'ignore' });
  }
  // A private copy of dist/, so that bundling here never races other tests using the shared one.
  root = tempDir('weir-startup-');
  dist = join(root, 'dist');
  cpSync(join(repoRoot, 'dist'), dist, { recursive: true });
  cpSync(join(repoRoot, 'package.json'), join(root, 'package.json'));
  await bundleCli(join(dist, 'cli'));
});

/** A fresh directory for TMPDIR (the copy has no node_modules, so its code cache goes to TMPDIR/weir-cache-<uid>). */
function freshTmp(): string {
  return mkdtempSync(join(root, 'tmp-'));
}
const uid = process.getuid?.() ?? 'user';

/** Runs `weir run <file>` (hello.wasm by default) from `dist`; returns its output and the files and built-ins it loaded. */
function runHello(env: NodeJS.ProcessEnv = {}, file = hello) {
  const hook = 'data:text/javascript,' + encodeURIComponent(`
    import { registerHooks } from 'node:module';
    import { writeSync } from 'node:fs';
    const files = [];
    registerHooks({ load(url, ctx, next) { if (url.startsWith('file:')) files.push(url); return next(url, ctx); } });
    // not process.stderr: making it for a pipe loads node:net
    process.on('exit', () => writeSync(2, '\\n@@' + JSON.stringify({ files,
      builtins: process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13)) })));`);
  const r = spawnSync(process.execPath, ['--import', hook, join(dist, 'cli', 'main.js'), 'run', file], {
    encoding: 'utf8', timeout: 60_000, cwd: root, env: { ...process.env, TMPDIR: freshTmp(), ...env },
  });
  const at = r.stderr.lastIndexOf('\n@@');
  assert.ok(at >= 0, r.stderr);
  const info = JSON.parse(r.stderr.slice(at + 3)) as { files: string[]; builtins: string[] };
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.slice(0, at), ...info };
}

/** Runs `weir run hello.wasm` from `dist` with `tmp` as TMPDIR (where its code cache goes). */
function run(tmp: string, env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [join(dist, 'cli', 'main.js'), 'run', hello], {
    encoding: 'utf8', timeout: 60_000, cwd: root, env: { ...process.env, TMPDIR: tmp, ...env },
  });
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, HELLO_OUT);
  assert.equal(r.status, 0);
}

const ours = (files: string[]) => files.filter((f) => f.includes('/dist/')).map((f) => f.slice(f.lastIndexOf('/dist/') + 6));
const caches = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.v8')) : []);
/** How many distinct command lines have widened the code cache in `dir`. */
const seenLines = (dir: string) => readFileSync(join(dir, caches(dir)[0] + '.seen'), 'latin1').split('\n').filter(Boolean).length;

/**
 * Backdates the code cache in `dir`, runs `again`, and checks V8 accepted it: a rejected
 * cache is rewritten (new mtime) for that command line alone (fewer lines seen).
 */
function assertCacheAccepted(dir: string, again: () => void, lines: number, rewritten: string): void {
  const [file] = caches(dir);
  const old = new Date(Date.now() - 3_600_000);
  utimesSync(join(dir, file), old, old);
  again();
  assert.equal(seenLines(dir), lines);
  assert.equal(statSync(join(dir, file)).mtimeMs, old.getTime(), rewritten);
}

test('weir run loads the bundle: a handful of files instead of every module', () => {
  const r = runHello();
  assert.equal(r.stdout, HELLO_OUT, r.stderr);
  assert.equal(r.status, 0);
  // main.js compiles weir.cjs itself (vm.Script); what the module loader sees is main.js and small chunks
  const files = ours(r.files);
  assert.ok(files.every((f) => f === 'cli/main.js' || /^cli\/weir(-[\w-]+)?\.cjs$/.test(f)), files.join(' '));
  assert.ok(files.length <= 6, files.join(' '));
  assert.ok(!files.includes('cli/commands.js'), files.join(' '));
  // the bin is executable (npx weir in a fresh clone runs it directly)
  assert.equal(statSync(join(dist, 'cli', 'main.js')).mode & 0o111, 0o111);
  // built-ins a plain run does not use are not loaded
  // (node:v8 too: it loads Node's stream stack; only a large component's run sets a V8 flag through it)
  for (const m of ['crypto', 'http', 'https', 'tls', 'worker_threads', 'net', 'zlib', 'v8']) assert.ok(!r.builtins.includes(m), `node:${m} loaded`);
});

test('the wasi:sockets / wasi:http bindings are a chunk of their own: loaded only for a component that imports one of them', async () => {
  const plain = runHello();
  assert.equal(plain.stdout, HELLO_OUT, plain.stderr);
  assert.ok(!ours(plain.files).includes('cli/weir-net.cjs'), ours(plain.files).join(' '));
  // the same hello, importing (and never using) wasi:sockets/types@0.3.0
  const { assembleText } = await import('../src/wast/assemble.ts');
  const wat = readFileSync(join(repoRoot, 'examples', 'hello', 'hello.wat'), 'utf8').replace('(component', '(component\n  (import "wasi:sockets/types@0.3.0" (instance))');
  const file = join(freshTmp(), 'hello-net.wasm');
  writeFileSync(file, await assembleText(wat));
  const r = runHello({}, file);
  assert.equal(r.stdout, HELLO_OUT, r.stderr);
  assert.equal(r.status, 0);
  assert.ok(ours(r.files).includes('cli/weir-net.cjs'), ours(r.files).join(' '));
});

test('the code cache: written by the first run into a directory of its own, then read and kept', () => {
  const tmp = freshTmp();
  const dir = join(tmp, `weir-cache-${uid}`);
  run(tmp);
  const [file] = caches(dir);
  assert.ok(file, `no code cache in ${dir}`);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.deepEqual(readdirSync(root).filter((f) => f.endsWith('.v8')), [], 'nothing in the cwd');
  // The same command again: the cache is accepted (a rejected one is rewritten) and not rewritten.
  const old = new Date(Date.now() - 3_600_000);
  utimesSync(join(dir, file), old, old);
  run(tmp);
  assert.deepEqual(caches(dir), [file]);
  assert.equal(statSync(join(dir, file)).mtimeMs, old.getTime());
  // NODE_DISABLE_COMPILE_CACHE: no cache is read or written
  const off = freshTmp();
  run(off, { NODE_DISABLE_COMPILE_CACHE: '1' });
  assert.deepEqual(caches(join(off, `weir-cache-${uid}`)), []);
  // WEIR_CACHE_DIR: that directory instead (created if missing)
  const chosen = join(freshTmp(), 'chosen');
  const other = freshTmp();
  run(other, { WEIR_CACHE_DIR: chosen });
  assert.equal(caches(chosen).length, 1);
  assert.deepEqual(caches(join(other, `weir-cache-${uid}`)), []);
});

test('a large component (its run raises the wasm tiering budget) leaves a code cache that the next run accepts', async (t) => {
  const large = await buildP3Cmd(); // componentize-qjs: ~1.7 MB, over the 256 KiB at which weir run raises the budget
  if (!large) return t.skip('WASI 0.3.0 WIT not found');
  const tmp = freshTmp();
  const dir = join(tmp, `weir-cache-${uid}`);
  const runLarge = (flags: string[] = []) => {
    const r = spawnSync(process.execPath, [join(dist, 'cli', 'main.js'), 'run', ...flags, large, 'hello'], {
      encoding: 'utf8', timeout: 60_000, cwd: root, env: { ...process.env, TMPDIR: tmp },
    });
    assert.equal(r.stdout, 'hello, world\n', r.stderr);
    assert.equal(r.status, 0);
  };
  run(tmp);
  assert.equal(seenLines(dir), 1);
  runLarge(); // widens the cache, written at exit
  assert.equal(seenLines(dir), 2);
  // A run that sets no flag loads it: accepted (a rejected cache would be rewritten for this command line alone).
  assertCacheAccepted(dir, () => run(tmp), 2, 'the cache was rewritten: V8 rejected it');
  // -W timeout runs the command in a worker thread, which raises the budget there: the cache is still
  // written under V8's default, so the same command again accepts it
  runLarge(['-W', 'timeout=30s']);
  assert.equal(seenLines(dir), 3);
  assertCacheAccepted(dir, () => runLarge(['-W', 'timeout=30s']), 3, 'the cache was rewritten after a -W timeout run');
});

test('weir serve leaves a code cache that the next weir run accepts (a V8 flag serve changed and left set would make V8 reject it)', async () => {
  const { assembleText } = await import('../src/wast/assemble.ts');
  const { helloWat } = await import('./helpers/http-serve-fixtures.ts');
  const service = join(freshTmp(), 'hello-service.wasm');
  writeFileSync(service, await assembleText(helloWat()));
  const tmp = freshTmp();
  const dir = join(tmp, `weir-cache-${uid}`);
  run(tmp);
  assert.equal(seenLines(dir), 1);
  // serve until it listens, then SIGTERM: its command line is new, so it widens the cache at exit
  const child = spawn(process.execPath, [join(dist, 'cli', 'main.js'), 'serve', '--addr', '127.0.0.1:0', '--workers', '1', service], {
    cwd: root, env: { ...process.env, TMPDIR: tmp }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`weir serve did not start: ${err}`)), 30_000);
    child.stderr!.on('data', (d) => { err += d; if (err.includes('Serving HTTP on')) { clearTimeout(timer); resolve(); } });
  });
  child.kill('SIGTERM');
  assert.equal(await exited, 0, err);
  assert.equal(seenLines(dir), 2, 'serve wrote the cache');
  // the next run loads it under V8's defaults: accepted, so not rewritten
  assertCacheAccepted(dir, () => run(tmp), 2, 'the cache serve wrote was rejected (made under other V8 flags)');
});

test('a damaged code cache is rejected by V8 and rewritten; the run is unaffected', () => {
  const tmp = freshTmp();
  const dir = join(tmp, `weir-cache-${uid}`);
  run(tmp);
  const [file] = caches(dir);
  const size = statSync(join(dir, file)).size;
  writeFileSync(join(dir, file), new Uint8Array(size).fill(0x5a));
  run(tmp);
  assert.notDeepEqual(readFileSync(join(dir, file)).subarray(0, 64), Buffer.alloc(64, 0x5a), 'the damaged cache was rewritten');
  run(tmp);
});

test('no usable cache directory: weir still runs, and writes no cache anywhere', () => {
  // something in the way of the cache directory
  const blocked = freshTmp();
  writeFileSync(join(blocked, `weir-cache-${uid}`), 'not a directory');
  run(blocked);
  run(blocked);
  // a directory others can write to is not trusted with code
  const open = freshTmp();
  const dir = join(open, `weir-cache-${uid}`);
  mkdirSync(dir);
  chmodSync(dir, 0o777);
  run(open);
  assert.deepEqual(caches(dir), []);
  // a TMPDIR that does not exist and cannot be created (its parent is a file)
  const file = join(freshTmp(), 'file');
  writeFileSync(file, '');
  run(join(file, 'tmp'));
});

test('a bundle older than the tsc output is ignored: weir runs the modules', () => {
  const later = new Date(Date.now() + 60_000);
  utimesSync(join(dist, 'cli', 'commands.js'), later, later);
  const r = runHello();
  assert.equal(r.stdout, HELLO_OUT, r.stderr);
  const files = ours(r.files);
  assert.ok(files.includes('cli/commands.js') && files.includes('host/component.js'), files.join(' '));
  assert.ok(!files.some((f) => f.startsWith('cli/weir')), files.join(' '));
});
