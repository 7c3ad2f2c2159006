// stream<u8> faces of the core byte sources and sinks, for the WASI 0.3
// bindings: a source becomes an AsyncIterable the runtime pulls only when the
// guest reads (backpressure), and a guest stream handed to the host (a web
// ReadableStream) is pumped into a sink one chunk at a time.

import { toWasiError, type FsErrorCode } from '../core/errors.ts';
import { readFrom, writeTo, type ByteSink, type ByteSource } from '../core/streams.ts';
import { GuestByteStream, takeGuestByteStream, type GuestByteReader } from '../../runtime/host-streams.ts';
import { err, ok, type Result } from '../wit-values.ts';


/** First read size; doubled after each full read up to `max`, so small files stay cheap and big ones stream in large chunks. */
const FIRST_CHUNK = 64 << 10;

/**
 * A byte source as the stream a guest reads, plus the promise for the
 * accompanying `future<result<_, error-code>>`: `ok` at end of data, `err`
 * when a read fails (the stream then ends). The source is closed when the
 * stream ends or the guest drops it.
 */
export function sourceToStream(src: ByteSource, maxChunk: number): [AsyncIterable<Uint8Array>, Promise<FsErrorCode | null>] {
  let settle!: (v: FsErrorCode | null) => void;
  const done = new Promise<FsErrorCode | null>((r) => { settle = r; });
  let closed = false;
  const finish = (code: FsErrorCode | null) => {
    if (closed) return;
    closed = true;
    src.close();
    settle(code);
  };
  let size = Math.min(FIRST_CHUNK, maxChunk);
  const end: IteratorResult<Uint8Array> = { done: true, value: undefined };
  const iterator: AsyncIterator<Uint8Array> = {
    next(): Promise<IteratorResult<Uint8Array>> {
      if (closed) return Promise.resolve(end);
      return readFrom(src, size).then((b) => {
        if (b === null) { finish(null); return end; }
        if (b.length === size && size < maxChunk) size = Math.min(size * 2, maxChunk);
        return { done: false, value: b };
      }, (e) => {
        finish(toWasiError(e).code);
        return end;
      });
    },
    return(): Promise<IteratorResult<Uint8Array>> {
      // The guest dropped the stream before its end: nothing went wrong.
      finish(null);
      return Promise.resolve(end);
    },
  };
  return [{ [Symbol.asyncIterator]: () => iterator }, done];
}

/**
 * Pump a guest's stream<u8> into a sink, each chunk handed to the sink as it
 * arrives (the next chunk is pulled only after the previous one is written).
 * Resolves to null when the guest ends the stream, or to the error code of
 * the failed write (the stream is then cancelled, so the guest sees it dropped).
 */
export async function pumpToSink(data: ReadableStream<Uint8Array> | GuestByteStream, sink: ByteSink, closeSink: boolean): Promise<FsErrorCode | null> {
  const direct = takeGuestByteStream(data);
  if (direct !== null) return pumpDirect(direct, sink, closeSink);
  if (data instanceof GuestByteStream) {
    // not to be read directly (already read or passed on): its iterator says why
    try {
      for await (const b of data) if (b.length > 0) await writeTo(sink, b);
      return null;
    } catch (e) {
      return toWasiError(e).code;
    } finally {
      if (closeSink) sink.close();
    }
  }
  const reader = data.getReader();
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) return null;
      if (r.value.length > 0) await writeTo(sink, r.value);
    }
  } catch (e) {
    reader.cancel().catch(() => {});
    return toWasiError(e).code;
  } finally {
    reader.releaseLock();
    if (closeSink) sink.close();
  }
}

/** Largest buffer pumpDirect grows to. */
const MAX_PUMP_CHUNK = 1 << 20;

/**
 * pumpToSink for a guest stream read directly: each chunk is copied from guest
 * memory into one reused buffer (the sink does not keep the bytes once its
 * write resolved), which grows while the guest fills it.
 */
async function pumpDirect(g: GuestByteReader, sink: ByteSink, closeSink: boolean): Promise<FsErrorCode | null> {
  let buf = new Uint8Array(FIRST_CHUNK);
  try {
    for (;;) {
      const n = await g.read(buf);
      if (n === null) return null;
      if (n === 0) continue;
      await writeTo(sink, n === buf.length ? buf : buf.subarray(0, n));
      if (n === buf.length && buf.length < MAX_PUMP_CHUNK) buf = new Uint8Array(buf.length * 2);
    }
  } catch (e) {
    g.cancel();
    return toWasiError(e).code;
  } finally {
    if (closeSink) sink.close();
  }
}
