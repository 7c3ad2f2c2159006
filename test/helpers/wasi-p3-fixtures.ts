// WASI 0.3 command components built with componentize-qjs during the tests.
//
// The WIT given to componentize-qjs is one file: the test world plus the
// wasi:* 0.3.0 packages (jco's bundled copy, or WEIR_WASI_P3_WIT: a folder
// with one sub-folder of .wit files per package) as nested package blocks.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildQjsComponent, repoRoot } from './fixtures.ts';

/** Where the WASI 0.3.0 WIT packages are (one folder per package). */
export function wasiP3WitDir(): string | undefined {
  const candidates = [
    process.env.WEIR_WASI_P3_WIT,
    join(repoRoot, 'node_modules', '@bytecodealliance', 'jco', 'lib', 'wit', 'builtin', '0.3.0'),
  ];
  return candidates.find((d): d is string => !!d && (existsSync(join(d, 'cli')) || existsSync(join(d, 'wasi-cli'))));
}

/** The wasi:* 0.3.0 packages as nested `package … { … }` blocks. */
export function wasiP3DepsWit(dir: string, packages = ['cli', 'clocks', 'filesystem', 'random', 'sockets']): string {
  return packages.map((p) => {
    let name = '';
    const pdir = existsSync(join(dir, `wasi-${p}`)) ? join(dir, `wasi-${p}`) : join(dir, p);
    const bodies = readdirSync(pdir).filter((f) => f.endsWith('.wit')).sort().map((f) => {
      return readFileSync(join(pdir, f), 'utf8').replace(/^package ([^;]+);/m, (_m, n: string) => { name = n; return ''; });
    });
    return `package ${name} {\n${bodies.join('\n')}\n}\n`;
  }).join('\n');
}

export const P3_IMPORTS = [
  'cli/environment', 'cli/exit', 'cli/stdin', 'cli/stdout', 'cli/stderr',
  'clocks/monotonic-clock', 'clocks/system-clock', 'filesystem/preopens', 'filesystem/types',
  'random/random', 'random/insecure-seed',
];

export function p3CommandWit(dir: string, world: string, imports: string[]): string {
  return `package test:${world};

world ${world} {
${imports.map((i) => `  import wasi:${i}@0.3.0;`).join('\n')}
  export wasi:cli/run@0.3.0;
}

${wasiP3DepsWit(dir)}`;
}

/**
 * A WASI 0.3 command driven by its arguments (argv[1] picks the action). All
 * output goes through stdout/stderr `write-via-stream`; files are read and
 * written through the descriptor's streams. Paths are relative to the first preopen.
 */
export const P3_CMD_JS = String.raw`
import env from 'wasi:cli/environment@0.3.0';
import exit from 'wasi:cli/exit@0.3.0';
import stdin from 'wasi:cli/stdin@0.3.0';
import stdout from 'wasi:cli/stdout@0.3.0';
import stderr from 'wasi:cli/stderr@0.3.0';
import mono from 'wasi:clocks/monotonic-clock@0.3.0';
import sys from 'wasi:clocks/system-clock@0.3.0';
import preopens from 'wasi:filesystem/preopens@0.3.0';
import random from 'wasi:random/random@0.3.0';

function utf8(s) { const b = unescape(encodeURIComponent(s)); const out = new Uint8Array(b.length); for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i); return out; }
function text(bytes) { let s = ''; for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]); return decodeURIComponent(escape(s)); }
function concat(chunks) { let n = 0; for (const c of chunks) n += c.length; const out = new Uint8Array(n); let o = 0; for (const c of chunks) { out.set(c, o); o += c.length; } return out; }
function tagOf(e) { if (e && e.payload !== undefined) e = e.payload; return typeof e === 'string' ? e : (e && e.tag) ? e.tag : String(e && e.message !== undefined ? e.message : e); }

/** Write bytes to a host sink taking a stream<u8>; resolves with the sink's result. */
// componentize-qjs numbers each stream<u8> type it meets: the stdio ones come
// first (U8), the filesystem's second (U8_2).
async function send(writeViaStream, bytes, type = wit.Stream.U8) {
  const { readable, writable } = wit.Stream(type);
  const done = writeViaStream(readable);
  await writable.writeAll(bytes);
  writable.drop();
  return done.read();
}
/** The payload of a future<result<_, error-code>>, as 'ok' or 'err:<code>'. */
async function outcome(future) {
  const r = await future.read();
  return r && r.tag === 'err' ? 'err:' + tagOf(r.val) : 'ok';
}
const print = (s) => send(stdout.writeViaStream, utf8(s + '\n'));

async function readAll(readable) { const chunks = []; for await (const c of readable) chunks.push(c); return concat(chunks); }
function root() { const ds = preopens.getDirectories(); if (ds.length === 0) throw 'no preopen'; return ds[0][0]; }
const READ = { read: true };
const WRITE = { write: true };

export const run = {
  async run() {
    const args = env.getArguments();
    const cmd = args[1];
    switch (cmd) {
      case 'hello': await print('hello, world'); return;
      case 'args': await print(JSON.stringify(args)); return;
      case 'env': await print(JSON.stringify(env.getEnvironment())); return;
      case 'stderr': await send(stderr.writeViaStream, utf8(args[2] + '\n')); return;
      case 'exit': exit.exitWithCode(Number(args[2])); await print('not reached'); return;
      case 'exit-result': exit.exit(args[2] === 'ok' ? { tag: 'ok' } : { tag: 'err' }); return;
      case 'fail': throw 'failed';
      case 'cat': {
        // stdin -> guest memory -> stdout, chunk by chunk.
        const [input, inputDone] = stdin.readViaStream();
        const { readable, writable } = wit.Stream(wit.Stream.U8);
        const done = stdout.writeViaStream(readable);
        for await (const chunk of input) await writable.writeAll(chunk);
        writable.drop();
        await inputDone.read();
        await done.read();
        return;
      }
      case 'cat-direct': {
        // The host's stdin stream handed straight back to the host's stdout.
        const [input, inputDone] = stdin.readViaStream();
        await stdout.writeViaStream(input).read();
        await inputDone.read();
        return;
      }
      case 'stdin': { const [input, done] = stdin.readViaStream(); await print('stdin:' + text(await readAll(input)) + ' ' + await outcome(done)); return; }
      case 'read-dir-as-file': {
        // read-via-stream on a directory: an empty stream and err(is-directory) in the future.
        const [data, done] = root().readViaStream(0);
        const bytes = await readAll(data);
        await print(bytes.length + ' ' + await outcome(done));
        return;
      }
      case 'read': {
        const f = await root().openAt({}, args[2], {}, READ);
        const [data, done] = f.readViaStream(Number(args[3] || 0));
        const bytes = await readAll(data);
        await print('read:' + text(bytes) + ' ' + await outcome(done));
        return;
      }
      case 'count': {
        // Reads a file through read-via-stream and prints the number of bytes (bench).
        const f = await root().openAt({}, args[2], {}, READ);
        const [data, done] = f.readViaStream(0);
        let n = 0;
        for await (const c of data) n += c.length;
        await done.read();
        await print('bytes:' + n);
        return;
      }
      case 'write': case 'append': {
        const f = await root().openAt({}, args[2], { create: true }, WRITE);
        const bytes = utf8(args[3]);
        const r = cmd === 'write' ? await send((s) => f.writeViaStream(s, Number(args[4] || 0)), bytes, wit.Stream.U8_2)
          : await send((s) => f.appendViaStream(s), bytes, wit.Stream.U8_2);
        const st = await f.stat();
        await print('size:' + st.size + ' ' + (r && r.tag ? r.tag : r));
        return;
      }
      case 'ls': {
        const [entries, done] = root().readDirectory();
        const names = [];
        for await (const e of entries) names.push(e.name + ':' + e.type.tag);
        names.sort();
        await print(JSON.stringify(names) + ' ' + await outcome(done));
        return;
      }
      case 'attempt': {
        try {
          const d = root();
          switch (args[2]) {
            case 'open': await d.openAt({}, args[3], {}, READ); break;
            case 'mkdir': await d.createDirectoryAt(args[3]); break;
            case 'stat': await print(JSON.stringify((await d.statAt({}, args[3])).type)); break;
          }
          await print('ok');
        } catch (e) {
          await print('err:' + tagOf(e));
        }
        return;
      }
      case 'sleep': {
        const ms = Number(args[2]);
        const t0 = mono.now();
        await mono.waitFor(ms * 1e6);
        const t1 = mono.now();
        await print(JSON.stringify({ slept: (t1 - t0) >= ms * 1e6, wall: Number(sys.now().seconds) > 1600000000 }));
        return;
      }
      case 'types': await print(JSON.stringify(wit.Stream.types)); return;
      case 'random': { const b = random.getRandomBytes(32); await print('random:' + b.length); return; }
      default: await print('unknown command ' + cmd); throw 'usage';
    }
  },
};
`;

/** Builds (or reuses) the argument-driven WASI 0.3 command component; undefined when the WIT is unavailable. */
export async function buildP3Cmd(): Promise<string | undefined> {
  const dir = wasiP3WitDir();
  if (!dir) return undefined;
  return buildQjsComponent('wasi-p3-cmd', p3CommandWit(dir, 'cmd', P3_IMPORTS), 'cmd', P3_CMD_JS);
}
