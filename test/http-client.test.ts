// The outgoing HTTP client (src/wasi/core/http/client.ts) driven through the
// package entry (createWasi → host.http), against local servers on loopback.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWasi, HttpError, OutboundPolicy, type RawRequest } from '../src/index.ts';
import { HttpClient } from '../src/wasi/index.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Local { server: Server; port: number; connections: () => number; close: () => Promise<void> }

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Local> {
  const server = createServer(handler);
  let count = 0;
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => { count++; sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    server, port, connections: () => count,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

function request(port: number | string, over: Partial<RawRequest> = {}): RawRequest {
  return {
    method: 'GET', scheme: 'HTTP', authority: `127.0.0.1:${port}`, pathWithQuery: '/',
    headers: [], body: { stream: null, trailers: Promise.resolve(null) }, ...over,
  };
}

async function readAll(body: AsyncIterable<Uint8Array> | null): Promise<string> {
  if (!body) return '';
  let s = '';
  for await (const b of body) s += dec.decode(b, { stream: true });
  return s;
}

function clientFor(...allow: string[]): { client: HttpClient; close: () => void } {
  const wasi = createWasi({ http: { allowOutbound: allow } });
  return { client: wasi.host.http, close: () => wasi.close() };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try { await p; } catch (e) { assert.ok(e instanceof HttpError, `expected HttpError, got ${e}`); return e.code.tag; }
  assert.fail('expected the send to fail');
}

test('default deny: no grant → HTTP-request-denied, the server sees nothing; a grant lets it through', async () => {
  const srv = await serve((_q, r) => r.end('ok'));
  try {
    const logs: string[] = [];
    const denied = createWasi({ http: { log: (m) => logs.push(m) } });
    const { response, transmitted } = denied.host.http.sendWithCompletion(request(srv.port));
    assert.equal(await codeOf(response), 'HTTP-request-denied');
    assert.equal(await codeOf(transmitted), 'HTTP-request-denied');
    assert.equal(srv.connections(), 0);
    assert.match(logs[0], /denied/);
    denied.close();

    // Port mismatch, other host: denied. Wildcard host and '*' port: allowed.
    const other = clientFor(`127.0.0.1:${srv.port === 1 ? 2 : 1}`, 'localhost');
    assert.equal(await codeOf(other.client.send(request(srv.port))), 'HTTP-request-denied');
    other.close();
    for (const grant of [`127.0.0.1:${srv.port}`, '127.0.0.1:*', `*:${srv.port}`, '*']) {
      const c = clientFor(grant);
      const r = await c.client.send(request(srv.port));
      assert.equal(r.status, 200, grant);
      assert.equal(await readAll(r.body.stream), 'ok');
      c.close();
    }
    const all = createWasi({ http: { allowAll: true } });
    assert.equal((await all.host.http.send(request(srv.port))).status, 200);
    all.close();
  } finally { await srv.close(); }
});

test('pattern grammar: malformed patterns are refused', () => {
  for (const bad of ['', 'http://x.com', 'x.com:99999', 'x.com:ab', '::1', '[::1', 'a b']) {
    assert.throws(() => new OutboundPolicy([bad]), /allow-outbound/, bad);
  }
  const p = new OutboundPolicy(['*.example.com', '[::1]:8080', 'API.test:443']);
  assert.ok(p.allows('https', 'a.b.example.com', 443));
  assert.ok(!p.allows('https', 'example.com', 443));
  assert.ok(p.allows('http', '::1', 8080));
  assert.ok(!p.allows('http', '::1', 8081));
  assert.ok(p.allows('https', 'api.TEST', 443));
  assert.ok(!p.allows('http', 'api.test', 80));
});

test('pattern grammar: * is the whole host, a whole first label or the whole port; nowhere else, never in an IP address', () => {
  // Refused, with a message that says where '*' may go (and that IP addresses take none).
  for (const bad of ['10.0.0.*', '127.*.1:*', '*.0.0.1', '0x7f.*', '[::*]', '[*::1]:80', '[fd00::*]']) {
    assert.throws(() => new OutboundPolicy([bad]), /'\*' may only be the whole host.*an IP address takes no wildcard/, bad);
  }
  for (const bad of ['api.*:443', 'api.*', 'a*.example.com', '*example.com', 'api.*.com', '*.*.example.com', 'x.com:4*']) {
    assert.throws(() => new OutboundPolicy([bad]), /allow-outbound/, bad);
  }
  for (const good of ['*', '*:*', '*:443', '*.example.com', '*.example.com:*', '*.internal:8080', 'example.com:*', '10.0.0.7', '[::1]:*']) {
    assert.doesNotThrow(() => new OutboundPolicy([good]), good);
  }
  // Matching table: [pattern, host, port, allowed].
  const table: [string, string, number, boolean][] = [
    ['*.internal:8080', 'x.internal', 8080, true],
    ['*.internal:8080', 'evil.com.internal', 8080, true], // any depth of subdomain: intended (it is under .internal)
    ['*.internal:8080', 'internal', 8080, false], // not the apex
    ['*.internal:8080', '.internal', 8080, false],
    ['*.internal:8080', 'a..internal', 8080, false],
    ['*.internal:8080', 'x.internal', 8081, false],
    ['*.internal:8080', 'X.Internal', 8080, true],
    ['*.internal:8080', 'xinternal', 8080, false],
    ['*.internal:8080', 'x.internal.evil.net', 8080, false],
    ['*.example.com', 'a.b.example.com', 1, true],
    ['*:443', 'anything.example', 443, true],
    ['*:443', 'anything.example', 80, false],
    ['10.0.0.7', '10.0.0.7', 80, true],
    ['10.0.0.7', '10.0.0.7.127.0.0.1.nip.io', 80, false],
    ['10.0.0.7', '10.0.0.70', 80, false],
    ['api.example.com:443', 'api.example.com', 443, true],
    ['api.example.com:443', 'api.example.com.attacker.net', 443, false],
    ['api.example.com:443', 'api.attacker.net', 443, false],
    ['[::1]:*', '::1', 9, true],
    ['[::1]:*', '::2', 9, false],
  ];
  for (const [pattern, host, port, want] of table) {
    assert.equal(new OutboundPolicy([pattern]).allows('https', host, port), want, `${pattern} vs ${host}:${port}`);
  }
});

test('100 sequential requests (through two hosts sharing one client) open at most 2 connections', async () => {
  const srv = await serve((_q, r) => r.end('x'));
  try {
    const shared = new HttpClient({ policy: new OutboundPolicy([`127.0.0.1:${srv.port}`]) });
    const a = createWasi({ http: { client: shared } });
    const b = createWasi({ http: { client: shared } });
    for (let i = 0; i < 100; i++) {
      const r = await (i % 2 ? a : b).host.http.send(request(srv.port, { pathWithQuery: `/${i}` }));
      assert.equal(await readAll(r.body.stream), 'x');
      await r.body.trailers;
    }
    assert.ok(srv.connections() <= 2, `opened ${srv.connections()} connections`);
    a.close(); b.close(); shared.close();
  } finally { await srv.close(); }
});

test('abandoned small bodies are drained, so their connection is reused', async () => {
  const srv = await serve((_q, r) => r.end('y'.repeat(1000)));
  const c = clientFor(`127.0.0.1:${srv.port}`);
  try {
    for (let i = 0; i < 30; i++) {
      const r = await c.client.send(request(srv.port));
      if (i % 2) await r.body.stream![Symbol.asyncIterator]().return!(); // dropped before any read
      else { const it = r.body.stream![Symbol.asyncIterator](); await it.next(); await it.return!(); }
      assert.equal(await codeOf(r.body.trailers), 'HTTP-response-incomplete');
    }
    assert.ok(srv.connections() <= 2, `opened ${srv.connections()} connections`);
  } finally { c.close(); await srv.close(); }
});

test('URI rules: no path or "" → "/", query byte-exact, Host from the authority, headers in order with repeats', async () => {
  const seen: { url: string; host: string | undefined; raw: string[] }[] = [];
  const srv = await serve((q, r) => { seen.push({ url: q.url!, host: q.headers.host, raw: q.rawHeaders }); r.end(); });
  const c = clientFor(`127.0.0.1:${srv.port}`);
  try {
    for (const p of [null, '', '/a/b?z=1&a=%2F%20&&x']) {
      const r = await c.client.send(request(srv.port, {
        pathWithQuery: p,
        headers: [['X-Multi', enc.encode('first')], ['x-other', enc.encode('1')], ['x-multi', enc.encode('second')]],
      }));
      await readAll(r.body.stream);
    }
    assert.deepEqual(seen.map((s) => s.url), ['/', '/', '/a/b?z=1&a=%2F%20&&x']);
    assert.equal(seen[0].host, `127.0.0.1:${srv.port}`);
    const raw = seen[0].raw;
    const names = raw.filter((_, i) => i % 2 === 0);
    assert.deepEqual(names.slice(0, 4), ['Host', 'X-Multi', 'x-other', 'x-multi']);
    assert.deepEqual([raw[3], raw[7]], ['first', 'second']);
    // A missing scheme means HTTPS: a plain HTTP server cannot answer it.
    assert.notEqual(await codeOf(c.client.send(request(srv.port, { scheme: null }))), 'HTTP-request-denied');
    assert.equal(await codeOf(c.client.send(request(srv.port, { scheme: 'ftp' }))), 'HTTP-protocol-error');
    assert.equal(await codeOf(c.client.send(request(srv.port, { authority: null }))), 'HTTP-request-URI-invalid');
    assert.equal(await codeOf(c.client.send(request(srv.port, { method: 'BAD METHOD' }))), 'HTTP-request-method-invalid');
  } finally { c.close(); await srv.close(); }
});

test('request body streamed chunked with trailers; response trailers; content-length mismatch → HTTP-request-body-size', async () => {
  const srv = await serve((q, r) => {
    const chunks: Buffer[] = [];
    q.on('data', (d: Buffer) => chunks.push(d));
    q.on('end', () => {
      r.setHeader('x-te', String(q.headers['transfer-encoding']));
      r.setHeader('x-cl', String(q.headers['content-length']));
      r.setHeader('Trailer', 'x-sum');
      r.write(Buffer.concat(chunks));
      r.addTrailers([['x-sum', String(Buffer.concat(chunks).length)], ['x-echo-trailers', JSON.stringify(q.trailers)]]);
      r.end();
    });
  });
  const c = clientFor(`127.0.0.1:${srv.port}`);
  try {
    async function* parts(...s: string[]): AsyncGenerator<Uint8Array> { for (const x of s) yield enc.encode(x); }
    const { response, transmitted } = c.client.sendWithCompletion(request(srv.port, {
      method: 'POST', body: { stream: parts('one', 'two', 'three'), trailers: Promise.resolve([['x-checksum', enc.encode('abc')]]) },
    }));
    const r = await response;
    await transmitted;
    const h = Object.fromEntries(r.headers.map(([k, v]) => [k.toLowerCase(), dec.decode(v)]));
    assert.equal(h['x-te'], 'chunked');
    assert.equal(h['x-cl'], 'undefined');
    assert.equal(await readAll(r.body.stream), 'onetwothree');
    const t = Object.fromEntries((await r.body.trailers)!.map(([k, v]) => [k, dec.decode(v)]));
    assert.equal(t['x-sum'], '11');
    assert.deepEqual(JSON.parse(t['x-echo-trailers']), { 'x-checksum': 'abc' });

    // Declared length honoured: sent as content-length, not chunked.
    const ok = await c.client.send(request(srv.port, {
      method: 'PUT', headers: [['content-length', enc.encode('4')]], body: { stream: parts('pi', 'ng'), trailers: Promise.resolve(null) },
    }));
    assert.equal(dec.decode(ok.headers.find(([k]) => k === 'x-cl')![1]), '4');
    assert.equal(await readAll(ok.body.stream), 'ping');

    for (const body of [['toolong'], ['ab']]) {
      const { response: resp, transmitted: tx } = c.client.sendWithCompletion(request(srv.port, {
        method: 'POST', headers: [['content-length', enc.encode('4')]], body: { stream: parts(...body), trailers: Promise.resolve(null) },
      }));
      assert.equal(await codeOf(resp), 'HTTP-request-body-size');
      assert.equal(await codeOf(tx), 'HTTP-request-body-size');
    }
    // A request trailers future that fails aborts the request with its error.
    const failing = Promise.reject(new HttpError({ tag: 'internal-error', val: 'guest' }));
    failing.catch(() => {});
    assert.equal(await codeOf(c.client.send(request(srv.port, { method: 'POST', body: { stream: parts('x'), trailers: failing } }))), 'internal-error');
  } finally { c.close(); await srv.close(); }
});

test('refused and DNS failures map to their error codes', async () => {
  const probe = await serve(() => {});
  const port = probe.port;
  await probe.close();
  const c = clientFor('*');
  try {
    assert.equal(await codeOf(c.client.send(request(port))), 'connection-refused');
  } finally { c.close(); }
  // Name resolution failures, without asking a real resolver (loopback-only tests).
  const failing = (code: string) => new HttpClient({
    policy: OutboundPolicy.allowEverything(),
    lookup: ((_h: string, _o: unknown, cb: (e: NodeJS.ErrnoException) => void) => {
      cb(Object.assign(new Error(`getaddrinfo ${code} secret.host.name`), { code }));
    }) as never,
  });
  for (const [code, tag] of [['ENOTFOUND', 'DNS-error'], ['EAI_AGAIN', 'DNS-timeout']]) {
    const dns = failing(code);
    try {
      const e = await dns.send(request(80, { authority: 'nonexistent.invalid:80' })).then(() => null, (x: unknown) => x);
      assert.ok(e instanceof HttpError);
      assert.equal(e.code.tag, tag);
      assert.ok(!JSON.stringify(e.code).includes('secret') && !e.message.includes('secret'), 'no host detail reaches the guest');
    } finally { dns.close(); }
  }
});

test('timeouts: first byte and between bytes → connection-read-timeout; a stalled TLS handshake → connection-timeout', async () => {
  const srv = await serve((q, r) => {
    if (q.url === '/stall-head') return; // never answers
    r.writeHead(200, { 'content-length': '10' });
    r.write('12345'); // and never the rest
  });
  const held = new Set<Socket>();
  const tcp = createTcpServer((s) => { held.add(s); }); // accepts, never speaks TLS
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  const tcpPort = (tcp.address() as { port: number }).port;
  const c = clientFor('127.0.0.1:*');
  try {
    const ms = (n: number): bigint => BigInt(n) * 1_000_000n;
    let t0 = Date.now();
    assert.equal(await codeOf(c.client.send(request(srv.port, { pathWithQuery: '/stall-head', options: { firstByteTimeoutNs: ms(150) } }))), 'connection-read-timeout');
    assert.ok(Date.now() - t0 < 3000);
    const r = await c.client.send(request(srv.port, { pathWithQuery: '/stall-body', options: { betweenBytesTimeoutNs: ms(150) } }));
    t0 = Date.now();
    assert.equal(await readAll(r.body.stream), '12345');
    assert.equal(await codeOf(r.body.trailers), 'connection-read-timeout');
    assert.ok(Date.now() - t0 < 3000);
    assert.equal(await codeOf(c.client.send(request(tcpPort, { scheme: 'HTTPS', options: { connectTimeoutNs: ms(150) } }))), 'connection-timeout');
  } finally {
    c.close(); await srv.close();
    for (const s of held) s.destroy();
    await new Promise<void>((r) => tcp.close(() => r()));
  }
});

test('response bodies are pulled with backpressure', async () => {
  let written = 0;
  const chunk = Buffer.alloc(64 * 1024, 1);
  const srv = await serve((_q, r) => {
    const pump = (): void => {
      while (written < 64 * 1024 * 1024) {
        written += chunk.length;
        if (!r.write(chunk)) { r.once('drain', pump); return; }
      }
      r.end();
    };
    pump();
  });
  const c = clientFor(`127.0.0.1:${srv.port}`);
  try {
    const r = await c.client.send(request(srv.port));
    const it = r.body.stream![Symbol.asyncIterator]();
    await it.next();
    await new Promise((res) => setTimeout(res, 300));
    assert.ok(written < 16 * 1024 * 1024, `server wrote ${written} bytes while nobody read`);
    await it.return!();
    assert.equal(await codeOf(r.body.trailers), 'HTTP-response-incomplete');
  } finally { c.close(); await srv.close(); }
});

test('request bodies are pulled with backpressure: a server that does not read stops the pulls', async () => {
  let held: IncomingMessage | null = null;
  const srv = await serve((q) => { held = q; q.pause(); });
  const c = clientFor(`127.0.0.1:${srv.port}`);
  try {
    let pulled = 0;
    const chunk = new Uint8Array(64 * 1024);
    const body = (async function* () { for (;;) { pulled += chunk.length; yield chunk; } })();
    const { response } = c.client.sendWithCompletion(request(srv.port, { method: 'POST', body: { stream: body, trailers: Promise.resolve(null) } }));
    response.catch(() => {});
    await new Promise((r) => setTimeout(r, 400));
    assert.ok(held, 'the request reached the server');
    // Loopback socket buffers take a few MiB (about 4 here); without backpressure it is unbounded.
    assert.ok(pulled < 16 * 1024 * 1024, `pulled ${pulled} bytes from the guest while the server read nothing`);
  } finally { c.close(); await srv.close(); }
});

test('TLS: a self-signed certificate → TLS-certificate-error; trusted through the ca option → ok', async (t) => {
  if (spawnSync('openssl', ['version']).status !== 0) { t.skip('the openssl command is not installed (needed to make a test certificate)'); return; }
  const dir = mkdtempSync(join(tmpdir(), 'weir-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'),
      '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
    const cert = readFileSync(join(dir, 'c.pem'), 'utf8');
    const server = createTlsServer({ key: readFileSync(join(dir, 'k.pem')), cert }, (_q, r) => r.end('secure'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const c = clientFor('localhost:*');
      assert.equal(await codeOf(c.client.send(request(port, { scheme: 'HTTPS', authority: `localhost:${port}` }))), 'TLS-certificate-error');
      c.close();
      const trusted = new HttpClient({ policy: new OutboundPolicy(['localhost']), ca: cert });
      const r = await trusted.send(request(port, { scheme: 'HTTPS', authority: `localhost:${port}` }));
      assert.equal(await readAll(r.body.stream), 'secure');
      trusted.close();
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('sendMessage: the message.ts face with Fields (request trailers as Fields; response Fields immutable, hop-by-hop names left out)', async () => {
  const { Fields } = await import('../src/wasi/core/http/fields.ts');
  const srv = await serve((q, r) => {
    let body = '';
    q.on('data', (d) => { body += d; });
    q.on('end', () => { r.setHeader('x-got', `${body}|${JSON.stringify(q.trailers)}|${q.headers['x-a']}`); r.end('ok'); });
  });
  const c = clientFor(`127.0.0.1:${srv.port}`);
  try {
    const headers = Fields.fromList([['x-a', enc.encode('1')]]);
    const { response, transmitted } = c.client.sendMessage({
      method: 'PUT', scheme: 'HTTP', authority: `127.0.0.1:${srv.port}`, pathWithQuery: '/m', headers, options: {},
      body: { stream: (async function* () { yield enc.encode('data'); })(), trailers: Promise.resolve(Fields.fromList([['x-t', enc.encode('v')]])) },
    });
    const r = await response;
    await transmitted;
    assert.equal(dec.decode(r.headers.get('x-got')[0]), 'data|{"x-t":"v"}|1');
    assert.equal(r.headers.has('connection'), false);
    assert.ok(r.headers.immutable);
    assert.equal(await readAll(r.body.stream), 'ok');
    assert.equal(await r.body.trailers, null);
  } finally { c.close(); await srv.close(); }
});
