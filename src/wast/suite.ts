// Locating the spec data and its .wast files.

import { existsSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The test directories of the suite, relative to the spec-data root. */
export const SUITE_DIRS = ['component-model-test', 'wasmtime-misc_testsuite-component-model'] as const;

/** `$WEIR_SPEC_DATA`, else `../shared/spec-data` relative to the repository root. */
export function defaultSpecRoot(): string {
  const env = process.env.WEIR_SPEC_DATA;
  if (env) return path.resolve(env);
  // this file is src/wast/suite.ts or dist/wast/suite.js: the repo root is two levels up
  const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  // beside the checkout (the development layout), else the workplace's shared folder (a CI clone elsewhere)
  const candidates = [path.resolve(repoRoot, '..', 'shared', 'spec-data'), '/work/shared/spec-data'];
  return candidates.find((c) => existsSync(c)) ?? candidates[0];
}

function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.wast')) out.push(p);
  }
}

/**
 * All .wast files of the suite, sorted; with `filters`, only those whose path
 * relative to the spec root contains one of the substrings.
 */
export function findSpecFiles(specRoot: string, filters: string[] = []): string[] {
  const out: string[] = [];
  for (const d of SUITE_DIRS) {
    const dir = path.join(specRoot, d);
    try {
      if (!statSync(dir).isDirectory()) continue;
    } catch {
      continue;
    }
    walk(dir, out);
  }
  if (!filters.length) return out;
  return out.filter((f) => {
    const rel = path.relative(specRoot, f).split(path.sep).join('/');
    return filters.some((s) => rel.includes(s));
  });
}
