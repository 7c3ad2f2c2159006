// Start-up of the `weir` command: dist/cli/main.js runs the bundle that
// `npm run build` writes (scripts/bundle-cli.ts) when it is fresh, falls back
// to tsc's modules when it is stale, and a plain `weir run` loads no built-in
// module it does not use. Timings are measured by `npm run bench`, not here.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './helpers/fixtures.ts';
import { bundleCli } from '../scripts/bundle-cli.ts';

const hello = join(repoRoot, 'examples', 'hello', 'hello.wasm');
let dist = '';

before(async () => {
  if (!existsSync(join(repoRoot, 'dist', 'cli', 'commands.js'))) {
    spawnSync(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', repoRoot], { stdio: 'ignore' });
  }
  // A private copy of dist/, so that bundling here never races other tests using the shared one.
  const dir = mkdtempSync(join(tmpdir(), 'weir-startup-'));
  dist = join(dir, 'dist');
  cpSync(join(repoRoot, 'dist'), dist, { recursive: true });
  cpSync(join(repoRoot, 'package.json'), join(dir, 'package.json'));
  await bundleCli(join(dist, 'cli'));
});

/** Runs `weir run hello.wasm` from `dist`; returns its output and the files and built-ins it loaded. */
function runHello() {
  const hook = 'data:text/javascript,' + encodeURIComponent(`
    import { registerHooks } from 'node:module';
    const files = [];
    registerHooks({ load(url, ctx, next) { if (url.startsWith('file:')) files.push(url); return next(url, ctx); } });
    process.on('exit', () => process.stderr.write('\\n@@' + JSON.stringify({ files,
      builtins: process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13)) })));`);
  const r = spawnSync(process.execPath, ['--import', hook, join(dist, 'cli', 'main.js'), 'run', hello], { encoding: 'utf8', timeout: 60_000 });
  const at = r.stderr.lastIndexOf('\n@@');
  assert.ok(at >= 0, r.stderr);
  const info = JSON.parse(r.stderr.slice(at + 3)) as { files: string[]; builtins: string[] };
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.slice(0, at), ...info };
}

const ours = (files: string[]) => files.filter((f) => f.includes('/dist/')).map((f) => f.slice(f.lastIndexOf('/dist/') + 6));

test('weir run loads the bundle: a handful of files instead of every module', () => {
  const r = runHello();
  assert.equal(r.stdout, 'Hello from a WebAssembly component (WASI 0.3)!\n', r.stderr);
  assert.equal(r.status, 0);
  const files = ours(r.files);
  assert.ok(files.every((f) => f === 'cli/main.js' || /^cli\/weir(-[\w-]+)?\.js$/.test(f)), files.join(' '));
  assert.ok(files.length <= 6, files.join(' '));
  // the bin is executable (npx weir in a fresh clone runs it directly)
  assert.equal(statSync(join(dist, 'cli', 'main.js')).mode & 0o111, 0o111);
  // built-ins a plain run does not use are not loaded
  for (const m of ['crypto', 'http', 'https', 'tls', 'worker_threads']) assert.ok(!r.builtins.includes(m), `node:${m} loaded`);
});

test('a bundle older than the tsc output is ignored: weir runs the modules', () => {
  const later = new Date(Date.now() + 60_000);
  utimesSync(join(dist, 'cli', 'commands.js'), later, later);
  const r = runHello();
  assert.equal(r.stdout, 'Hello from a WebAssembly component (WASI 0.3)!\n', r.stderr);
  const files = ours(r.files);
  assert.ok(files.includes('cli/commands.js') && files.includes('host/component.js'), files.join(' '));
  assert.ok(!files.some((f) => f.startsWith('cli/weir')), files.join(' '));
});
