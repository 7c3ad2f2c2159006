// Extracts the import/export signature of a core wasm module (CoreModuleType).
// Only the sections that shape imports/exports are parsed; everything else is
// skipped by size. V8 fully validates the module later, so this parser only has
// to be right for valid modules and fail cleanly (DecodeError) on malformed ones.

import { DecodeError } from '../errors.ts';
import type { CoreExternType, CoreFuncType, CoreModuleType, CoreValType } from './ast.ts';
import { Reader } from './reader.ts';

/**
 * One entry of a core type index space. Function types are fully resolved;
 * struct/array/continuation types are only recorded so indices line up.
 */
export type CoreTypeEntry = CoreFuncType | { kind: 'struct' } | { kind: 'array' } | { kind: 'cont' };

// ---- value types ----

/** Read a heap type (after `ref`/`ref null` or in `ref.null`): abstract (incl. `shared`) or a type index. */
export function readHeapType(r: Reader): number {
  const b = r.peek();
  if (b === 0x65) {
    // shared abstract heap type
    r.pos++;
    const start = r.offset;
    const ht = r.s33();
    if (ht >= 0) r.fail('abstract heap type after `shared`', start);
    return ht;
  }
  return r.s33();
}

const ABSTRACT_REF_BYTES = new Set([
  0x73, 0x72, 0x71, 0x70, 0x6f, 0x6e, 0x6d, 0x6c, 0x6b, 0x6a, 0x69, 0x74, 0x68, 0x75,
]);

/** Map a reference-type byte (already consumed) to a CoreValType, reading any heap type that follows. */
function readRefTypeAfter(r: Reader, b: number, start: number): CoreValType {
  if (b === 0x70) return 'funcref';
  if (b === 0x6f) return 'externref';
  if (b === 0x63 || b === 0x64) {
    const shared = r.peek() === 0x65;
    const ht = readHeapType(r);
    if (b === 0x63 && !shared) {
      // (ref null func) ≡ funcref, (ref null extern) ≡ externref
      if (ht === -0x10) return 'funcref';
      if (ht === -0x11) return 'externref';
    }
    return 'ref';
  }
  if (ABSTRACT_REF_BYTES.has(b)) return 'ref';
  if (b === 0x65) {
    // shorthand `shared` abstract reference (shared-everything-threads)
    const hb = r.byte();
    if (!ABSTRACT_REF_BYTES.has(hb)) r.fail('abstract heap type after `shared`', r.offset - 1);
    return 'ref';
  }
  return r.fail('value type', start);
}

/** Read a core value type (number, vector or reference type). */
export function readCoreValType(r: Reader): CoreValType {
  const start = r.offset;
  const b = r.byte();
  switch (b) {
    case 0x7f: return 'i32';
    case 0x7e: return 'i64';
    case 0x7d: return 'f32';
    case 0x7c: return 'f64';
    case 0x7b: return 'v128';
    default: return readRefTypeAfter(r, b, start);
  }
}

/** Read a reference type (table element type). */
export function readCoreRefType(r: Reader): CoreValType {
  const start = r.offset;
  const b = r.byte();
  if (b >= 0x7b && b <= 0x7f) r.fail('reference type', start);
  return readRefTypeAfter(r, b, start);
}

/** Read the body of a function type (after the 0x60 byte): params and results. */
export function readCoreFuncTypeBody(r: Reader): CoreFuncType {
  const params = r.vec(readCoreValType, 'parameter types');
  const results = r.vec(readCoreValType, 'result types');
  return { kind: 'func', params, results };
}

function readStorageType(r: Reader): void {
  const b = r.peek();
  if (b === 0x78 || b === 0x77) {
    r.pos++; // packed i8 / i16
    return;
  }
  readCoreValType(r);
}

function readFieldType(r: Reader): void {
  readStorageType(r);
  const start = r.offset;
  const m = r.byte();
  if (m > 1) r.fail('field mutability (0x00 or 0x01)', start);
}

/** Read a composite type: func, struct, array, cont (optionally `shared`-prefixed). */
export function readCoreCompType(r: Reader): CoreTypeEntry {
  const start = r.offset;
  const b = r.byte();
  switch (b) {
    case 0x60:
      return readCoreFuncTypeBody(r);
    case 0x5f:
      r.vec((rr) => readFieldType(rr), 'struct fields');
      return { kind: 'struct' };
    case 0x5e:
      readFieldType(r);
      return { kind: 'array' };
    case 0x5d:
      r.u32(); // cont $functype
      return { kind: 'cont' };
    case 0x65:
      return readCoreCompType(r); // shared
    default:
      return r.fail('composite type (func 0x60, struct 0x5f, array 0x5e)', start);
  }
}

/** Read a subtype (`sub`, `sub final`, or a bare composite type). */
export function readCoreSubType(r: Reader): CoreTypeEntry {
  const b = r.peek();
  if (b === 0x50 || b === 0x4f) {
    r.pos++;
    r.vec((rr) => rr.u32(), 'supertypes');
  }
  return readCoreCompType(r);
}

/** Read one rectype of the type section, pushing every type it defines onto `types`. */
export function readCoreRecType(r: Reader, types: CoreTypeEntry[]): void {
  if (r.peek() === 0x4e) {
    r.pos++;
    const n = r.vecLen('recursion group');
    for (let i = 0; i < n; i++) types.push(readCoreSubType(r));
  } else {
    types.push(readCoreSubType(r));
  }
}

// ---- limits, tables, memories, globals ----

export interface CoreLimits { min: number; max: number | null; shared: boolean; is64: boolean }

function readBound(r: Reader, is64: boolean): number {
  if (!is64) return r.u32();
  const start = r.offset;
  const v = r.u64();
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) r.fail('64-bit limit within 2^53', start);
  return Number(v);
}

/** Read limits with flags: 0x01 has-max, 0x02 shared, 0x04 64-bit, 0x08 custom page size (skipped). */
export function readCoreLimits(r: Reader, what: 'memory' | 'table'): CoreLimits {
  const start = r.offset;
  const flags = r.byte();
  const allowed = what === 'memory' ? 0x0f : 0x07;
  if (flags & ~allowed) r.fail(`${what} limits flags`, start);
  const is64 = (flags & 0x04) !== 0;
  const min = readBound(r, is64);
  const max = flags & 0x01 ? readBound(r, is64) : null;
  if (flags & 0x08) r.u32(); // log2 page size (custom-page-sizes)
  return { min, max, shared: (flags & 0x02) !== 0, is64 };
}

export function readCoreTableType(r: Reader): CoreExternType & { kind: 'table' } {
  const elem = readCoreRefType(r);
  const lim = readCoreLimits(r, 'table');
  const t: CoreExternType & { kind: 'table' } = { kind: 'table', elem, min: lim.min, max: lim.max };
  if (lim.is64) t.is64 = true;
  return t;
}

export function readCoreMemoryType(r: Reader): CoreExternType & { kind: 'memory' } {
  const lim = readCoreLimits(r, 'memory');
  return { kind: 'memory', min: lim.min, max: lim.max, shared: lim.shared, is64: lim.is64 };
}

export function readCoreGlobalType(r: Reader): CoreExternType & { kind: 'global' } {
  const type = readCoreValType(r);
  const start = r.offset;
  const m = r.byte();
  if (m & ~0x03) r.fail('global mutability (0x00 or 0x01)', start); // 0x02: shared
  return { kind: 'global', type, mutable: (m & 1) !== 0 };
}

function funcTypeAt(types: readonly CoreTypeEntry[], r: Reader): CoreFuncType {
  const start = r.offset;
  const idx = r.u32();
  const t = types[idx];
  if (t === undefined) r.fail(`type index in range (got ${idx}, ${types.length} types)`, start);
  if (t.kind !== 'func') r.fail(`function type at type index ${idx}`, start);
  return t;
}

function readTagType(r: Reader, types: readonly CoreTypeEntry[]): CoreExternType & { kind: 'tag' } {
  r.expectByte(0x00, 'tag attribute 0x00 (exception)');
  return { kind: 'tag', type: funcTypeAt(types, r) };
}

/** Read an import/export descriptor type (kind byte + type) against the given type index space. */
export function readCoreExternDesc(r: Reader, types: readonly CoreTypeEntry[]): CoreExternType {
  const start = r.offset;
  const kind = r.byte();
  switch (kind) {
    case 0x00: return { kind: 'func', type: funcTypeAt(types, r) };
    case 0x01: return readCoreTableType(r);
    case 0x02: return readCoreMemoryType(r);
    case 0x03: return readCoreGlobalType(r);
    case 0x04: return readTagType(r, types);
    default: return r.fail('import kind (0x00..0x04)', start);
  }
}

// ---- constant expressions ----

/** Skip a constant expression up to and including its `end` (0x0b). */
export function skipConstExpr(r: Reader): void {
  for (;;) {
    const start = r.offset;
    const op = r.byte();
    switch (op) {
      case 0x0b: return; // end
      case 0x41: r.skipLeb(5, 'i32.const immediate'); break;
      case 0x42: r.skipLeb(10, 'i64.const immediate'); break;
      case 0x43: r.skip(4, 'f32.const bytes'); break;
      case 0x44: r.skip(8, 'f64.const bytes'); break;
      case 0x23: r.u32(); break; // global.get
      case 0xd0: readHeapType(r); break; // ref.null
      case 0xd2: r.u32(); break; // ref.func
      case 0x6a: case 0x6b: case 0x6c: // i32.add/sub/mul (extended-const)
      case 0x7c: case 0x7d: case 0x7e: // i64.add/sub/mul
        break;
      case 0xfb: { // GC
        const sub = r.u32();
        switch (sub) {
          case 0: case 1: case 6: case 7: r.u32(); break; // struct.new(_default), array.new(_default)
          case 8: r.u32(); r.u32(); break; // array.new_fixed
          case 0x1a: case 0x1b: case 0x1c: break; // any.convert_extern, extern.convert_any, ref.i31
          default: r.fail(`constant instruction (0xfb ${sub} is not constant)`, start);
        }
        break;
      }
      case 0xfd: { // SIMD
        const sub = r.u32();
        if (sub !== 12) r.fail(`constant instruction (0xfd ${sub} is not constant)`, start);
        r.skip(16, 'v128.const bytes');
        break;
      }
      default:
        r.fail(`constant instruction (opcode 0x${op.toString(16)} is not constant)`, start);
    }
  }
}

// ---- module ----

/** the order non-custom sections must appear in (the tag section sits between memory and global) */
const SECTION_ORDER = [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11];

const SECTION_NAMES = [
  'custom', 'type', 'import', 'function', 'table', 'memory', 'global', 'export',
  'start', 'element', 'code', 'data', 'data count', 'tag',
];

/**
 * Parse the import/export signature of a core wasm module.
 * @param bytes       the module's bytes (starting at its `\0asm` preamble)
 * @param baseOffset  absolute offset of bytes[0] in the enclosing input (for errors)
 */
export function parseCoreModuleType(bytes: Uint8Array, baseOffset: number): CoreModuleType {
  const r = new Reader(bytes, baseOffset);
  if (bytes.length < 8) r.fail('core module preamble (\\0asm, version 1)', baseOffset + 0);
  if (bytes[0] !== 0x00 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    r.fail('magic number \\0asm');
  }
  if (bytes[4] !== 0x01 || bytes[5] !== 0x00 || bytes[6] !== 0x00 || bytes[7] !== 0x00) {
    r.fail('core module version 1 (01 00 00 00)', baseOffset + 4);
  }
  r.pos = 8;

  const types: CoreTypeEntry[] = [];
  const imports: CoreModuleType['imports'] = [];
  const funcs: CoreFuncType[] = [];
  const tables: CoreExternType[] = [];
  const memories: CoreExternType[] = [];
  const globals: CoreExternType[] = [];
  const tags: CoreExternType[] = [];
  const exportRefs: { name: string; kind: number; index: number; offset: number }[] = [];

  let lastRank = 0;
  while (!r.eof) {
    const idStart = r.offset;
    const id = r.byte();
    if (id >= SECTION_NAMES.length) r.fail(`section id (got ${id})`, idStart);
    if (id !== 0) {
      const rank = SECTION_ORDER.indexOf(id) + 1;
      if (rank <= lastRank) r.fail(`sections in order (${SECTION_NAMES[id]} section out of order or repeated)`, idStart);
      lastRank = rank;
    }
    const size = r.u32();
    const what = `${SECTION_NAMES[id]} section`;
    const s = r.sub(size, what);
    switch (id) {
      case 1: { // type
        const n = s.vecLen('type section');
        for (let i = 0; i < n; i++) readCoreRecType(s, types);
        break;
      }
      case 2: { // import
        const n = s.vecLen('import section');
        for (let i = 0; i < n; i++) {
          const module = s.name();
          const name = s.name();
          const type = readCoreExternDesc(s, types);
          imports.push({ module, name, type });
          switch (type.kind) {
            case 'func': funcs.push(type.type); break;
            case 'table': tables.push(type); break;
            case 'memory': memories.push(type); break;
            case 'global': globals.push(type); break;
            case 'tag': tags.push(type); break;
          }
        }
        break;
      }
      case 3: { // function
        const n = s.vecLen('function section');
        for (let i = 0; i < n; i++) funcs.push(funcTypeAt(types, s));
        break;
      }
      case 4: { // table
        const n = s.vecLen('table section');
        for (let i = 0; i < n; i++) {
          if (s.peek() === 0x40) {
            s.pos++;
            s.expectByte(0x00, 'reserved byte 0x00 after 0x40 in table definition');
            tables.push(readCoreTableType(s));
            skipConstExpr(s);
          } else {
            tables.push(readCoreTableType(s));
          }
        }
        break;
      }
      case 5: { // memory
        const n = s.vecLen('memory section');
        for (let i = 0; i < n; i++) memories.push(readCoreMemoryType(s));
        break;
      }
      case 6: { // global
        const n = s.vecLen('global section');
        for (let i = 0; i < n; i++) {
          globals.push(readCoreGlobalType(s));
          skipConstExpr(s);
        }
        break;
      }
      case 7: { // export
        const n = s.vecLen('export section');
        for (let i = 0; i < n; i++) {
          const offset = s.offset;
          const name = s.name();
          const kindStart = s.offset;
          const kind = s.byte();
          if (kind > 4) s.fail('export kind (0x00..0x04)', kindStart);
          const index = s.u32();
          exportRefs.push({ name, kind, index, offset });
        }
        break;
      }
      case 13: { // tag
        const n = s.vecLen('tag section');
        for (let i = 0; i < n; i++) tags.push(readTagType(s, types));
        break;
      }
      case 0: // custom: name must still be well-formed
        s.name();
        s.pos = s.end;
        break;
      default: // start, element, code, data, data count
        s.pos = s.end;
        break;
    }
    s.expectEnd(`end of ${what} (section size mismatch)`);
  }

  const exports = new Map<string, CoreExternType>();
  for (const e of exportRefs) {
    if (exports.has(e.name)) throw new DecodeError(e.offset, `unique export name (duplicate "${e.name}")`);
    let t: CoreExternType | undefined;
    let space: string;
    switch (e.kind) {
      case 0: {
        space = 'function';
        const f = funcs[e.index];
        if (f !== undefined) t = { kind: 'func', type: f };
        break;
      }
      case 1: space = 'table'; t = tables[e.index]; break;
      case 2: space = 'memory'; t = memories[e.index]; break;
      case 3: space = 'global'; t = globals[e.index]; break;
      default: space = 'tag'; t = tags[e.index]; break;
    }
    if (t === undefined) throw new DecodeError(e.offset, `${space} index in range for export "${e.name}" (got ${e.index})`);
    exports.set(e.name, t);
  }

  return { kind: 'module', imports, exports };
}
