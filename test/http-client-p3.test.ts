// The WASI 0.3 face's client.send (src/wasi/p3/http.ts) on the host's
// HttpClient, driven through the host functions (no guest needed): default
// deny, the request.new completion future, body and trailers both ways, and
// one pool shared by hosts (the serve pool's instances).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createWasi, HttpClient, OutboundPolicy } from '../src/index.ts';
import { Fields } from '../src/wasi/core/http/fields.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();
type Fn = (...a: any[]) => any;

function faces(wasi: ReturnType<typeof createWasi>) {
  return {
    t: wasi.imports['wasi:http/types@0.3.0'] as Record<string, Fn>,
    send: (wasi.imports['wasi:http/client@0.3.0'] as Record<string, Fn>).send,
  };
}

function newRequest(t: Record<string, Fn>, port: number, path: string, body?: string, trailers?: [string, string][]) {
  const headers = t['[constructor]fields']();
  const contents = body === undefined ? undefined : (async function* () { yield enc.encode(body); })();
  const tr = trailers ? t['[static]fields.from-list'](trailers.map(([k, v]) => [k, enc.encode(v)])).val : undefined;
  const [req, sent] = t['[static]request.new'](headers, contents, Promise.resolve({ tag: 'ok', val: tr }), undefined);
  t['[method]request.set-method'](req, body === undefined ? { tag: 'get' } : { tag: 'post' });
  t['[method]request.set-scheme'](req, { tag: 'HTTP' });
  t['[method]request.set-authority'](req, `127.0.0.1:${port}`);
  t['[method]request.set-path-with-query'](req, path);
  return { req, sent: sent as Promise<{ tag: string; val?: { tag: string } }> };
}

async function readBody(t: Record<string, Fn>, resp: unknown): Promise<{ text: string; trailers: unknown }> {
  const [contents, trailers] = t['[static]response.consume-body'](resp, Promise.resolve({ tag: 'ok' }));
  let text = '';
  for await (const c of contents as AsyncIterable<Uint8Array>) text += dec.decode(c, { stream: true });
  return { text, trailers: await trailers };
}

test('p3 client.send: denied by default (sent future err too); granted sends bodies and trailers both ways; one pool across hosts', async () => {
  let conns = 0;
  const srv = createServer((q, r) => {
    let b = '';
    q.on('data', (d) => { b += d; });
    q.on('end', () => {
      r.setHeader('Trailer', 'x-t');
      r.write(`${q.method} ${q.url} ${b} ${JSON.stringify(q.trailers)}`);
      r.addTrailers({ 'x-t': 'end' });
      r.end();
    });
  });
  srv.on('connection', () => { conns++; });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  try {
    const denied = createWasi({});
    const d = faces(denied);
    const { req, sent } = newRequest(d.t, port, '/');
    assert.deepEqual(await d.send(req), { tag: 'err', val: { tag: 'HTTP-request-denied' } });
    assert.deepEqual(await sent, { tag: 'err', val: { tag: 'HTTP-request-denied' } });
    assert.equal(conns, 0);
    denied.close();

    const shared = new HttpClient({ policy: new OutboundPolicy([`127.0.0.1:${port}`]) });
    const hosts = [createWasi({ http: { client: shared } }), createWasi({ http: { client: shared } })];
    for (let i = 0; i < 20; i++) {
      const { t, send } = faces(hosts[i % 2]);
      const { req, sent } = newRequest(t, port, `/p?i=${i}`, 'body', [['x-req', 'tr']]);
      const r = await send(req);
      assert.equal(r.tag, 'ok');
      assert.equal(t['[method]response.get-status-code'](r.val), 200);
      const { text, trailers } = await readBody(t, r.val);
      assert.equal(text, `POST /p?i=${i} body {"x-req":"tr"}`);
      const tf = (trailers as { tag: string; val: unknown }).val;
      assert.deepEqual(t['[method]fields.get'](tf, 'x-t').map((v: Uint8Array) => dec.decode(v)), ['end']);
      assert.equal((await sent).tag, 'ok');
    }
    assert.ok(conns <= 2, `${conns} connections for 20 sends from two hosts`);
    for (const h of hosts) h.close();
    shared.close();
  } finally {
    srv.closeAllConnections();
    srv.close();
  }
});

test('p3 fields: incoming response headers are immutable; their clone is mutable but held to the default size limit', async () => {
  const big = 'v'.repeat(2 * 1024);
  const srv = createServer((_q, r) => {
    for (let i = 0; i < 4; i++) r.setHeader(`x-big-${i}`, big);
    r.end('ok');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  const wasi = createWasi({ http: { allowOutbound: [`127.0.0.1:${port}`] } });
  try {
    const { t, send } = faces(wasi);
    const r = await send(newRequest(t, port, '/').req);
    assert.equal(r.tag, 'ok');
    const incoming = t['[method]response.get-headers'](r.val);
    assert.equal(t['[method]fields.get'](incoming, 'x-big-3')[0].length, big.length);
    assert.deepEqual(t['[method]fields.append'](incoming, 'x', enc.encode('1')), { tag: 'err', val: { tag: 'immutable' } });

    // Clone a small incoming fields and append 64 KiB values: the clone stops at 128 KiB like a new fields.
    const small = t['[method]fields.clone'](incoming);
    for (let i = 0; i < 4; i++) assert.equal(t['[method]fields.delete'](small, `x-big-${i}`).tag, 'ok'); // shrinking is allowed
    const chunk = new Uint8Array(64 * 1024).fill(0x61);
    let appended = 0;
    let result: { tag: string; val?: { tag: string } } = { tag: 'ok' };
    for (let i = 0; i < 1000 && result.tag === 'ok'; i++) {
      result = t['[method]fields.append'](small, 'x', chunk);
      if (result.tag === 'ok') appended += chunk.length;
    }
    assert.deepEqual(result, { tag: 'err', val: { tag: 'size-exceeded' } });
    assert.ok(appended <= 128 * 1024, `${appended} bytes appended to a clone`);
    assert.equal(appended, 64 * 1024); // the 'x' name bytes make the second 64 KiB value just exceed 128 KiB
    const fresh = t['[constructor]fields']();
    assert.equal(t['[method]fields.append'](fresh, 'x', chunk).tag, 'ok');
    assert.equal(t['[method]fields.append'](fresh, 'x', chunk).tag, 'err'); // the same limit as a guest-built fields

    // Headers the host took in above the limit (weir serve --max-header-size 1M): a clone may shrink, never grow.
    const huge = new Uint8Array(100 * 1024).fill(0x62);
    const received = Fields.fromTrusted([['x-a', huge], ['x-b', huge]]);
    const bigClone = t['[method]fields.clone'](received);
    assert.deepEqual(t['[method]fields.append'](bigClone, 'x', enc.encode('1')), { tag: 'err', val: { tag: 'size-exceeded' } });
    assert.equal(t['[method]fields.delete'](bigClone, 'x-a').tag, 'ok');
    assert.equal(t['[method]fields.get'](bigClone, 'x-b')[0].length, huge.length);
    assert.equal(t['[method]fields.append'](bigClone, 'x', enc.encode('1')).tag, 'ok'); // back under the limit
    // The same holds for a host-made mutable fields (the 0.2 face's fields-from-entries with immutable = false).
    const mutable = Fields.fromTrusted([['x-a', huge]], false);
    assert.throws(() => mutable.append('x', huge), { name: 'HeaderError', tag: 'size-exceeded' });
  } finally {
    wasi.close();
    srv.closeAllConnections();
    srv.close();
  }
});
