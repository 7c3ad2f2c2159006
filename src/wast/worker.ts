// Worker-thread entry: runs .wast files on request from the pool (pool.ts).

import { parentPort } from 'node:worker_threads';
import { runWastFile } from './runner.ts';

export interface RunRequest {
  type: 'run';
  id: number;
  file: string;
  specRoot?: string;
  features?: Record<string, boolean>;
}

export type WorkerMessage =
  | { type: 'progress'; id: number; line: number; kind: string }
  | { type: 'result'; id: number; result: import('./runner.ts').FileResult }
  | { type: 'error'; id: number; message: string };

const port = parentPort;
if (!port) throw new Error('worker.ts must run in a worker thread');

port.on('message', async (req: RunRequest) => {
  if (req.type !== 'run') return;
  try {
    const result = await runWastFile(req.file, {
      specRoot: req.specRoot,
      features: req.features,
      onCommand: (cmd) => port.postMessage({ type: 'progress', id: req.id, line: cmd.line, kind: cmd.kind } satisfies WorkerMessage),
    });
    port.postMessage({ type: 'result', id: req.id, result } satisfies WorkerMessage);
  } catch (e) {
    port.postMessage({ type: 'error', id: req.id, message: e instanceof Error ? (e.stack ?? e.message) : String(e) } satisfies WorkerMessage);
  }
});
