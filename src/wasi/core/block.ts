// Synchronous blocking, for the guest calls that must wait while the runtime
// only has the synchronous canonical ABI.
//
// JSPI: once sync-lowered imports can suspend the wasm stack
// (WebAssembly.Suspending), these waits become `await`s on timers and
// readiness events, and the Node event loop keeps running meanwhile.

const cell = new Int32Array(new SharedArrayBuffer(4));

/** Block the thread for `ns` nanoseconds (sub-millisecond waits are honoured by spinning the last stretch). */
export function sleepSyncNs(ns: bigint): void {
  if (ns <= 0n) return;
  const end = process.hrtime.bigint() + ns;
  for (;;) {
    const left = end - process.hrtime.bigint();
    if (left <= 0n) return;
    if (left > 2_000_000n) {
      // Atomics.wait takes milliseconds (fractions allowed); leave ~1ms to spin for precision.
      Atomics.wait(cell, 0, 0, Number(left - 1_000_000n) / 1e6);
    } else if (left > 200_000n) {
      Atomics.wait(cell, 0, 0, Number(left) / 1e6 / 2);
    }
    // else: spin for the last < 0.2ms
  }
}

/** Block the thread for about `ms` milliseconds (used for EAGAIN retries). */
export function sleepSyncMs(ms: number): void {
  Atomics.wait(cell, 0, 0, ms);
}
