// Type-directed conversion of lifted values for the host: inside the runtime a
// lifted stream/future is its shared state (so it can pass between guests
// without copies); the host sees a ReadableStream / Promise instead.

import type { FuncType, ValType } from '../types/types.ts';
import { lowerCamelCase } from '../abi/values.ts';
import { GuestByteStream, GuestFutureValue, guestFutureToJs, guestStreamToJs } from './host-streams.ts';
import type { SharedFuture, SharedStream } from './streams.ts';

type Conv = (v: unknown) => unknown;

const convCache = new WeakMap<ValType, Conv | null>();
/** Converters for host functions marked with `streamHandles` (a stream<u8> becomes a GuestByteStream). */
const handleConvCache = new WeakMap<ValType, Conv | null>();

function containsAsync(t: ValType, seen: Set<ValType> = new Set()): boolean {
  if (seen.has(t)) return false;
  seen.add(t);
  switch (t.kind) {
    case 'stream': case 'future': return true;
    case 'record': return t.fields.some((f) => containsAsync(f.type, seen));
    case 'variant': return t.cases.some((c) => c.type !== null && containsAsync(c.type, seen));
    case 'list': return containsAsync(t.elem, seen);
    case 'tuple': return t.types.some((x) => containsAsync(x, seen));
    case 'option': return containsAsync(t.type, seen);
    case 'result': return (t.ok !== null && containsAsync(t.ok, seen)) || (t.err !== null && containsAsync(t.err, seen));
    case 'map': return containsAsync(t.key, seen) || containsAsync(t.value, seen);
  }
  return false;
}

const id: Conv = (v) => v;

/** A converter for values of `t`, or null when values of `t` need none. */
export function toJsConv(t: ValType, handles = false): Conv | null {
  const cache = handles ? handleConvCache : convCache;
  if (cache.has(t)) return cache.get(t)!;
  const c = containsAsync(t) ? build(t, handles) : null;
  cache.set(t, c);
  return c;
}

function build(t: ValType, handles: boolean): Conv {
  const sub = (u: ValType | null): Conv => (u === null ? id : (toJsConv(u, handles) ?? id));
  switch (t.kind) {
    case 'stream': {
      if (handles && t.elem !== null && t.elem.kind === 'u8') return (v) => new GuestByteStream(v as SharedStream);
      const e = sub(t.elem);
      return (v) => guestStreamToJs(v as SharedStream, e);
    }
    case 'future': {
      const e = sub(t.elem);
      if (handles) return (v) => new GuestFutureValue(v as SharedFuture, e);
      return (v) => guestFutureToJs(v as SharedFuture, e);
    }
    case 'record': {
      const fs = t.fields.map((f) => [lowerCamelCase(f.name), sub(f.type)] as const);
      return (v) => {
        const o = v as Record<string, unknown>;
        for (const [k, c] of fs) o[k] = c(o[k]);
        return o;
      };
    }
    case 'tuple': {
      const cs = t.types.map(sub);
      return (v) => {
        const a = v as unknown[];
        for (let i = 0; i < cs.length; i++) a[i] = cs[i]!(a[i]);
        return a;
      };
    }
    case 'list': {
      const c = sub(t.elem);
      return (v) => {
        const a = v as unknown[];
        for (let i = 0; i < a.length; i++) a[i] = c(a[i]);
        return a;
      };
    }
    case 'option': {
      const c = sub(t.type);
      const nested = t.type.kind === 'option';
      return (v) => {
        if (v === undefined) return v;
        if (nested) {
          const o = v as { tag: string; val?: unknown };
          if (o.tag === 'some') o.val = c(o.val);
          return o;
        }
        return c(v);
      };
    }
    case 'result': {
      const ok = sub(t.ok), err = sub(t.err);
      return (v) => {
        const o = v as { tag: string; val?: unknown };
        if (o.tag === 'ok') o.val = ok(o.val);
        else o.val = err(o.val);
        return o;
      };
    }
    case 'variant': {
      const cs = new Map(t.cases.map((c) => [c.name, sub(c.type)]));
      return (v) => {
        const o = v as { tag: string; val?: unknown };
        const c = cs.get(o.tag);
        if (c) o.val = c(o.val);
        return o;
      };
    }
    case 'map': {
      const kc = sub(t.key), vc = sub(t.value);
      return (v) => {
        const m = v as Map<unknown, unknown>;
        const out = new Map<unknown, unknown>();
        for (const [k, x] of m) out.set(kc(k), vc(x));
        return out;
      };
    }
  }
  return id;
}

const resultConvCache = new WeakMap<FuncType, Conv | null>();
const argsConvCache = new WeakMap<FuncType, ((args: unknown[]) => unknown[]) | null>();
const handleArgsConvCache = new WeakMap<FuncType, ((args: unknown[]) => unknown[]) | null>();

/** Converter for a function's lifted result on its way to the host. */
export function resultToJs(ft: FuncType): Conv | null {
  if (resultConvCache.has(ft)) return resultConvCache.get(ft)!;
  const c = ft.result ? toJsConv(ft.result) : null;
  resultConvCache.set(ft, c);
  return c;
}

/**
 * Converter for lifted arguments on their way to a host function. With
 * `handles` (a function marked with `streamHandles`), stream<u8> arguments
 * arrive as GuestByteStream rather than web ReadableStream.
 */
export function hostArgsToJs(ft: FuncType, handles = false): ((args: unknown[]) => unknown[]) | null {
  const cache = handles ? handleArgsConvCache : argsConvCache;
  if (cache.has(ft)) return cache.get(ft)!;
  const cs = ft.params.map((p) => toJsConv(p.type, handles));
  const c = cs.some((x) => x !== null)
    ? (args: unknown[]) => {
      for (let i = 0; i < cs.length; i++) { const f = cs[i]; if (f) args[i] = f(args[i]); }
      return args;
    }
    : null;
  cache.set(ft, c);
  return c;
}
