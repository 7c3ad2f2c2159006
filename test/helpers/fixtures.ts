// Test fixtures built by real toolchains at test time, cached by content hash.
//
// buildQjsComponent() writes a WIT world and a JS module into
// .cache/fixtures/<hash>/ and runs componentize-qjs on them. The hash covers
// every input (and the componentize-qjs version), so a cached component is
// reused until something changes. Concurrent builds (node --test runs test
// files in parallel processes) stage into a private directory and rename it
// into place; whoever renames first wins and the others reuse its result.

import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const fixturesDir = join(repoRoot, '.cache', 'fixtures');
const qjsBin = join(repoRoot, 'node_modules', '.bin', 'componentize-qjs');

function qjsVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'node_modules', 'componentize-qjs', 'package.json'), 'utf8'));
    return String(pkg.version);
  } catch {
    return 'unknown';
  }
}

const pending = new Map<string, Promise<string>>();

/**
 * Builds (or reuses) a component from a WIT world and a JS module with
 * componentize-qjs. `name` names the output file; `wit` is the text of one WIT
 * file declaring `world`. Returns the path of the .wasm file.
 * With `stubWasi`, all WASI imports are replaced by trapping stubs.
 */
export async function buildQjsComponent(
  name: string, wit: string, world: string, js: string, opts: { stubWasi?: boolean } = {},
): Promise<string> {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`fixture name must be a plain file name: ${name}`);
  const stubWasi = opts.stubWasi ?? false;
  const hash = createHash('sha256')
    .update(JSON.stringify({ tool: 'componentize-qjs', version: qjsVersion(), name, wit, world, js, stubWasi }))
    .digest('hex')
    .slice(0, 24);
  const dir = join(fixturesDir, hash);
  const out = join(dir, `${name}.wasm`);
  if (existsSync(out)) return out;
  let p = pending.get(hash);
  if (!p) {
    p = build(dir, out, name, wit, world, js, stubWasi).finally(() => pending.delete(hash));
    pending.set(hash, p);
  }
  return p;
}

async function build(dir: string, out: string, name: string, wit: string, world: string, js: string, stubWasi: boolean): Promise<string> {
  const stage = `${dir}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  await mkdir(join(stage, 'wit'), { recursive: true });
  try {
    await writeFile(join(stage, 'wit', `${name}.wit`), wit);
    await writeFile(join(stage, 'app.js'), js);
    const args = [
      qjsBin,
      '--wit', join(stage, 'wit'),
      '--world', world,
      '--js', join(stage, 'app.js'),
      '-o', join(stage, `${name}.wasm`),
    ];
    if (stubWasi) args.push('--stub-wasi');
    try {
      // Run the bin with this process's Node, whatever `node` is first on PATH.
      await execFileP(process.execPath, args, { cwd: stage, timeout: 180_000, maxBuffer: 16 << 20 });
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string; message: string };
      throw new Error(`componentize-qjs failed for fixture ${name}:\n${err.stderr || err.stdout || err.message}`);
    }
    try {
      await rename(stage, dir);
    } catch (e) {
      // Another process finished first: keep its result.
      if (!existsSync(out)) throw e;
    }
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
  return out;
}

/** A ready-made hello-world fixture: exports `greet: func(name: string) -> string`. */
export const HELLO = {
  wit: `package test:hello;

world hello {
  export greet: func(name: string) -> string;
}
`,
  world: 'hello',
  js: `export function greet(name) {
  return \`Hello, \${name}!\`;
}
`,
};

export function buildHello(opts: { stubWasi?: boolean } = {}): Promise<string> {
  return buildQjsComponent(opts.stubWasi ? 'hello-stub' : 'hello', HELLO.wit, HELLO.world, HELLO.js, opts);
}
