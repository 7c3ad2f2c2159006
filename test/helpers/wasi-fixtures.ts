// WASI 0.2 command components built with componentize-qjs during the tests.
//
// The WIT given to componentize-qjs is one file: the test world plus the
// wasi:* 0.2.12 packages (from jco's bundled WIT) as nested package blocks.

import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { buildQjsComponent, repoRoot } from './fixtures.ts';

const WASI_WIT_DIR = join(repoRoot, 'node_modules', '@bytecodealliance', 'jco', 'lib', 'wit', 'builtin', '0.2.12');

/** The wasi:* 0.2.12 packages as nested `package … { … }` blocks. */
export function wasiDepsWit(packages = ['io', 'clocks', 'random', 'filesystem', 'sockets', 'cli']): string {
  return packages.map((p) => {
    const src = readFileSync(join(WASI_WIT_DIR, `wasi-${p}`, 'package.wit'), 'utf8');
    return `${src.replace(/^package ([^;]+);/m, 'package $1 {')}\n}\n`;
  }).join('\n');
}

/** A command world importing `imports` (interface names without version) and exporting wasi:cli/run. */
export function commandWit(world: string, imports: string[]): string {
  return `package test:${world};

world ${world} {
${imports.map((i) => `  import wasi:${i}@0.2.12;`).join('\n')}
  export wasi:cli/run@0.2.12;
}

${wasiDepsWit()}`;
}

/**
 * A command driven by its arguments (argv[1] picks the action), used by the
 * wasi and run tests. Paths are relative to the first preopen.
 */
export const CMD_JS = String.raw`
import env from 'wasi:cli/environment@0.2.12';
import exit from 'wasi:cli/exit@0.2.12';
import stdin from 'wasi:cli/stdin@0.2.12';
import stdout from 'wasi:cli/stdout@0.2.12';
import stderr from 'wasi:cli/stderr@0.2.12';
import preopens from 'wasi:filesystem/preopens@0.2.12';
import mono from 'wasi:clocks/monotonic-clock@0.2.12';
import wall from 'wasi:clocks/wall-clock@0.2.12';
import random from 'wasi:random/random@0.2.12';
import seed from 'wasi:random/insecure-seed@0.2.12';

function utf8(s) {
  const out = [];
  for (const ch of s) {
    let c = ch.codePointAt(0);
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(out);
}
function latin1(bytes) { let s = ''; for (const b of bytes) s += String.fromCharCode(b); return s; }
// Handles must be taken inside run(): module top level runs at build time (Wizer snapshot).
let out = null;
function print(s) { (out ??= stdout.getStdout()).blockingWriteAndFlush(utf8(s + '\n')); }
function code(e) { return typeof e === 'string' ? e : (e && e.tag) ? e.tag : String(e && e.message !== undefined ? e.message : e); }
function root() {
  const dirs = preopens.getDirectories();
  if (dirs.length === 0) throw 'no-preopen';
  return dirs[0][0];
}
function readAll(d) {
  let off = 0, chunks = '';
  for (;;) {
    const [bytes, eof] = d.read(65536, off);
    chunks += latin1(bytes);
    off += bytes.length;
    if (eof || bytes.length === 0) return chunks;
  }
}
function tryOpen(dir, path, follow) {
  try {
    const d = dir.openAt({ symlinkFollow: follow }, path, {}, { read: true });
    try {
      if (d.getType() === 'directory') return 'dir';
      return 'read:' + readAll(d);
    } finally { d[Symbol.dispose](); }
  } catch (e) { return 'err:' + code(e); }
}
function attempt(f) { try { return 'ok:' + JSON.stringify(f()); } catch (e) { return 'err:' + code(e); } }

export const run = {
  run() {
    const args = env.getArguments();
    const cmd = args[1];
    switch (cmd) {
      case 'hello': print('hello, world'); return;
      case 'args': print(JSON.stringify(args)); return;
      case 'env': print(JSON.stringify(env.getEnvironment())); return;
      case 'stderr': stderr.getStderr().blockingWriteAndFlush(utf8(args[2] + '\n')); return;
      case 'exit': exit.exitWithCode(Number(args[2])); print('not reached'); return;
      case 'exit-result': exit.exit(args[2] === 'ok' ? { tag: 'ok' } : { tag: 'err' }); return;
      case 'fail': throw 'failed';
      case 'trap': notDefinedAnywhere(); return;
      case 'cat': print(readAll(root().openAt({ symlinkFollow: true }, args[2], {}, { read: true }))); return;
      case 'try-open': print(tryOpen(root(), args[2], args[3] !== 'nofollow')); return;
      case 'write': {
        const d = root().openAt({}, args[2], { create: true, truncate: true }, { write: true });
        d.write(utf8(args[3]), 0);
        print('wrote');
        return;
      }
      case 'stream-write': {
        const d = root().openAt({}, args[2], { create: true, truncate: true }, { write: true });
        const s = d.writeViaStream(0);
        s.blockingWriteAndFlush(utf8(args[3]));
        s[Symbol.dispose]();
        const a = d.appendViaStream();
        a.blockingWriteAndFlush(utf8('+appended'));
        a[Symbol.dispose]();
        d[Symbol.dispose]();
        const r = root().openAt({}, args[2], {}, { read: true }).readViaStream(0);
        let text = '';
        for (;;) { try { text += latin1(r.blockingRead(4096)); } catch (e) { break; } }
        print(text);
        return;
      }
      case 'ls': {
        const d = root().openAt({}, args[2] || '.', { directory: true }, { read: true });
        const s = d.readDirectory();
        const names = [];
        for (let e; (e = s.readDirectoryEntry()) != null;) names.push(e.name + ':' + e.type);
        print(JSON.stringify(names.sort()));
        return;
      }
      case 'fsops': {
        const r = root();
        const log = [];
        log.push(attempt(() => r.createDirectoryAt('sub')));
        log.push(attempt(() => r.createDirectoryAt('sub')));
        log.push(attempt(() => { const d = r.openAt({}, 'sub/f.txt', { create: true, exclusive: true }, { write: true }); d.write(utf8('abc'), 0); return d.stat().size; }));
        log.push(attempt(() => r.statAt({}, 'sub/f.txt').type));
        log.push(attempt(() => r.renameAt('sub/f.txt', r, 'sub/g.txt')));
        log.push(attempt(() => r.statAt({}, 'sub/f.txt').type));
        log.push(attempt(() => r.symlinkAt('g.txt', 'sub/link')));
        log.push(attempt(() => r.readlinkAt('sub/link')));
        log.push(attempt(() => r.statAt({ symlinkFollow: true }, 'sub/link').size));
        log.push(attempt(() => r.statAt({}, 'sub/link').type));
        log.push(attempt(() => r.removeDirectoryAt('sub')));
        log.push(attempt(() => r.unlinkFileAt('sub/link')));
        log.push(attempt(() => r.unlinkFileAt('sub/g.txt')));
        log.push(attempt(() => r.removeDirectoryAt('sub')));
        log.push(attempt(() => r.unlinkFileAt('sub/g.txt')));
        print(log.join('\n'));
        return;
      }
      case 'attempt': {
        // attempt OP PATH [PATH2]: run one filesystem operation, print ok/err
        const r = root();
        const p = args[3], q = args[4];
        const ops = {
          open: () => tryOpen(r, p, true),
          'open-nofollow': () => tryOpen(r, p, false),
          create: () => { r.openAt({}, p, { create: true }, { write: true })[Symbol.dispose](); return 'created'; },
          write: () => { const d = r.openAt({ symlinkFollow: true }, p, {}, { write: true }); d.write(utf8('pwned'), 0); return 'written'; },
          truncate: () => { r.openAt({ symlinkFollow: true }, p, { truncate: true }, { write: true }); return 'truncated'; },
          stat: () => r.statAt({ symlinkFollow: true }, p).type,
          mkdir: () => r.createDirectoryAt(p),
          unlink: () => r.unlinkFileAt(p),
          rmdir: () => r.removeDirectoryAt(p),
          readlink: () => r.readlinkAt(p),
          symlink: () => r.symlinkAt(p, q),
          link: () => r.linkAt({}, p, r, q),
          'link-follow': () => r.linkAt({ symlinkFollow: true }, p, r, q),
          rename: () => r.renameAt(p, r, q),
          ls: () => { const s = r.openAt({ symlinkFollow: true }, p, { directory: true }, { read: true }).readDirectory(); const n = []; for (let e; (e = s.readDirectoryEntry()) != null;) n.push(e.name); return n.sort(); },
        };
        print(attempt(ops[args[2]]));
        return;
      }
      case 'race': {
        // open PATH N times; count what was read
        const r = root();
        const counts = {};
        for (let i = 0; i < Number(args[3]); i++) {
          const res = tryOpen(r, args[2], true);
          counts[res] = (counts[res] || 0) + 1;
        }
        print(JSON.stringify(counts));
        return;
      }
      case 'stdin': {
        const s = stdin.getStdin();
        let text = '';
        for (;;) { try { text += latin1(s.blockingRead(4096)); } catch (e) { break; } }
        print('stdin:' + text);
        return;
      }
      case 'sleep': {
        const t0 = mono.now();
        mono.subscribeDuration(Number(args[2]) * 1e6).block();
        const t1 = mono.now();
        print(JSON.stringify({ slept: (t1 - t0) >= Number(args[2]) * 1e6, wall: wall.now().seconds > 1600000000 }));
        return;
      }
      case 'random': {
        const b = random.getRandomBytes(32);
        const s = seed.insecureSeed();
        print(JSON.stringify({ len: b.length, seed: s.length }));
        return;
      }
      case 'preopens': print(JSON.stringify(preopens.getDirectories().map(([, name]) => name))); return;
      default: print('unknown command ' + cmd); throw 'usage';
    }
  },
};
`;

export const CMD_IMPORTS = [
  'cli/environment', 'cli/exit', 'cli/stdin', 'cli/stdout', 'cli/stderr',
  'filesystem/preopens', 'filesystem/types', 'clocks/monotonic-clock', 'clocks/wall-clock',
  'random/random', 'random/insecure-seed', 'io/streams', 'io/poll',
];

/** Runs a command component through the API; captures stdout and stderr. */
export async function runWithApi(
  wasm: string, args: string[], config: Omit<import('../../src/wasi/index.ts').WasiConfig, 'args' | 'stdout' | 'stderr'> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { Component } = await import('../../src/index.ts');
  const { createWasi, runCommand } = await import('../../src/wasi/index.ts');
  const component = compiled.get(wasm) ?? Component.compile(readFileSync(wasm));
  compiled.set(wasm, component);
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  const wasi = createWasi({ ...config, args: ['cmd', ...args], stdout: (b) => out.push(b), stderr: (b) => err.push(b) });
  try {
    const code = await runCommand(component.instantiate(wasi.imports));
    return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
  } finally {
    wasi.close();
  }
}
const compiled = new Map<string, import('../../src/index.ts').Component>();

/** Builds (or reuses) the argument-driven command component. */
export function buildCmd(): Promise<string> {
  return buildQjsComponent('wasi-cmd', commandWit('cmd', CMD_IMPORTS), 'cmd', CMD_JS);
}

/**
 * Builds (or reuses) a WASI 0.2 command with @bytecodealliance/componentize-js
 * (StarlingMonkey). Its CLI runs wizer through preview2-shim, which needs the
 * host root preopened: a `node --import` preload does `_addPreopen('/', '/')`.
 * wasi:http is disabled so that the command needs only the hosts Weir has.
 */
export async function buildComponentizeJs(name: string, world: string, imports: string[], js: string): Promise<string> {
  return componentizeJs(name, world, commandWit(world, imports), js, ['-d', 'http', 'fetch-event']);
}

/**
 * Builds (or reuses, cached under .cache/fixtures by a hash of every input) a
 * component from `js` and the world `world` in `wit` with componentize-js;
 * `extraArgs` go to its CLI (e.g. `-d http` to disable a feature).
 */
export async function componentizeJs(name: string, world: string, wit: string, js: string, extraArgs: string[] = []): Promise<string> {
  const { createHash } = await import('node:crypto');
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { mkdir, rename, rm, writeFile } = await import('node:fs/promises');

  const pkg = JSON.parse(readFileSync(join(repoRoot, 'node_modules', '@bytecodealliance', 'componentize-js', 'package.json'), 'utf8'));
  const hash = createHash('sha256').update(JSON.stringify({ tool: 'componentize-js', v: pkg.version, name, world, wit, js, extraArgs })).digest('hex').slice(0, 24);
  const dir = join(repoRoot, '.cache', 'fixtures', hash);
  const out = join(dir, `${name}.wasm`);
  if (existsSync(out)) return out;
  const stage = `${dir}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  await mkdir(join(stage, 'wit'), { recursive: true });
  try {
    await writeFile(join(stage, 'wit', `${world}.wit`), wit);
    await writeFile(join(stage, 'app.js'), js);
    // npm may install several copies of preview2-shim (nested under jco, jco-transpile, ...); the one
    // componentize-js ends up reading --wit through is an install detail, so grant the preopen in each.
    const preload = join(repoRoot, '.cache', 'componentize-js-preload.mjs');
    const shims = previewShimFilesystems();
    if (shims.length === 0) throw new Error('no @bytecodealliance/preview2-shim found under node_modules');
    await writeFile(preload, shims.map((f, i) => `import { _addPreopen as p${i} } from ${JSON.stringify(pathToFileURL(f).href)};\np${i}('/', '/');\n`).join(''));
    const cli = join(repoRoot, 'node_modules', '@bytecodealliance', 'componentize-js', 'src', 'cli.js');
    await promisify(execFile)(process.execPath, [
      '--import', preload, cli, join(stage, 'app.js'), '--wit', join(stage, 'wit'), '-n', world, ...extraArgs, '-o', join(stage, `${name}.wasm`),
    ], { cwd: stage, timeout: 300_000, maxBuffer: 16 << 20 });
    try { await rename(stage, dir); } catch (e) { if (!existsSync(out)) throw e; }
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
  return out;
}

/** The filesystem entry of every installed copy of @bytecodealliance/preview2-shim. */
function previewShimFilesystems(): string[] {
  const nm = join(repoRoot, 'node_modules');
  const dirs = [join(nm, '@bytecodealliance', 'preview2-shim')];
  for (const pkg of readdirSync(join(nm, '@bytecodealliance'))) dirs.push(join(nm, '@bytecodealliance', pkg, 'node_modules', '@bytecodealliance', 'preview2-shim'));
  const out: string[] = [];
  for (const d of dirs) {
    for (const rel of ['dist/nodejs/filesystem.js', 'lib/nodejs/filesystem.js']) {
      if (existsSync(join(d, rel))) { out.push(join(d, rel)); break; }
    }
  }
  return out;
}
