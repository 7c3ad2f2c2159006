// Bundles the `weir` command (dist/cli/commands.js and everything it imports)
// into a few CommonJS files next to it: dist/cli/weir.cjs plus a chunk for the
// serve command, one for the wasi:sockets / wasi:http bindings (loaded by a
// run only for a component that imports them) and rolldown's tiny runtime. Loading ~70 ES modules costs Node
// more than the code in them (each is resolved, read, looked up in the compile
// cache, linked); one file is read once. Run after tsc (`npm run build`,
// `npm install`).
//
// CommonJS, not ESM: dist/cli/main.js compiles weir.cjs itself with vm.Script,
// which lets it keep a V8 code cache of *every* function in the file (see
// src/cli/main.ts). Node's own compile cache for ES modules is written right
// after the top level is compiled, so it holds almost none of the functions a
// run calls, and V8 parses and compiles those again in every process.
//
// dist/cli/main.js uses the bundle only when it is at least as new as the tsc
// output (tsc rewrites every file), so after a bare `npx tsc -p .` the command
// runs the fresh unbundled modules instead of a stale bundle.

import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, rmSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Where the `weir serve` command begins: the modules commands.js imports
 * lazily for it (everything under dist/serve/ but the composition that
 * `weir run --link` also uses, and dist/cli/serve-*.js).
 */
const SERVE_ROOT = /[\\/]dist[\\/](serve[\\/](?!compose\.js$)[^\\/]+|cli[\\/]serve-[^\\/]+)\.js$/;

/**
 * Where the network bindings begin: `weir run` imports this module lazily,
 * only for a component that imports wasi:sockets or wasi:http (src/wasi/net.ts).
 */
const NET_ROOT = /[\\/]dist[\\/]wasi[\\/]net\.js$/;

type Graph = { getModuleIds(): Iterable<string>; getModuleInfo(id: string): { importedIds: readonly string[]; dynamicallyImportedIds: readonly string[] } | null };

/** The modules reachable from `roots`, following static imports and the dynamic ones `follow` accepts. */
function reach(graph: Graph, roots: string[], follow: (id: string) => boolean): Set<string> {
  const seen = new Set<string>();
  const todo = [...roots];
  while (todo.length > 0) {
    const id = todo.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    const info = graph.getModuleInfo(id);
    if (!info) continue;
    todo.push(...info.importedIds);
    for (const d of info.dynamicallyImportedIds) if (follow(d)) todo.push(d);
  }
  return seen;
}

/**
 * A rolldown plugin that sorts, once the module graph is known, the modules
 * a plain run does not need: those the network bindings reach (lazy imports
 * of NET_ROOT; the serve chunk may use some of them too and then requires
 * this one) go in `net`, the rest that only `weir serve` reaches (lazy
 * imports of a SERVE_ROOT) in `server`. By the graph rather than a list of
 * file names that new modules outgrow.
 */
function lazyParts(entry: string, net: Set<string>, server: Set<string>) {
  return {
    name: 'weir-lazy-parts',
    buildEnd(this: Graph) {
      const forRun = reach(this, [entry], (d) => !SERVE_ROOT.test(d) && !NET_ROOT.test(d));
      const netRoots = [...this.getModuleIds()].filter((id) => NET_ROOT.test(id));
      for (const id of reach(this, netRoots, (d) => !SERVE_ROOT.test(d))) if (!forRun.has(id) && !id.startsWith('node:')) net.add(id);
      for (const id of this.getModuleIds()) if (!forRun.has(id) && !net.has(id) && !id.startsWith('node:')) server.add(id);
    },
  };
}

/** Bundle `cli` (a dist/cli folder written by tsc) in place; returns the file names written. */
export async function bundleCli(cli = join(root, 'dist', 'cli')): Promise<string[]> {
  // Chunks of an earlier bundle (their names are fixed, but a chunk may no longer exist;
  // weir.js and weir-*.js are the ESM bundle of earlier versions).
  for (const f of readdirSync(cli)) if (/^weir(-[\w-]+)?\.c?js$/.test(f)) rmSync(join(cli, f));
  const server = new Set<string>();
  const net = new Set<string>();
  const out = await build({
    input: { weir: join(cli, 'commands.js') },
    plugins: [lazyParts(join(cli, 'commands.js'), net, server)],
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
      format: 'cjs',
      // import('node:http') as require: main.js compiles the bundle with vm.Script, where
      // import() needs a loader option that Node 26 still calls experimental (and warns about)
      dynamicImportInCjs: false,
      entryFileNames: '[name].cjs',
      chunkFileNames: 'weir-[name].cjs',
      minify: false,
      sourcemap: false,
      // ASCII only, so that main.js can read the source as latin1 into a
      // one-byte string (decoding 650 KB of UTF-8 costs 1.5-3 ms per run);
      // no comments (a smaller file to read).
      charset: 'ascii',
      comments: false,
      // Everything a run needs in the entry file (one code cache covers it),
      // instead of a chunk per dynamic import; one chunk for the `weir serve`
      // command's own modules (they import node:http, node:net, node:crypto
      // and node:worker_threads at load, which a run must not pay for), and
      // one for the network bindings (~80 KB a command without sockets or
      // http would otherwise read and cache: ~2 ms of a hello's ~30).
      codeSplitting: {
        groups: [
          { name: 'server', test: (id: string) => server.has(id), includeDependenciesRecursively: false },
          { name: 'net', test: (id: string) => net.has(id), includeDependenciesRecursively: false },
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
  // One run with this Node writes the bundle's code cache (src/cli/main.ts), so
  // that the first `weir run` after a build is as quick as the later ones.
  const hello = join(root, 'examples', 'hello', 'hello.wasm');
  if (existsSync(hello)) spawnSync(process.execPath, [join(cli, 'main.js'), 'run', hello], { stdio: 'ignore', timeout: 30_000 });
}
