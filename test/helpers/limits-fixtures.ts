// WAT command components (wasi:cli/run@0.2.0) for the limit tests: each reports
// through its exit status (run returns ok → 0, err → 1; a trap → 134).

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tempDir } from './temp-dir.ts';
import { join } from 'node:path';
import { assembleText } from '../../src/wast/assemble.ts';

/** A command component around core module text `core`, which must export `run: (result i32)` (0 = ok). */
export const commandWat = (core: string, before = '', imports = '') => `(component
  ${before}
  (core module $m ${core})
  (core instance $i (instantiate $m ${imports}))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $r (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $r)))`;

/**
 * Grows one memory or table by one unit at a time up to `target` units; run
 * returns ok if it got there, err if a grow returned -1 first.
 */
export function growWat(kind: 'memory' | 'memory64' | 'shared' | 'table', target = 100): string {
  const t = kind === 'memory64' ? 'i64' : 'i32';
  const def = kind === 'memory' ? '(memory 1)' : kind === 'memory64' ? '(memory i64 1)' : kind === 'shared' ? `(memory 1 ${target * 2} shared)` : '(table 1 funcref)';
  const grow = kind === 'table' ? '(table.grow (ref.null func) (i32.const 1))' : `(memory.grow (${t}.const 1))`;
  const size = kind === 'table' ? '(table.size)' : '(memory.size)';
  return commandWat(`${def}
    (func (export "run") (result i32)
      (block $fail
        (loop $l
          (br_if $fail (${t}.eq ${grow} (${t}.const -1)))
          (br_if $l (${t}.lt_u ${size} (${t}.const ${target})))))
      (${t}.ne ${size} (${t}.const ${target})))`);
}

/** A memory whose minimum is `pages` pages (instantiation fails under a smaller max-memory-size). */
export const bigMinimumWat = (pages: number) => commandWat(`(memory ${pages}) (func (export "run") (result i32) (i32.const 0))`);

/** A table whose minimum is `n` elements. */
export const bigTableWat = (n: number) => commandWat(`(table ${n} funcref) (func (export "run") (result i32) (i32.const 0))`);

/** `copies` core instances of a module defining one memory and one table, plus the run module: copies + 1 instances. */
export const countsWat = (copies: number) => commandWat(
  '(func (export "run") (result i32) (i32.const 0))',
  `(core module $mt (memory 1) (table 1 funcref))\n${'  (core instance (instantiate $mt))\n'.repeat(copies)}`,
);

/** Creates `n` handles of a resource the component defines (resource.new in a loop), then returns ok. */
export const handlesWat = (n: number) => commandWat(`
    (import "" "new" (func $new (param i32) (result i32)))
    (func (export "run") (result i32) (local $i i32)
      (loop $l
        (drop (call $new (local.get $i)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const ${n}))))
      (i32.const 0))`,
  `(type $res (resource (rep i32)))
  (core func $new (canon resource.new $res))`,
  '(with "" (instance (export "new" (func $new))))');

/**
 * Writes `n` bytes ("hi\n" then zeros) to stdout in one call of the host's
 * output-stream.blocking-write-and-flush (a list<u8> argument); ok if it succeeded.
 */
export function writeWat(n: number): string {
  const pages = Math.ceil((n + 64) / 65536);
  return commandWat(`
    (import "" "mem" (memory 1))
    (import "" "get" (func $get (result i32)))
    (import "" "write" (func $write (param i32 i32 i32 i32)))
    (data (i32.const 16) "hi\\n")
    (func (export "run") (result i32)
      (call $write (call $get) (i32.const 16) (i32.const ${n}) (i32.const 0))
      (i32.load8_u (i32.const 0)))`,
  `(import "wasi:io/error@0.2.0" (instance $ioerr (export "error" (type (sub resource)))))
  (alias export $ioerr "error" (type $error))
  (import "wasi:io/streams@0.2.0" (instance $streams
    (export "error" (type $e (eq $error)))
    (export "output-stream" (type $os (sub resource)))
    (type $se (variant (case "last-operation-failed" (own $e)) (case "closed")))
    (export "stream-error" (type $se2 (eq $se)))
    (export "[method]output-stream.blocking-write-and-flush" (func (param "self" (borrow $os)) (param "contents" (list u8)) (result (result (error $se2)))))))
  (alias export $streams "output-stream" (type $ostream))
  (import "wasi:cli/stdout@0.2.0" (instance $stdout
    (export "output-stream" (type $os (eq $ostream)))
    (export "get-stdout" (func (result (own $os))))))
  (core module $memm (memory (export "mem") ${pages}))
  (core instance $memi (instantiate $memm))
  (alias core export $memi "mem" (core memory $mem))
  (core func $get (canon lower (func $stdout "get-stdout")))
  (core func $write (canon lower (func $streams "[method]output-stream.blocking-write-and-flush") (memory $mem)))`,
  '(with "" (instance (export "mem" (memory $mem)) (export "get" (func $get)) (export "write" (func $write))))');
}

/** Spins forever: in run, or (start) in the core start function (during instantiation). */
export const spinWat = (where: 'run' | 'start') => commandWat(where === 'run'
  ? '(func (export "run") (result i32) (loop $l (br $l)) (i32.const 0))'
  : '(func $spin (loop $l (br $l))) (start $spin) (func (export "run") (result i32) (i32.const 0))');

/** Blocks forever in a host call: wasi:clocks subscribe-duration(1 hour), then pollable.block. */
export const sleepWat = () => commandWat(`
    (import "" "sub" (func $sub (param i64) (result i32)))
    (import "" "block" (func $block (param i32)))
    (func (export "run") (result i32)
      (call $block (call $sub (i64.const 3600000000000)))
      (i32.const 0))`,
  `(import "wasi:io/poll@0.2.0" (instance $poll
    (export "pollable" (type $p (sub resource)))
    (export "[method]pollable.block" (func (param "self" (borrow $p))))))
  (alias export $poll "pollable" (type $pollable))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock
    (export "pollable" (type $p (eq $pollable)))
    (export "subscribe-duration" (func (param "when" u64) (result (own $p))))))
  (core func $sub (canon lower (func $clock "subscribe-duration")))
  (core func $block (canon lower (func $poll "[method]pollable.block")))`,
  '(with "" (instance (export "sub" (func $sub)) (export "block" (func $block))))');

/** Assembles `wat` into a fresh file in a temporary directory; returns its path. */
let dir: string | null = null;
export async function watFile(name: string, wat: string): Promise<string> {
  dir ??= tempDir('weir-limits-');
  const file = join(dir, `${name}.wasm`);
  writeFileSync(file, await assembleText(wat));
  return file;
}

/**
 * A WASI 0.3 command (componentize-qjs): `spin` awaits a 1 ms wait-for (so the
 * rest runs in a JSPI-resumed task) and then loops forever; `sleep` awaits a
 * one-hour wait-for. Undefined when the WASI 0.3 WIT is unavailable.
 */
export async function buildP3Spin(): Promise<string | undefined> {
  const { wasiP3WitDir, p3CommandWit } = await import('./wasi-p3-fixtures.ts');
  const { buildQjsComponent } = await import('./fixtures.ts');
  const dir = wasiP3WitDir();
  if (!dir) return undefined;
  const js = `import env from 'wasi:cli/environment@0.3.0';
import mono from 'wasi:clocks/monotonic-clock@0.3.0';
export const run = {
  async run() {
    const what = env.getArguments()[1];
    if (what === 'spin') { await mono.waitFor(1000000); for (;;) {} }
    if (what === 'sleep') await mono.waitFor(3600e9);
  },
};
`;
  return buildQjsComponent('limits-p3-spin', p3CommandWit(dir, 'cmd', ['cli/environment', 'clocks/monotonic-clock']), 'cmd', js);
}

/** A component whose `say(n)` passes the first n bytes of its memory to the host import `log(s: string)` (hostcall-fuel). */
export const logStringWat = `(component
  (import "log" (func $log (param "s" string)))
  (core module $mm (memory (export "mem") 1))
  (core instance $mi (instantiate $mm))
  (alias core export $mi "mem" (core memory $mem))
  (core func $log (canon lower (func $log) (memory $mem)))
  (core module $m (import "" "log" (func $log (param i32 i32)))
    (func (export "say") (param i32) (call $log (i32.const 0) (local.get 0))))
  (core instance $i (instantiate $m (with "" (instance (export "log" (func $log))))))
  (func (export "say") (param "n" u32) (canon lift (core func $i "say"))))`;
