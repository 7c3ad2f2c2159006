// Giving memory back once a server goes quiet. V8 keeps the heap a busy
// isolate grew (a worker's young generation, old-space pages) after the load
// is gone, and its memory reducer did not shrink it here: three workers of the
// qjs limits service held 93 MiB of V8 pages 60 s after a 20 s wrk burst,
// against 47 MiB before it, and the process stayed at 238 MiB. One full GC
// per isolate once it had been quiet gave back 60 MiB (238 -> 170 MiB) in
// 12-19 ms each. So a serving thread that has had no request in flight and
// none started for QUIET_MS collects once; it collects again only after
// something changed (requests ran, or instances retired, so their linear
// memories can be unmapped). Never while a request is in flight, and it costs
// a loaded server nothing: the check runs on a slow unref'd interval.
//
// JavaScript reaches V8's collector only through the gc extension: the
// --expose-gc flag is turned on (process-wide, once) and `gc` taken from a
// fresh context, so no global of Weir's own contexts changes.
//
// What the collection frees goes back to glibc's malloc arenas, which keep it
// (an arena shrinks only from its top): after the GC above the process still
// held ~70 MiB there. So the collection is followed by glibc's malloc_trim(0),
// which returns every free page of every arena (162 -> 117 MiB after that
// burst, 15 ms, below the 132 MiB the server started with). It is called
// through node:ffi (Node 26; experimental, so its one warning is kept off
// stderr) where that and glibc are there; elsewhere nothing is trimmed. Only
// when the whole process is quiet (it used under a tenth of a core since the
// last check, so no other worker is serving): under load malloc_trim took 84
// ms (median) holding the arenas' locks, stalling every thread that
// allocates, and the soak's RSS level still swung as much.

import { runInNewContext } from 'node:vm';
import { libc } from './libc.ts';

/** How long a serving thread must be quiet before it collects. */
export const QUIET_MS = 5000;

type GcFn = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => void;

let gcFn: GcFn | null | undefined;

/** V8's collector, or null where the flag cannot be set. */
export function collector(): GcFn | null {
  if (gcFn !== undefined) return gcFn;
  try {
    process.getBuiltinModule('node:v8').setFlagsFromString('--expose-gc');
    const fn: unknown = runInNewContext('typeof gc === "function" ? gc : null');
    gcFn = typeof fn === 'function' ? fn as GcFn : null;
  } catch {
    gcFn = null;
  }
  return gcFn;
}

type TrimFn = () => void;

/** glibc's malloc_trim(0) through node:ffi (libc.ts), or null (no node:ffi, not glibc, or FFI not permitted). */
export function mallocTrim(): TrimFn | null {
  const trim = libc()?.mallocTrim;
  return trim ? () => { trim(0); } : null;
}

export interface QuietState {
  /** Requests in flight now. */
  pending(): number;
  /** Requests started so far (any count that grows with each one). */
  started(): number;
  /** Live instances now. */
  instances(): number;
}

/** Collects once each time the serving thread has been quiet for `quietMs` after a change. */
export class IdleCollector {
  /** Collections run (for tests and metrics). */
  collections = 0;
  /** malloc_trim calls (one after a collection, once the process is quiet). */
  trims = 0;
  private readonly timer: ReturnType<typeof setInterval>;
  private lastStarted = -1;
  private lastInstances = -1;
  private quietSince = 0;
  /** Nothing changed since the last collection. */
  private clean = false;
  /** Collected, not yet trimmed (the process was busy). */
  private trimDue = false;
  private lastCpu = process.cpuUsage();
  private lastCheck = 0;

  private readonly state: QuietState;
  private readonly quietMs: number;

  constructor(state: QuietState, quietMs = QUIET_MS) {
    this.state = state;
    this.quietMs = quietMs;
    this.quietSince = performance.now();
    this.timer = setInterval(() => this.check(), Math.max(50, Math.floor(quietMs / 4)));
    this.timer.unref();
  }

  private check(): void {
    const now = performance.now();
    // the process's CPU (every thread) since the last check, as a share of one core
    const cpu = process.cpuUsage();
    const load = this.lastCheck === 0 ? 1 : (cpu.user - this.lastCpu.user + cpu.system - this.lastCpu.system) / 1000 / Math.max(1, now - this.lastCheck);
    this.lastCpu = cpu;
    this.lastCheck = now;
    const started = this.state.started();
    const instances = this.state.instances();
    if (this.state.pending() > 0 || started !== this.lastStarted) {
      this.lastStarted = started;
      this.lastInstances = instances;
      this.quietSince = now;
      this.clean = false;
      this.trimDue = false;
      return;
    }
    if (instances !== this.lastInstances) { this.lastInstances = instances; this.clean = false; }
    if (!this.clean && now - this.quietSince >= this.quietMs) {
      this.clean = true;
      const gc = collector();
      if (gc === null) return;
      gc({ type: 'major', execution: 'sync' });
      this.collections++;
      this.trimDue = true;
    }
    if (this.trimDue && load < 0.1) {
      this.trimDue = false;
      const trim = mallocTrim();
      if (trim !== null) { trim(); this.trims++; }
    }
  }

  close(): void { clearInterval(this.timer); }
}
