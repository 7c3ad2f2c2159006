// Rebuilds the committed example components from their sources:
//   node examples/build.ts           write every example .wasm
//   node examples/build.ts --check   fail if a committed .wasm differs from a fresh build
// WAT is assembled with the wasm-tools bundled in the jco devDependency
// (deterministic: the same text gives the same bytes).

import { readFileSync, writeFileSync } from 'node:fs';
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
}
