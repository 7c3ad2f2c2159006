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
import { findIncomingHandler, serveP2Request, type P2ServeRequest } from '../src/wasi/p2/http-serve.ts';
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

function req(path: string, init: { method?: string; headers?: [string, string][]; body?: string } = {}): P2ServeRequest {
  const body = init.body;
  return {
    method: init.method ?? 'GET', scheme: 'HTTP', authority: 'localhost:8080', pathWithQuery: path,
    headers: (init.headers ?? []).map(([k, v]) => [k, enc.encode(v)] as [string, Uint8Array]),
    body: { stream: body === undefined ? null : (async function* () { yield enc.encode(body); })(), trailers: Promise.resolve(null) },
  };
}

async function text(s: AsyncIterable<Uint8Array> | null): Promise<string> {
  let out = '';
  if (s) for await (const b of s) out += dec.decode(b, { stream: true });
  return out;
}

function header(h: [string, Uint8Array][], name: string): string | undefined {
  const e = h.find(([k]) => k.toLowerCase() === name);
  return e ? dec.decode(e[1]) : undefined;
}

async function serveOnce(config: Parameters<typeof createWasi>[0], request: P2ServeRequest) {
  const wasi = createWasi(config);
  try {
    const inst = proxy.instantiate(wasi.imports);
    const handle = findIncomingHandler(inst.exports);
    assert.ok(handle, 'the proxy exports wasi:http/incoming-handler');
    const { response, done } = serveP2Request(handle, request);
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
    const r1 = serveP2Request(ret, req('/'));
    await assert.rejects(r1.response, /guest never invoked response-outparam\.set/);
    await r1.done;
    const trapping = (inst.exports.trapping as { handle: (a: unknown, b: unknown) => unknown }).handle;
    const r2 = serveP2Request(trapping, req('/'));
    await assert.rejects(r2.response, /response-outparam\.set/);
    await assert.rejects(r2.done);
  } finally { wasi.close(); }
});
