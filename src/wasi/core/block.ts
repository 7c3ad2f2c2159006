// Synchronous blocking (Atomics.wait), for the few waits that cannot suspend:
// readSync/writeSync EAGAIN retries and Clocks.waitUntilSync. The runtime has
// JSPI: the WASI 0.2 waits (poll, pollable.block, blocking-*) are may-block
// host functions that suspend the guest's stack while the Node event loop
// runs (docs/WASI.md "Waiting in WASI 0.2"), so they do not come here.

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
