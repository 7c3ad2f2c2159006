// Bundles the `weir` command (dist/cli/commands.js and everything it imports)
// into a few files next to it: dist/cli/weir.js plus a chunk per dynamic
// import. Loading ~70 ES modules costs Node more than the code in them (each
// is resolved, read, looked up in the compile cache, linked); one file is
// read and deserialized once. Run after tsc (`npm run build`, `npm install`).
//
// dist/cli/main.js uses the bundle only when it is at least as new as the tsc
// output (tsc rewrites every file), so after a bare `npx tsc -p .` the command
// runs the fresh unbundled modules instead of a stale bundle.

import { chmodSync, rmSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Bundle `cli` (a dist/cli folder written by tsc) in place; returns the file names written. */
export async function bundleCli(cli = join(root, 'dist', 'cli')): Promise<string[]> {
  // Chunks of an earlier bundle (their names are fixed, but a chunk may no longer exist).
  for (const f of readdirSync(cli)) if (f === 'weir.js' || f.startsWith('weir-')) rmSync(join(cli, f));
  const out = await build({
    input: { weir: join(cli, 'commands.js') },
    platform: 'node',
    // The package's own dist/ is bundled; node: built-ins stay imports.
    external: [/^node:/],
    // needed by includeDependenciesRecursively: false (the entry keeps its exports)
    preserveEntrySignatures: 'allow-extension',
    logLevel: 'warn',
    // Modules both imported lazily by the CLI and statically by the API entry
    // stay where they are; that is expected, not worth a warning.
    onLog(level, log, handler) {
      if (log.code !== 'INEFFECTIVE_DYNAMIC_IMPORT') handler(level, log);
    },
    output: {
      dir: cli,
      format: 'esm',
      entryFileNames: '[name].js',
      chunkFileNames: 'weir-[name].js',
      minify: false,
      sourcemap: false,
      // One lazily loaded chunk for everything a run needs, instead of one
      // per dynamic import (a plain `weir run` then reads three files however
      // the imports are split), and one for the `weir serve` command's own
      // modules (they import node:http, node:net and node:crypto at load,
      // which a run must not pay for).
      codeSplitting: {
        groups: [
          { name: 'server', test: /[\\/]dist[\\/]serve[\\/](cli|cli-extras|watch)\.js$/, includeDependenciesRecursively: false },
          { name: 'core', test: /[\\/]dist[\\/]/ },
        ],
      },
    },
  });
  // The package's bin: tsc writes it without the executable bit, and `npx weir` in a fresh
  // clone runs it directly (npm only sets the bit on installed dependencies' bins).
  chmodSync(join(cli, 'main.js'), 0o755);
  const outputs = Array.isArray(out) ? out : [out];
  return outputs.flatMap((o) => o.output.map((c) => c.fileName));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const cli = join(root, 'dist', 'cli');
  const files = await bundleCli(cli);
  const size = files.reduce((s, f) => s + statSync(join(cli, f)).size, 0);
  process.stdout.write(`bundled the weir command: ${files.map((f) => `dist/cli/${f}`).join(', ')} (${(size / 1024).toFixed(0)} KiB)\n`);
}
