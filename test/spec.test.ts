// Runs the Component Model .wast suite (see src/wast/) and reports one subtest
// per file. Files in src/wast/skips.ts, and files the bundled wasm-tools cannot
// assemble, are reported as skipped; every other file must pass.
//
// WEIR_SPEC_DATA overrides the spec-data location; WEIR_SPEC_TIMEOUT the
// per-file timeout in ms; WEIR_SPEC_FILTER (comma-separated path substrings)
// restricts the files.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { runFiles } from '../src/wast/pool.ts';
import { defaultSpecRoot, findSpecFiles } from '../src/wast/suite.ts';
import type { FileResult } from '../src/wast/runner.ts';

const specRoot = defaultSpecRoot();
const filters = (process.env.WEIR_SPEC_FILTER ?? '').split(',').filter(Boolean);
const files = existsSync(specRoot) ? findSpecFiles(specRoot, filters) : [];
const results: FileResult[] = files.length
  ? await runFiles(files, { specRoot, timeoutMs: Number(process.env.WEIR_SPEC_TIMEOUT ?? 120_000) })
  : [];

function details(r: FileResult): string {
  const lines = [`${r.path}: ${r.reason}`];
  for (const c of r.commands) if (c.status === 'fail') lines.push(`  line ${c.line}: ${c.kind}: ${c.message}`);
  if (lines.length > 21) lines.splice(21, lines.length - 21, `  ... ${lines.length - 21} more`);
  return lines.join('\n');
}

describe('component model wast suite', () => {
  if (!files.length) {
    it('spec data', (t) => t.skip(`no .wast files under ${specRoot}`));
    return;
  }
  for (const r of results) {
    it(r.path, (t) => {
      if (r.status === 'skip') {
        t.skip(r.reason);
        return;
      }
      for (const c of r.commands) if (c.note) t.diagnostic(`line ${c.line}: ${c.kind}: ${c.note}`);
      assert.equal(r.status, 'pass', details(r));
    });
  }
});
