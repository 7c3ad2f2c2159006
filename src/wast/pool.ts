// Runs .wast files in worker threads with a per-file timeout, so that a hang
// (an infinite loop in wasm, or a call that never settles) fails that file
// with reason "timeout" instead of stalling the suite.

import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import type { FileResult } from './runner.ts';
import type { RunRequest, WorkerMessage } from './worker.ts';
import { skipReason } from './skips.ts';

export interface PoolOptions {
  specRoot?: string;
  /** Per-file timeout in ms (default 120000). */
  timeoutMs?: number;
  /** Parallel workers (default: available parallelism, at most 8). */
  jobs?: number;
  features?: Record<string, boolean>;
  /** Called as each file finishes (in completion order). */
  onResult?: (r: FileResult) => void;
  /** Files a worker runs before it is replaced (bounds leaks). Default 16. */
  recycleAfter?: number;
}

const workerUrl = new URL(`./worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

function rel(file: string, specRoot: string | undefined): string {
  if (!specRoot) return file;
  const r = path.relative(path.resolve(specRoot), path.resolve(file));
  return r.startsWith('..') ? file : r.split(path.sep).join('/');
}

function syntheticResult(file: string, specRoot: string | undefined, status: 'fail' | 'skip', reason: string, ms: number): FileResult {
  return {
    path: rel(file, specRoot), status, reason, features: {}, commands: [],
    counts: { pass: 0, fail: 0, skip: 0 }, durationMs: Math.round(ms),
  };
}

class Slot {
  worker: Worker | null = null;
  used = 0;
}

/** Runs the files; results are returned in the order of `files`. */
export async function runFiles(files: string[], opts: PoolOptions = {}): Promise<FileResult[]> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const jobs = Math.max(1, Math.min(opts.jobs ?? Math.min(availableParallelism(), 8), files.length || 1));
  const recycleAfter = opts.recycleAfter ?? 16;
  const results: FileResult[] = new Array(files.length);
  let next = 0;
  let nextId = 1;

  const runOne = (slot: Slot, file: string): Promise<FileResult> => {
    const t0 = performance.now();
    if (!slot.worker || slot.used >= recycleAfter) {
      void slot.worker?.terminate();
      slot.worker = new Worker(workerUrl);
      slot.worker.unref();
      slot.used = 0;
    }
    slot.used++;
    const worker = slot.worker;
    const id = nextId++;
    let last = '';
    return new Promise<FileResult>((resolve) => {
      let done = false;
      const finish = (r: FileResult, kill: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        if (kill) {
          void worker.terminate();
          if (slot.worker === worker) slot.worker = null;
        }
        resolve(r);
      };
      const onMessage = (m: WorkerMessage) => {
        if (m.id !== id) return;
        if (m.type === 'progress') last = `line ${m.line}: ${m.kind}`;
        else if (m.type === 'result') finish(m.result, false);
        else finish(syntheticResult(file, opts.specRoot, 'fail', `runner crashed: ${m.message.split('\n')[0]}`, performance.now() - t0), true);
      };
      const onError = (e: Error) => {
        finish(syntheticResult(file, opts.specRoot, 'fail', `worker error${last ? ` at ${last}` : ''}: ${e.message}`, performance.now() - t0), true);
      };
      const onExit = (code: number) => {
        finish(syntheticResult(file, opts.specRoot, 'fail', `worker exited with code ${code}${last ? ` at ${last}` : ''}`, performance.now() - t0), true);
      };
      const timer = setTimeout(() => {
        finish(syntheticResult(file, opts.specRoot, 'fail', `timeout (${timeoutMs} ms${last ? `, at ${last}` : ''})`, performance.now() - t0), true);
      }, timeoutMs);
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      worker.postMessage({ type: 'run', id, file, specRoot: opts.specRoot, features: opts.features } satisfies RunRequest);
    });
  };

  const lane = async () => {
    const slot = new Slot();
    try {
      while (next < files.length) {
        const i = next++;
        const file = files[i]!;
        const skip = skipReason(rel(file, opts.specRoot));
        const r = skip !== null ? syntheticResult(file, opts.specRoot, 'skip', skip, 0) : await runOne(slot, file);
        results[i] = r;
        opts.onResult?.(r);
      }
    } finally {
      await slot.worker?.terminate();
    }
  };
  await Promise.all(Array.from({ length: jobs }, lane));
  return results;
}
