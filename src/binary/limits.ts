// Compile-time limits (wasmtime's `-W max-memory-size`, `-W max-table-elements`,
// `-W trap-on-grow-failure`): V8 enforces a memory's or table's declared
// maximum itself, so before a core module is compiled the maximum of every
// memory and table it defines or imports is clamped to the limit, and
// `memory.grow` / `table.grow` past it returns -1 exactly as the spec says.
// Counting and per-instance limits live in src/runtime/limits.ts.

import { Reader } from './reader.ts';
import { pushLeb } from './leb.ts';
import { readCoreGlobalType, readCoreRefType, skipConstExpr } from './core-module.ts';
import { trapOnGrowFailure } from './grow-trap.ts';

/** Limits fixed when a component is compiled (they change the core modules). */
export interface CompileLimits {
  /** bytes: the most each linear memory may grow to (default: unlimited) */
  maxMemorySize?: number;
  /** elements: the most each table may grow to (default: unlimited) */
  maxTableElements?: number;
  /** a memory.grow or table.grow that fails traps (`unreachable`) instead of returning -1 (grow-trap.ts) */
  trapOnGrowFailure?: boolean;
}

// ---------------------------------------------------------------- core modules

export interface ModuleInfo {
  /** memories and tables the module defines (not imports) */
  memories: number;
  tables: number;
  /** why the module cannot be instantiated under the limits (a minimum above a maximum) */
  error: string | null;
}

const moduleInfo = new WeakMap<WebAssembly.Module, ModuleInfo>();


/** One limits field found in a module, with the byte range it occupies. */
interface LimitsAt {
  start: number;
  end: number;
  what: 'memory' | 'table';
  flags: number;
  min: number;
  max: number | null;
  is64: boolean;
  /** memory only: log2 of the page size (custom-page-sizes), 16 by default */
  pageLog2: number;
  pageLog2Present: boolean;
}

function readBound(r: Reader, is64: boolean): number {
  return is64 ? Number(r.u64()) : r.u32();
}

function readLimitsAt(r: Reader, what: 'memory' | 'table'): LimitsAt {
  const start = r.pos;
  const flags = r.byte();
  const is64 = (flags & 0x04) !== 0;
  const min = readBound(r, is64);
  const max = flags & 0x01 ? readBound(r, is64) : null;
  const pageLog2Present = what === 'memory' && (flags & 0x08) !== 0;
  const pageLog2 = pageLog2Present ? r.u32() : 16;
  return { start, end: r.pos, what, flags, min, max, is64, pageLog2, pageLog2Present };
}

/** The largest maximum the spec allows for the limits' index type and page size. */
function specMax(l: LimitsAt): number {
  if (l.what === 'table') return l.is64 ? Number.MAX_SAFE_INTEGER : 2 ** 32 - 1;
  return l.is64 ? Math.floor(Number.MAX_SAFE_INTEGER / 2 ** l.pageLog2) : 2 ** (32 - l.pageLog2);
}

/**
 * Scan a valid core module: count its memories and tables, and when `limits`
 * sets a maximum, clamp the maximum of every memory and table type (defined
 * or imported). Returns the bytes to compile (the input when unchanged).
 */
export function applyCompileLimits(bytes: Uint8Array, limits: CompileLimits | undefined): { bytes: Uint8Array; info: ModuleInfo } {
  const info: ModuleInfo = { memories: 0, tables: 0, error: null };
  const memLimit = limits?.maxMemorySize;
  const tableLimit = limits?.maxTableElements;
  const clamp = memLimit !== undefined || tableLimit !== undefined;
  const r = new Reader(bytes, 0, 8);
  // sections to re-emit: [start of section header, end of section, new content]
  const edits: { start: number; end: number; content: number[] }[] = [];
  while (!r.eof) {
    const headerStart = r.pos;
    const id = r.byte();
    const size = r.u32();
    const s = r.sub(size);
    if (id !== 2 && id !== 4 && id !== 5) continue;
    const found: LimitsAt[] = [];
    const n = s.u32();
    if (id === 4) info.tables = n;
    if (id === 5) info.memories = n;
    if (!clamp) continue;
    for (let i = 0; i < n; i++) {
      if (id === 2) {
        s.name();
        s.name();
        const kind = s.byte();
        switch (kind) {
          case 0x00: s.u32(); break;
          case 0x01: readCoreRefType(s); found.push(readLimitsAt(s, 'table')); break;
          case 0x02: found.push(readLimitsAt(s, 'memory')); break;
          case 0x03: readCoreGlobalType(s); break;
          case 0x04: s.byte(); s.u32(); break;
          default: s.fail('import kind');
        }
      } else if (id === 4) {
        const init = s.peek() === 0x40;
        if (init) s.pos += 2;
        readCoreRefType(s);
        found.push(readLimitsAt(s, 'table'));
        if (init) skipConstExpr(s);
      } else {
        found.push(readLimitsAt(s, 'memory'));
      }
    }
    const content: number[] = [];
    let copied = s.end - size; // the section content's first byte
    let changed = false;
    for (const l of found) {
      const replacement = clampedLimits(l, memLimit, tableLimit, info);
      if (replacement === null) continue;
      changed = true;
      for (let p = copied; p < l.start; p++) content.push(bytes[p]!);
      content.push(...replacement);
      copied = l.end;
    }
    if (!changed) continue;
    for (let p = copied; p < s.end; p++) content.push(bytes[p]!);
    edits.push({ start: headerStart, end: s.end, content: [id, ...lebBytes(content.length), ...content] });
  }
  if (edits.length === 0) return { bytes, info };
  const parts: Uint8Array[] = [];
  let at = 0;
  for (const e of edits) {
    parts.push(bytes.subarray(at, e.start), Uint8Array.from(e.content));
    at = e.end;
  }
  parts.push(bytes.subarray(at));
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return { bytes: out, info };
}

function lebBytes(v: number): number[] {
  const out: number[] = [];
  pushLeb(out, v);
  return out;
}

/** The new encoding of `l` under the limits, or null when it is unchanged. Records a minimum above the limit in `info`. */
function clampedLimits(l: LimitsAt, memLimit: number | undefined, tableLimit: number | undefined, info: ModuleInfo): number[] | null {
  let limit: number;
  if (l.what === 'memory') {
    if (memLimit === undefined) return null;
    limit = Math.floor(memLimit / 2 ** l.pageLog2);
  } else {
    if (tableLimit === undefined) return null;
    limit = tableLimit;
  }
  limit = Math.min(limit, specMax(l));
  if (l.min > limit) {
    info.error ??= l.what === 'memory'
      ? `memory minimum size of ${l.min} pages exceeds memory limits (max-memory-size ${memLimit} bytes allows ${limit} pages)`
      : `table minimum size of ${l.min} elements exceeds table limits (max-table-elements ${tableLimit})`;
    return null;
  }
  const max = l.max === null ? limit : Math.min(l.max, limit);
  if (max === l.max) return null;
  const out = [l.flags | 0x01];
  pushLeb(out, l.min);
  pushLeb(out, max);
  if (l.pageLog2Present) pushLeb(out, l.pageLog2);
  return out;
}

/** Compile a core module under compile-time limits, remembering what instantiation must check. */
export function compileLimitedModule(bytes: Uint8Array, limits: CompileLimits | undefined): WebAssembly.Module {
  const { bytes: clamped, info } = applyCompileLimits(bytes, limits);
  const out = limits?.trapOnGrowFailure ? trapOnGrowFailure(clamped) : clamped;
  const m = new WebAssembly.Module(out as Uint8Array<ArrayBuffer>);
  moduleInfo.set(m, info);
  return m;
}

/** What compiling `m` under limits recorded (undefined for modules Weir did not compile). */
export function moduleLimitInfo(m: WebAssembly.Module): ModuleInfo | undefined {
  return moduleInfo.get(m);
}
