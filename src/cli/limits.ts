// `weir run`'s limits: the -W / -S limit flags as the runtime's compile and
// instantiate options (wasmtime's defaults where a flag is not given), and
// -W timeout, which runs the guest in a worker thread that can be stopped.

import type { CompileLimits, InstanceLimits } from '../runtime/limits.ts';
import { WASMTIME_LIMIT_DEFAULTS } from '../runtime/limits.ts';
import type { GuestOptions, RunOptions } from './args.ts';

/** -W max-memory-size / max-table-elements / trap-on-grow-failure (unset: unlimited, -1 on failure, as in wasmtime). */
export function compileLimits(opts: GuestOptions): CompileLimits | undefined {
  const l = opts.limits;
  if (l?.maxMemorySize === undefined && l?.maxTableElements === undefined && !l?.trapOnGrowFailure) return undefined;
  return {
    ...(l.maxMemorySize !== undefined ? { maxMemorySize: l.maxMemorySize } : {}),
    ...(l.maxTableElements !== undefined ? { maxTableElements: l.maxTableElements } : {}),
    ...(l.trapOnGrowFailure ? { trapOnGrowFailure: true } : {}),
  };
}

/**
 * `weir serve`'s defaults where `weir run` has none (a server takes requests
 * from strangers): each linear memory at most 512 MiB, a request answered
 * (response head) within 30 s. `-W max-memory-size=0` / `-W timeout=0` turn them off.
 */
export const SERVE_RUNTIME_DEFAULTS = { maxMemorySize: 512 * 2 ** 20, requestTimeoutMs: 30_000 } as const;

/** compileLimits for `weir serve`: -W max-memory-size defaults to SERVE_RUNTIME_DEFAULTS.maxMemorySize (0: unlimited). */
export function serveCompileLimits(opts: GuestOptions): CompileLimits | undefined {
  const l = opts.limits ?? {};
  const maxMemorySize = l.maxMemorySize ?? SERVE_RUNTIME_DEFAULTS.maxMemorySize;
  return compileLimits({ ...opts, limits: { ...l, maxMemorySize: maxMemorySize === 0 ? undefined : maxMemorySize } });
}

/** `-W timeout` for `weir serve`: per request, 30 s unless given; 0 = none. */
export function serveRequestTimeoutMs(opts: GuestOptions): number {
  return opts.limits?.timeoutMs ?? SERVE_RUNTIME_DEFAULTS.requestTimeoutMs;
}

/** -W max-instances / max-memories / max-tables, -S max-resources / hostcall-fuel, over wasmtime's defaults. */
export function instanceLimits(opts: GuestOptions): InstanceLimits {
  const l = opts.limits ?? {};
  const d = WASMTIME_LIMIT_DEFAULTS;
  return {
    maxInstances: l.maxInstances ?? d.maxInstances,
    maxMemories: l.maxMemories ?? d.maxMemories,
    maxTables: l.maxTables ?? d.maxTables,
    maxResources: l.maxResources ?? d.maxResources,
    hostcallFuel: l.hostcallFuel ?? d.hostcallFuel,
  };
}

/** How a duration is shown in the interrupt message. */
function showMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/**
 * `weir run -W timeout=D`: the run happens in a worker thread (a guest in a
 * `loop {}` never returns to the event loop, so only another thread can stop
 * it: worker.terminate() interrupts V8 even inside wasm code). The clock
 * starts when the worker has compiled the component and is about to
 * instantiate it. On expiry: `weir: trap: interrupt`, exit 134.
 * `commandsUrl` is the module exporting `runHere` (commands.js, or the CLI
 * bundle when main.js runs that), so the worker loads what the main thread did.
 */
export async function runWithTimeout(opts: RunOptions, exitTrap: number, commandsUrl: string): Promise<number> {
  const { Worker } = await import('node:worker_threads');
  const ts = import.meta.url.endsWith('.ts');
  const worker = new Worker(new URL(ts ? './run-worker.ts' : './run-worker.js', import.meta.url), {
    workerData: { opts, commandsUrl },
    stdin: false,
    stdout: false,
    stderr: false,
  });
  const timeoutMs = opts.limits!.timeoutMs!;
  return await new Promise<number>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (code: number) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      void worker.terminate();
      resolve(code);
    };
    worker.on('message', (m: { started?: true; code?: number }) => {
      if (m.started && !timer) {
        timer = setTimeout(() => {
          process.stderr.write(`weir: trap: interrupt (-W timeout=${showMs(timeoutMs)} expired)\n`);
          finish(exitTrap);
        }, timeoutMs);
      }
      if (m.code !== undefined) finish(m.code);
    });
    worker.on('error', (e) => {
      process.stderr.write(`weir: ${opts.file}: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      finish(1);
    });
    worker.on('exit', (code) => finish(code === 0 ? 0 : 1));
  });
}
