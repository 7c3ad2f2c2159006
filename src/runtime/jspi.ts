// JSPI entry trampolines. A core function that may suspend (a stackful task,
// a callback or thread start function in an instance that uses blocking
// built-ins) is entered through `WebAssembly.promising`, which always returns a
// Promise. To still learn a result synchronously when the callee did not
// suspend, the callee is wrapped in a tiny core module
//
//   (func (export "t") (param P*) (call $done (call $f (local.get 0..n))))
//
// whose `$done` import records the result before `promising` returns.

import type { CoreValType } from '../types/types.ts';
import { pushLeb } from '../binary/leb.ts';
export type { CoreValType };

const VALTYPE: Record<string, number> = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b, funcref: 0x70, externref: 0x6f };

function section(id: number, body: number[], out: number[]): void {
  out.push(id);
  pushLeb(out, body.length);
  for (const b of body) out.push(b);
}

function funcType(params: readonly CoreValType[], results: readonly CoreValType[], out: number[]): void {
  out.push(0x60);
  pushLeb(out, params.length);
  for (const p of params) out.push(VALTYPE[p]!);
  pushLeb(out, results.length);
  for (const r of results) out.push(VALTYPE[r]!);
}

function str(s: string, out: number[]): void {
  pushLeb(out, s.length);
  for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i));
}

/** Encode the trampoline module for a core signature. */
export function trampolineBytes(params: readonly CoreValType[], results: readonly CoreValType[]): Uint8Array {
  const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const types: number[] = [3];
  funcType(params, results, types); // 0: callee
  funcType(results, [], types); // 1: done
  funcType(params, [], types); // 2: trampoline
  section(1, types, out);
  const imports: number[] = [2];
  str('', imports); str('f', imports); imports.push(0x00, 0);
  str('', imports); str('d', imports); imports.push(0x00, 1);
  section(2, imports, out);
  section(3, [1, 2], out);
  const exp: number[] = [1];
  str('t', exp); exp.push(0x00, 2);
  section(7, exp, out);
  const body: number[] = [0];
  for (let i = 0; i < params.length; i++) { body.push(0x20); pushLeb(body, i); }
  body.push(0x10, 0, 0x10, 1, 0x0b);
  const code: number[] = [1];
  pushLeb(code, body.length);
  code.push(...body);
  section(10, code, out);
  return Uint8Array.from(out);
}

const modules = new Map<string, WebAssembly.Module>();

/**
 * `promising(trampoline(f))`: call it with the core arguments; `done` receives
 * the callee's result (undefined when it has none) when it returns.
 */
export function promisingEntry(
  f: Function, params: readonly CoreValType[], results: readonly CoreValType[], done: (v: unknown) => void,
): (...args: unknown[]) => Promise<unknown> {
  const key = `${params.join(',')}>${results.join(',')}`;
  let m = modules.get(key);
  if (!m) {
    m = new WebAssembly.Module(trampolineBytes(params, results) as Uint8Array<ArrayBuffer>);
    modules.set(key, m);
  }
  const inst = new WebAssembly.Instance(m, { '': { f, d: done } });
  return (WebAssembly as any).promising(inst.exports.t) as (...args: unknown[]) => Promise<unknown>;
}

// A `WebAssembly.Suspending` import always suspends the calling stack, even when
// the JS function returns a plain value. Built-ins that only sometimes block are
// therefore imported through an adapter
//
//   (func (param P*) (result R?)
//     (call $fast (local.get 0..n))      ;; the built-in; sets $blocked when it must wait
//     (if (global.get $blocked) (then (drop) (call $wait))))   ;; Suspending: returns the pending Promise
//
// so that only a real block suspends.

const blockedFlag = new WebAssembly.Global({ value: 'i32', mutable: true }, 0);
let pendingBlock: Promise<unknown> | null = null;
const waitImport = new (WebAssembly as any).Suspending(() => {
  blockedFlag.value = 0;
  const p = pendingBlock;
  pendingBlock = null;
  return p;
});

/** Encode the blocking adapter module for a core signature (at most one result). */
export function blockingAdapterBytes(params: readonly CoreValType[], results: readonly CoreValType[]): Uint8Array {
  const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const types: number[] = [2];
  funcType(params, results, types); // 0: fast / adapter
  funcType([], results, types); // 1: wait
  section(1, types, out);
  const imports: number[] = [3];
  str('', imports); str('f', imports); imports.push(0x00, 0);
  str('', imports); str('w', imports); imports.push(0x00, 1);
  str('', imports); str('b', imports); imports.push(0x03, 0x7f, 0x01);
  section(2, imports, out);
  section(3, [1, 0], out);
  const exp: number[] = [1];
  str('a', exp); exp.push(0x00, 2);
  section(7, exp, out);
  const body: number[] = [0];
  for (let i = 0; i < params.length; i++) { body.push(0x20); pushLeb(body, i); }
  body.push(0x10, 0); // call $fast
  body.push(0x23, 0); // global.get $blocked
  if (results.length === 0) {
    body.push(0x04, 0x40, 0x10, 1, 0x0b); // if (call $wait) end
  } else {
    // if (param R) (result R) needs a type index: use an empty-block `if` around a select instead
    body.push(0x04, 0x40); // if
    body.push(0x10, 1); // call $wait -> R
    body.push(0x0c, 1); // br 1 (return from the function body block with R on the stack)
    body.push(0x0b); // end
  }
  body.push(0x0b);
  const code: number[] = [1];
  pushLeb(code, body.length);
  code.push(...body);
  section(10, code, out);
  return Uint8Array.from(out);
}

const zeroOf = (t: CoreValType | undefined): unknown => (t === 'i64' ? 0n : t === undefined ? undefined : 0);

/**
 * A core import for a built-in that may block: `fn` returns its result, or a
 * Promise of it when it blocked (then the calling stack suspends).
 */
export function blockingImport(fn: Function, params: readonly CoreValType[], results: readonly CoreValType[]): Function {
  const key = `b:${params.join(',')}>${results.join(',')}`;
  let m = modules.get(key);
  if (!m) {
    m = new WebAssembly.Module(blockingAdapterBytes(params, results) as Uint8Array<ArrayBuffer>);
    modules.set(key, m);
  }
  const dummy = zeroOf(results[0]);
  const fast = (...args: unknown[]) => {
    const r = fn(...args);
    if (r instanceof Promise) {
      pendingBlock = r;
      blockedFlag.value = 1;
      return dummy;
    }
    return r;
  };
  const inst = new WebAssembly.Instance(m, { '': { f: fast, w: waitImport, b: blockedFlag } });
  return inst.exports.a as Function;
}
