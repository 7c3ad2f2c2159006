// `weir serve` request-level limits and life cycle (issue 10), each flag
// through the built command: -W timeout (504 + the guest task cancelled),
// --max-concurrent-requests / --max-connections / --queue-timeout (queue,
// then 503 + Retry-After), --max-request-body-size (413, the guest's body
// stream ends with HTTP-request-body-size), --max-header-size (431),
// --header-timeout / --body-timeout / --idle-timeout (slow clients),
// SIGTERM drain and --shutdown-timeout, and the per-instance runtime limits
// (-W max-instances/max-memories/max-tables, -S max-resources/hostcall-fuel).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { connect, createServer as createNetServer } from 'node:net';
import { spawnSync } from 'node:child_process';
import { startServe, weirBin, withServed, type Served } from './helpers/http-serve-fixtures.ts';
import { buildLimitsService } from './helpers/serve-limits-fixtures.ts';
import { buildJsProxy, PROXY_JS } from './helpers/http-fixtures.ts';
import { Component, createHandler, ServeLimitError, SERVE_LIMIT_DEFAULTS } from '../src/index.ts';

assert.ok(existsSync(weirBin), 'run npm run build first');
// built (or taken from the fixture cache) before the tests are declared, so `skip` is known
const wasm: string | undefined = await buildLimitsService();
const skip = () => (wasm ? false : 'componentize-qjs or the WASI 0.3 WIT is not available');

/** Runs `body` against a fresh `weir serve …args wasm`; always stops it. */
const withServe = <T>(args: string[], body: (s: Served) => Promise<T>): Promise<T> => withServed([...args, wasm!], body);

async function get(url: string, init: RequestInit = {}): Promise<{ status: number; text: string; headers: Headers; ms: number }> {
  const t0 = performance.now();
  const r = await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
  return { status: r.status, text: await r.text(), headers: r.headers, ms: performance.now() - t0 };
}

/** One raw connection: writes `parts` `gapMs` apart; resolves with everything received once the server closed (or after timeoutMs). */
function raw(url: string, parts: string[], gapMs = 0, timeoutMs = 5000): Promise<{ text: string; closed: boolean; ms: number }> {
  const u = new URL(url);
  const t0 = performance.now();
  return new Promise((resolve) => {
    const s = connect(Number(u.port), u.hostname);
    let text = '';
    let done = false;
    const finish = (closed: boolean) => { if (!done) { done = true; clearTimeout(t); s.destroy(); resolve({ text, closed, ms: performance.now() - t0 }); } };
    const t = setTimeout(() => finish(false), timeoutMs);
    s.setEncoding('latin1');
    s.on('data', (d: string) => { text += d; });
    s.on('close', () => finish(true));
    s.on('error', () => finish(true));
    (async () => {
      for (const p of parts) {
        if (done) return;
        s.write(p);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
    })();
  });
}

test('-W timeout: a handler that waits forever gets 504 at the timeout; its task is cancelled, so SIGTERM drains at once', { skip: skip() }, async () => {
  const s = await startServe(['-W', 'timeout=500ms', '--shutdown-timeout', '20s', '--metrics-addr', '127.0.0.1:0', wasm!]);
  try {
    const r = await get(`${s.url}/forever`);
    assert.equal(r.status, 504);
    assert.match(r.text, /did not answer within 500 ms/);
    assert.ok(r.ms >= 450 && r.ms < 5000, `504 after ${r.ms} ms`);
    const metrics = /Metrics on (\S+)/.exec(s.stderr())![1];
    assert.match((await get(metrics)).text, /^weir_request_timeouts_total 1$/m);
    // the server goes on serving (a new instance: the cancelled one retires)
    assert.equal((await get(`${s.url}/count?ms=1`)).status, 200);
  } finally {
    // Were the /forever task still running, the drain would wait for it until --shutdown-timeout (20 s) and exit 1.
    const t0 = performance.now();
    const code = await s.stop('SIGTERM');
    assert.equal(code, 0, s.stderr());
    assert.ok(performance.now() - t0 < 5000, `drain took ${performance.now() - t0} ms`);
  }
});

test('-W timeout with a WASI 0.2 guest waiting on an upstream that never answers: 504, its instance is abandoned (SIGTERM does not wait for it)', async (t) => {
  let p2: string;
  try {
    p2 = await buildJsProxy('p2-proxy', PROXY_JS);
  } catch (e) {
    t.skip(`componentize-js is not available: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  const hang = createNetServer(() => {}); // accepts, never answers
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
  const port = (hang.address() as { port: number }).port;
  try {
    const s = await startServe(['-W', 'timeout=500ms', '--allow-outbound', `127.0.0.1:${port}`, '--shutdown-timeout', '20s', p2]);
    const r = await get(`${s.url}/proxy`, { headers: { 'x-upstream': `http://127.0.0.1:${port}/` } });
    assert.equal(r.status, 504);
    assert.equal((await get(`${s.url}/hi`)).status, 200);
    const t0 = performance.now();
    assert.equal(await s.stop('SIGTERM'), 0, s.stderr());
    assert.ok(performance.now() - t0 < 5000, `drain took ${performance.now() - t0} ms`);
  } finally {
    hang.close();
  }
});

test('--max-concurrent-requests 10: 50 clients never have more than 10 handle calls running at once (counted in the guest)', { skip: skip() }, async () => {
  const burst = async (url: string) => {
    const rs = await Promise.all(Array.from({ length: 50 }, () => get(`${url}/count?ms=150`)));
    assert.deepEqual([...new Set(rs.map((r) => r.status))], [200]);
    return Math.max(...rs.map((r) => Number(/peak=(\d+)/.exec(r.text)![1])));
  };
  // one instance takes all of them (concurrent reuse 100), so the guest's counter sees every call
  // (one worker: with several, the burst is split between their instances; serve-workers.test.ts checks the limit across workers)
  const limited = await withServe(['--workers', '1', '--max-concurrent-requests', '10', '--max-instance-concurrent-reuse-count', '100'], (s) => burst(s.url));
  assert.equal(limited, 10);
  // control: without the flag (default 1000) the same burst runs more than 10 at once
  const open = await withServe(['--workers', '1', '--max-instance-concurrent-reuse-count', '100'], (s) => burst(s.url));
  assert.ok(open > 10, `peak without the limit: ${open}`);
});

test('--queue-timeout: a request that waited that long for a slot gets 503 with Retry-After', { skip: skip() }, async () => {
  await withServe(['--max-concurrent-requests', '1', '--queue-timeout', '200ms'], async (s) => {
    const slow = get(`${s.url}/count?ms=1500`);
    await new Promise((r) => setTimeout(r, 200));
    const r = await get(`${s.url}/count?ms=1`);
    assert.equal(r.status, 503);
    assert.equal(r.headers.get('retry-after'), '1');
    assert.ok(r.ms >= 150 && r.ms < 1400, `503 after ${r.ms} ms`);
    assert.equal((await slow).status, 200);
  });
});

test('--max-connections: extra connections wait (served when one closes), then get 503 after the queue timeout', { skip: skip() }, async () => {
  // one worker: the test relies on connections being taken in arrival order (several workers accept from their own queues)
  await withServe(['--workers', '1', '--max-connections', '2', '--queue-timeout', '400ms'], async (s) => {
    const u = new URL(s.url);
    const hold = () => new Promise<ReturnType<typeof connect>>((r) => { const c = connect(Number(u.port), u.hostname, () => r(c)); });
    const a = await hold();
    const b = await hold();
    const req = 'GET /count?ms=1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n';
    const refused = await raw(s.url, [req], 0, 5000);
    assert.match(refused.text, /^HTTP\/1\.1 503 /);
    assert.match(refused.text, /retry-after: 1/i);
    assert.ok(refused.ms >= 350, `503 after ${refused.ms} ms`);
    // a waiting connection is served as soon as a slot frees
    const waiting = raw(s.url, [req], 0, 5000);
    setTimeout(() => a.destroy(), 100);
    const served = await waiting;
    assert.match(served.text, /^HTTP\/1\.1 200 /);
    b.destroy();
  });
});

test('--max-request-body-size: 413 for a declared or streamed body over it; the guest\'s stream ends with HTTP-request-body-size', { skip: skip() }, async () => {
  // one worker: /last-body reads what the instance that served the previous request saw
  await withServe(['--workers', '1', '--max-request-body-size', '1000'], async (s) => {
    assert.deepEqual((await get(`${s.url}/body`, { method: 'POST', body: 'x'.repeat(1000) })).text, '1000 ok');
    const declared = await get(`${s.url}/body`, { method: 'POST', body: 'x'.repeat(5000) });
    assert.equal(declared.status, 413);
    // chunked: no content-length, the limit hits while the guest reads
    const chunked = await get(`${s.url}/body`, {
      method: 'POST',
      body: new ReadableStream({ start(c) { for (let i = 0; i < 5; i++) c.enqueue(new Uint8Array(1000)); c.close(); } }),
      duplex: 'half',
    } as RequestInit);
    assert.equal(chunked.status, 413);
    let last = '';
    for (let i = 0; i < 50 && !/err/.test(last); i++) {
      last = (await get(`${s.url}/last-body`)).text;
      if (!/err/.test(last)) await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(last, /^\d+ err:HTTP-request-body-size$/);
  });
});

test('--max-request-body-size: a client still sending the refused body reads its 413 and is not reset (the server reads away before it closes)', { skip: skip() }, async () => {
  await withServe(['--workers', '0', '--max-request-body-size', '1000'], async (s) => {
    const { port } = new URL(s.url);
    const outcome = await new Promise<{ head: string; error: string | null }>((resolve) => {
      // allowHalfOpen: it goes on sending after the server's FIN, as an uploading HTTP client does
      const c = connect({ port: Number(port), host: '127.0.0.1', allowHalfOpen: true });
      let got = '';
      let error: string | null = null;
      let more = 0;
      c.on('connect', () => c.write(`POST /body HTTP/1.1\r\nhost: x\r\ncontent-length: 200000\r\n\r\n${'x'.repeat(500)}`));
      c.on('data', (d) => {
        got += d;
        // the 413 is in: go on sending the body, as a client that does not read while it writes does
        if (/\r\n\r\n/.test(got) && more === 0) {
          const send = () => {
            if (more >= 40 || c.destroyed) { c.end(); return; }
            more++;
            c.write('y'.repeat(4096), () => setTimeout(send, 5));
          };
          send();
        }
      });
      c.on('error', (e: NodeJS.ErrnoException) => { error = e.code ?? String(e); });
      c.on('close', () => resolve({ head: got.split('\r\n')[0], error }));
    });
    assert.equal(outcome.head, 'HTTP/1.1 413 Payload Too Large');
    assert.equal(outcome.error, null, 'the client was reset while it still sent the body (without the read-away: EPIPE)');
  });
});

test('--max-header-size: 431 for a larger request head; the default (16K) takes an 8K header', { skip: skip() }, async () => {
  const big = { 'x-big': 'a'.repeat(8 * 1024) };
  await withServe(['--max-header-size', '4K'], async (s) => {
    assert.equal((await get(`${s.url}/`, { headers: big })).status, 431);
    assert.equal((await get(`${s.url}/`)).status, 200);
  });
  await withServe([], async (s) => {
    assert.equal((await get(`${s.url}/`, { headers: big })).status, 200);
  });
});

test('--header-timeout, --body-timeout, --idle-timeout: slow clients are cut off', { skip: skip() }, async () => {
  await withServe(['--header-timeout', '500ms', '--body-timeout', '1s', '--idle-timeout', '300ms'], async (s) => {
    // slowloris: one header line every 150 ms, never the blank line
    const head = await raw(s.url, ['GET / HTTP/1.1\r\n', ...Array.from({ length: 60 }, (_, i) => `x-${i}: y\r\n`)], 150, 8000);
    assert.ok(head.closed, 'the connection was closed');
    assert.match(head.text, /^HTTP\/1\.1 408 /);
    assert.ok(head.ms < 3000, `closed after ${head.ms} ms`);
    // a body that stalls after 10 of 100 bytes
    const body = await raw(s.url, ['POST /body HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n', 'x'.repeat(10)], 0, 8000);
    assert.ok(body.closed, 'the connection was closed');
    assert.ok(body.ms < 4000, `closed after ${body.ms} ms`);
    // an idle kept-alive connection
    const idle = await raw(s.url, ['GET / HTTP/1.1\r\nhost: x\r\n\r\n'], 0, 8000);
    assert.match(idle.text, /^HTTP\/1\.1 200 /);
    assert.ok(idle.closed && idle.ms < 2500, `idle connection closed after ${idle.ms} ms`);
  });
});

test('--idle-timeout: a kept-alive connection lives the timeout plus node\'s 1 s grace after its last response (and says so in Keep-Alive), a request in flight longer than it is not cut', { skip: skip() }, async () => {
  await withServe(['--idle-timeout', '1s'], async (s) => {
    const u = new URL(s.url);
    const sock = connect(Number(u.port), u.hostname);
    let text = '';
    let closedAt = 0;
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => { text += d; });
    sock.on('close', () => { closedAt = performance.now(); });
    sock.on('error', () => {});
    const answers = async (n: number) => {
      for (let i = 0; i < 200 && (text.match(/HTTP\/1\.1 200 /g) ?? []).length < n && closedAt === 0; i++) await new Promise((r) => setTimeout(r, 10));
    };
    try {
      sock.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
      await answers(1);
      assert.match(text, /^HTTP\/1\.1 200 /);
      assert.match(text, /\r\nKeep-Alive: timeout=1\r\n/i);
      // 700 ms idle: still open; a second request on it resets the clock
      await new Promise((r) => setTimeout(r, 700));
      assert.equal(closedAt, 0, 'closed before the idle timeout');
      sock.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
      await answers(2);
      const second = performance.now();
      assert.equal((text.match(/HTTP\/1\.1 200 /g) ?? []).length, 2);
      for (let i = 0; i < 450 && closedAt === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(closedAt > 0, 'the idle connection was not closed within 4.5 s');
      const idleMs = closedAt - second;
      // node's rule: the advertised timeout plus its 1 s grace, never sooner
      assert.ok(idleMs >= 1950 && idleMs < 3500, `closed ${Math.round(idleMs)} ms after its last response (timeout 1 s + 1 s grace)`);
    } finally {
      sock.destroy();
    }
  });
  // the guest takes 1.5 s on a connection with a 500 ms idle timeout: the request is not idle
  await withServe(['--idle-timeout', '500ms', '--max-instance-concurrent-reuse-count', '100'], async (s) => {
    const r = await raw(s.url, ['GET /count?ms=1500 HTTP/1.1\r\nhost: x\r\n\r\n'], 0, 8000);
    assert.match(r.text, /^HTTP\/1\.1 200 [\s\S]*peak=/);
    assert.ok(r.closed && r.ms >= 2900, `closed ${Math.round(r.ms)} ms after the request (answer at ~1500, then 500 ms idle + 1 s grace)`);
  });
  // before its first response a connection is --header-timeout's: a head paused 2 s (> 300 ms + 1 s) is still answered
  await withServe(['--idle-timeout', '300ms', '--header-timeout', '5s'], async (s) => {
    const r = await raw(s.url, ['GET / HTTP/1.1\r\n', 'host: x\r\n\r\n'], 2000, 8000);
    assert.match(r.text, /^HTTP\/1\.1 200 /);
  });
});

test('SIGTERM with requests in flight: they finish (200) and weir exits 0', { skip: skip() }, async () => {
  const s = await startServe(['--max-instance-concurrent-reuse-count', '100', wasm!]);
  const inflight = Array.from({ length: 3 }, () => get(`${s.url}/count?ms=800`));
  await new Promise((r) => setTimeout(r, 300));
  const code = s.stop('SIGTERM');
  const rs = await Promise.all(inflight);
  assert.deepEqual(rs.map((r) => r.status), [200, 200, 200]);
  assert.equal(await code, 0);
});

test('--shutdown-timeout bounds a drain that would hang: exit 1 with a message', { skip: skip() }, async () => {
  const s = await startServe(['--shutdown-timeout', '500ms', wasm!]);
  const stuck = get(`${s.url}/forever`).catch((e: unknown) => e);
  await new Promise((r) => setTimeout(r, 300));
  const t0 = performance.now();
  const code = await s.stop('SIGTERM');
  assert.equal(code, 1);
  assert.ok(performance.now() - t0 < 4000, `exited after ${performance.now() - t0} ms`);
  assert.match(s.stderr(), /--shutdown-timeout \(500 ms\) expired with 1 request\(s\) in flight/);
  await stuck;
});

test('-W max-instances / max-memories / max-tables reach every serve instance (the first fails before binding)', { skip: skip() }, () => {
  for (const [flag, msg] of [
    ['max-instances=1', /instance count too high at 2 \(max-instances 1\)/],
    ['max-memories=0', /memory count too high at 1 \(max-memories 0\)/],
    ['max-tables=0', /table count too high at 1 \(max-tables 0\)/],
  ] as const) {
    const r = spawnSync(process.execPath, [weirBin, 'serve', '--addr', '127.0.0.1:0', '-W', flag, wasm!], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 1, flag);
    assert.match(r.stderr, msg);
  }
});

test('-S max-resources and -S hostcall-fuel reach every serve instance', { skip: skip() }, async () => {
  await withServe(['-S', 'max-resources=3'], async (s) => {
    assert.equal((await get(`${s.url}/count?ms=1`)).status, 500);
    assert.match(s.stderr(), /resource limit exceeded \(max-resources 3\)/);
  });
  await withServe(['-S', 'hostcall-fuel=1000'], async (s) => {
    assert.equal((await get(`${s.url}/fields?n=10`)).status, 200);
    assert.equal((await get(`${s.url}/fields?n=5000`)).status, 500);
    assert.match(s.stderr(), /hostcall-fuel exhausted/);
  });
  // control: the defaults take both requests
  await withServe([], async (s) => {
    assert.equal((await get(`${s.url}/count?ms=1`)).status, 200);
    assert.equal((await get(`${s.url}/fields?n=5000`)).status, 200);
  });
});

test('limit flags: bad values are usage errors; help documents the defaults', () => {
  for (const args of [['--max-connections', 'many'], ['--queue-timeout', 'soon'], ['--max-request-body-size', 'big'], ['--shutdown-timeout', '999999h']]) {
    const r = spawnSync(process.execPath, [weirBin, 'serve', ...args, 'x.wasm'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 2, args.join(' '));
  }
  const help = spawnSync(process.execPath, [weirBin, 'serve', '--help'], { encoding: 'utf8', timeout: 20_000 });
  for (const d of [/--max-concurrent-requests N[\s\S]*default 1000/, /--max-connections N[\s\S]*default 1000/, /--max-request-body-size[\s\S]*default 100M/,
    /--max-header-size[\s\S]*default 16K/, /--shutdown-timeout[\s\S]*default 30s/, /-W timeout=DURATION[\s\S]*504/]) assert.match(help.stdout, d);
});

test('API: createHandler(c, { limits }) answers 504 and cancels the task, and admits maxConcurrentRequests at once', { skip: skip() }, async () => {
  const component = Component.compile(readFileSync(wasm!));
  const h = createHandler(component, { limits: { requestTimeoutMs: 300, maxConcurrentRequests: 3 }, maxInstanceConcurrentReuseCount: 100, log: () => {} });
  try {
    const r = await h.handle(new Request('http://x/forever'));
    assert.equal(r.status, 504);
    // the guest call ended (cancelled), so nothing is in flight on the machine
    for (let i = 0; i < 100 && h.machine.pending > 0; i++) await new Promise((res) => setTimeout(res, 10));
    assert.equal(h.machine.pending, 0);
    // (a slot is held until the response body was read: read each one as it comes)
    const texts = await Promise.all(Array.from({ length: 12 }, async () => (await h.handle(new Request('http://x/count?ms=100'))).text()));
    const peaks = texts.map((t) => Number(/peak=(\d+)/.exec(t)?.[1]));
    assert.equal(Math.max(...peaks), 3);
  } finally {
    await h.close();
  }
  assert.equal(new ServeLimitError(413, 'x').status, 413);
  assert.equal(SERVE_LIMIT_DEFAULTS.maxConcurrentRequests, 1000);
});
