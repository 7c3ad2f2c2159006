// atRequestStart (src/serve/handover.ts): the supervisor moves a stopped
// worker's connection only if what waits unread on it is nothing or the start
// of a request, looked at with MSG_PEEK so that the worker taking the
// connection reads every byte itself. Over real loopback TCP connections.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { atRequestStart } from '../src/serve/handover.ts';
import { libc } from '../src/serve/libc.ts';
import { socketFd } from '../src/serve/watchdog.ts';

const skip = libc() ? false : 'no node:ffi or known C library here (connections are not moved)';

/** A connected pair: the server's side paused (nothing read), and the client. */
async function pair(): Promise<{ server: Socket; client: Socket; close(): void }> {
  const srv = createServer({ pauseOnConnect: true });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => srv.once('connection', r));
  const client = connect(port, '127.0.0.1');
  await new Promise<void>((r) => client.once('connect', () => r()));
  const server = await accepted;
  return { server, client, close: () => { client.destroy(); server.destroy(); srv.close(); } };
}

/** Writes `bytes` from the client and waits until the server's kernel buffer has them. */
async function arrive(client: Socket, bytes: string): Promise<void> {
  await new Promise<void>((r) => client.write(bytes, () => r()));
  await new Promise((r) => setTimeout(r, 30));
}

test('atRequestStart: nothing waiting, or a request line whole or cut short, is the start of a request; what follows a partly read head is not', { skip }, async () => {
  const cases: [string, boolean][] = [
    ['', true],
    ['GET /count?ms=0 HTTP/1.1\r\nhost: x\r\n\r\n', true],
    ['POST /x HTTP/1.0\r\n', true],
    ['G', true],
    ['UNLO', true],
    ['DELETE /a', true],
    ['PUT /a HTTP/1.', true],
    // the rest of a head whose start the stopped worker had read
    ['nt HTTP/1.1\r\nhost: x\r\n\r\n', false],
    ['host: x\r\n\r\n', false],
    ['ET / HTTP/1.1\r\n', false], // "ET" is no method
    ['XYZ', false],
    ['GET / HTTP/2.0\r\n', false],
    ['GET /a HTTP/1.1 extra\r\n', false],
    ['\r\n', false],
  ];
  for (const [bytes, expected] of cases) {
    const p = await pair();
    try {
      if (bytes) await arrive(p.client, bytes);
      assert.equal(atRequestStart(socketFd(p.server)), expected, JSON.stringify(bytes));
    } finally {
      p.close();
    }
  }
});

test('atRequestStart takes nothing: the bytes it looked at are all still there for the worker that reads the connection', { skip }, async () => {
  const p = await pair();
  try {
    const request = 'PATCH /thing HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nhi';
    await arrive(p.client, request);
    assert.equal(atRequestStart(socketFd(p.server)), true);
    assert.equal(atRequestStart(socketFd(p.server)), true, 'the same answer when asked again');
    let got = '';
    p.server.setEncoding('latin1');
    p.server.on('data', (d: string) => { got += d; });
    p.server.resume();
    for (let i = 0; i < 100 && got.length < request.length; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(got, request);
  } finally {
    p.close();
  }
});

test('atRequestStart: a connection whose client has closed is not moved', { skip }, async () => {
  const p = await pair();
  try {
    p.client.end();
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(atRequestStart(socketFd(p.server)), false);
  } finally {
    p.close();
  }
});
