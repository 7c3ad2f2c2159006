// JSPI entry trampolines. A core function that may suspend (a stackful task,
// a callback or thread start function in an instance that uses blocking
// built-ins) is entered through `WebAssembly.promising`, which always returns a
// Promise. To still learn a result synchronously when the callee did not
// suspend, the callee is wrapped in a tiny core module
//
//   (func (export "t") (param P*) (call $done (call $f (local.get 0..n))))
//
// whose `$done` import records the result before `promising` returns.

export type CoreValType = 'i32' | 'i64' | 'f32' | 'f64';

const VALTYPE: Record<CoreValType, number> = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c };

function uleb(n: number, out: number[]): void {
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
}

function section(id: number, body: number[], out: number[]): void {
  out.push(id);
  uleb(body.length, out);
  for (const b of body) out.push(b);
}

function funcType(params: readonly CoreValType[], results: readonly CoreValType[], out: number[]): void {
  out.push(0x60);
  uleb(params.length, out);
  for (const p of params) out.push(VALTYPE[p]);
  uleb(results.length, out);
  for (const r of results) out.push(VALTYPE[r]);
}

function str(s: string, out: number[]): void {
  uleb(s.length, out);
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
  for (let i = 0; i < params.length; i++) { body.push(0x20); uleb(i, body); }
  body.push(0x10, 0, 0x10, 1, 0x0b);
  const code: number[] = [1];
  uleb(body.length, code);
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

/** Wrap a JS import so that returning a Promise suspends the calling wasm stack. */
export function suspending(fn: Function): Function {
  return new (WebAssembly as any).Suspending(fn) as Function;
}
