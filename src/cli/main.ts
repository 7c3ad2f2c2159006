#!/usr/bin/env node
// Entry point of the `weir` command. This file must stay parseable by old Node
// versions (no TypeScript-only runtime syntax, no static imports of the rest of
// Weir) so that it can explain the version requirement instead of crashing.

// Built-ins through process.getBuiltinModule, not `import`: an ES import of
// node:fs builds its namespace from every export, which runs the lazy getters
// (fs.promises, fs.ReadStream) and loads ~30 stream and readline modules a run
// does not use. (Undefined on a Node too old to run Weir, which only reads the
// version check below.)
import type { Stats } from 'node:fs';
import type { Script } from 'node:vm';

const builtin = process.getBuiltinModule as (<T>(id: string) => T) | undefined;
const fs = builtin?.<typeof import('node:fs')>('node:fs')!;
const nodeModule = builtin?.<typeof import('node:module')>('node:module')!;
const path = builtin?.<typeof import('node:path')>('node:path')!;
const url = builtin?.<typeof import('node:url')>('node:url')!;
const vm = builtin?.<typeof import('node:vm')>('node:vm')!;

const MIN_24 = 21; // supported: Node 24.21+ and 25+ (with JSPI available)
/** How many distinct command lines (`weir run x.wasm`) widen the bundle's code cache before it is kept as it is. */
const WIDEN_RUNS = 8;

function jspiAvailable(): boolean {
  const wasm = (globalThis as { WebAssembly?: Record<string, unknown> }).WebAssembly;
  return !!wasm && typeof wasm.Suspending === 'function' && typeof wasm.promising === 'function';
}

function versionSupported(version: string): boolean {
  const [major, minor] = version.split('.').map((x) => parseInt(x, 10));
  return major > 24 || (major === 24 && minor >= MIN_24);
}

type Commands = typeof import('./commands.ts');

const nodeVersion = process.versions.node;
if (!versionSupported(nodeVersion) || !jspiAvailable()) {
  process.stderr.write(
    `weir needs Node 24.21+ or 26 (JSPI); this is Node v${nodeVersion}` +
      (versionSupported(nodeVersion) ? ' without WebAssembly.Suspending/WebAssembly.promising' : '') +
      `. Run through npm (npx weir) so the project's Node is used, or install Node 26.\n`,
  );
  process.exitCode = 2;
} else {
  const command = process.argv.slice(2).find((a) => !a.startsWith('-'));
  tuneGlibcForServe(command);
  const bundle = bundleFile();
  const cacheDir = process.env.NODE_DISABLE_COMPILE_CACHE ? undefined : usableCacheDir();
  let commands: Commands;
  if (bundle) commands = loadBundle(bundle, cacheDir);
  else {
    // every module separately: Node's compile cache at least spares their top levels
    if (cacheDir) nodeModule.enableCompileCache?.(path.join(cacheDir, 'node'));
    commands = (await import('./commands.ts')) as Commands;
  }
  process.exitCode = await commands.main(process.argv.slice(2));
}

/**
 * `weir serve` starts a new worker thread for every one the CPU watchdog stops
 * or that dies. glibc gives threads up to 8 malloc arenas per core and keeps
 * what a dead thread freed in its arena, so with the default the RSS of a
 * server whose workers restart keeps creeping up (soak, 70 restarts in 45 s:
 * +5.7% from the first tenth to the last; capped at 2: +0.7%, and no
 * measurable change in requests/s). The cap is read when the process starts,
 * so serve replaces itself once with the variable set (execve: same pid, same
 * stdio, ~25 ms). A MALLOC_ARENA_MAX of the user's own is left alone.
 *
 * The same start also turns off glibc's cache of dead threads' stacks (up to
 * 40 MiB, their touched pages resident), which a stopped worker's threads
 * otherwise fill; a new thread maps a fresh stack, which for threads started
 * at a worker's pace costs nothing measurable (soak, 400,000 requests and
 * ~390 restarts each: the 10 s RSS level rose +11.4% over the run with the
 * cache, stayed within −2.8%..+4.4% without). A GLIBC_TUNABLES that sets it
 * is left alone.
 */
function tuneGlibcForServe(command: string | undefined): void {
  if (process.platform !== 'linux' || process.env.MALLOC_ARENA_MAX !== undefined || command !== 'serve') return;
  const execve = (process as { execve?: (file: string, args: string[], env: NodeJS.ProcessEnv) => never }).execve;
  if (typeof execve !== 'function') return;
  const given = process.env.GLIBC_TUNABLES;
  const tunables = given?.includes('stack_cache_size') ? given : [given, 'glibc.pthread.stack_cache_size=0'].filter(Boolean).join(':');
  execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], { ...process.env, MALLOC_ARENA_MAX: '2', GLIBC_TUNABLES: tunables });
}

/**
 * The bundle `npm run build` writes (dist/cli/weir.cjs, see
 * scripts/bundle-cli.ts; one file loads much faster than ~70 modules) when it
 * is at least as new as tsc's output, else undefined (run the modules).
 */
function bundleFile(): string | undefined {
  const file = url.fileURLToPath(new URL('./weir.cjs', import.meta.url));
  try {
    if (fs.statSync(file).mtimeMs >= fs.statSync(url.fileURLToPath(new URL('./commands.js', import.meta.url))).mtimeMs) return file;
  } catch {
    // no bundle (running from src/, or only tsc was run)
  }
  return undefined;
}

// ---- the bundle's code cache ----
//
// Most of a small run's own time went to V8 parsing and compiling, on first
// call, the ~500 functions of the bundle the run uses: Node's compile cache
// stores an ES module's code right after its top level is compiled, before
// any function has run, so it never holds them. The bundle is therefore
// CommonJS compiled here by vm.Script, and the V8 code cache written after a
// run holds every function that run compiled; the next run deserializes them
// (~3 ms for ~650 KB) and compiles none. A cache is rewritten after runs of
// the first few distinct command lines it meets (the union of what they used:
// a QuickJS guest needs functions a small WAT command does not), then kept.
// (Compiling every function eagerly instead makes a cache twice the size that
// costs more to deserialize than the lazily compiled rest.)

/**
 * The directory for the code cache: node_modules/.cache/weir of the project
 * or installation Weir lives in, else a per-user directory under the system
 * temporary directory, or the one WEIR_CACHE_DIR names. Only a real
 * directory owned by this user and writable by no one else is used (a code
 * cache is code); undefined when there is none.
 */
function usableCacheDir(): string | undefined {
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  // WEIR_CACHE_DIR names the directory instead (same checks; e.g. a fresh one per benchmark run)
  const chosen = process.env.WEIR_CACHE_DIR;
  if (chosen) return ownDir(path.resolve(chosen), uid) ? path.resolve(chosen) : undefined;
  const pkg = path.join(path.dirname(url.fileURLToPath(import.meta.url)), '..', '..');
  // installed: <project>/node_modules/weir; a checkout: its own node_modules (only if there is one)
  const nodeModules = path.basename(path.dirname(pkg)) === 'node_modules' ? path.dirname(pkg) : path.join(pkg, 'node_modules');
  if (isDir(nodeModules) && ownDir(path.join(nodeModules, '.cache', 'weir'), uid)) return path.join(nodeModules, '.cache', 'weir');
  const tmp = path.join(process.getBuiltinModule('node:os').tmpdir(), `weir-cache-${uid ?? process.env.USERNAME ?? 'user'}`);
  return ownDir(tmp, uid) ? tmp : undefined;
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Whether `dir` is (or could be created as) a directory of this user's that no one else can write to. */
function ownDir(dir: string, uid: number | undefined): boolean {
  try {
    let st: Stats;
    try {
      st = fs.lstatSync(dir);
    } catch {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      st = fs.lstatSync(dir);
    }
    return st.isDirectory() && (uid === undefined || st.uid === uid) && (process.platform === 'win32' || (st.mode & 0o022) === 0);
  } catch {
    return false; // not writable, or something else in the way
  }
}

/** A short stable hash (FNV-1a, 32 bits) for cache file names. */
function hash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** Evaluates the CommonJS bundle `file` through vm.Script with a code cache in `cacheDir`; returns its exports. */
function loadBundle(file: string, cacheDir: string | undefined): Commands {
  const st = fs.statSync(file);
  // The bundle is ASCII (scripts/bundle-cli.ts): latin1 decodes it straight into a one-byte string.
  const source = `(function (exports, require, module, __filename, __dirname) {${fs.readFileSync(file, 'latin1')}\n})`;
  // V8 checks its version, flags and the source length; the name also changes with the
  // bundle's identity and Node's flags, so a rebuilt bundle never meets an old cache.
  const prefix = `weir-${hash(file)}-${process.version}-${process.arch}-`;
  const key = hash(`${st.size}:${st.mtimeMs}:${st.ino}:${process.execArgv.join(' ')}:${process.env.NODE_OPTIONS ?? ''}`);
  const cacheFile = cacheDir && path.join(cacheDir, `${prefix}${key}.v8`);
  let cachedData: Buffer | undefined;
  let seen: string[] = [];
  if (cacheFile) {
    try {
      cachedData = fs.readFileSync(cacheFile);
      seen = fs.readFileSync(`${cacheFile}.seen`, 'latin1').split('\n').filter(Boolean);
    } catch {
      // not made yet
    }
  }
  const moduleRequire = nodeModule.createRequire(file);
  const module = { id: file, filename: file, path: path.dirname(file), exports: {} as Commands, loaded: false, children: [], paths: [] };
  const options = { filename: file, importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER };
  const script = new vm.Script(source, cachedData ? { ...options, cachedData } : options);
  if (cacheFile) {
    if (!cachedData || script.cachedDataRejected) seen = [];
    const line = hash(process.argv.slice(2, 4).join('\0'));
    if (seen.length === 0 || (seen.length < WIDEN_RUNS && !seen.includes(line))) {
      process.once('exit', () => {
        // V8 flags the run changed would be in the cache's flag hash, and the next run (which
        // loads the bundle before changing any) would reject it: put them back first
        module.exports.beforeCodeCache?.();
        saveCache(script, cacheDir!, cacheFile, prefix, [...seen, line]);
      });
    }
  }
  // The serve chunk require()s the bundle: it must get this instance, not a second copy.
  (moduleRequire.cache as Record<string, unknown>)[file] = module;
  // Built-ins straight from process.getBuiltinModule (the module loader's require costs ~0.3 ms each at start-up).
  const require = ((id: string) => (id.startsWith('node:') && builtin?.(id)) || moduleRequire(id)) as NodeJS.Require;
  const wrapper = script.runInThisContext() as (e: object, r: NodeJS.Require, m: object, f: string, d: string) => void;
  wrapper.call(module.exports, module.exports, require, module, file, path.dirname(file));
  module.loaded = true;
  return module.exports;
}

/**
 * Writes the code cache of `script` as it is now (every function compiled so
 * far) and the command lines it has seen; atomically, since another weir may
 * be reading them. Removes caches of earlier builds of the same bundle.
 */
function saveCache(script: Script, dir: string, cacheFile: string, prefix: string, seen: string[]): void {
  try {
    writeAtomically(cacheFile, script.createCachedData());
    writeAtomically(`${cacheFile}.seen`, Buffer.from(seen.join('\n'), 'latin1'));
    const keep = path.basename(cacheFile);
    for (const f of fs.readdirSync(dir)) if (f.startsWith(prefix) && !f.startsWith(keep)) fs.unlinkSync(path.join(dir, f));
  } catch {
    // a cache that cannot be written costs the next run its compile time, nothing else
  }
}

function writeAtomically(file: string, data: Uint8Array): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    const fd = fs.openSync(tmp, 'wx', 0o600);
    try {
      fs.writeSync(fd, data);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      // never created
    }
    throw e;
  }
}
