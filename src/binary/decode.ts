// Decoder for the component binary format (Binary.md). Produces the AST in
// ast.ts; every malformed input becomes a DecodeError naming the byte offset.

import { DecodeError } from '../errors.ts';
import type { PrimName } from './ast.ts';
import type {
  Alias, Canon, CanonOpts, ComponentAst, ComponentDecl, CoreExternTypeAst, CoreInstanceExpr, CoreSort,
  CoreTypeAst, CoreValTypeAst, DefValType, Definition, ExternTypeAst, InstanceDecl, InstanceExpr,
  ModuleDecl, NameAttrs, Sort, SortIdx, TypeAst, ValTypeRef,
} from './ast.ts';
import { Reader } from './reader.ts';
import { readCoreLimits, readCoreRecType, readCoreRefType, readCoreSubType, readCoreValType } from './core-module.ts';

const MAGIC = [0x00, 0x61, 0x73, 0x6d];
const COMPONENT_VERSION = [0x0d, 0x00, 0x01, 0x00];
const MAX_NESTING = 100;

const PRIMS: Record<number, PrimName> = {
  0x7f: 'bool', 0x7e: 's8', 0x7d: 'u8', 0x7c: 's16', 0x7b: 'u16', 0x7a: 's32', 0x79: 'u32',
  0x78: 's64', 0x77: 'u64', 0x76: 'f32', 0x75: 'f64', 0x74: 'char', 0x73: 'string', 0x64: 'error-context',
};

const CORE_SORTS: Record<number, CoreSort> = {
  0x00: 'func', 0x01: 'table', 0x02: 'memory', 0x03: 'global', 0x04: 'tag', 0x10: 'type', 0x11: 'module', 0x12: 'instance',
};

export function isComponent(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && MAGIC.every((b, i) => bytes[i] === b) && bytes[6] === 0x01 && bytes[7] === 0x00;
}

export function decodeComponent(bytes: Uint8Array): ComponentAst {
  const r = new Reader(bytes, 0);
  const c = readComponent(r, 0);
  if (!r.eof) throw new DecodeError(r.offset, 'end of input after the component');
  return c;
}

function readPreamble(r: Reader): void {
  const start = r.offset;
  if (r.end - r.pos < 8) throw new DecodeError(start, 'the 8-byte preamble (magic, version, layer)');
  for (const b of MAGIC) if (r.byte() !== b) throw new DecodeError(start, 'the magic number \\0asm');
  const v = [r.byte(), r.byte(), r.byte(), r.byte()];
  if (v[2] === 0x00 && v[3] === 0x00) throw new DecodeError(start + 4, 'a component, found a core module (layer 0)');
  if (v[2] !== 0x01 || v[3] !== 0x00) throw new DecodeError(start + 6, 'layer 0x01 0x00 (component)');
  if (v[0] !== COMPONENT_VERSION[0] || v[1] !== COMPONENT_VERSION[1])
    throw new DecodeError(start + 4, `component version 0x0d 0x00, found 0x${v[0].toString(16)} 0x${v[1].toString(16)}`);
}

function readComponent(r: Reader, depth: number): ComponentAst {
  if (depth > MAX_NESTING) throw new DecodeError(r.offset, `component nesting of at most ${MAX_NESTING}`);
  const offset = r.offset;
  readPreamble(r);
  const definitions: Definition[] = [];
  const customSections: ComponentAst['customSections'] = [];
  while (!r.eof) {
    const secOffset = r.offset;
    const id = r.byte();
    const size = r.u32();
    const s = r.sub(size);
    switch (id) {
      case 0: {
        const nameOffset = s.offset;
        const name = s.name();
        customSections.push({ name, offset: nameOffset, size });
        s.skip(s.end - s.pos);
        break;
      }
      case 1: {
        const off = s.offset;
        const b = s.bytes(s.end - s.pos);
        definitions.push({ kind: 'core-module', bytes: b, offset: off });
        break;
      }
      case 2: pushVec(s, definitions, () => { const o = s.offset; return { kind: 'core-instance', expr: readCoreInstance(s), offset: o }; }); break;
      case 3: pushVec(s, definitions, () => { const o = s.offset; return { kind: 'core-type', type: readCoreType(s, depth), offset: o }; }); break;
      case 4: {
        const o = s.offset;
        const c = readComponent(s, depth + 1);
        definitions.push({ kind: 'component', component: c, offset: o });
        break;
      }
      case 5: pushVec(s, definitions, () => { const o = s.offset; return { kind: 'instance', expr: readInstance(s), offset: o }; }); break;
      case 6: pushVec(s, definitions, () => { const o = s.offset; return { kind: 'alias', alias: readAlias(s), offset: o }; }); break;
      case 7: pushVec(s, definitions, () => { const o = s.offset; return { kind: 'type', type: readType(s, depth), offset: o }; }); break;
      case 8: pushVec(s, definitions, () => { const o = s.offset; return { kind: 'canon', canon: readCanon(s), offset: o }; }); break;
      case 9: {
        const o = s.offset;
        const func = s.u32();
        const args = s.vec(() => s.u32());
        const results = s.u32();
        definitions.push({ kind: 'start', func, args, results, offset: o });
        break;
      }
      case 10: pushVec(s, definitions, () => {
        const o = s.offset;
        const name = readNameAttrs(s);
        return { kind: 'import', name, type: readExternType(s), offset: o };
      }); break;
      case 11: pushVec(s, definitions, () => {
        const o = s.offset;
        const name = readNameAttrs(s);
        const item = readSortIdx(s);
        const type = readOptional(s, () => readExternType(s));
        return { kind: 'export', name, item, type, offset: o };
      }); break;
      case 12: throw new DecodeError(secOffset, 'a known section id (value definitions 🪙 are not supported)');
      default: throw new DecodeError(secOffset, `a known section id 0..12, found ${id}`);
    }
    if (!s.eof) throw new DecodeError(s.offset, `end of section ${id} (section size mismatch)`);
  }
  return { definitions, offset, end: r.offset, customSections };
}

function pushVec(s: Reader, out: Definition[], f: () => Definition): void {
  for (const d of s.vec(f)) out.push(d);
}

function readOptional<T>(r: Reader, f: () => T): T | null {
  const o = r.offset;
  const b = r.byte();
  if (b === 0) return null;
  if (b === 1) return f();
  throw new DecodeError(o, `0x00 or 0x01 for an optional immediate, found 0x${b.toString(16)}`);
}

function readBool(r: Reader, what: string): boolean {
  const o = r.offset;
  const b = r.byte();
  if (b === 0) return false;
  if (b === 1) return true;
  throw new DecodeError(o, `0x00 or 0x01 for ${what}, found 0x${b.toString(16)}`);
}

function readCoreSort(r: Reader): CoreSort {
  const o = r.offset;
  const b = r.byte();
  const s = CORE_SORTS[b];
  if (!s) throw new DecodeError(o, `a core sort, found 0x${b.toString(16)}`);
  return s;
}

function readSort(r: Reader): Sort {
  const o = r.offset;
  const b = r.byte();
  switch (b) {
    case 0x00: return { core: readCoreSort(r) };
    case 0x01: return 'func';
    case 0x02: return 'value';
    case 0x03: return 'type';
    case 0x04: return 'component';
    case 0x05: return 'instance';
  }
  throw new DecodeError(o, `a sort, found 0x${b.toString(16)}`);
}

function readSortIdx(r: Reader): SortIdx {
  const sort = readSort(r);
  return { sort, idx: r.u32() };
}

function readCoreInstance(r: Reader): CoreInstanceExpr {
  const offset = r.offset;
  const tag = r.byte();
  if (tag === 0x00) {
    const module = r.u32();
    const args = r.vec(() => {
      const name = r.name();
      const o = r.offset;
      if (r.byte() !== 0x12) throw new DecodeError(o, 'core instantiate argument of sort instance (0x12)');
      return { name, instance: r.u32() };
    });
    return { kind: 'instantiate', module, args, offset };
  }
  if (tag === 0x01) {
    const exports = r.vec(() => {
      const name = r.name();
      const sort = readCoreSort(r);
      return { name, item: { sort, idx: r.u32() } };
    });
    return { kind: 'exports', exports, offset };
  }
  throw new DecodeError(offset, `core instance expression 0x00 or 0x01, found 0x${tag.toString(16)}`);
}

function readInstance(r: Reader): InstanceExpr {
  const offset = r.offset;
  const tag = r.byte();
  if (tag === 0x00) {
    const component = r.u32();
    const args = r.vec(() => ({ name: r.name(), item: readSortIdx(r) }));
    return { kind: 'instantiate', component, args, offset };
  }
  if (tag === 0x01) {
    const exports = r.vec(() => ({ name: readNameAttrs(r), item: readSortIdx(r) }));
    return { kind: 'exports', exports, offset };
  }
  throw new DecodeError(offset, `instance expression 0x00 or 0x01, found 0x${tag.toString(16)}`);
}

function readAlias(r: Reader): Alias {
  const offset = r.offset;
  const sort = readSort(r);
  const tagOff = r.offset;
  const tag = r.byte();
  switch (tag) {
    case 0x00: return { kind: 'export', sort, instance: r.u32(), name: r.name(), offset };
    case 0x01: return { kind: 'core-export', sort, instance: r.u32(), name: r.name(), offset };
    case 0x02: {
      const ok = typeof sort === 'string' ? sort === 'type' || sort === 'component' : sort.core === 'type' || sort.core === 'module';
      if (!ok) throw new DecodeError(offset, `invalid leading byte for component outer alias kind: outer aliases may only refer to types, components, core types and core modules`);
      return { kind: 'outer', sort, count: r.u32(), idx: r.u32(), offset };
    }
  }
  throw new DecodeError(tagOff, `alias target 0x00, 0x01 or 0x02, found 0x${tag.toString(16)}`);
}

function readNameAttrs(r: Reader): NameAttrs {
  const o = r.offset;
  const tag = r.byte();
  if (tag === 0x00 || tag === 0x01) return { name: r.name() };
  if (tag === 0x02) {
    const na: NameAttrs = { name: r.name() };
    const seen = new Set<number>();
    const n = r.u32();
    for (let i = 0; i < n; i++) {
      const ao = r.offset;
      const k = r.byte();
      if (seen.has(k)) throw new DecodeError(ao, 'each kind of name attribute at most once');
      seen.add(k);
      if (k === 0x00) na.implements = r.name();
      else if (k === 0x01) na.versionSuffix = r.name();
      else if (k === 0x02) na.externalId = r.name();
      else throw new DecodeError(ao, `a name attribute 0x00..0x02, found 0x${k.toString(16)}`);
    }
    return na;
  }
  throw new DecodeError(o, `an extern name (0x00, 0x01 or 0x02), found 0x${tag.toString(16)}`);
}

function readExternType(r: Reader): ExternTypeAst {
  const o = r.offset;
  const tag = r.byte();
  switch (tag) {
    case 0x00: {
      const o2 = r.offset;
      if (r.byte() !== 0x11) throw new DecodeError(o2, 'core module extern type (0x00 0x11)');
      return { kind: 'module', idx: r.u32() };
    }
    case 0x01: return { kind: 'func', idx: r.u32() };
    case 0x02: {
      const bo = r.offset;
      const b = r.byte();
      if (b === 0x00) return { kind: 'value', bound: { kind: 'eq', idx: r.u32() } };
      if (b === 0x01) return { kind: 'value', bound: { kind: 'type', type: readValType(r) } };
      throw new DecodeError(bo, 'a value bound 0x00 or 0x01');
    }
    case 0x03: {
      const bo = r.offset;
      const b = r.byte();
      if (b === 0x00) return { kind: 'type', bound: { kind: 'eq', idx: r.u32() } };
      if (b === 0x01) return { kind: 'type', bound: { kind: 'sub-resource' } };
      throw new DecodeError(bo, 'a type bound 0x00 (eq) or 0x01 (sub resource)');
    }
    case 0x04: return { kind: 'component', idx: r.u32() };
    case 0x05: return { kind: 'instance', idx: r.u32() };
  }
  throw new DecodeError(o, `an extern type 0x00..0x05, found 0x${tag.toString(16)}`);
}

/** valtype ::= typeidx | primvaltype, distinguished as an s33: negative is a primitive. */
function readValType(r: Reader): ValTypeRef {
  const o = r.offset;
  const v = r.s33();
  if (v >= 0) return { kind: 'idx', idx: v };
  const b = v & 0x7f;
  const p = PRIMS[b];
  if (!p || v < -0x40) throw new DecodeError(o, `a value type (primitive or type index), found 0x${b.toString(16)}`);
  return { kind: 'prim', name: p };
}

function readLabel(r: Reader): string {
  return r.name();
}

function readResultList(r: Reader): ValTypeRef | null {
  const o = r.offset;
  const b = r.byte();
  if (b === 0x00) return readValType(r);
  if (b === 0x01) {
    const o2 = r.offset;
    if (r.byte() !== 0x00) throw new DecodeError(o2, 'empty result list 0x01 0x00');
    return null;
  }
  throw new DecodeError(o, `a result list (0x00 or 0x01 0x00), found 0x${b.toString(16)}`);
}

function readType(r: Reader, depth: number): TypeAst {
  const offset = r.offset;
  if (depth > MAX_NESTING) throw new DecodeError(offset, `type nesting of at most ${MAX_NESTING}`);
  const b = r.peek();
  switch (b) {
    case 0x40: case 0x43: {
      r.byte();
      const params = r.vec(() => ({ name: readLabel(r), type: readValType(r) }));
      const result = readResultList(r);
      return { kind: 'func', async: b === 0x43, params, result, offset };
    }
    case 0x41: {
      r.byte();
      const decls = r.vec(() => readComponentDecl(r, depth + 1));
      return { kind: 'component', decls, offset };
    }
    case 0x42: {
      r.byte();
      const decls = r.vec(() => readInstanceDecl(r, depth + 1));
      return { kind: 'instance', decls, offset };
    }
    case 0x3f: {
      r.byte();
      const ro = r.offset;
      const rep = r.byte();
      if (rep !== 0x7f && rep !== 0x7e) throw new DecodeError(ro, 'resource representation i32 (0x7f) or i64 (0x7e)');
      const dtor = readOptional(r, () => r.u32());
      return { kind: 'resource', rep: rep === 0x7f ? 'i32' : 'i64', dtor, offset };
    }
  }
  return { kind: 'defval', type: readDefValType(r), offset };
}

function readDefValType(r: Reader): DefValType {
  const o = r.offset;
  const b = r.byte();
  const p = PRIMS[b];
  if (p) return { kind: 'prim', name: p };
  switch (b) {
    case 0x72: return { kind: 'record', fields: r.vec(() => ({ name: readLabel(r), type: readValType(r) })) };
    case 0x71: return {
      kind: 'variant', cases: r.vec(() => {
        const name = readLabel(r);
        const type = readOptional(r, () => readValType(r));
        const zo = r.offset;
        if (r.byte() !== 0x00) throw new DecodeError(zo, 'variant case terminator 0x00');
        return { name, type };
      }),
    };
    case 0x70: return { kind: 'list', elem: readValType(r), length: null };
    case 0x67: { const elem = readValType(r); return { kind: 'list', elem, length: r.u32() }; }
    case 0x6f: return { kind: 'tuple', types: r.vec(() => readValType(r)) };
    case 0x6e: return { kind: 'flags', names: r.vec(() => readLabel(r)) };
    case 0x6d: return { kind: 'enum', names: r.vec(() => readLabel(r)) };
    case 0x6b: return { kind: 'option', type: readValType(r) };
    case 0x6a: {
      const ok = readOptional(r, () => readValType(r));
      const err = readOptional(r, () => readValType(r));
      return { kind: 'result', ok, err };
    }
    case 0x69: return { kind: 'own', idx: r.u32() };
    case 0x68: return { kind: 'borrow', idx: r.u32() };
    case 0x66: return { kind: 'stream', elem: readOptional(r, () => readValType(r)) };
    case 0x65: return { kind: 'future', elem: readOptional(r, () => readValType(r)) };
    case 0x63: { const key = readValType(r); return { kind: 'map', key, value: readValType(r) }; }
  }
  throw new DecodeError(o, `a type definition, found 0x${b.toString(16)}`);
}

function readInstanceDecl(r: Reader, depth: number): InstanceDecl {
  const offset = r.offset;
  const tag = r.byte();
  switch (tag) {
    case 0x00: return { kind: 'core-type', type: readCoreType(r, depth), offset };
    case 0x01: return { kind: 'type', type: readType(r, depth), offset };
    case 0x02: return { kind: 'alias', alias: readAlias(r), offset };
    case 0x04: { const name = readNameAttrs(r); return { kind: 'export', name, type: readExternType(r), offset }; }
  }
  throw new DecodeError(offset, `an instance type declaration (0x00, 0x01, 0x02 or 0x04), found 0x${tag.toString(16)}`);
}

function readComponentDecl(r: Reader, depth: number): ComponentDecl {
  const offset = r.offset;
  if (r.peek() === 0x03) {
    r.byte();
    const name = readNameAttrs(r);
    return { kind: 'import', name, type: readExternType(r), offset };
  }
  return readInstanceDecl(r, depth);
}

// ---- core types (component core:type) ----

function readCoreExternType(r: Reader): CoreExternTypeAst {
  const o = r.offset;
  const k = r.byte();
  switch (k) {
    case 0x00: return { kind: 'func', typeIdx: r.u32() };
    case 0x01: {
      const elem = readCoreRefType(r);
      const l = readCoreLimits(r, 'table');
      return { kind: 'table', elem, min: l.min, max: l.max, is64: l.is64 };
    }
    case 0x02: { const l = readCoreLimits(r, 'memory'); return { kind: 'memory', min: l.min, max: l.max, shared: l.shared, is64: l.is64 }; }
    case 0x03: {
      const type = readCoreValType(r);
      return { kind: 'global', type, mutable: readBool(r, 'global mutability') };
    }
    case 0x04: {
      const ao = r.offset;
      if (r.byte() !== 0x00) throw new DecodeError(ao, 'tag attribute 0x00');
      return { kind: 'tag', typeIdx: r.u32() };
    }
  }
  throw new DecodeError(o, `a core extern type 0x00..0x04, found 0x${k.toString(16)}`);
}

function readCoreType(r: Reader, depth: number): CoreTypeAst {
  const offset = r.offset;
  const b = r.peek();
  if (b === 0x60) {
    r.byte();
    const params = r.vec(() => readCoreValType(r));
    const results = r.vec(() => readCoreValType(r));
    return { kind: 'func', params, results, offset };
  }
  if (b === 0x50) {
    r.byte();
    const decls = r.vec(() => readModuleDecl(r, depth + 1));
    return { kind: 'module', decls, offset };
  }
  // WebAssembly 3.0 forms are kept opaque: read to validate their encoding
  if (b === 0x4e) { readCoreRecType(r, []); return { kind: 'gc', offset }; }
  if (b === 0x00) {
    r.byte();
    if (r.peek() !== 0x50) throw new DecodeError(r.offset, 'non-final sub type (0x00 0x50)');
    readCoreSubType(r);
    return { kind: 'gc', offset };
  }
  if (b === 0x4f || b === 0x5f || b === 0x5e) { readCoreSubType(r); return { kind: 'gc', offset }; }
  r.byte();
  throw new DecodeError(offset, `a core type (func 0x60 or module 0x50), found 0x${b.toString(16)}`);
}

function readModuleDecl(r: Reader, depth: number): ModuleDecl {
  const o = r.offset;
  const tag = r.byte();
  switch (tag) {
    case 0x00: {
      const module = r.name();
      const name = r.name();
      return { kind: 'import', module, name, type: readCoreExternType(r) };
    }
    case 0x01: return { kind: 'type', type: readCoreType(r, depth) };
    case 0x02: {
      const so = r.offset;
      if (r.byte() !== 0x10) throw new DecodeError(so, 'core alias of sort type (0x10)');
      const to = r.offset;
      if (r.byte() !== 0x01) throw new DecodeError(to, 'outer core alias (0x01)');
      return { kind: 'alias', count: r.u32(), idx: r.u32() };
    }
    case 0x03: { const name = r.name(); return { kind: 'export', name, type: readCoreExternType(r) }; }
  }
  throw new DecodeError(o, `a module type declaration 0x00..0x03, found 0x${tag.toString(16)}`);
}

// ---- canon ----

function readCanonOpts(r: Reader): CanonOpts {
  const opts: CanonOpts = {};
  const n = r.u32();
  for (let i = 0; i < n; i++) {
    const o = r.offset;
    const b = r.byte();
    const dup = (k: string) => { if (!opts.duplicate) opts.duplicate = k; };
    switch (b) {
      case 0x00: case 0x01: case 0x02:
        if (opts.stringEncoding) dup('string-encoding');
        opts.stringEncoding = b === 0 ? 'utf8' : b === 1 ? 'utf16' : 'latin1+utf16';
        break;
      case 0x03: if (opts.memory !== undefined) dup('memory'); opts.memory = r.u32(); break;
      case 0x04: if (opts.realloc !== undefined) dup('realloc'); opts.realloc = r.u32(); break;
      case 0x05: if (opts.postReturn !== undefined) dup('post-return'); opts.postReturn = r.u32(); break;
      case 0x06: if (opts.async) dup('async'); opts.async = true; break;
      case 0x07: if (opts.callback !== undefined) dup('callback'); opts.callback = r.u32(); break;
      case 0x08: if (opts.coreType !== undefined) dup('core-type'); opts.coreType = r.u32(); break;
      case 0x09: if (opts.gc) dup('gc'); opts.gc = true; break;
      default: throw new DecodeError(o, `a canonical option 0x00..0x09, found 0x${b.toString(16)}`);
    }
  }
  return opts;
}

function readCanon(r: Reader): Canon {
  const o = r.offset;
  const op = r.byte();
  const zeroByte = () => {
    const zo = r.offset;
    if (r.byte() !== 0x00) throw new DecodeError(zo, 'func sort byte 0x00');
  };
  const async_ = () => readBool(r, 'the async? immediate');
  const cancel = () => readBool(r, 'the cancellable? immediate');
  switch (op) {
    case 0x00: { zeroByte(); const func = r.u32(); const opts = readCanonOpts(r); return { kind: 'lift', func, opts, type: r.u32() }; }
    case 0x01: { zeroByte(); const func = r.u32(); return { kind: 'lower', func, opts: readCanonOpts(r) }; }
    case 0x02: return { kind: 'resource.new', type: r.u32() };
    case 0x03: return { kind: 'resource.drop', type: r.u32() };
    case 0x04: return { kind: 'resource.rep', type: r.u32() };
    case 0x24: return { kind: 'backpressure.inc' };
    case 0x25: return { kind: 'backpressure.dec' };
    case 0x09: { const result = readResultList(r); return { kind: 'task.return', result, opts: readCanonOpts(r) }; }
    case 0x05: return { kind: 'task.cancel' };
    case 0x0a: case 0x0b: {
      const type = readCoreValType(r);
      return { kind: op === 0x0a ? 'context.get' : 'context.set', type, index: r.u32() };
    }
    case 0x06: return { kind: 'subtask.cancel', async: async_() };
    case 0x0d: return { kind: 'subtask.drop' };
    case 0x0e: return { kind: 'stream.new', type: r.u32() };
    case 0x0f: { const type = r.u32(); return { kind: 'stream.read', type, opts: readCanonOpts(r) }; }
    case 0x10: { const type = r.u32(); return { kind: 'stream.write', type, opts: readCanonOpts(r) }; }
    case 0x11: { const type = r.u32(); return { kind: 'stream.cancel-read', type, async: async_() }; }
    case 0x12: { const type = r.u32(); return { kind: 'stream.cancel-write', type, async: async_() }; }
    case 0x13: return { kind: 'stream.drop-readable', type: r.u32() };
    case 0x14: return { kind: 'stream.drop-writable', type: r.u32() };
    case 0x15: return { kind: 'future.new', type: r.u32() };
    case 0x16: { const type = r.u32(); return { kind: 'future.read', type, opts: readCanonOpts(r) }; }
    case 0x17: { const type = r.u32(); return { kind: 'future.write', type, opts: readCanonOpts(r) }; }
    case 0x18: { const type = r.u32(); return { kind: 'future.cancel-read', type, async: async_() }; }
    case 0x19: { const type = r.u32(); return { kind: 'future.cancel-write', type, async: async_() }; }
    case 0x1a: return { kind: 'future.drop-readable', type: r.u32() };
    case 0x1b: return { kind: 'future.drop-writable', type: r.u32() };
    case 0x1c: return { kind: 'error-context.new', opts: readCanonOpts(r) };
    case 0x1d: return { kind: 'error-context.debug-message', opts: readCanonOpts(r) };
    case 0x1e: return { kind: 'error-context.drop' };
    case 0x1f: return { kind: 'waitable-set.new' };
    case 0x20: { const c = cancel(); return { kind: 'waitable-set.wait', cancellable: c, memory: r.u32() }; }
    case 0x21: { const c = cancel(); return { kind: 'waitable-set.poll', cancellable: c, memory: r.u32() }; }
    case 0x22: return { kind: 'waitable-set.drop' };
    case 0x23: return { kind: 'waitable.join' };
    case 0x26: return { kind: 'thread.index' };
    case 0x27: { const type = r.u32(); return { kind: 'thread.new-indirect', type, table: r.u32() }; }
    case 0x28: return { kind: 'thread.resume-later' };
    case 0x29: return { kind: 'thread.suspend', cancellable: cancel() };
    case 0x0c: return { kind: 'thread.yield', cancellable: cancel() };
    case 0x2a: return { kind: 'thread.suspend-then-resume', cancellable: cancel() };
    case 0x2b: return { kind: 'thread.yield-then-resume', cancellable: cancel() };
    case 0x2c: return { kind: 'thread.suspend-then-promote', cancellable: cancel() };
    case 0x2d: return { kind: 'thread.yield-then-promote', cancellable: cancel() };
    case 0x40: { const shared = readBool(r, 'shared?'); return { kind: 'thread.spawn-ref', shared, type: r.u32() }; }
    case 0x41: { const shared = readBool(r, 'shared?'); const type = r.u32(); return { kind: 'thread.spawn-indirect', shared, type, table: r.u32() }; }
    case 0x42: return { kind: 'thread.available-parallelism', shared: readBool(r, 'shared?') };
  }
  throw new DecodeError(o, `a canonical definition opcode, found 0x${op.toString(16)}`);
}
