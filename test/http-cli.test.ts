// Outgoing HTTP through the built `weir` command: --allow-outbound, -S http,
// default deny (with the --verbose warning), usage errors, and node:http
// staying unloaded for components that send nothing.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './helpers/fixtures.ts';
import { buildJsProxy, FETCH_CMD_JS, FETCH_CMD_WORLD } from './helpers/http-fixtures.ts';

const mainJs = join(repoRoot, 'dist', 'cli', 'main.js');
let wasm: string;
let server: Server;
let port = 0;
let connections = 0;

before(async () => {
  assert.ok(existsSync(mainJs), 'run npx tsc -p . first');
  wasm = await buildJsProxy('p2-fetch-cmd', FETCH_CMD_JS, FETCH_CMD_WORLD);
  server = createServer((q, r) => r.end(`hi ${q.url}`));
  server.on('connection', () => { connections++; });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});
after(() => { server.closeAllConnections(); server.close(); });

function weir(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return node([mainJs, ...args]);
}

function node(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const t = setTimeout(() => p.kill(), 60_000);
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('close', (code) => { clearTimeout(t); resolve({ code, stdout, stderr }); });
  });
}

test('weir run: outgoing HTTP is denied by default, granted by --allow-outbound or -S http', async () => {
  const url = ['--env', `URL=http://127.0.0.1:${port}/x?y=1`];
  const denied = await weir(['run', '-v', ...url, wasm]);
  assert.equal(denied.code, 0, denied.stderr);
  assert.match(denied.stdout, /^error /);
  assert.match(denied.stderr, /outgoing HTTP request to .* denied/);
  assert.equal(connections, 0);

  const quiet = await weir(['run', ...url, wasm]);
  assert.equal(quiet.stderr, '', 'no warning without --verbose');

  const wrongPort = await weir(['run', '--allow-outbound', `127.0.0.1:${port === 1 ? 2 : 1}`, ...url, wasm]);
  assert.match(wrongPort.stdout, /^error /);

  for (const grant of [['--allow-outbound', `127.0.0.1:${port}`], ['--allow-outbound=127.0.0.1:*'], ['-S', 'http'], ['-Shttp=y']]) {
    const r = await weir(['run', ...grant, ...url, wasm]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '200 hi /x?y=1\n', grant.join(' '));
  }
  assert.ok(connections >= 1);
});

test('weir run: malformed grants are usage errors; help documents the grammar', () => {
  for (const bad of [['--allow-outbound', 'http://x.com'], ['--allow-outbound', 'x:99999'], ['--allow-outbound', '10.0.0.*'], ['--allow-outbound=api.*:443'], ['-S', 'http=maybe']]) {
    const r = spawnSync(process.execPath, [mainJs, 'run', ...bad, 'x.wasm'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 2, `${bad.join(' ')}: ${r.stderr}`);
  }
  const help = spawnSync(process.execPath, [mainJs, 'run', '--help'], { encoding: 'utf8', timeout: 30_000 });
  assert.match(help.stdout, /--allow-outbound HOST\[:PORT\]/);
  assert.match(help.stdout, /\bhttp\b.*outgoing HTTP/);
});

test('a component that sends nothing never loads node:http', async () => {
  const hello = join(repoRoot, 'examples', 'hello', 'hello.wasm');
  // A preload that reports, at exit, whether node's HTTP client modules were loaded.
  const dir = mkdtempSync(join(tmpdir(), 'weir-lazy-'));
  const preload = join(dir, 'report.cjs');
  writeFileSync(preload, `process.on('exit', () => process.stderr.write('loaded:' + process.moduleLoadList.filter((m) => /^NativeModule (_http_client|https?)$/.test(m)).join(',')));`);
  try {
    const quiet = await node(['-r', preload, mainJs, 'run', hello]);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.match(quiet.stderr, /loaded:$/, quiet.stderr);
    // The same probe sees them when a request is sent (spawned asynchronously: the test server must answer).
    const sending = await node(['-r', preload, mainJs, 'run', '-S', 'http', '--env', `URL=http://127.0.0.1:${port}/`, wasm]);
    assert.equal(sending.stdout, '200 hi /\n');
    assert.match(sending.stderr, /loaded:.*http/, sending.stderr);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
