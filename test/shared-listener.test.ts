// The listening socket `weir serve --workers N` shares (src/serve/shared-listener.ts):
// servers listening on their own dups of it share one accept queue; a disarmed
// one accepts nothing more while the others take every connection; closing
// everything leaves no descriptor behind and the port refusing connections.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { libc } from '../src/serve/libc.ts';
import { HELD_LISTENER, SharedListener, noteListening, takeSharedListener } from '../src/serve/shared-listener.ts';

const skip = process.platform !== 'linux' ? 'Linux only (counts /proc/self/fd)' : !libc() ? 'needs node:ffi and a known C library' : false;
const fds = () => readdirSync('/proc/self/fd').length;

/** A server on a dup of the shared socket, counting what it accepts. */
async function member(l: SharedListener, held: Int32Array): Promise<{ server: Server; accepted: () => number }> {
  const fd = takeSharedListener(l.words);
  assert.ok(fd >= 0);
  let n = 0;
  const server = createServer((s) => { n++; s.end('x'); });
  await new Promise<void>((r) => server.listen({ fd }, r));
  noteListening(l.words, held, fd);
  return { server, accepted: () => n };
}

/** One connection: resolves with what the server sent ('' if none), or the error code. */
const dial = (port: number): Promise<string> => new Promise((resolve) => {
  const c = connect(port, '127.0.0.1');
  let got = '';
  c.on('data', (d) => { got += d; });
  c.on('close', () => resolve(got));
  c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
});

test('shared listening socket: every dup accepts from one queue; a disarmed one accepts nothing more; closing all leaves no descriptor and the port refusing', { skip }, async () => {
  const before = fds();
  const l = (await SharedListener.open('127.0.0.1', 0))!;
  assert.ok(l, 'dup is available');
  assert.ok(l.port > 0);
  const heldA = new Int32Array(HELD_LISTENER + 1).fill(-1);
  const heldB = new Int32Array(HELD_LISTENER + 1).fill(-1);
  const a = await member(l, heldA);
  const b = await member(l, heldB);
  for (let i = 0; i < 20; i++) assert.equal(await dial(l.port), 'x');
  assert.equal(a.accepted() + b.accepted(), 20);

  // A is disarmed (as a stopped worker is before its termination): its descriptor number stays valid
  // (it is A's to close), but accepts nothing: every connection goes to B.
  l.disarm(heldA);
  assert.equal(heldA[HELD_LISTENER], -1);
  const aBefore = a.accepted();
  for (let i = 0; i < 20; i++) assert.equal(await dial(l.port), 'x');
  assert.equal(a.accepted(), aBefore, 'the disarmed server accepted nothing');
  await new Promise((r) => a.server.close(r));

  // The supervisor closes its descriptor; B still listens until it closes its own.
  l.close();
  assert.equal(takeSharedListener(l.words), -1, 'no dup of a closed descriptor');
  assert.equal(await dial(l.port), 'x');
  noteListening(l.words, heldB, -1);
  await new Promise((r) => b.server.close(r));
  assert.equal(await dial(l.port), 'ECONNREFUSED');
  l.dispose(); // the unreachable socket a disarmed descriptor becomes
  assert.equal(fds(), before, 'no descriptor left behind');
});

test('disarm leaves a descriptor alone that is no longer the shared socket (closed and its number reused)', { skip }, async () => {
  const l = (await SharedListener.open('127.0.0.1', 0))!;
  const other = createServer();
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  const otherFd = (other as unknown as { _handle: { fd: number } })._handle.fd;
  const held = new Int32Array(HELD_LISTENER + 1).fill(-1);
  held[HELD_LISTENER] = otherFd; // as if a worker's number had been closed and reused by another socket
  l.disarm(held);
  const port = (other.address() as { port: number }).port;
  other.on('connection', (s) => s.end('still'));
  assert.equal(await dial(port), 'still', 'the other socket still listens');
  await new Promise((r) => other.close(r));
  l.dispose();
});

test('with no writable temporary directory a disarm still works (Linux: an abstract Unix socket instead of a file)', { skip }, async () => {
  const before = process.env.TMPDIR;
  process.env.TMPDIR = '/nonexistent/weir-test';
  let l: SharedListener;
  try { l = (await SharedListener.open('127.0.0.1', 0))!; } finally {
    if (before === undefined) delete process.env.TMPDIR; else process.env.TMPDIR = before;
  }
  const heldA = new Int32Array(HELD_LISTENER + 1).fill(-1);
  const heldB = new Int32Array(HELD_LISTENER + 1).fill(-1);
  const a = await member(l, heldA);
  const b = await member(l, heldB);
  l.disarm(heldA);
  for (let i = 0; i < 10; i++) assert.equal(await dial(l.port), 'x');
  assert.equal(a.accepted(), 0, 'the disarmed server accepted nothing');
  assert.equal(b.accepted(), 10);
  await new Promise((r) => a.server.close(r));
  await new Promise((r) => b.server.close(r));
  l.dispose();
});
