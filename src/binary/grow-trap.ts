// -W trap-on-grow-failure: make a failed `memory.grow` / `table.grow` trap
// instead of returning -1. V8 gives the host no hook into growth done by
// wasm code, so the guest's code is rewritten before compiling: after every
// grow instruction the result is kept in a fresh local, compared with -1, and
// `unreachable` runs when it is -1:
//
//   memory.grow m ; local.tee $t ; i32.const -1 ; i32.eq ; if ; unreachable ; end ; local.get $t
//
// (i64 for memory64 / table64). No index space changes (only locals are added
// to the rewritten functions), so calls, exports and element segments stay
// valid. A module using instructions this walker does not know is refused
// rather than half-rewritten.

import { LinkError } from '../errors.ts';
import { Reader } from './reader.ts';
import { pushLeb } from './leb.ts';
import { readCoreRecType, readCoreValType, readHeapType, readCoreRefType, readCoreGlobalType, skipConstExpr, type CoreTypeEntry } from './core-module.ts';

/** The module uses an instruction the rewriter does not know: it is refused, not half-rewritten. */
export class GrowTrapError extends LinkError {}

interface Site { at: number; is64: boolean }


function readLimitsIs64(r: Reader, memory: boolean): boolean {
  const flags = r.byte();
  const is64 = (flags & 0x04) !== 0;
  const skip = () => (is64 ? r.u64() : r.u32());
  skip();
  if (flags & 0x01) skip();
  if (memory && flags & 0x08) r.u32();
  return is64;
}

function blockType(r: Reader): void {
  const b = r.peek();
  if (b === 0x40) { r.pos++; return; }
  if (b >= 0x40 && b < 0x80) { readCoreValType(r); return; } // a one-byte negative s33: a value type
  r.s33(); // a type index
}

function memarg(r: Reader): void {
  const align = r.u32();
  if (align & 0x40) r.u32(); // memory index (multi-memory)
  r.skipLeb(10, 'memarg offset');
}

/**
 * Walks one function body's instructions from r.pos to r.end; returns the
 * positions just after each grow instruction, with the index type of its result.
 */
function findGrows(r: Reader, memories: boolean[], tables: boolean[]): Site[] {
  const sites: Site[] = [];
  const u = () => r.u32();
  const buf = r.buf;
  while (r.pos < r.end) {
    // fast paths: numeric instructions (no immediates) and local/global access with a one-byte index
    const b0 = buf[r.pos]!;
    if (b0 >= 0x45 && b0 <= 0xc4) { r.pos++; continue; }
    if (b0 >= 0x20 && b0 <= 0x24 && buf[r.pos + 1]! < 0x80) { r.pos += 2; continue; }
    const start = r.offset;
    const op = r.byte();
    switch (op) {
      case 0x00: case 0x01: case 0x05: case 0x0a: case 0x0b: case 0x0f: case 0x19: case 0x1a: case 0x1b:
      case 0xd1: case 0xd3: case 0xd4:
        break;
      case 0x02: case 0x03: case 0x04: case 0x06: blockType(r); break;
      case 0x07: case 0x08: case 0x09: case 0x0c: case 0x0d: case 0x10: case 0x12: case 0x14: case 0x15: case 0x18:
      case 0x20: case 0x21: case 0x22: case 0x23: case 0x24: case 0x25: case 0x26: case 0x3f:
      case 0xd2: case 0xd5: case 0xd6:
        u();
        break;
      case 0x0e: { const n = u(); for (let i = 0; i <= n; i++) u(); break; }
      case 0x11: case 0x13: u(); u(); break;
      case 0x1c: { const n = u(); for (let i = 0; i < n; i++) readCoreValType(r); break; }
      case 0x1f: {
        blockType(r);
        const n = u();
        for (let i = 0; i < n; i++) {
          const k = r.byte();
          if (k === 0x00 || k === 0x01) u();
          else if (k !== 0x02 && k !== 0x03) r.fail('try_table catch kind', r.offset - 1);
          u();
        }
        break;
      }
      case 0x40: {
        const m = u();
        sites.push({ at: r.pos, is64: memories[m] ?? false });
        break;
      }
      case 0x41: r.skipLeb(5); break;
      case 0x42: r.skipLeb(10); break;
      case 0x43: r.skip(4); break;
      case 0x44: r.skip(8); break;
      case 0xd0: readHeapType(r); break;
      case 0xfb: gcOp(r, start); break;
      case 0xfc: {
        const sub = u();
        if (sub <= 7) break;
        if (sub === 8 || sub === 10 || sub === 12 || sub === 14) { u(); u(); break; }
        if (sub === 9 || sub === 11 || sub === 13 || sub === 16 || sub === 17) { u(); break; }
        if (sub === 15) { const t = u(); sites.push({ at: r.pos, is64: tables[t] ?? false }); break; }
        throw new GrowTrapError(`-W trap-on-grow-failure: cannot rewrite instruction 0xfc ${sub} at byte ${start}`);
      }
      case 0xfd: simdOp(r, start); break;
      case 0xfe: {
        const sub = u();
        if (sub === 3) { r.byte(); break; }
        if (sub <= 2 || (sub >= 0x10 && sub <= 0x4e)) { memarg(r); break; }
        throw new GrowTrapError(`-W trap-on-grow-failure: cannot rewrite instruction 0xfe ${sub} at byte ${start}`);
      }
      default:
        if (op >= 0x28 && op <= 0x3e) { memarg(r); break; }
        if (op >= 0x45 && op <= 0xc4) break;
        throw new GrowTrapError(`-W trap-on-grow-failure: cannot rewrite instruction 0x${op.toString(16)} at byte ${start}`);
    }
  }
  return sites;
}

function gcOp(r: Reader, start: number): void {
  const sub = r.u32();
  switch (sub) {
    case 0: case 1: case 6: case 7: case 11: case 12: case 13: case 14: case 16: r.u32(); return;
    case 2: case 3: case 4: case 5: case 8: case 9: case 10: case 17: case 18: case 19: r.u32(); r.u32(); return;
    case 15: case 26: case 27: case 28: case 29: case 30: return;
    case 20: case 21: case 22: case 23: readHeapType(r); return;
    case 24: case 25: r.byte(); r.u32(); readHeapType(r); readHeapType(r); return;
    default: throw new GrowTrapError(`-W trap-on-grow-failure: cannot rewrite instruction 0xfb ${sub} at byte ${start}`);
  }
}

function simdOp(r: Reader, start: number): void {
  const sub = r.u32();
  if (sub <= 11 || sub === 92 || sub === 93) { memarg(r); return; }
  if (sub === 12 || sub === 13) { r.skip(16); return; }
  if (sub >= 21 && sub <= 34) { r.byte(); return; }
  if (sub >= 84 && sub <= 91) { memarg(r); r.byte(); return; }
  if (sub <= 0x113) return; // the rest (and relaxed SIMD) take no immediates
  throw new GrowTrapError(`-W trap-on-grow-failure: cannot rewrite instruction 0xfd ${sub} at byte ${start}`);
}

/** The code after a grow: traps on -1, leaves the result on the stack. */
function check(local: number, is64: boolean): number[] {
  const out = [0x22];
  pushLeb(out, local);
  out.push(is64 ? 0x42 : 0x41, 0x7f, is64 ? 0x51 : 0x46, 0x04, 0x40, 0x00, 0x0b, 0x20);
  pushLeb(out, local);
  return out;
}

/** Rewrites a valid core module so that failed grows trap; returns the input when it has none. */
export function trapOnGrowFailure(bytes: Uint8Array): Uint8Array {
  const r = new Reader(bytes, 0, 8);
  const types: CoreTypeEntry[] = [];
  const funcTypes: number[] = []; // type index of each function (imports first)
  const memories: boolean[] = [];
  const tables: boolean[] = [];
  let importedFuncs = 0;
  let code: { start: number; end: number; content: Chunks } | null = null;
  while (!r.eof) {
    const headerStart = r.pos;
    const id = r.byte();
    const size = r.u32();
    const s = r.sub(size);
    switch (id) {
      case 1: { const n = s.u32(); for (let i = 0; i < n; i++) readCoreRecType(s, types); break; }
      case 2: {
        const n = s.u32();
        for (let i = 0; i < n; i++) {
          s.name(); s.name();
          const kind = s.byte();
          if (kind === 0x00) { funcTypes.push(s.u32()); importedFuncs++; }
          else if (kind === 0x01) { readCoreRefType(s); tables.push(readLimitsIs64(s, false)); }
          else if (kind === 0x02) memories.push(readLimitsIs64(s, true));
          else if (kind === 0x03) readCoreGlobalType(s);
          else { s.byte(); s.u32(); }
        }
        break;
      }
      case 3: { const n = s.u32(); for (let i = 0; i < n; i++) funcTypes.push(s.u32()); break; }
      case 4: {
        const n = s.u32();
        for (let i = 0; i < n; i++) {
          const init = s.peek() === 0x40; // 0x40 0x00: a table with an initializer expression
          if (init) s.pos += 2;
          readCoreRefType(s);
          tables.push(readLimitsIs64(s, false));
          if (init) skipConstExpr(s);
        }
        break;
      }
      case 5: { const n = s.u32(); for (let i = 0; i < n; i++) memories.push(readLimitsIs64(s, true)); break; }
      case 10: {
        const n = s.u32();
        const content = new Chunks();
        content.leb(n);
        let changed = false;
        for (let i = 0; i < n; i++) {
          const entryStart = s.pos;
          const bodySize = s.u32();
          const body = s.sub(bodySize);
          const bodyStart = body.pos;
          const groups = body.u32();
          let locals = 0;
          for (let g = 0; g < groups; g++) { locals += body.u32(); readCoreValType(body); }
          const codeStart = body.pos;
          const sites = findGrows(body, memories, tables);
          if (sites.length === 0) {
            content.slice(bytes, entryStart, body.end); // size and body unchanged
            continue;
          }
          changed = true;
          const ft = types[funcTypes[importedFuncs + i]!];
          const params = ft && ft.kind === 'func' ? ft.params.length : 0;
          const base = params + locals;
          const need32 = sites.some((x) => !x.is64);
          const need64 = sites.some((x) => x.is64);
          const out = new Chunks();
          out.leb(groups + (need32 ? 1 : 0) + (need64 ? 1 : 0));
          out.slice(bytes, bodyStart + lebLength(bytes, bodyStart), codeStart);
          if (need32) out.bytes([1, 0x7f]);
          if (need64) out.bytes([1, 0x7e]);
          const l32 = base;
          const l64 = base + (need32 ? 1 : 0);
          let copied = codeStart;
          for (const site of sites) {
            out.slice(bytes, copied, site.at);
            out.bytes(check(site.is64 ? l64 : l32, site.is64));
            copied = site.at;
          }
          out.slice(bytes, copied, body.end);
          content.leb(out.length);
          content.append(out);
        }
        if (changed) code = { start: headerStart, end: s.end, content };
        break;
      }
      default: break;
    }
  }
  if (code === null) return bytes;
  const all = new Chunks();
  all.slice(bytes, 0, code.start);
  all.bytes([10]);
  all.leb(code.content.length);
  all.append(code.content);
  all.slice(bytes, code.end, bytes.length);
  return all.join();
}

/** Output built from slices of the input and small runs of new bytes, copied once at the end. */
class Chunks {
  parts: Uint8Array[] = [];
  length = 0;
  slice(b: Uint8Array, from: number, to: number): void { if (to > from) { this.parts.push(b.subarray(from, to)); this.length += to - from; } }
  bytes(xs: number[]): void { this.parts.push(Uint8Array.from(xs)); this.length += xs.length; }
  leb(v: number): void { const xs: number[] = []; pushLeb(xs, v); this.bytes(xs); }
  append(c: Chunks): void { for (const p of c.parts) this.parts.push(p); this.length += c.length; }
  join(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const p of this.parts) { out.set(p, o); o += p.length; }
    return out;
  }
}

function lebLength(bytes: Uint8Array, at: number): number {
  let n = 1;
  while (bytes[at + n - 1]! & 0x80) n++;
  return n;
}
