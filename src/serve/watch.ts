// `weir serve --watch`: when a served .wasm file changes, compile it again,
// build a new ServeMachine and send new requests there; requests in flight
// finish on the old machine, which then drains and closes. A version that
// does not compile or instantiate is reported on stderr and the previous one
// keeps serving.
//
// The directory is watched, not the file: an editor or `mv tmp x.wasm`
// replaces the inode, and a watch on the old inode would go silent. Events
// come in bursts (truncate, write, write, rename), so they are debounced and
// reloads never overlap (one that arrives mid-reload runs after it).

import { closeSync, fstatSync, openSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, resolve } from 'node:path';
import type { Component } from '../host/component.ts';
import type { ServeRequest, ServeResponse } from './adapter.ts';
import { errText, type ServeMachine } from './machine.ts';

/** Quiet time after the last change event before a reload starts. */
export const WATCH_DEBOUNCE_MS = 150;

/**
 * The machine new requests go to, swappable; the machines it replaced are
 * closed once their requests in flight are done (ServeMachine.close waits).
 */
export class MachineSwitch {
  private current: ServeMachine;
  /** Replaced machines still draining, with their close promise (close must be called once). */
  private readonly draining = new Map<ServeMachine, Promise<void>>();
  private closed: Promise<void> | null = null;

  constructor(machine: ServeMachine) { this.current = machine; }

  handle(request: ServeRequest, signal?: AbortSignal): Promise<ServeResponse> {
    return this.current.handle(request, signal);
  }

  /** Requests in flight on the current machine and on those still draining. */
  get pending(): number {
    let n = this.current.pending;
    for (const m of this.draining.keys()) n += m.pending;
    return n;
  }

  /** Live instances of the current machine (the metrics gauge). */
  get instances(): number { return this.current.instances; }

  get machine(): ServeMachine { return this.current; }

  swap(next: ServeMachine): void {
    const prev = this.current;
    this.current = next;
    const done = prev.close().finally(() => { this.draining.delete(prev); });
    this.draining.set(prev, done);
  }

  close(): Promise<void> {
    this.closed ??= Promise.all([this.current.close(), ...this.draining.values()]).then(() => {});
    return this.closed;
  }
}

/**
 * A file's bytes and its change time (ns) taken before they were read: the
 * bytes are at least that new, so of two reads the later version is the newer
 * content (or the same).
 */
export function readVersioned(file: string): { bytes: Buffer; version: bigint } {
  const fd = openSync(file, 'r');
  try {
    const version = fstatSync(fd, { bigint: true }).ctimeNs;
    return { bytes: readFileSync(fd), version };
  } finally {
    closeSync(fd);
  }
}

export interface WatchOptions {
  files: string[];
  /** The components now served, in `files` order. */
  components: Component[];
  /**
   * The bytes each was compiled from (default: the files as they are now). A
   * file that differs from them on disk is reloaded at once: a worker started
   * from its supervisor's copy (a spare, a replacement) catches up with a
   * reload it missed.
   */
  sources?: readonly Uint8Array[];
  /** Compiles one file's bytes with serve's compile options (limits, toolchain deviations). */
  compile: (file: string, bytes: Uint8Array) => Component;
  /** Builds (and warms: one instance, so instantiation errors show here) a machine over these components. */
  build: (components: Component[]) => ServeMachine;
  target: MachineSwitch;
  log: (line: string) => void;
  /**
   * Called with each file's new bytes once its new version serves (a worker tells its supervisor, for the workers it starts later),
   * and the file's change time (ns) as it was before those bytes were read, which orders two workers' reloads of one file.
   */
  onReload?: (index: number, bytes: Uint8Array, version: bigint) => void;
  verbose?: boolean;
  debounceMs?: number;
}

export class ServeWatcher {
  private readonly opts: WatchOptions;
  private readonly components: Component[];
  private readonly digests: (string | null)[];
  private readonly watchers: FSWatcher[] = [];
  private readonly changed = new Set<number>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private reloading = false;
  private stopped = false;

  constructor(opts: WatchOptions) {
    this.opts = opts;
    this.components = [...opts.components];
    this.digests = opts.files.map((f, i) => {
      const source = opts.sources?.[i];
      if (!source) return digestOf(f);
      const served = sha256(source);
      const now = digestOf(f);
      if (now !== null && now !== served) this.changed.add(i);
      return served;
    });
    const byDir = new Map<string, Map<string, number[]>>();
    opts.files.forEach((f, i) => {
      const full = resolve(f);
      const names = byDir.get(dirname(full)) ?? new Map<string, number[]>();
      names.set(basename(full), [...(names.get(basename(full)) ?? []), i]);
      byDir.set(dirname(full), names);
    });
    for (const [dir, names] of byDir) {
      const w = watch(dir, { persistent: false }, (_event, name) => {
        // Some platforms give no name: then any file of this directory may have changed.
        const hit = name == null ? [...names.values()].flat() : names.get(String(name)) ?? [];
        if (hit.length === 0) return;
        for (const i of hit) this.changed.add(i);
        this.schedule();
      });
      w.on('error', (e) => { this.opts.log(`weir: --watch: ${dir}: ${errText(e)} (no more reloads from it)`); });
      this.watchers.push(w);
    }
    if (this.changed.size > 0) this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => { this.timer = null; void this.reload(); }, this.opts.debounceMs ?? WATCH_DEBOUNCE_MS);
  }

  private async reload(): Promise<void> {
    if (this.reloading) return; // the running reload picks the new changes up when it ends
    this.reloading = true;
    try {
      while (this.changed.size > 0 && !this.stopped) {
        const which = [...this.changed].sort((a, b) => a - b);
        this.changed.clear();
        this.reloadOnce(which);
        await new Promise((r) => setImmediate(r)); // let requests run between reloads
      }
    } finally {
      this.reloading = false;
    }
  }

  private reloadOnce(which: number[]): void {
    const { files, log } = this.opts;
    const next = [...this.components];
    const digests = [...this.digests];
    const reloaded = new Map<number, { bytes: Uint8Array; version: bigint }>(); // file index → the bytes its new version was compiled from
    for (const i of which) {
      let bytes: Buffer, version: bigint;
      try {
        ({ bytes, version } = readVersioned(files[i]));
      } catch (e) {
        // Mid-rename, or deleted: the next event (when it reappears) reloads it.
        log(`weir: ${files[i]}: cannot read (${(e as NodeJS.ErrnoException).code ?? errText(e)}): still serving the previous version`);
        continue; // (other changed files still reload)
      }
      const digest = sha256(bytes);
      if (digest === digests[i]) continue; // touched or rewritten with the same bytes
      try {
        next[i] = this.opts.compile(files[i], new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      } catch (e) {
        log(`weir: ${files[i]}: reload failed: ${errText(e)}: still serving the previous version`);
        if (this.opts.verbose && e instanceof Error && e.stack) log(e.stack);
        digests[i] = digest;
        this.digests[i] = digest; // do not report the same broken bytes again
        continue;
      }
      digests[i] = digest;
      reloaded.set(i, { bytes, version });
    }
    if (reloaded.size === 0) return;
    let machine: ServeMachine;
    try {
      machine = this.opts.build(next);
    } catch (e) {
      log(`weir: ${[...reloaded.keys()].map((i) => files[i]).join(', ')}: reload failed: cannot instantiate: ${errText(e)}: still serving the previous version`);
      if (this.opts.verbose && e instanceof Error && e.stack) log(e.stack);
      for (const i of reloaded.keys()) this.digests[i] = digests[i];
      return;
    }
    for (let i = 0; i < next.length; i++) { this.components[i] = next[i]; this.digests[i] = digests[i]; }
    this.opts.target.swap(machine);
    for (const [i, { bytes, version }] of reloaded) {
      log(`weir: reloaded ${files[i]}`);
      this.opts.onReload?.(i, bytes, version);
    }
  }

  close(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.watchers) w.close();
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function digestOf(file: string): string | null {
  try {
    return sha256(readFileSync(file));
  } catch {
    return null;
  }
}
