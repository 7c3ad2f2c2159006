// handover.ts: which unread requests of a stopped worker another worker may
// run (exactly one complete idempotent HTTP/1.x request, parsed strictly),
// and the in-memory connection that carries one through node's HTTP server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { HANDOVER_MAX_REQUEST, HANDOVER_MAX_RESPONSE, HandoverSocket, handoverRequest } from '../src/serve/handover.ts';

const b = (s: string) => Buffer.from(s, 'latin1');
const text = (x: Buffer | null) => x && x.toString('latin1');

test('handoverRequest: one whole idempotent request is handed over, rewritten with connection: close', () => {
  assert.equal(text(handoverRequest(b('GET /a?b=1 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n'))),
    'GET /a?b=1 HTTP/1.1\r\nHost: x\r\nconnection: close\r\n\r\n');
  assert.equal(text(handoverRequest(b('PUT /k HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc'))),
    'PUT /k HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc');
  assert.ok(handoverRequest(b('HEAD / HTTP/1.0\r\n\r\n')));
  for (const m of ['DELETE', 'OPTIONS', 'TRACE']) assert.ok(handoverRequest(b(`${m} / HTTP/1.1\r\nhost: x\r\n\r\n`)), m);
});

test('handoverRequest: anything else keeps its 503 (null)', () => {
  const refused: [string, string][] = [
    ['not idempotent', 'POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n'],
    ['not idempotent', 'PATCH / HTTP/1.1\r\nhost: x\r\n\r\n'],
    ['methods are case-sensitive', 'get / HTTP/1.1\r\nhost: x\r\n\r\n'],
    ['head still arriving', 'GET / HTTP/1.1\r\nhost: x\r\n'],
    ['body still arriving', 'PUT / HTTP/1.1\r\ncontent-length: 10\r\n\r\nabc'],
    ['pipelined', 'GET /1 HTTP/1.1\r\nhost: x\r\n\r\nGET /2 HTTP/1.1\r\nhost: x\r\n\r\n'],
    ['bytes after the body', 'PUT / HTTP/1.1\r\ncontent-length: 1\r\n\r\nab'],
    ['chunked body', 'PUT / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['upgrade', 'GET / HTTP/1.1\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n'],
    ['two content-lengths', 'PUT / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 1\r\n\r\na'],
    ['content-length not a number', 'PUT / HTTP/1.1\r\ncontent-length: +1\r\n\r\na'],
    ['folded header', 'GET / HTTP/1.1\r\nx-a: 1\r\n  2\r\n\r\n'],
    ['bare LF inside the head', 'GET / HTTP/1.1\r\nx-a: 1\nx-b: 2\r\n\r\n'],
    ['space before the colon', 'GET / HTTP/1.1\r\nhost : x\r\n\r\n'],
    ['control byte in a value', 'GET / HTTP/1.1\r\nx-a: a\x01b\r\n\r\n'],
    ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
    ['not HTTP', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03'],
    ['empty', ''],
  ];
  for (const [why, req] of refused) assert.equal(handoverRequest(b(req)), null, why);
  const big = `GET / HTTP/1.1\r\nx-a: ${'a'.repeat(HANDOVER_MAX_REQUEST)}\r\n\r\n`;
  assert.equal(handoverRequest(b(big)), null, 'larger than HANDOVER_MAX_REQUEST');
});

/** A node:http server as a worker's: the handler answers after an await (as weir's does). */
function server(handler: (url: string) => Promise<{ status: number; body: string }>) {
  return createServer((req, res) => {
    void handler(req.url ?? '').then((r) => { res.statusCode = r.status; res.end(r.body); });
  });
}

test('HandoverSocket: node\'s server answers the request through it; the response is every byte it wrote', async () => {
  const s = server(async (url) => { await new Promise((r) => setTimeout(r, 20)); return { status: 200, body: `late ${url}` }; });
  const socket = new HandoverSocket(handoverRequest(b('GET /x HTTP/1.1\r\nhost: h\r\n\r\n'))!);
  s.emit('connection', socket);
  const res = text(await socket.response)!;
  assert.match(res, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(res, /\r\nConnection: close\r\n/i);
  assert.ok(res.endsWith('\r\n\r\nlate /x'), res);
});

test('HandoverSocket: a request node refuses gets node\'s own answer; one with no answer, or too large, settles null', async () => {
  const s = server(async () => ({ status: 200, body: 'x'.repeat(HANDOVER_MAX_RESPONSE + 1) }));
  const bad = new HandoverSocket(b('GET / HTTP/1.1\r\nhost: h\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n'));
  s.emit('connection', bad);
  assert.match(text(await bad.response) ?? '', /^HTTP\/1\.1 400 /);
  const huge = new HandoverSocket(handoverRequest(b('GET / HTTP/1.1\r\nhost: h\r\n\r\n'))!);
  s.emit('connection', huge);
  assert.equal(await huge.response, null);
  const dropped = new HandoverSocket(handoverRequest(b('GET / HTTP/1.1\r\nhost: h\r\n\r\n'))!);
  dropped.destroy();
  assert.equal(await dropped.response, null);
});
