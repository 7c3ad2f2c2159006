// `weir serve` with WASI 0.3 services (componentize-qjs, wasi:http/handler):
// inbound mapping, concurrency in one instance, streaming and trailers both
// ways, truthful completion futures, trap isolation, bad input, graceful
// shutdown; and the embedding API (createHandler, createRequestListener).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { connect } from 'node:net';
import { Agent, createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import { spawnSync } from 'node:child_process';
import { buildService, startServe, weirBin, type Served } from './helpers/http-serve-fixtures.ts';
import { buildP3Cmd } from './helpers/wasi-p3-fixtures.ts';
import { Component, createHandler, createRequestListener } from '../src/index.ts';

let wasm: string | undefined;
let served: Served;

before(async () => {
  assert.ok(existsSync(weirBin), 'run npm run build first');
  wasm = await buildService();
  // one worker: several tests read what an instance saw earlier (/last-completion, INSTANCE_ID)
  if (wasm) served = await startServe(['--workers', '1', wasm]);
});
after(async () => {
  if (served) await served.stop();
});

function get(url: string, opts: { agent?: Agent; headers?: Record<string, string>; method?: string; body?: string } = {}): Promise<{ status: number; body: string; res: IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: opts.agent, headers: opts.headers, method: opts.method ?? 'GET', timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode!, body, res }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(opts.body);
  });
}

/** One raw HTTP/1.1 exchange; resolves with everything the server sent until it closed. */
function raw(url: string, text: string | string[], delayMs = 0, timeoutMs = 5000): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname);
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => { out += d; });
    s.on('close', () => resolve(out));
    s.on('error', (e) => (out ? resolve(out) : reject(e)));
    const t = setTimeout(() => { s.destroy(); resolve(out); }, timeoutMs);
    s.on('close', () => clearTimeout(t));
    const parts = Array.isArray(text) ? text : [text];
    (async () => {
      for (const p of parts) {
        s.write(p);
        if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      }
    })();
  });
}

test('hello: first stderr line, status, headers, body; exact method/path/scheme/authority reach the guest', { timeout: 30_000 }, async (t) => {
  if (!wasm) return t.skip('WASI 0.3 WIT not available');
  assert.match(served.stderr().split('\n')[0], /^Serving HTTP on http:\/\/127\.0\.0\.1:\d+\/$/);
  const r = await get(`${served.url}/`);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'hello');
  assert.equal(r.res.headers['content-type'], 'text/plain');
  const host = new URL(served.url).host;
  const rawInfo = await raw(served.url, `GET /info?b=2&a=%2F%20x HTTP/1.1\r\nHost: ${host}\r\nX-Multi: one\r\nx-multi: two\r\nConnection: close\r\n\r\n`);
  const info = JSON.parse(rawInfo.slice(rawInfo.indexOf('{'), rawInfo.lastIndexOf('}') + 1));
  assert.equal(info.path, '/info?b=2&a=%2F%20x');
  assert.deepEqual(info.method, { tag: 'get' });
  assert.equal(info.scheme, 'HTTP');
  assert.equal(info.authority, new URL(served.url).host);
  assert.match(info.headers, /X-Multi=one;X-Multi=two/);
  assert.doesNotMatch(info.headers, /Host=|Connection=/i);
  const other = await get(`${served.url}/info`, { method: 'PURGE' });
  assert.deepEqual(JSON.parse(other.body).method, { tag: 'other', val: 'PURGE' });
});

test('100 requests awaiting a 200 ms sleep run concurrently on one instance', { timeout: 30_000 }, async (t) => {
  if (!wasm) return t.skip('WASI 0.3 WIT not available');
  const s = await startServe(['--workers', '1', '--max-instance-concurrent-reuse-count', '1000', wasm]);
  try {
    const agent = new Agent({ keepAlive: true, maxSockets: 200 });
    await get(`${s.url}/`, { agent }); // warm
    const t0 = performance.now();
    const rs = await Promise.all(Array.from({ length: 100 }, () => get(`${s.url}/sleep?ms=200`, { agent })));
    const ms = performance.now() - t0;
    agent.destroy();
    assert.ok(rs.every((r) => r.status === 200 && r.body.startsWith('slept:')));
    assert.equal(new Set(rs.map((r) => r.body)).size, 1, 'all on one instance');
    assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
  } finally {
    assert.equal(await s.stop(), 0);
  }
});

test('instance limits: --max-instance-concurrent-reuse-count 1 spreads concurrent requests over instances; reuse count retires them', { timeout: 30_000 }, async (t) => {
  if (!wasm) return t.skip('WASI 0.3 WIT not available');
  const s = await startServe(['--workers', '1', '--max-instance-concurrent-reuse-count', '1', '--max-instance-reuse-count', '2', wasm]);
  try {
    const agent = new Agent({ keepAlive: true, maxSockets: 20 });
    const rs = await Promise.all(Array.from({ length: 4 }, () => get(`${s.url}/sleep?ms=100`, { agent })));
    assert.equal(new Set(rs.map((r) => r.body)).size, 4);
    const seq: string[] = [];
    for (let i = 0; i < 4; i++) seq.push((await get(`${s.url}/sleep?ms=0`, { agent })).body);
    agent.destroy();
    // 2 requests per instance at most
    const counts = new Map<string, number>();
    for (const b of [...rs.map((r) => r.body), ...seq]) counts.set(b, (counts.get(b) ?? 0) + 1);
    assert.ok([...counts.values()].every((n) => n <= 2), JSON.stringify([...counts]));
  } finally {
    assert.equal(await s.stop(), 0);
  }
});

test('response trailers are sent when the client asked with TE: trailers; not otherwise', { timeout: 30_000 }, async (t) => {
  if (!wasm) return t.skip('WASI 0.3 WIT not available');
  const host = new URL(served.url).host;
  const withTe = await raw(served.url, `GET /trailers HTTP/1.1\r\nHost: ${host}\r\nTE: trailers\r\nConnection: close\r\n\r\n`);
  assert.match(withTe, /transfer-encoding: chunked/i);
  assert.match(withTe, /\r\n0\r\nx-checksum: abc\r\nx-parts: 1\r\n\r\n$/);
  const without = await raw(served.url, `GET /trailers HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  assert.match(without, /body/);
  assert.doesNotMatch(without, /x-checksum/);
});

test('request body streams in and out (full duplex) and request trailers reach the guest', { timeout: 30_000 }, async (t) => {
  if (!wasm) return t.skip('WASI 0.3 WIT not available');
  const u = new URL(served.url);
  // The first echoed chunk must arrive while the upload is still open.
  const got = await new Promise<{ early: string; all: string }>((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname);
    let all = '';
    let early = '';
    s.setEncoding('latin1');
    s.write(`POST /echo HTTP/1.1\r\nHost: ${u.host}\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\nConnection: close\r\n\r\n5\r\nfirst\r\n`);
    s.on('data', (d: string) => {
      all += d;
      if (!early && all.includes('first')) {
        early = all;
        s.write('6\r\nsecond\r\n0\r\nx-req-trailer: yes\r\n\r\n');
      }
    });
    s.on('close', () => resolve({ early, all }));
    s.on('error', reject);
    setTimeout(() => { s.destroy(); resolve({ early, all }); }, 5000);
  });
  assert.ok(got.early.includes('first'), 'first chunk echoed before the upload ended');
  assert.match(got.all, /second/);
  assert.match(got.all, /x-req-trailer: yes/i, 'request trailers came back as response trailers');
  // A large body through the echo, in one request.
  const big = 'x'.repeat(3 << 20);
  const r = await get(`${served.url}/echo`, { method: 'POST', body: big });
  assert.equal(r.body.length, big.length);
});

test('completion future: ok after a full response; connection-terminated when the client leaves mid-body', { timeout: 30_000 }, async (t) => {
  if (!wasm) return t.skip('WASI 0.3 WIT not available');
  const s = await startServe(['--workers', '1', wasm]);
  try {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    await get(`${s.url}/`, { agent });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await get(`${s.url}/completion`, { agent })).body, 'ok');
    // leave after the first chunk of a slow body
    await new Promise<void>((resolve) => {
      const req = httpRequest(`${s.url}/stream?n=40&ms=25`, { agent: false }, (res) => {
        res.once('data', () => { req.destroy(); resolve(); });
      });
      req.on('error', () => resolve());
      req.end();
    });
    let c = '';
    for (let i = 0; i < 40 && !c.startsWith('err'); i++) {
      await new Promise((r) => setTimeout(r, 50));
      c = (await get(`${s.url}/completion`, { agent })).body;
    }
    agent.destroy();
    assert.equal(c, 'err:connection-terminated');
  } finally {
    assert.equal(await s.stop(), 0);
  }
});

test('trap: that request and the others in flight on the instance get 500 at once; the next request gets a fresh instance', { timeout: 30_000 }, async (t) => {
  if (!wasm) return t.skip('WASI 0.3 WIT not available');
  const s = await startServe(['--workers', '1', wasm]);
  try {
    const agent = new Agent({ keepAlive: true, maxSockets: 20 });
    const before = (await get(`${s.url}/sleep?ms=0`, { agent })).body;
    const t0 = performance.now();
    const sleepers = Array.from({ length: 3 }, () => get(`${s.url}/sleep?ms=3000`, { agent }));
    await new Promise((r) => setTimeout(r, 100));
    const trap = await get(`${s.url}/trap`, { agent });
    assert.equal(trap.status, 500);
    const rs = await Promise.all(sleepers);
    assert.ok(rs.every((r) => r.status === 500), rs.map((r) => r.status).join(','));
    assert.ok(performance.now() - t0 < 2500, 'in-flight requests failed promptly');
    const after = await get(`${s.url}/sleep?ms=0`, { agent });
    agent.destroy();
    assert.equal(after.status, 200);
    assert.notEqual(after.body, before, 'a fresh instance');
    assert.match(s.stderr(), /instance \d+ failed/);
  } finally {
    assert.equal(await s.stop(), 0);
  }
});

test('bad input gets a clear answer and the server lives on', { timeout: 30_000 }, async (t) => {
  if (!wasm) return t.skip('WASI 0.3 WIT not available');
  const host = new URL(served.url).host;
  assert.match(await raw(served.url, 'GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n'), /^HTTP\/1\.1 400/);
  assert.match(await raw(served.url, 'NOT HTTP AT ALL\r\n\r\n'), /^HTTP\/1\.1 400/);
  // guest error-code → 500 with a log line
  assert.equal((await get(`${served.url}/error`)).status, 500);
  assert.match(served.stderr(), /guest returned error-code internal-error/);
  // content-length the body does not match: the connection is cut, never a complete-looking response
  const lie = await raw(served.url, `GET /length-lie HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  assert.ok(!/\r\n\r\nfour.{6}/.test(lie), 'no padded body');
  assert.match(served.stderr(), /shorter than its content-length/);
  // a content-length that is not a number: 500 and a log line, never sent
  const badLen = await get(`${served.url}/bad-length`);
  assert.equal(badLen.status, 500);
  assert.match(served.stderr(), /invalid content-length/);
  // set-status-code refuses 999; the guest then fails (qjs turns the err into a throw): 500, never 999 on the wire
  const st = await get(`${served.url}/status?code=999`);
  assert.equal(st.status, 500);
  // a client that disconnects mid-upload
  await raw(served.url, [`POST /echo HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 100000\r\n\r\nabc`], 0, 300);
  assert.equal((await get(`${served.url}/`)).body, 'hello');
});

test('SIGTERM/SIGINT: stop accepting, finish the requests in flight, exit 0', { timeout: 30_000 }, async (t) => {
  if (!wasm) return t.skip('WASI 0.3 WIT not available');
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    const s = await startServe(['--workers', '1', wasm]);
    const inflight = get(`${s.url}/sleep?ms=500`, { agent: false });
    await new Promise((r) => setTimeout(r, 150));
    const code = s.stop(sig);
    const r = await inflight;
    assert.equal(r.status, 200);
    assert.match(r.body, /^slept/);
    assert.equal(await code, 0);
    await assert.rejects(get(`${s.url}/`, { agent: false }));
  }
});

test('a component that is not a service exits non-zero before binding, naming what it exports', { timeout: 60_000 }, async (t) => {
  const cmd = await buildP3Cmd();
  if (!cmd) return t.skip('WASI 0.3 WIT not available');
  const r = spawnSync(process.execPath, [weirBin, 'serve', '--addr', '127.0.0.1:0', cmd], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 1);
  assert.doesNotMatch(r.stderr, /Serving HTTP/);
  assert.match(r.stderr, /not an HTTP service.*wasi:cli\/run@0\.3/);
  const bad = spawnSync(process.execPath, [weirBin, 'serve', '--max-instance-reuse-count', '0', cmd], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(bad.status, 2);
});

test('embedding API: createHandler(component).handle(Request) with no socket; createRequestListener in node:http', { timeout: 30_000 }, async (t) => {
  if (!wasm) return t.skip('WASI 0.3 WIT not available');
  const component = Component.compile(readFileSync(wasm));
  const logs: string[] = [];
  const h = createHandler(component, { log: (l) => logs.push(l), maxInstanceConcurrentReuseCount: 100 });
  const r = await h.handle(new Request('http://example.test/info?q=1'));
  assert.equal(r.status, 200);
  const info = JSON.parse(await r.text());
  assert.equal(info.authority, 'example.test');
  assert.equal(info.path, '/info?q=1');
  const echo = await h.handle(new Request('http://example.test/echo', { method: 'POST', body: 'ping' }));
  assert.equal(await echo.text(), 'ping');
  const t0 = performance.now();
  const many = await Promise.all(Array.from({ length: 50 }, () => h.handle(new Request('http://x/sleep?ms=200'))));
  assert.ok(performance.now() - t0 < 1000);
  assert.equal(new Set(await Promise.all(many.map((m) => m.text()))).size, 1);
  assert.equal((await h.handle(new Request('http://x/error'))).status, 500);
  assert.ok(logs.some((l) => /error-code internal-error/.test(l)));
  await h.close();

  const listener = createRequestListener(component, { log: () => {} });
  const server = createServer(listener);
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const port = (server.address() as { port: number }).port;
  const g = await get(`http://127.0.0.1:${port}/`, { agent: false });
  assert.equal(g.body, 'hello');
  server.close();
  await listener.close();
});

test('composition: a WAT middleware importing wasi:http/handler calls the next component (no HTTP hop); an unlinked import is an error before binding', { timeout: 30_000 }, async (t) => {
  if (!wasm) return t.skip('WASI 0.3 WIT not available');
  const { assembleText } = await import('../src/wast/assemble.ts');
  const { middlewareWat } = await import('./helpers/http-serve-fixtures.ts');
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'weir-mw-'));
  try {
    const mw = join(dir, 'mw.wasm');
    writeFileSync(mw, await assembleText(middlewareWat('/info?via=mw')));
    const s = await startServe([mw, wasm]);
    try {
      const r = await get(`${s.url}/anything`, { method: 'POST', body: 'abc' });
      assert.equal(r.status, 200);
      const info = JSON.parse(r.body);
      assert.equal(info.path, '/info?via=mw');
      assert.match(info.headers, /Content-Length=3/);
      // the body passes through the middleware to the service
      writeFileSync(join(dir, 'echo-mw.wasm'), await assembleText(middlewareWat('/echo')));
    } finally {
      assert.equal(await s.stop(), 0);
    }
    const chain = await startServe([join(dir, 'echo-mw.wasm'), mw, wasm]);
    try {
      // first middleware sets /echo, the second rewrites it to /info?via=mw: the last word wins
      assert.equal(JSON.parse((await get(`${chain.url}/`)).body).path, '/info?via=mw');
    } finally {
      assert.equal(await chain.stop(), 0);
    }
    const alone = spawnSync(process.execPath, [weirBin, 'serve', '--addr', '127.0.0.1:0', mw], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(alone.status, 1);
    assert.doesNotMatch(alone.stderr, /Serving HTTP/);
    assert.match(alone.stderr, /mw\.wasm: import "wasi:http\/handler@0\.3\.0" is not provided by the host/);
    // API: a composition given as a list of components
    const h = createHandler([Component.compile(readFileSync(mw)), Component.compile(readFileSync(wasm))], { log: () => {} });
    assert.equal(JSON.parse(await (await h.handle(new Request('http://a.test/zzz'))).text()).path, '/info?via=mw');
    await h.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('WAT p3 guests: a minimal async-lifted hello; guest backpressure keeps new requests off its instance', { timeout: 30_000 }, async () => {
  const { assembleText } = await import('../src/wast/assemble.ts');
  const { helloWat } = await import('./helpers/http-serve-fixtures.ts');
  for (const backpressure of [false, true]) {
    const c = Component.compile(await assembleText(helloWat({ backpressure })));
    const h = createHandler(c, { log: () => {} });
    // Five responses whose bodies nobody reads yet: each guest task stays in its body write.
    const rs = await Promise.all(Array.from({ length: 5 }, () => h.handle(new Request('http://x/'))));
    assert.ok(rs.every((r) => r.status === 200));
    assert.equal(h.machine.instancesCreated, backpressure ? 5 : 1, `backpressure ${backpressure}`);
    assert.deepEqual(await Promise.all(rs.map((r) => r.text())), Array(5).fill('hello'));
    await h.close();
  }
});

test('idle instances are closed after idleInstanceTimeoutMs; the next request makes a new one', { timeout: 30_000 }, async () => {
  const { assembleText } = await import('../src/wast/assemble.ts');
  const { helloWat } = await import('./helpers/http-serve-fixtures.ts');
  const h = createHandler(Component.compile(await assembleText(helloWat())), { idleInstanceTimeoutMs: 100, log: () => {} });
  assert.equal(await (await h.handle(new Request('http://x/'))).text(), 'hello');
  assert.equal(h.machine.instances, 1);
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(h.machine.instances, 0);
  assert.equal(await (await h.handle(new Request('http://x/'))).text(), 'hello');
  assert.equal(h.machine.instancesCreated, 2);
  await h.close();
});
