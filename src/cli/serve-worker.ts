// A worker thread of `weir serve --workers N` (src/cli/serve-workers.ts): runs
// `weir serve` as the main thread would, accepting from the supervisor's
// listening socket (or with SO_REUSEPORT on the port it picked), and talks to
// the supervisor by messages.

import { parentPort, workerData } from 'node:worker_threads';
import { readlinkSync, writeSync } from 'node:fs';
import type { WorkerRole } from '../serve/cli.ts';
import type { MetricsSnapshot } from '../serve/metrics.ts';
import type { WorkerData, WorkerMessage } from './serve-workers.ts';

const data = workerData as WorkerData;
const port = parentPort!;
const post = (m: WorkerMessage) => port.postMessage(m);

// Output goes straight to the process's fds: a worker's process.stdout/stderr
// are otherwise forwarded through the main thread, and lost if the worker is
// terminated. Until the worker listens, stderr is held back: if it fails to
// start, the supervisor prints one worker's report instead of N copies.
let early: string | null = '';
const direct = (fd: number, fallback: typeof process.stdout.write) => ((chunk: string | Uint8Array, ...rest: unknown[]) => {
  if (fd === 2 && early !== null) { early += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString(); return true; }
  try {
    if (typeof chunk === 'string') writeSync(fd, chunk);
    else writeSync(fd, chunk);
    return true;
  } catch {
    return (fallback as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest); // EAGAIN on a non-blocking fd
  }
}) as typeof process.stdout.write;
process.stdout.write = direct(1, process.stdout.write.bind(process.stdout));
process.stderr.write = direct(2, process.stderr.write.bind(process.stderr));

/** This thread's id in the kernel (Linux: /proc/thread-self is PID/task/TID), 0 if unknown: the supervisor reads its CPU time. */
function threadId(): number {
  try {
    const tid = Number(/task\/(\d+)$/.exec(readlinkSync('/proc/thread-self'))?.[1] ?? 0);
    return Number.isSafeInteger(tid) ? tid : 0;
  } catch {
    return 0;
  }
}

let stopRequested: (() => void) | null = null;
let snapshot: (() => MetricsSnapshot | null) | null = null;
let activate: (() => void) | null = null;
let handover: ((request: Uint8Array) => Promise<Uint8Array | null> | null) | null = null;
let adopt: (() => void) | null = null;
type Message = { type: 'stop' } | { type: 'metrics'; id: number } | { type: 'activate'; index: number } | { type: 'handover'; id: number; request: Uint8Array } | { type: 'adopt' };
port.on('message', (m: Message) => {
  if (m.type === 'stop') stopRequested?.();
  else if (m.type === 'activate') { role.index = m.index; activate?.(); }
  else if (m.type === 'adopt') adopt?.(); // connections moved from a stopped worker (handover.ts)
  else if (m.type === 'handover') {
    // a request a stopped worker never read (handover.ts): run here, the bytes go back to its connection
    const { id } = m;
    const running = handover?.(m.request) ?? null;
    if (!running) post({ type: 'handedOver', id, response: null, taken: false });
    else running.then((response) => post({ type: 'handedOver', id, response, taken: true }), () => post({ type: 'handedOver', id, response: null, taken: true }));
  } else post({ type: 'metrics', id: m.id, snapshot: snapshot?.() ?? null });
});

const role: WorkerRole = {
  index: data.index,
  standby: data.standby ? new Promise<void>((r) => { activate = r; }) : null,
  port: data.port,
  listener: data.listener,
  global: new Int32Array(data.global),
  held: new Int32Array(data.held),
  watchdog: data.watchdog,
  moved: data.moved,
  served: data.served,
  reloaded(index, bytes, version) { post({ type: 'served', index, bytes, version }); }, // the supervisor keeps a shared copy
  ready() {
    const held = early ?? '';
    early = null;
    // What every worker says while starting (e.g. --verbose notes) is printed by the first one only.
    if (held && data.index === 1) process.stderr.write(held);
    post({ type: 'ready', tid: threadId() });
  },
  onStop(stop) { stopRequested = stop; },
  onHandover(run) { handover = run; },
  onAdopt(take) { adopt = take; },
  onMetrics(s) { snapshot = s; },
};

const { serveHere } = (await import(data.commandsUrl)) as typeof import('./commands.ts');
const code = await serveHere(data.opts, role);
if (early !== null) post({ type: 'failed', code: code || 1, text: early });
else post({ type: 'stopped', code });
