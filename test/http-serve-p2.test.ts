// WASI 0.2 proxies served by the built `weir serve` command: a componentize-js
// proxy (fetch event) answering requests and sending through outgoing-handler
// on the shared pool (default deny, --allow-outbound), and WAT guests that
// return or trap before response-outparam.set (500 + the log line).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request as httpRequest, Agent, type Server } from 'node:http';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './helpers/fixtures.ts';
import { buildJsProxy, PROXY_JS } from './helpers/http-fixtures.ts';
import { assembleText } from '../src/wast/assemble.ts';

const mainJs = join(repoRoot, 'dist', 'cli', 'main.js');
let proxyWasm: string;
let upstream: Server;
let upPort = 0;
let upstreamConnections = 0;
let tmp: string;

before(async () => {
  assert.ok(existsSync(mainJs), 'run npm run build first');
  proxyWasm = await buildJsProxy('p2-proxy', PROXY_JS);
  upstream = createServer((q, r) => r.end(`up:${q.url}`));
  upstream.on('connection', () => { upstreamConnections++; });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upPort = (upstream.address() as { port: number }).port;
  tmp = mkdtempSync(join(tmpdir(), 'weir-p2-serve-'));
});
after(() => {
  upstream.closeAllConnections();
  upstream.close();
  rmSync(tmp, { recursive: true, force: true });
});

interface Served { url: string; proc: ChildProcess; stderr: () => string; stop: () => Promise<number | null> }

/** Starts `weir serve --addr 127.0.0.1:0 …` and waits for its "Serving HTTP on" line. */
function weirServe(args: string[]): Promise<Served> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [mainJs, 'serve', '--addr', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`weir serve did not start: ${err}`)); }, 60_000);
    proc.stderr!.on('data', (d) => {
      err += d;
      const m = /Serving HTTP on (http:\/\/\S+)/.exec(err);
      if (m && timer) {
        clearTimeout(timer);
        resolve({
          url: m[1], proc, stderr: () => err,
          stop: () => new Promise((res) => {
            const kill = setTimeout(() => proc.kill('SIGKILL'), 10_000);
            proc.once('exit', (code) => { clearTimeout(kill); res(code); });
            proc.kill('SIGINT');
          }),
        });
      }
    });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`weir serve exited ${code}: ${err}`)); });
  });
}

const agent = new Agent({ keepAlive: true, maxSockets: 4 });
function get(url: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const q = httpRequest(url, { method, headers, agent, timeout: 30_000 }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { b += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b }));
      res.on('error', reject);
    });
    q.on('error', reject);
    q.end(body);
  });
}

test('weir serve: a p2 proxy answers; its fetch goes out only when granted, on one pool across instances', async () => {
  const denied = await weirServe([proxyWasm]);
  try {
    const r = await get(`${denied.url}hello?x=1`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-hello'], 'p2');
    assert.equal(r.body, 'hello from p2 GET /hello?x=1');
    const e = await get(`${denied.url}echo`, {}, 'POST', 'some body');
    assert.equal(e.body, 'POST some body');
    const p = await get(`${denied.url}proxy`, { 'x-upstream': `http://127.0.0.1:${upPort}/z` });
    assert.equal(p.status, 502);
    assert.equal(upstreamConnections, 0);
  } finally { assert.equal(await denied.stop(), 0); }

  const granted = await weirServe(['--allow-outbound', `127.0.0.1:${upPort}`, proxyWasm]);
  try {
    // WASI 0.2 instances serve one request each: 100 requests are 100 instances sharing the host's pool.
    for (let i = 0; i < 100; i++) {
      const r = await get(`${granted.url}proxy`, { 'x-upstream': `http://127.0.0.1:${upPort}/n${i}` });
      assert.equal(r.status, 200, r.body);
      assert.equal(r.body, `upstream 200 up:/n${i}`);
    }
    assert.ok(upstreamConnections <= 2, `${upstreamConnections} upstream connections for 100 requests from 100 instances`);
  } finally { assert.equal(await granted.stop(), 0); }
});

const handlerWat = (body: string) => `(component
  (import "wasi:http/types@0.2.12" (instance $types
    (export "incoming-request" (type (sub resource)))
    (export "response-outparam" (type (sub resource)))))
  (alias export $types "incoming-request" (type $req))
  (alias export $types "response-outparam" (type $out))
  (core module $m (func (export "handle") (param i32 i32) ${body}))
  (core instance $i (instantiate $m))
  (func $handle (param "request" (own $req)) (param "response-out" (own $out)) (canon lift (core func $i "handle")))
  (instance $h (export "handle" (func $handle)))
  (export "wasi:http/incoming-handler@0.2.12" (instance $h)))`;

test('weir serve: a p2 guest that returns or traps before response-outparam.set → 500 and a log line; the server keeps serving', async () => {
  for (const [name, body] of [['return', ''], ['trap', 'unreachable']] as const) {
    const file = join(tmp, `${name}-before-set.wasm`);
    writeFileSync(file, await assembleText(handlerWat(body)));
    const s = await weirServe([file]);
    try {
      for (let i = 0; i < 2; i++) {
        const r = await get(s.url);
        assert.equal(r.status, 500, name);
      }
      assert.match(s.stderr(), /guest never invoked response-outparam\.set/, name);
      if (name === 'trap') assert.match(s.stderr(), /it trapped: unreachable/);
    } finally { assert.equal(await s.stop(), 0, name); }
  }
});
