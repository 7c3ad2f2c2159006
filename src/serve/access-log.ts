// `weir serve --log-format json`: one JSON line per request on stderr
// (request id, instance id, method, path, protocol, status, duration), and
// the guest's stdout/stderr with each line prefixed by its instance id
// (`stdout [3] :: …`), so the output of concurrent instances can be told
// apart (always on in weir serve, whatever the log format).

import type { OutputConfig } from '../wasi/core/cli.ts';
import type { RequestRecord, RequestSink } from './observe.ts';

export type LogFormat = 'text' | 'json';
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];

/** Writes one JSON object per finished request. */
export class JsonAccessLog implements RequestSink {
  private readonly write: (line: string) => void;
  private readonly workerId: number | (() => number);
  /** `workerId`: the worker thread of `--workers N` (1…N; a function when it can change), 0 for the main thread. */
  constructor(write: (line: string) => void, workerId: number | (() => number) = 0) { this.write = write; this.workerId = workerId; }
  finished(r: RequestRecord): void {
    this.write(JSON.stringify({
      time: new Date(r.start).toISOString(),
      request_id: r.id,
      worker_id: typeof this.workerId === 'number' ? this.workerId : this.workerId(),
      instance_id: r.instance,
      method: r.method,
      path: r.path,
      protocol: r.protocol,
      status: r.status,
      duration_ms: Math.round(r.seconds * 1e6) / 1e3,
    }));
  }
}

/** A partial line longer than this is written out without waiting for its newline. */
const MAX_PARTIAL = 64 * 1024;

/** Splits a guest's output into lines and writes each with `prefix` in front. */
export class LinePrefixer {
  private readonly prefix: Buffer;
  private readonly out: (b: Buffer) => void;
  private partial: Buffer[] = [];
  private partialLength = 0;
  constructor(prefix: string, out: (b: Buffer) => void) {
    this.prefix = Buffer.from(prefix);
    this.out = out;
  }
  write(chunk: Uint8Array): void {
    let buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const parts: Buffer[] = [];
    for (;;) {
      const nl = buf.indexOf(10);
      if (nl < 0) break;
      parts.push(this.prefix, ...this.partial, buf.subarray(0, nl + 1));
      this.partial = [];
      this.partialLength = 0;
      buf = buf.subarray(nl + 1);
    }
    if (buf.length > 0) {
      // The chunk's memory may be the guest's: keep a copy.
      this.partial.push(Buffer.from(buf));
      this.partialLength += buf.length;
      if (this.partialLength > MAX_PARTIAL) { parts.push(this.prefix, ...this.partial, Buffer.from('\n')); this.partial = []; this.partialLength = 0; }
    }
    if (parts.length > 0) this.out(Buffer.concat(parts));
  }
  /** Writes a pending partial line (ended with a newline). */
  flush(): void {
    if (this.partialLength === 0) return;
    this.out(Buffer.concat([this.prefix, ...this.partial, Buffer.from('\n')]));
    this.partial = [];
    this.partialLength = 0;
  }
}

/**
 * Per-instance guest stdio for the ServeMachine (ServeConfig.instanceWasi):
 * lines go to this process's stdout/stderr prefixed `stdout [N] :: ` /
 * `stderr [N] :: `; `closed(N)` writes what is left of an unfinished line.
 */
export class PrefixedGuestOutput {
  private readonly open = new Map<number, LinePrefixer[]>();
  stdio(instance: number): { stdout: OutputConfig; stderr: OutputConfig } {
    const o = new LinePrefixer(`stdout [${instance}] :: `, (b) => { process.stdout.write(b); });
    const e = new LinePrefixer(`stderr [${instance}] :: `, (b) => { process.stderr.write(b); });
    this.open.set(instance, [o, e]);
    return { stdout: (c) => o.write(c), stderr: (c) => e.write(c) };
  }
  closed(instance: number): void {
    const p = this.open.get(instance);
    if (!p) return;
    this.open.delete(instance);
    for (const x of p) x.flush();
  }
}
