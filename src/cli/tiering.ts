// V8 moves a wasm function from Liftoff to TurboFan once it has run ~13 MB of
// code, compiling it on a background thread, and a process cannot exit while
// such a job runs: a QuickJS guest's start-up alone set off jobs that kept
// `weir run` of a hello world alive ~60 ms after it had finished (and took the
// second core meanwhile). A budget ~8x larger leaves start-up code in Liftoff
// while the loops of a long run still tier up, a little later.
//
// Only for components big enough to carry a language runtime: setting a V8
// flag needs node:v8, which loads Node's whole stream stack (~25 modules) and
// cost a small command a tenth of its start-up; a small component's few
// functions set off no jobs worth waiting for. Not for `weir serve` (a server
// runs long: V8's default); flags the user gives Node about tiering win.

/** Components at least this large (bytes) get the larger budget. */
const LANGUAGE_RUNTIME_SIZE = 256 * 1024;
const BUDGET = 100_000_000;
/** V8's own default (`node --v8-options`), put back before the bundle's code cache is written. */
const V8_DEFAULT_BUDGET = 13_000_000;

let applied = false;

/**
 * The user gave Node a wasm tiering flag of their own: leave V8's budget to it.
 * The command line is the only place one can come from: Node refuses wasm
 * flags in NODE_OPTIONS ("--wasm-tiering-budget= is not allowed in NODE_OPTIONS").
 */
function tieringFlagGiven(): boolean {
  return /wasm-tier|wasm-dynamic-tiering/.test(process.execArgv.join(' '));
}

/** Raises V8's wasm tiering budget for a short `weir run` of a component of `size` bytes (once per process). */
export function shortRunTiering(size: number): void {
  if (applied || size < LANGUAGE_RUNTIME_SIZE) return;
  applied = true;
  if (tieringFlagGiven()) return;
  try {
    process.getBuiltinModule('node:v8').setFlagsFromString(`--wasm-tiering-budget=${BUDGET}`);
  } catch {
    // V8 refused: the default tiering
  }
}

/**
 * Called by main.js just before it writes the CLI bundle's V8 code cache at
 * exit: V8 stamps a cache with a hash of its flags and rejects it when a
 * process loads it under other flags. The next run loads the bundle before it
 * knows its component, with V8's default budget, so the cache must be written
 * under that default (or every run of a large component would throw its
 * cache away: qjs hello 96 ms instead of 70). The budget may have been raised
 * by another thread (`weir run -W timeout` runs the command in a worker, with
 * its own copy of this module), so it is put back whenever a cache is written
 * (the first few runs only; this loads node:v8, ~2 ms).
 */
export function beforeCodeCache(): void {
  if (tieringFlagGiven()) return;
  try {
    process.getBuiltinModule('node:v8').setFlagsFromString(`--wasm-tiering-budget=${V8_DEFAULT_BUDGET}`);
  } catch {
    // then the cache is rejected once and rewritten by a small run
  }
}
