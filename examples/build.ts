// Rebuilds the example components from their sources:
//   node examples/build.ts           write every WAT example .wasm (committed)
//   node examples/build.ts --check   fail if a committed .wasm differs from a fresh build
//   node examples/build.ts --js      also build the JavaScript examples with
//                                    componentize-qjs (not committed: 1.7 MB each)
// WAT is assembled with the wasm-tools bundled in the jco devDependency
// (deterministic: the same text gives the same bytes).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from '@bytecodealliance/jco';

const here = dirname(fileURLToPath(import.meta.url));

/** Example components built from WAT: source → output, relative to examples/. */
export const WAT_EXAMPLES: [string, string][] = [
  ['hello/hello.wat', 'hello/hello.wasm'],
];

export async function buildWat(src: string): Promise<Uint8Array> {
  const out = await parse(readFileSync(join(here, src), 'utf8'));
  return out instanceof Uint8Array ? out : new Uint8Array(out as ArrayLike<number>);
}

/** JavaScript examples: folder (with world.wit and the module), module, world, output, relative to examples/. */
export const JS_EXAMPLES: { dir: string; js: string; world: string; out: string }[] = [
  { dir: 'hello-js', js: 'hello.js', world: 'hello', out: 'hello-js/hello-js.wasm' },
];

/** The WASI 0.3.0 packages bundled with jco, as nested `package … { … }` blocks. */
function wasiP3Packages(): string {
  const base = join(here, '..', 'node_modules', '@bytecodealliance', 'jco', 'lib', 'wit', 'builtin', '0.3.0');
  return ['cli', 'clocks', 'filesystem', 'random', 'sockets'].map((p) => {
    const dir = join(base, `wasi-${p}`);
    let name = '';
    const bodies = readdirSync(dir).filter((f) => f.endsWith('.wit')).sort().map((f) =>
      readFileSync(join(dir, f), 'utf8').replace(/^package ([^;]+);/m, (_m, n: string) => { name = n; return ''; }));
    return `package ${name} {\n${bodies.join('\n')}\n}\n`;
  }).join('\n');
}

export function buildJs(ex: (typeof JS_EXAMPLES)[number]): string {
  const stage = mkdtempSync(join(tmpdir(), 'weir-example-'));
  try {
    writeFileSync(join(stage, 'world.wit'), `${readFileSync(join(here, ex.dir, 'world.wit'), 'utf8')}\n${wasiP3Packages()}`);
    const out = join(here, ex.out);
    const bin = join(here, '..', 'node_modules', 'componentize-qjs', 'bin', 'componentize-qjs');
    execFileSync(process.execPath, [bin, '--wit', stage, '--world', ex.world, '--js', join(here, ex.dir, ex.js), '-o', out], { stdio: 'pipe' });
    return out;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

async function main(check: boolean): Promise<number> {
  let stale = 0;
  for (const [src, dst] of WAT_EXAMPLES) {
    const bytes = await buildWat(src);
    const path = join(here, dst);
    if (check) {
      let old: Uint8Array | null = null;
      try { old = readFileSync(path); } catch { /* missing */ }
      if (!old || Buffer.compare(Buffer.from(old), Buffer.from(bytes)) !== 0) {
        process.stderr.write(`${relative(process.cwd(), path)} is stale: run node examples/build.ts\n`);
        stale++;
      }
    } else {
      writeFileSync(path, bytes);
      process.stdout.write(`wrote ${relative(process.cwd(), path)} (${bytes.length} bytes)\n`);
    }
  }
  return stale === 0 ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main(process.argv.includes('--check'));
  if (process.exitCode === 0 && process.argv.includes('--js')) {
    for (const ex of JS_EXAMPLES) process.stdout.write(`wrote ${relative(process.cwd(), buildJs(ex))}\n`);
  }
}
