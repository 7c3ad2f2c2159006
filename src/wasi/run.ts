// Running a command component: call wasi:cli/run's `run` and turn the outcome
// into an exit status.

import type { Instance } from '../host/component.ts';
import { ExitSignal } from './core/cli.ts';

/** The `wasi:cli/run` instance export (0.3 preferred over 0.2), or undefined. */
export function findRunExport(instance: Instance): { version: string; run: (...a: unknown[]) => unknown } | undefined {
  let best: { version: string; run: (...a: unknown[]) => unknown } | undefined;
  for (const [name, value] of Object.entries(instance.exports)) {
    const m = /^wasi:cli\/run@(0\.[23])\.\d+$/.exec(name);
    if (!m || typeof value?.run !== 'function') continue;
    if (!best || m[1] > best.version) best = { version: m[1], run: value.run };
  }
  return best;
}

/**
 * Calls `run` and returns the exit status: 0 for ok, 1 for err, or the code
 * passed to wasi:cli/exit. Traps propagate (as Trap) to the caller.
 */
export async function runCommand(instance: Instance): Promise<number> {
  const r = findRunExport(instance);
  if (!r) throw new Error('the component does not export wasi:cli/run');
  try {
    const result = (await r.run()) as { tag: 'ok' | 'err' } | undefined;
    return result && result.tag === 'err' ? 1 : 0;
  } catch (e) {
    let exit = exitSignalOf(e);
    if (!exit && e instanceof Error && e.cause === undefined) {
      // A guest entered through JSPI that fails before suspending is reported
      // at once, and the reason (e.g. our ExitSignal) is attached a few
      // microtasks later: look again after they ran.
      await new Promise((r) => setImmediate(r));
      exit = exitSignalOf(e);
    }
    if (exit) return exit.code;
    throw e;
  }
}

/** The ExitSignal behind `e`: itself, or the cause of a trap it was wrapped in on its way out of the guest. */
export function exitSignalOf(e: unknown): ExitSignal | undefined {
  for (let i = 0; i < 8 && e !== null && typeof e === 'object'; i++) {
    if (e instanceof ExitSignal) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
