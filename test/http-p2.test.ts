// WASI 0.2 wasi:http: a componentize-js (StarlingMonkey) proxy component
// answering requests through the incoming-handler serve adapter, its fetch()
// going out through outgoing-handler on the host's HttpClient (default deny),
// and WAT guests that return or trap before response-outparam.set.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { Component, createWasi, HttpClient, OutboundPolicy } from '../src/index.ts';
import { assembleText } from '../src/wast/assemble.ts';
import { findIncomingHandler, serveP2Request } from '../src/wasi/p2/http-serve.ts';
import { p2Adapter } from '../src/serve/p2-adapter.ts';
import { Fields } from '../src/wasi/core/http/fields.ts';
import type { ServeRequest } from '../src/serve/adapter.ts';
import { buildJsProxy, PROXY_JS } from './helpers/http-fixtures.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

let proxy: Component;
let upstream: Server;
let upPort = 0;
let upstreamConnections = 0;

before(async () => {
  proxy = Component.compile(readFileSync(await buildJsProxy('p2-proxy', PROXY_JS)));
  upstream = createServer((q, r) => { r.setHeader('content-type', 'text/plain'); r.end(`up:${q.url}`); });
  upstream.on('connection', () => { upstreamConnections++; });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upPort = (upstream.address() as { port: number }).port;
});
after(() => { upstream.closeAllConnections(); upstream.close(); });

function req(path: string, init: { method?: string; headers?: [string, string][]; body?: string } = {}): ServeRequest {
  const body = init.body;
  return {
    method: init.method ?? 'GET', scheme: 'HTTP', authority: 'localhost:8080', pathWithQuery: path,
    headers: Fields.fromTrusted((init.headers ?? []).map(([k, v]) => [k, enc.encode(v)] as [string, Uint8Array])),
    body: { stream: body === undefined ? null : (async function* () { yield enc.encode(body); })(), trailers: Promise.resolve(null) },
  };
}

async function text(s: AsyncIterable<Uint8Array> | null): Promise<string> {
  let out = '';
  if (s) for await (const b of s) out += dec.decode(b, { stream: true });
  return out;
}

function header(h: Fields, name: string): string | undefined {
  const v = h.get(name);
  return v.length ? dec.decode(v[0]) : undefined;
}

async function serveOnce(config: Parameters<typeof createWasi>[0], request: ServeRequest) {
  const wasi = createWasi(config);
  try {
    const inst = proxy.instantiate(wasi.imports);
    const adapter = p2Adapter(inst.exports);
    assert.ok(adapter, 'the proxy exports wasi:http/incoming-handler');
    assert.equal(adapter.kind, 'p2');
    assert.equal(adapter.maxConcurrent, 1);
    const { response, done } = adapter.handle(request, new AbortController().signal);
    const res = await response;
    const body = await text(res.body.stream);
    await done;
    return { status: res.status, headers: res.headers, body };
  } finally { wasi.close(); }
}

test('p2 proxy: a GET answered through response-outparam with a streamed body', async () => {
  const r = await serveOnce({}, req('/hello?x=1'));
  assert.equal(r.status, 200);
  assert.equal(header(r.headers, 'x-hello'), 'p2');
  assert.equal(r.body, 'hello from p2 GET /hello?x=1');
});

test('p2 proxy: the request body reaches the guest (incoming-body input-stream)', async () => {
  const r = await serveOnce({}, req('/echo', { method: 'POST', body: 'ping pong' }));
  assert.equal(r.body, 'POST ping pong');
  assert.equal(header(r.headers, 'x-len'), '9');
});

test('p2 outgoing-handler: denied by default, allowed with a grant, pooled across instances', async () => {
  const denied = await serveOnce({}, req('/proxy', { headers: [['x-upstream', `http://127.0.0.1:${upPort}/a?b=1`]] }));
  assert.equal(denied.status, 502);
  assert.match(denied.body, /fetch failed/);
  assert.equal(upstreamConnections, 0);

  const shared = new HttpClient({ policy: new OutboundPolicy([`127.0.0.1:${upPort}`]) });
  try {
    for (let i = 0; i < 5; i++) {
      const ok = await serveOnce({ http: { client: shared } }, req('/proxy', { headers: [['x-upstream', `http://127.0.0.1:${upPort}/a?b=${i}`]] }));
      assert.equal(ok.status, 200, ok.body);
      assert.equal(ok.body, `upstream 200 up:/a?b=${i}`);
    }
    assert.ok(upstreamConnections <= 2, `${upstreamConnections} upstream connections for 5 requests from 5 instances`);
  } finally { shared.close(); }
});

test('p2 outgoing-handler: a 3 MB request body streams through the guest\'s output-stream to the server', async () => {
  const counting = createServer((q, r) => { let n = 0; q.on('data', (d: Buffer) => { n += d.length; }); q.on('end', () => r.end(`${n}`)); });
  await new Promise<void>((r) => counting.listen(0, '127.0.0.1', r));
  const port = (counting.address() as { port: number }).port;
  try {
    const r = await serveOnce({ http: { allowOutbound: [`127.0.0.1:${port}`] } }, req('/post?n=3000000', { headers: [['x-upstream', `http://127.0.0.1:${port}/`]] }));
    assert.equal(r.body, 'upstream 200 3000000');
  } finally { counting.closeAllConnections(); counting.close(); }
});

// A p2 handler in WAT that returns (or traps) without ever calling response-outparam.set.
const MISBEHAVING = `(component
  (import "wasi:http/types@0.2.12" (instance $types
    (export "incoming-request" (type (sub resource)))
    (export "response-outparam" (type (sub resource)))))
  (alias export $types "incoming-request" (type $req))
  (alias export $types "response-outparam" (type $out))
  (core module $m
    (func (export "return") (param i32 i32))
    (func (export "trap") (param i32 i32) unreachable))
  (core instance $i (instantiate $m))
  (func $ret (param "request" (own $req)) (param "response-out" (own $out)) (canon lift (core func $i "return")))
  (func $trap (param "request" (own $req)) (param "response-out" (own $out)) (canon lift (core func $i "trap")))
  (instance $h1 (export "handle" (func $ret)))
  (instance $h2 (export "handle" (func $trap)))
  (export "wasi:http/incoming-handler@0.2.12" (instance $h1))
  (export "trapping" (instance $h2)))`;

test('p2 guest that returns or traps before response-outparam.set → an error the server answers with 500', async () => {
  const c = Component.compile(await assembleText(MISBEHAVING));
  const wasi = createWasi({});
  try {
    const inst = c.instantiate(wasi.imports);
    const ret = findIncomingHandler(inst.exports)!;
    const raw = { method: 'GET', scheme: 'HTTP', authority: 'h', pathWithQuery: '/', headers: [], body: { stream: null, trailers: Promise.resolve(null) } };
    const r1 = serveP2Request(ret, raw);
    await assert.rejects(r1.response, /guest never invoked response-outparam\.set/);
    await r1.done;
    const trapping = (inst.exports.trapping as { handle: (a: unknown, b: unknown) => unknown }).handle;
    const r2 = serveP2Request(trapping, raw);
    await assert.rejects(r2.response, /response-outparam\.set/);
    await assert.rejects(r2.done);
  } finally { wasi.close(); }
});

// The 0.2 host functions driven directly (no guest needed): a streamed request
// body with trailers through outgoing-handler, and a failing response body
// reported through the input-stream and http-error-code.
test('p2 host functions: outgoing body + trailers, future-incoming-response, future-trailers, http-error-code', async () => {
  let seen = { te: '', body: '', trailers: {} as NodeJS.Dict<string> };
  const srv = createServer((q, r) => {
    let body = '';
    q.on('data', (d) => { body += d; });
    q.on('end', () => {
      seen = { te: String(q.headers['transfer-encoding']), body, trailers: q.trailers };
      if (q.url === '/cut') { r.writeHead(200, { 'content-length': '100' }); r.write('partial'); setTimeout(() => r.socket?.destroy(), 20); return; }
      r.setHeader('Trailer', 'x-done');
      r.write('answer');
      r.addTrailers({ 'x-done': 'yes' });
      r.end();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  const wasi = createWasi({ http: { allowOutbound: [`127.0.0.1:${port}`] } });
  try {
    const t = wasi.imports['wasi:http/types@0.2.12'] as Record<string, (...a: any[]) => any>;
    const h = wasi.imports['wasi:http/outgoing-handler@0.2.12'] as Record<string, (...a: any[]) => any>;
    const io = wasi.imports['wasi:io/streams@0.2.12'] as Record<string, (...a: any[]) => any>;
    const poll = wasi.imports['wasi:io/poll@0.2.12'] as Record<string, (...a: any[]) => any>;

    const send = async (path: string, chunks: string[], trailers: [string, string][] | null) => {
      const headers = t['[constructor]fields']();
      assert.equal(t['[method]fields.append'](headers, 'x-a', enc.encode('1')).tag, 'ok');
      const req = t['[constructor]outgoing-request'](headers);
      assert.equal(t['[method]fields.append'](t['[method]outgoing-request.headers'](req), 'x-b', enc.encode('2')).val.tag, 'immutable');
      t['[method]outgoing-request.set-method'](req, { tag: 'post' });
      t['[method]outgoing-request.set-scheme'](req, { tag: 'HTTP' });
      t['[method]outgoing-request.set-authority'](req, `127.0.0.1:${port}`);
      t['[method]outgoing-request.set-path-with-query'](req, path);
      const body = t['[method]outgoing-request.body'](req).val;
      assert.equal(t['[method]outgoing-request.body'](req).tag, 'err', 'body() only once');
      const fut = h.handle(req, undefined).val; // sent now; the body streams as it is written
      const out = t['[method]outgoing-body.write'](body).val;
      for (const c of chunks) assert.equal((await io['[method]output-stream.blocking-write-and-flush'](out, enc.encode(c))).tag, 'ok');
      const tr = trailers ? t['[static]fields.from-list'](trailers.map(([k, v]) => [k, enc.encode(v)])).val : undefined;
      assert.equal(t['[static]outgoing-body.finish'](body, tr).tag, 'ok');
      await poll['[method]pollable.block'](t['[method]future-incoming-response.subscribe'](fut));
      const got = t['[method]future-incoming-response.get'](fut);
      assert.equal(got.tag, 'ok');
      assert.equal(t['[method]future-incoming-response.get'](fut).tag, 'err', 'get() hands the response out once');
      return got.val;
    };

    const r1 = await send('/ok', ['he', 'llo'], [['x-sum', '5']]);
    assert.equal(r1.tag, 'ok');
    const resp = r1.val;
    assert.equal(t['[method]incoming-response.status'](resp), 200);
    const ib = t['[method]incoming-response.consume'](resp).val;
    const ins = t['[method]incoming-body.stream'](ib).val;
    let text = '';
    for (;;) {
      const r = await io['[method]input-stream.blocking-read'](ins, 1024n);
      if (r.tag === 'err') { assert.equal(r.val.tag, 'closed'); break; }
      text += dec.decode(r.val);
    }
    assert.equal(text, 'answer');
    const ft = t['[static]incoming-body.finish'](ib);
    await poll['[method]pollable.block'](t['[method]future-trailers.subscribe'](ft));
    const trs = t['[method]future-trailers.get'](ft);
    assert.equal(trs.tag, 'ok');
    assert.deepEqual(t['[method]fields.get'](trs.val.val, 'x-done').map((v: Uint8Array) => dec.decode(v)), ['yes']);
    assert.deepEqual(seen, { te: 'chunked', body: 'hello', trailers: { 'x-sum': '5' } });

    // A body cut short: the read fails with last-operation-failed whose io-error names the HTTP error.
    const r2 = await send('/cut', ['x'], null);
    const ins2 = t['[method]incoming-body.stream'](t['[method]incoming-response.consume'](r2.val).val).val;
    let failure: any = null;
    for (let i = 0; i < 100 && !failure; i++) {
      const r = await io['[method]input-stream.blocking-read'](ins2, 1024n);
      if (r.tag === 'err') failure = r.val;
    }
    assert.equal(failure?.tag, 'last-operation-failed');
    assert.equal(t['http-error-code'](failure.val)?.tag, 'HTTP-response-incomplete');
  } finally {
    wasi.close();
    srv.closeAllConnections();
    srv.close();
  }
});

test('p2 request-options: a first-byte timeout reaches the client (connection-read-timeout)', async () => {
  const srv = createServer(() => { /* never answers */ });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  const wasi = createWasi({ http: { allowOutbound: [`127.0.0.1:${port}`] } });
  try {
    const t = wasi.imports['wasi:http/types@0.2.12'] as Record<string, (...a: any[]) => any>;
    const h = wasi.imports['wasi:http/outgoing-handler@0.2.12'] as Record<string, (...a: any[]) => any>;
    const poll = wasi.imports['wasi:io/poll@0.2.12'] as Record<string, (...a: any[]) => any>;
    const req = t['[constructor]outgoing-request'](t['[constructor]fields']());
    t['[method]outgoing-request.set-scheme'](req, { tag: 'HTTP' });
    t['[method]outgoing-request.set-authority'](req, `127.0.0.1:${port}`);
    const opts = t['[constructor]request-options']();
    assert.equal(t['[method]request-options.set-first-byte-timeout'](opts, 150_000_000n).tag, 'ok');
    assert.equal(t['[method]request-options.first-byte-timeout'](opts), 150_000_000n);
    const t0 = Date.now();
    const fut = h.handle(req, opts).val;
    const p = t['[method]future-incoming-response.subscribe'](fut);
    assert.equal(poll['[method]pollable.ready'](p), false);
    await poll['[method]pollable.block'](p);
    const got = t['[method]future-incoming-response.get'](fut);
    assert.deepEqual(got, { tag: 'ok', val: { tag: 'err', val: { tag: 'connection-read-timeout' } } });
    assert.ok(Date.now() - t0 < 5000);
  } finally {
    wasi.close();
    srv.closeAllConnections();
    srv.close();
  }
});
