// The worker thread of `weir run -W timeout=D` (src/cli/limits.ts): runs the
// command exactly as the main thread would and posts its exit status.

import { parentPort, workerData } from 'node:worker_threads';
import { writeSync } from 'node:fs';
import type { RunOptions } from './args.ts';

// A worker's process.stderr is forwarded to the main thread asynchronously; write
// weir's own messages straight to fd 2 so they are not lost when it is terminated
// and stay in order with the guest's output (which goes to the fds directly).
process.stderr.write = ((chunk: string | Uint8Array) => {
  if (typeof chunk === 'string') writeSync(2, chunk);
  else writeSync(2, chunk);
  return true;
}) as typeof process.stderr.write;

const { opts, commandsUrl } = workerData as { opts: RunOptions; commandsUrl: string };
const { runHere } = (await import(commandsUrl)) as typeof import('./commands.ts');
const code = await runHere(opts, () => parentPort!.postMessage({ started: true }));
parentPort!.postMessage({ code });
