// Temporary directories a test file makes, removed when its process exits
// (`node --test` runs each file in a process of its own), so the suite leaves
// nothing behind in the system's temp directory.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made: string[] = [];

/** A new directory under the system temp dir, named `prefix` + random; gone when the process exits. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (made.length === 0) process.on('exit', removeAll);
  made.push(dir);
  return dir;
}

function removeAll(): void {
  for (const dir of made) {
    try { rmSync(dir, { recursive: true, force: true }); } catch { /* left for the OS to clean */ }
  }
}
