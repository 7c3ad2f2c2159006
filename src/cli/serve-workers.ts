// `weir serve --workers N` (the default: one per available core): the main
// thread supervises N worker threads, each running the whole of `weir serve`
// (its own compiled components, instance pool and limits) and accepting
// connections itself from one listening socket the supervisor opened and
// shares (src/serve/shared-listener.ts; a SO_REUSEPORT listener each where it
// cannot be shared), so no request hops between threads. The supervisor:
// - opens that socket (or picks the port, so `--addr HOST:0` gives every
//   worker the same one) and prints `Serving HTTP on …` once every worker
//   listens;
// - runs the CPU watchdog (watchdog.ts): a worker whose event loop has not
//   turned for --cpu-timeout is stuck in guest code; its waiting requests are
//   answered (500 for the one running, 503 + Retry-After for the others) and
//   it is terminated; a fresh worker takes its place, the others see nothing;
// - starts a new worker when one dies (with a back-off if that repeats);
// - serves /metrics for all of them (--metrics-addr), summing their counts;
// - on SIGINT/SIGTERM asks every worker to drain and exits when all did.
//
// Limits that are per server (--max-concurrent-requests, --max-connections)
// are counted across workers in shared memory (limits.ts Gate).

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createServer } from 'node:net';
import { Worker } from 'node:worker_threads';
import { serveOptions, type ServeOptions } from './args.ts';
import { GLOBAL } from '../serve/cli.ts';
import { listenMetrics } from '../serve/cli-extras.ts';
import { renderMetrics, type MetricsSnapshot } from '../serve/metrics.ts';
import { collector } from '../serve/idle-gc.ts';
import { HELD_LISTENER, SharedListener } from '../serve/shared-listener.ts';
import { MovedConnections } from '../serve/handover.ts';
import { libc } from '../serve/libc.ts';
import { BEAT, BEAT_MS, answerHandedOver, answerStranded, nowMs, watchdogBuffer, type Stranded } from '../serve/watchdog.ts';
import { readVersioned } from '../serve/watch.ts';

/** --cpu-timeout's default. */
export const DEFAULT_CPU_TIMEOUT_MS = 10_000;

/** --workers' default: the cores this process may use. */
export function defaultWorkers(): number { return availableParallelism(); }

/** What a worker thread gets (workerData). */
export interface WorkerData {
  opts: ServeOptions;
  /** The module exporting `serveHere` (commands.js, or the CLI bundle). */
  commandsUrl: string;
  index: number;
  port: number;
  /** The supervisor's listening socket, which every worker accepts from (shared-listener.ts); null: each listens with SO_REUSEPORT. */
  listener: SharedArrayBuffer | null;
  global: SharedArrayBuffer;
  /** A warm spare: it waits for an 'activate' message (with its index) before it listens. */
  standby: boolean;
  /** the worker's share of the shared gates: [requests, connections held, requests, connections waited for], then its descriptor for the shared socket (HELD_LISTENER) */
  held: SharedArrayBuffer;
  watchdog: SharedArrayBuffer | null;
  /** the mailbox of connections moved from stopped workers (handover.ts MovedConnections); null where they are not moved */
  moved: SharedArrayBuffer | null;
  /** each served file's bytes: read once at start (ServedFiles), then the last version a --watch reload served */
  served: readonly (Uint8Array | null)[];
}

/** Messages from a worker. */
export type WorkerMessage =
  /** listening; `tid`: its thread's id (Linux; 0 if unknown), whose CPU time the watchdog reads */
  | { type: 'ready'; tid: number }
  | { type: 'failed'; code: number; text: string }
  | { type: 'stopped'; code: number }
  | { type: 'metrics'; id: number; snapshot: MetricsSnapshot | null }
  /** the answer to a handed-over request (handover.ts): the response bytes, or null (`taken` false: no free instance, not run) */
  | { type: 'handedOver'; id: number; response: Uint8Array | null; taken: boolean }
  /** --watch reloaded file `index`: a worker started from now on serves these bytes */
  | { type: 'served'; index: number; bytes: Uint8Array; version: bigint };

interface Member {
  index: number;
  worker: Worker;
  /** its watchdog words (watchdog.ts), null with --cpu-timeout 0 */
  words: Int32Array | null;
  ready: boolean;
  /** When its event loop was last known to turn (watchdog.ts nowMs(): its BEAT, or when it said it listens). */
  aliveAt: number;
  /** Stopped on purpose (watchdog, shutdown): its exit is expected. */
  killed: boolean;
  startedAt: number;
  /** its share of the shared gates and its descriptor for the shared socket (WorkerData.held) */
  held: Int32Array;
  /** its thread's id (0: unknown) and its CPU time (ns) when the watchdog last looked at a quiet heartbeat */
  tid: number;
  sample: { at: number; cpu: number } | null;
}

export interface WorkerPoolOptions {
  opts: ServeOptions;
  workers: number;
  /** 0: no watchdog. */
  cpuTimeoutMs: number;
  commandsUrl: string;
  log: (line: string) => void;
  /**
   * Collect this thread's heap after a worker exits (see collectSoon): `weir serve`, whose main thread only
   * supervises. Not for an embedder (serveComponents), whose own heap that full GC would pause.
   */
  collectAfterExit?: boolean;
}

/** A running `weir serve` on worker threads (from `startWorkers`). */
export interface WorkerServer {
  /** The port every worker listens on. */
  readonly port: number;
  /** `http://HOST:PORT/` (https with TLS). */
  readonly url: string;
  /** The metrics endpoint, with `metricsAddr`. */
  readonly metricsUrl: string | null;
  /** Worker threads serving now. */
  readonly workers: number;
  /** Resolves with the exit status once every worker stopped. */
  readonly exited: Promise<number>;
  /** Stop accepting, let every worker finish its requests (bounded by --shutdown-timeout); a second call stops at once (130). */
  stop(): Promise<number>;
}

/** Thrown by `startWorkers` when the server cannot start; `report` is what `weir serve` prints. */
export class ServeStartError extends Error {
  override name = 'ServeStartError';
  readonly code = 'WEIR_SERVE_START';
  readonly status: number;
  readonly report: string;
  constructor(report: string, status: number) {
    super(report.trim().split('\n')[0]?.replace(/^weir: /, '') || 'weir serve could not start');
    this.report = report;
    this.status = status;
  }
}

/**
 * Starts `weir serve` on `o.workers` worker threads and resolves once every
 * one listens; rejects with ServeStartError (a component that does not
 * compile or instantiate, a port in use, …) with nothing left running.
 */
/**
 * Whether the kernel moves the connections queued on a closing SO_REUSEPORT
 * listener to another listener of the group (Linux ≥ 5.14,
 * net.ipv4.tcp_migrate_req; measured in the soak: 612 resets per 80,000
 * requests without it, 1 with it). Unknown (another OS) counts as no.
 */
function migratesQueuedConnections(): boolean {
  try {
    return readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

/**
 * V8 grows a busy isolate's young generation to tens of MiB, and a worker
 * serving flat out allocates enough to get there: two workers of the qjs
 * limits service under wrk -c32 held 301-322 MiB of RSS with V8's own sizing,
 * 226-252 MiB with the young generation capped at 16 MiB, at the same
 * requests/s (0.97x and 0.99x of V8's sizing in alternating runs; a cap of
 * 8 MiB held ~215 MiB but cost two busy workers 5-9%: their scavenges
 * compete for the cores). That is per worker, so it counts on a many-core
 * machine, and in the RSS of a server whose workers restart.
 * `npm run bench -- serve-workers/rss` measures it. A young-generation flag
 * the user gives Node wins (NODE_OPTIONS=--max-semi-space-size=0: V8's own).
 */
export const WORKER_YOUNG_GENERATION_MB = 16;

function workerHeapLimits(): { resourceLimits?: { maxYoungGenerationSizeMb: number } } {
  const given = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`;
  if (/--(max|min)[-_]semi[-_]space[-_]size|young[-_]generation/.test(given)) return {};
  return { resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } };
}

/** A copy of `bytes` in shared memory: posted to worker threads, every one sees the same bytes, not a copy each. */
function sharedCopy(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(new SharedArrayBuffer(bytes.byteLength));
  out.set(bytes);
  return out;
}

/**
 * Each served file's bytes, read once at start into shared memory (not copied
 * per worker): every worker, including one started later to replace another,
 * serves what the others serve, even if the file changed on disk since: the
 * component the server started with, or with --watch the version the last
 * successful reload serves (a file saved half-written or broken does not
 * reach a replacement worker either). A file that cannot be read is left to
 * the workers, which report it.
 */
export class ServedFiles {
  readonly bytes: (Uint8Array | null)[] = [];
  /** each copy's file change time (ns) before it was read (readVersioned); -1 where the file could not be read */
  private readonly versions: bigint[] = [];

  constructor(files: readonly string[]) {
    for (const file of files) {
      try {
        const { bytes, version } = readVersioned(file);
        this.bytes.push(sharedCopy(bytes));
        this.versions.push(version);
      } catch {
        this.bytes.push(null);
        this.versions.push(-1n);
      }
    }
  }

  /**
   * A worker's --watch reload serves `bytes`. Two workers may reload a file
   * that changed twice, and their messages arrive in either order: the copy
   * read later (by the file's change time) is kept.
   */
  reloaded(index: number, bytes: Uint8Array, version: bigint): void {
    if (!(index >= 0 && index < this.bytes.length) || version < this.versions[index]) return;
    this.bytes[index] = sharedCopy(bytes);
    this.versions[index] = version;
  }
}

/** How long a stopped worker may wait for another to listen before it is terminated (the kill stays within --cpu-timeout + 100 ms). */
const TERMINATE_GRACE_MS = 50;
/**
 * How long the requests handed over from a stopped worker (handover.ts) may
 * take: its connections close when it is terminated, which waits for their
 * answers this long at most; one not answered by then gets 503 + Retry-After
 * as before. The worker is stopped at most BEAT_MS + ~1 ms after its stall
 * reached --cpu-timeout, so with this and HANDOVER_WRITE_MS it is terminated
 * within --cpu-timeout + ~96 ms (issue 10: + 100 ms). Measured (soak, 20,000 requests, 13 kills):
 * answers from a serving worker took 0-60 ms, from the spare just taking
 * over 40-60+ ms (its pool still filling), hence serving workers first.
 */
const HANDOVER_MS = 60;

/**
 * How long connections moved from a stopped worker (handover.ts) wait for the
 * worker taking its place (a warm spare listens within milliseconds) before
 * any live worker may take them. Heir first keeps the connections spread: in
 * a 1,000,000-request soak where the other live worker took them at once,
 * they gathered on one worker at a time and the requests/s fell 15%.
 */
const ADOPT_FALLBACK_MS = 50;

/** How long writing the handed-over answers may take (a socket buffer full: EAGAIN) before the close cuts them. */
const HANDOVER_WRITE_MS = 15;

/**
 * The watchdog takes a quiet worker for one stuck in guest code only if its
 * thread ran at least RUNNING_SHARE of the last CPU_WINDOW_MS before the
 * limit (judgeQuiet; Linux: /proc/self/task/TID/schedstat; elsewhere the quiet
 * time alone decides, as it did before stop 22). A soak run on the 2-core machine
 * while it also compiled TypeScript had a worker killed that was running an
 * ordinary request: its event loop had not turned for 320 ms (--cpu-timeout
 * 300ms), not because it spun, because it had no CPU. The window ends at the
 * limit, so a spinning worker is stopped no later than before.
 */
const CPU_WINDOW_MS = 20;
const RUNNING_SHARE = 0.2;

/**
 * The watchdog's verdict on a worker whose heartbeat is `quiet` ms old:
 * look again in `waitMs`, keeping `sample`, or (waitMs 0) stop it. CPU_WINDOW_MS
 * before the limit the worker's CPU time is read (`cpuNow`, ns; null where it
 * cannot be), and at the limit again: a worker spinning in guest code ran at
 * least RUNNING_SHARE of that window. One that did not (descheduled on a
 * loaded machine, its cgroup's CPU quota throttled, blocked in a system
 * call) is not stuck in guest code: it is looked at again each window, and
 * stopped all the same once quiet for twice the limit.
 */
export function judgeQuiet(quiet: number, limit: number, now: number, sample: { at: number; cpu: number } | null, cpuNow: number | null):
  { waitMs: number; sample: { at: number; cpu: number } | null; starved?: boolean } {
  if (quiet < limit - CPU_WINDOW_MS) return { waitMs: limit - CPU_WINDOW_MS - quiet, sample: null };
  if (quiet < limit) return { waitMs: limit - quiet, sample: sample ?? (cpuNow !== null ? { at: now, cpu: cpuNow } : null) };
  if (cpuNow === null || !Number.isFinite(cpuNow)) return { waitMs: 0, sample };
  if (quiet >= 2 * limit) { // stopped all the same; `starved`: its thread ran little since the last reading
    const ran = sample && now - sample.at > 0 ? (cpuNow - sample.cpu) / ((now - sample.at) * 1e6) : 1;
    return { waitMs: 0, sample, starved: ran < RUNNING_SHARE };
  }
  const wall = sample ? (now - sample.at) | 0 : 0;
  if (!sample || wall < CPU_WINDOW_MS / 2) { // no reading yet, or too short a window to tell
    return { waitMs: Math.max(1, CPU_WINDOW_MS - wall), sample: sample ?? { at: now, cpu: cpuNow } };
  }
  if (cpuNow - sample.cpu < wall * 1e6 * RUNNING_SHARE) return { waitMs: CPU_WINDOW_MS, sample: { at: now, cpu: cpuNow } };
  return { waitMs: 0, sample };
}

/** CPU time (ns) a thread of this process has run, or null (not Linux, or the thread is gone). */
function threadCpuNs(tid: number): number | null {
  try {
    return Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'latin1').split(' ', 1)[0]);
  } catch {
    return null;
  }
}

/** The least time between two collections of the supervisor's heap after workers exit (see collectSoon). */
const GC_AFTER_EXIT_MS = 500;

/** A stopped worker waiting to be terminated. */
interface Doomed {
  m: Member;
  /** terminate by then even if no other worker listens yet */
  by: number;
  /** handed-over requests with no answer yet, and when they get 503 instead */
  pending: number;
  handoverBy: number;
  /**
   * The answers that came, written all at once just before the termination (null once written): a client
   * that reads its answer reconnects at once, and a connection made while the stopped worker still listens
   * can land in its accept queue, reset at the termination (tcp_migrate_req=0). Written as they came, over
   * up to HANDOVER_MS, that window reset connections in the tests; written together, it is ~1 ms, as for
   * the 503s.
   */
  answers: { s: Stranded; response: Buffer | null }[] | null;
  writing: boolean;
  handedOver: number;
  late: number;
}

export async function startWorkers(o: WorkerPoolOptions): Promise<WorkerServer> {
  const { opts, log } = o;
  let port: number;
  let shared: SharedListener | null = null;
  // One socket every worker accepts from; SO_REUSEPORT listeners where it cannot be shared (no node:ffi),
  // or when WEIR_SERVE_LISTENER=reuseport asks for them. `shared` asked for and not possible is refused.
  const mode = process.env.WEIR_SERVE_LISTENER ?? '';
  if (mode !== '' && mode !== 'shared' && mode !== 'reuseport') {
    throw new ServeStartError(`weir: WEIR_SERVE_LISTENER=${mode}: expected shared or reuseport\n`, 2);
  }
  try {
    shared = mode === 'reuseport' ? null : await SharedListener.open(opts.host, opts.port);
    if (!shared && mode === 'shared') {
      throw new ServeStartError('weir: WEIR_SERVE_LISTENER=shared: one listening socket cannot be shared here (it needs dup through node:ffi and a known C library)\n', 2);
    }
    port = shared ? shared.port : await pickPort(opts.host, opts.port);
  } catch (e) {
    if (e instanceof ServeStartError) throw e;
    throw new ServeStartError(`weir: cannot listen on ${opts.host}:${opts.port}: ${(e as NodeJS.ErrnoException).code ?? String(e)}\n`, 1);
  }
  const served = new ServedFiles(opts.files);
  const global = new SharedArrayBuffer(GLOBAL.length * 4);
  // A stopped worker's connections between requests go to the live workers whole (handover.ts); this needs
  // the shared socket's dup and its unreachable socket (shared-listener.ts).
  const moved = shared ? new MovedConnections() : null;
  const move = moved ? (fd: number, ino: number) => shared!.moveConnection(fd, ino, moved) : null;
  /**
   * Connections moved from a stopped worker go to the one taking its place, which takes what the mailbox
   * holds as it starts to listen; what is left after ADOPT_FALLBACK_MS (no spare was ready: a new worker
   * is starting) goes to any live worker.
   */
  let adoptTimer: ReturnType<typeof setTimeout> | null = null;
  const adoptSoon = (): void => {
    if (adoptTimer) return;
    adoptTimer = setTimeout(() => {
      adoptTimer = null;
      for (const x of members.values()) if (x.ready && !x.killed) x.worker.postMessage({ type: 'adopt' });
    }, ADOPT_FALLBACK_MS);
    adoptTimer.unref();
  };
  const members = new Map<number, Member>();
  let restarts = 0;
  let kills = 0;
  let movedCount = 0;
  let stopping = false;
  let started = false;
  const failures = new Map<number, number>();
  let settle: (code: number) => void = () => {};
  const finished = new Promise<number>((r) => { settle = r; });
  let startup: { left: number; resolve: (ok: boolean) => void } | null = null;
  const startupDone = new Promise<boolean>((resolve) => { startup = { left: o.workers, resolve }; });
  const stoppedCodes: number[] = [];
  let failure = '';
  const metricWaiters = new Map<number, (s: MetricsSnapshot | null) => void>();
  let metricsId = 0;

  // A worker that died (or was stopped) holding admission slots gives them back here, waking the waiters.
  const globalCounts = new Int32Array(global);
  const giveBack = (held: SharedArrayBuffer): void => {
    const h = new Int32Array(held);
    for (const [i, at] of [[0, GLOBAL.requests], [1, GLOBAL.connections]] as const) {
      const waiting = Atomics.exchange(h, i + 2, 0);
      if (waiting !== 0) Atomics.sub(globalCounts, at + 2, waiting);
      const n = Atomics.exchange(h, i, 0);
      if (n === 0) continue;
      Atomics.sub(globalCounts, at, n);
      Atomics.add(globalCounts, at + 1, 1);
      Atomics.notify(globalCounts, at + 1);
    }
  };

  // With SO_REUSEPORT listeners, a stopped worker's listening socket closes when it is terminated. If
  // that left the port with no listener (every worker stuck at once, the spare still starting to listen),
  // new connections would be refused: the termination waits until another worker listens, at most
  // TERMINATE_GRACE_MS (the stuck worker is parked meanwhile: its connections were answered, and it
  // accepts nothing). With the shared socket the supervisor's descriptor keeps the port listening, so a
  // stopped worker is terminated at once: it would spin on a core the worker taking its place (and the
  // connections moved to it) needs.
  const doomed: Doomed[] = [];
  const reap = (now: number): void => {
    if (doomed.length === 0) return;
    const listening = [...members.values()].some((x) => x.ready && !x.killed);
    for (let i = doomed.length - 1; i >= 0; i--) {
      const d = doomed[i];
      if (d.answers) {
        if (d.pending > 0 && now < d.handoverBy && !stopping) continue;
        if (!d.writing) writeAnswers(d);
        continue;
      }
      if (!shared && !listening && !stopping && now < d.by) continue;
      if (d.late > 0) log(`weir: worker ${d.m.index}: ${d.late} of ${d.handedOver} request(s) handed to another worker got no answer (no free instance, or none within ${HANDOVER_MS} ms): answered 503`);
      void d.m.worker.terminate();
      doomed.splice(i, 1);
    }
  };

  // Requests a stopped worker never read, run by another worker (handover.ts): posted by id, and answered
  // on the stopped worker's connections together once every answer came or handoverBy passed (503 for
  // those without one), just before it is terminated.
  // A worker takes one only into an instance free at once, else answers null: the next candidate is asked.
  const handovers = new Map<number, { s: Stranded; d: Doomed; next: Member[] }>();
  let handoverId = 0;
  const offer = (id: number, h: { s: Stranded; next: Member[] }): boolean => {
    for (let m = h.next.shift(); m; m = h.next.shift()) {
      if (m.killed) continue;
      m.worker.postMessage({ type: 'handover', id, request: h.s.request });
      return true;
    }
    return false;
  };
  const handOver = (d: Doomed, stranded: Stranded[]): void => {
    // Workers that have been serving first (their pools are warm; spread round-robin), then the spare just
    // taking over (its pool holds one instance so far).
    const live = [...members.values()].filter((x) => !x.killed);
    const serving = live.filter((x) => x.ready);
    const starting = live.filter((x) => !x.ready);
    for (const [i, s] of stranded.entries()) {
      const id = ++handoverId;
      const k = serving.length ? i % serving.length : 0;
      const h = { s, d, next: [...serving.slice(k), ...serving.slice(0, k), ...starting] };
      handovers.set(id, h);
      d.pending++;
      offer(id, h); // with no candidate: answered 503 at the deadline
    }
  };
  const handoverCounts = { answered: 0, unanswered: 0 };
  const writeAnswers = (d: Doomed): void => {
    d.writing = true;
    const answers = d.answers!;
    for (const [id, h] of handovers) { // no answer in time: 503
      if (h.d !== d) continue;
      handovers.delete(id);
      d.late++;
      answers.push({ s: h.s, response: null });
    }
    d.pending = 0;
    const by = Date.now() + HANDOVER_WRITE_MS;
    void Promise.all(answers.map(async ({ s, response }) => {
      const ok = await answerHandedOver(s, response, by);
      handoverCounts[ok && response ? 'answered' : 'unanswered']++;
    })).then(() => {
      d.answers = null;
      reap(Date.now());
    });
  };

  // One warm spare (compiled, instantiated, not listening) takes over at once when a worker is
  // stopped or dies, so a kill does not leave the port with one listener fewer for a worker's
  // start-up time (with every worker stopped at once, connections were refused).
  let spare: Member | null = null;
  const spawnSpare = (): void => {
    if (stopping || spare) return;
    spawn(0, true);
  };
  /**
   * Puts a worker on `index`: the spare if there is one, else a new worker. A new spare is started
   * now, or, for a worker the watchdog stopped (`afterExit`), once that one has exited (its 'exit'
   * handler): V8 frees an isolate's heap when its thread ends, and a new spare starting beside a dying
   * worker made each kill a peak of one worker's memory in the RSS.
   */
  const replace = (index: number, afterExit = false): void => {
    if (stopping) return;
    const s = spare;
    if (!s) spawn(index);
    else {
      spare = null;
      s.index = index;
      s.startedAt = Date.now();
      members.set(index, s);
      s.worker.postMessage({ type: 'activate', index });
    }
    if (!afterExit) spawnSpare();
  };

  // What an exited worker leaves on this thread (its Worker object and ports, its shared buffers; their
  // native memory is in glibc's arenas, between the live workers' blocks) is freed only when this heap is
  // collected, and little is allocated here, so that came rarely: with ~1.5 workers stopped a second (the
  // soak) the arenas kept growing around those leftovers for minutes. So `weir serve` collects the heap
  // shortly after a worker exits (a full GC of this small heap, ~20 ms on the loaded soak machine; at most
  // one per GC_AFTER_EXIT_MS; not in an embedder's process: `collectAfterExit`), and a worker's 80 KiB
  // watchdog table is given to the next worker rather than a new one allocated each time.
  const idleWatchdogBuffers: SharedArrayBuffer[] = [];
  let gcTimer: ReturnType<typeof setTimeout> | null = null;
  let lastGc = 0;
  const collectSoon = (): void => {
    const gc = collector();
    if (gcTimer || !gc) return;
    gcTimer = setTimeout(() => {
      gcTimer = null;
      lastGc = Date.now();
      gc();
    }, Math.max(10, lastGc + GC_AFTER_EXIT_MS - Date.now()));
    gcTimer.unref();
  };
  const spawn = (index: number, standby = false): void => {
    const watchdog = o.cpuTimeoutMs > 0 ? idleWatchdogBuffers.pop() ?? watchdogBuffer() : null;
    const held = new SharedArrayBuffer(4 * (HELD_LISTENER + 1));
    new Int32Array(held)[HELD_LISTENER] = -1;
    const data: WorkerData = { opts, commandsUrl: o.commandsUrl, index, port, listener: shared?.words ?? null, global, standby, held, watchdog, moved: moved?.buffer ?? null, served: served.bytes };
    const ts = import.meta.url.endsWith('.ts');
    const worker = new Worker(new URL(ts ? './serve-worker.ts' : './serve-worker.js', import.meta.url) /* the CLI bundle is in dist/cli/ too */, {
      workerData: data, stdin: false, stdout: false, stderr: false,
      ...workerHeapLimits(),
    });
    const m: Member = { index, worker, words: watchdog && new Int32Array(watchdog), ready: false, aliveAt: 0, killed: false, startedAt: Date.now(), held: new Int32Array(held), tid: 0, sample: null };
    if (standby) spare = m;
    else members.set(index, m);
    worker.on('message', (msg: WorkerMessage) => {
      switch (msg.type) {
        case 'ready':
          m.ready = true;
          m.tid = msg.tid;
          m.aliveAt = nowMs();
          reap(Date.now());
          if (started) watchSoon(limit); // the first watch is armed once every worker listens
          if (!started && startup) { if (--startup.left === 0) startup.resolve(true); }
          break;
        case 'failed':
          if (!started) {
            // Every worker fails the same way: say it once.
            if (startup) { failure += msg.text; startup.resolve(false); startup = null; stoppedCodes.push(msg.code); }
          } else {
            process.stderr.write(msg.text);
          }
          break;
        case 'stopped':
          stoppedCodes.push(msg.code);
          m.killed = true;
          void worker.terminate(); // pooled connections or timers must not keep it alive
          break;
        case 'metrics':
          metricWaiters.get(msg.id)?.(msg.snapshot);
          break;
        case 'served':
          served.reloaded(msg.index, msg.bytes, msg.version);
          break;
        case 'handedOver': {
          const h = handovers.get(msg.id);
          if (!h) break; // too late: answered 503 already
          if (!msg.taken && Date.now() < h.d.handoverBy && offer(msg.id, h)) break; // no room there: the next one
          handovers.delete(msg.id);
          if (msg.response === null) h.d.late++;
          h.d.answers?.push({ s: h.s, response: msg.response && Buffer.from(msg.response.buffer, msg.response.byteOffset, msg.response.byteLength) });
          h.d.pending--;
          if (h.d.pending === 0) reap(Date.now());
          break;
        }
      }
    });
    worker.on('error', (e) => {
      log(`weir: worker ${m.index || 'spare'}: ${e instanceof Error ? (opts.verbose ? e.stack ?? e.message : e.message) : String(e)}`);
    });
    worker.on('exit', (code) => {
      giveBack(held);
      if (watchdog) {
        m.words = null;
        new Int32Array(watchdog).fill(0);
        idleWatchdogBuffers.push(watchdog);
      }
      if (!stopping && o.collectAfterExit) collectSoon();
      if (spare === m) {
        // The spare died before it was needed: make another later (not in a tight loop).
        spare = null;
        if (!stopping) setTimeout(spawnSpare, 1000).unref();
        return;
      }
      const index = m.index;
      if (members.get(index) === m) members.delete(index);
      if (!started) {
        if (startup && !m.ready) { startup.resolve(false); startup = null; if (stoppedCodes.length === 0) stoppedCodes.push(code === 0 ? 1 : code); }
        return;
      }
      if (stopping) {
        if (members.size === 0) settle(Math.max(0, ...stoppedCodes));
        return;
      }
      // The watchdog already started its successor; the next spare starts now (a no-op while stopping).
      if (m.killed) { spawnSpare(); return; }
      // A worker died on its own (out of memory, an internal error): start another, backing off if it keeps dying.
      const quick = Date.now() - m.startedAt < 2000;
      const n = quick ? (failures.get(index) ?? 0) + 1 : 0;
      failures.set(index, n);
      const delay = n <= 1 ? 0 : Math.min(100 * 2 ** n, 5000);
      log(`weir: worker ${index} exited (code ${code}); starting a new one${delay ? ` in ${delay} ms` : ''}`);
      restarts++;
      if (delay === 0) replace(index);
      else setTimeout(() => replace(index), delay);
    });
  };

  let metricsServer: Awaited<ReturnType<typeof listenMetrics>> | null = null;
  if (opts.metricsAddr) {
    const render = async () => {
      const live = [...members.values()].filter((m) => m.ready && !m.killed);
      const snaps = await Promise.all(live.map((m) => new Promise<MetricsSnapshot | null>((resolve) => {
        const id = ++metricsId;
        const timer = setTimeout(() => { metricWaiters.delete(id); resolve(null); }, 1000);
        metricWaiters.set(id, (s) => { clearTimeout(timer); metricWaiters.delete(id); resolve(s); });
        m.worker.postMessage({ type: 'metrics', id });
      })));
      return renderMetrics(snaps.filter((s): s is MetricsSnapshot => s !== null), { workers: live.length, restarts, watchdogKills: kills, handovers: handoverCounts, movedConnections: movedCount });
    };
    try {
      metricsServer = await listenMetrics(render, opts.metricsAddr.host, opts.metricsAddr.port);
    } catch (e) {
      throw new ServeStartError(`weir: cannot listen on --metrics-addr ${opts.metricsAddr.host}:${opts.metricsAddr.port}: ${(e as NodeJS.ErrnoException).code ?? String(e)}\n`, 1);
    }
  }

  // The watchdog: wakes when the oldest heartbeat would be --cpu-timeout + BEAT_MS old (about once per
  // --cpu-timeout while workers are alive, not on a short period: each wake-up of a thread of a loaded
  // server costs it CPU, see watchdog.ts), and acts within ~1 ms of that. A worker is stopped once its
  // heartbeat is that old: stuck for at least cpuTimeout, at most BEAT_MS more. Armed once every worker
  // listens (startup counts each first 'ready'); unref'd: the workers keep the process alive.
  const limit = o.cpuTimeoutMs + BEAT_MS;
  let watchTimer: ReturnType<typeof setTimeout> | null = null;
  let watchDue = 0; // nowMs() when watchTimer fires
  let watchClosed = false;
  const watchSoon = (ms: number): void => {
    if (o.cpuTimeoutMs <= 0 || watchClosed) return;
    const due = (nowMs() + ms) | 0;
    if (watchTimer !== null) {
      if (((watchDue - due) | 0) <= 0) return; // the armed one comes first
      clearTimeout(watchTimer);
    }
    watchDue = due;
    watchTimer = setTimeout(watch, Math.max(1, ms));
    watchTimer.unref();
  };
  const closeWatch = (): void => {
    watchClosed = true;
    if (watchTimer !== null) clearTimeout(watchTimer);
    watchTimer = null;
  };
  const watch = (): void => {
    watchTimer = null;
    const now = nowMs();
    let next = limit;
    for (const m of members.values()) {
      if (!m.ready || m.killed || !m.words) continue;
      const beat = Atomics.load(m.words, BEAT);
      if (((beat - m.aliveAt) | 0) > 0) m.aliveAt = beat;
      const quiet = (now - m.aliveAt) | 0;
      // Near the limit the worker's CPU time decides whether it is stuck in guest code (judgeQuiet).
      const cpuNow = m.tid > 0 && quiet >= limit - CPU_WINDOW_MS ? threadCpuNs(m.tid) : null;
      const v = judgeQuiet(quiet, limit, now, m.sample, cpuNow);
      m.sample = v.sample;
      if (v.waitMs > 0) { next = Math.min(next, v.waitMs); continue; }
      m.killed = true;
      kills++;
      shared?.disarm(m.held); // its last pass of the event loop, at the termination, must not accept from the shared queue
      const a = answerStranded(m.words.buffer as SharedArrayBuffer, o.cpuTimeoutMs, !stopping, stopping ? null : move);
      // v.starved: judgeQuiet waited to twice the limit, its thread running little
      log(`weir: worker ${m.index}: ${v.starved ? `its event loop did not turn for 2 × --cpu-timeout (${o.cpuTimeoutMs} ms), its thread running little (starved of CPU or blocked)` : `a guest ran past --cpu-timeout (${o.cpuTimeoutMs} ms) without yielding`}: worker stopped ${quiet} ms after its last heartbeat `
        + `(${a.offender ? '1 request answered 500, ' : ''}${a.answered503} answered 503, ${a.moved ? `${a.moved} connection(s) moved to another worker, ` : ''}${a.handover.length ? `${a.handover.length} unread handed to another worker, ` : ''}${a.reset} reset); starting a new one`);
      if (kills === 1 && o.workers > 1 && !shared && !migratesQueuedConnections()) {
        log('weir: note: connections the kernel queued on a stopped worker are reset when it goes; on Linux 5.14+, '
          + 'sysctl net.ipv4.tcp_migrate_req=1 hands them to the other workers instead');
      }
      if (!stopping) { restarts++; replace(m.index, true); }
      if (a.moved > 0) { movedCount += a.moved; adoptSoon(); } // the spare taking over takes them as it listens
      const d: Doomed = { m, by: Date.now() + TERMINATE_GRACE_MS, pending: 0, handoverBy: Date.now() + HANDOVER_MS,
        answers: a.handover.length > 0 ? [] : null, writing: false, handedOver: a.handover.length, late: 0 };
      doomed.push(d);
      if (a.handover.length > 0) handOver(d, a.handover); // after replace(): the spare taking over is one of the workers that may run them
    }
    reap(Date.now());
    // A stopped worker waiting for another to listen is looked at again shortly.
    watchSoon(doomed.length > 0 ? 10 : next);
  };

  for (let i = 1; i <= o.workers; i++) spawn(i);
  spawnSpare(); // started with the others, so it is warm (and its fds open) by the time the server is up
  const ok = await startupDone;
  if (!ok) {
    stopping = true;
    shared?.close();
    closeWatch();
    metricsServer?.close();
    await Promise.all([...members.values(), ...(spare ? [spare] : [])].map((m) => m.worker.terminate()));
    shared?.dispose();
    spare = null;
    throw new ServeStartError(failure || 'weir: a worker thread exited while starting\n', Math.max(1, ...stoppedCodes));
  }
  started = true;
  watchSoon(limit);

  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const url = `${opts.tlsCert !== undefined ? 'https' : 'http'}://${host}:${port}/`;
  const maddr = metricsServer?.address();
  const metricsUrl = maddr && typeof maddr === 'object'
    ? `http://${maddr.address.includes(':') ? `[${maddr.address}]` : maddr.address}:${maddr.port}/metrics` : null;
  if (opts.verbose) log(`weir: ${o.workers} worker thread(s)${o.cpuTimeoutMs > 0 ? `, --cpu-timeout ${o.cpuTimeoutMs} ms` : ', no CPU watchdog'}`);

  let forced = false;
  let over = false;
  void finished.then(() => { over = true; });
  const stop = (): Promise<number> => {
    if (stopping) {
      if (!forced && !over) { forced = true; log('weir: stopping again: exiting now'); settle(130); }
      return exited;
    }
    stopping = true;
    shared?.close(); // no new connections queue on it; each worker closes its own descriptor as it stops accepting
    if (opts.verbose) log(`weir: asking ${members.size} worker(s) to finish their requests`);
    for (const m of members.values()) m.worker.postMessage({ type: 'stop' });
    if (members.size === 0) settle(0);
    return exited;
  };
  const exited = finished.then(async (code) => {
    shared?.close(); // (every worker ended without stop(): closed here)
    const s = spare;
    spare = null;
    if (s) await s.worker.terminate();
    closeWatch();
    await Promise.all(doomed.splice(0).map((d) => d.m.worker.terminate()));
    metricsServer?.close();
    metricsServer?.closeAllConnections();
    await Promise.all([...members.values()].map((m) => m.worker.terminate()));
    for (const fd of moved?.take() ?? []) libc()?.close(fd); // moved just before the drain, and no worker took them (a draining one takes none)
    shared?.dispose();
    return code;
  });
  return { port, url, metricsUrl, get workers() { return [...members.values()].filter((m) => m.ready && !m.killed).length; }, exited, stop };
}

/** `weir serve` with workers: prints the Serving line, stops on SIGINT/SIGTERM; resolves with the exit status. */
export async function serveWorkers(o: WorkerPoolOptions): Promise<number> {
  let server: WorkerServer;
  try {
    server = await startWorkers({ ...o, collectAfterExit: true });
  } catch (e) {
    if (!(e instanceof ServeStartError)) throw e;
    process.stderr.write(e.report);
    return e.status;
  }
  const onSignal = (signal: string) => () => {
    if (o.opts.verbose) o.log(`weir: ${signal}`);
    void server.stop();
  };
  // before the Serving line: a signal sent as soon as it is read must drain, not kill the process
  process.on('SIGINT', onSignal('SIGINT'));
  process.on('SIGTERM', onSignal('SIGTERM'));
  process.stderr.write(`Serving ${server.url.startsWith('https') ? 'HTTPS' : 'HTTP'} on ${server.url}\n`);
  if (server.metricsUrl) process.stderr.write(`Metrics on ${server.metricsUrl}\n`);
  return server.exited;
}

/** Options of `serveComponents`: `weir serve`'s, by their API names (files first), plus the worker settings. */
export type ServeComponentsOptions = Partial<Omit<ServeOptions, 'cmd'>> & { files: string[] };

/**
 * The embedding API of `weir serve --workers N`: serves `files` (the first is
 * the HTTP service; later ones satisfy its imports) on worker threads with the
 * CPU watchdog, as the command does. `workers` defaults to the available
 * cores, `cpuTimeoutMs` to 10 s, host/port to 127.0.0.1:0.
 */
export async function serveComponents(options: ServeComponentsOptions): Promise<WorkerServer> {
  const opts = serveOptions(options);
  const ts = import.meta.url.endsWith('.ts');
  return startWorkers({
    opts,
    workers: opts.workers ?? defaultWorkers(),
    cpuTimeoutMs: opts.cpuTimeoutMs ?? DEFAULT_CPU_TIMEOUT_MS,
    commandsUrl: new URL(ts ? './commands.ts' : './commands.js', import.meta.url).href,
    log: (l) => { process.stderr.write(`${l}\n`); },
  });
}

/**
 * The port every worker binds. The probe listens without SO_REUSEPORT, so a
 * port that another process holds (even with SO_REUSEPORT) is refused here
 * instead of being silently shared; port 0 picks a free one.
 */
function pickPort(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen({ port, host, exclusive: true }, () => {
      const a = probe.address();
      const p = a && typeof a === 'object' ? a.port : port;
      probe.close(() => resolve(p));
    });
  });
}
