// Renders a resolved ComponentType as WIT text (see WIT.md).
//
// The output is one file: a `package root:component;` header, a `world` with
// one line per import/export, then a nested `package ns:pkg@ver { interface … }`
// block for every interface-named instance import/export. Type names are
// recovered from type exports (`(export "x" (type (eq …)))`), which is the only
// place a structural type carries a name: by object identity (the validator
// resolves a type index to one shared object) and, for records, variants,
// enums and flags, also by structure. Anything WIT cannot express is
// printed as a comment. The printer never throws.

import type {
  ComponentType, DefType, ExternType, FuncType, InstanceType, ResourceType, ValType,
} from './types.ts';

const KEYWORDS = new Set([
  'as', 'async', 'bool', 'borrow', 'char', 'constructor', 'enum', 'export', 'f32', 'f64',
  'flags', 'from', 'func', 'future', 'import', 'include', 'interface', 'list', 'map',
  'option', 'own', 'package', 'record', 'resource', 'result', 's16', 's32', 's64', 's8',
  'static', 'stream', 'string', 'tuple', 'type', 'u16', 'u32', 'u64', 'u8', 'use',
  'variant', 'with', 'world', 'error-context',
]);

const PRIMS = new Set([
  'bool', 's8', 'u8', 's16', 'u16', 's32', 'u32', 's64', 'u64', 'f32', 'f64', 'char', 'string',
  'error-context',
]);

/** Kinds that WIT can only spell with a name (no anonymous form). */
const NOMINAL = new Set(['record', 'variant', 'enum', 'flags']);

/** A WIT identifier: `%`-escaped when it collides with a keyword. */
function id(name: string): string {
  return KEYWORDS.has(name) ? `%${name}` : name;
}

/** `ns:pkg/iface@ver` → { pkg: 'ns:pkg@ver', iface: 'iface' }, or null for a plain name. */
export function splitInterfaceName(name: string): { pkg: string; iface: string } | null {
  const at = name.indexOf('@');
  const base = at >= 0 ? name.slice(0, at) : name;
  const version = at >= 0 ? name.slice(at) : '';
  const slash = base.lastIndexOf('/');
  if (!base.includes(':') || slash < 0) return null;
  return { pkg: base.slice(0, slash) + version, iface: base.slice(slash + 1) };
}

type FuncRole =
  | { role: 'free'; name: string; async: boolean }
  | { role: 'constructor'; resource: string }
  | { role: 'method' | 'static'; resource: string; name: string; async: boolean };

function classifyFunc(name: string): FuncRole {
  const m = /^\[(async )?(constructor|method|static|async)\](.*)$/.exec(name);
  if (!m) return { role: 'free', name, async: false };
  const isAsync = m[1] !== undefined || m[2] === 'async';
  const rest = m[3];
  if (m[2] === 'async') return { role: 'free', name: rest, async: true };
  if (m[2] === 'constructor') return { role: 'constructor', resource: rest };
  const dot = rest.indexOf('.');
  if (dot < 0) return { role: 'free', name, async: false };
  return { role: m[2] as 'method' | 'static', resource: rest.slice(0, dot), name: rest.slice(dot + 1), async: isAsync };
}

/** Resource types are compared through their root: exporting or importing a resource makes an alias of it. */
function keyOf<T>(t: T): T {
  return isResource(t) ? ((t as unknown as ResourceType).root as unknown as T) ?? t : t;
}

function isResource(t: unknown): t is ResourceType {
  return typeof t === 'object' && t !== null && (t as { kind?: unknown }).kind === 'resource';
}

function isValType(t: DefType): t is ValType {
  const k = (t as { kind?: unknown }).kind;
  return typeof k === 'string' && k !== 'func' && k !== 'component' && k !== 'instance'
    && k !== 'module' && k !== 'resource';
}

/** Where a named type was first defined: an interface (usable in `use`) or somewhere that is not. */
interface Origin { iface: string | null; name: string }

/** Name context for one interface, inline interface, or the world. */
class Scope {
  /** identity → local name */
  readonly names = new Map<object, string>();
  /** structural key → local name (records, variants, enums, flags only) */
  readonly structural = new Map<string, string>();
  readonly taken = new Set<string>();
  /** interface → (origin name → local name) */
  readonly uses = new Map<string, Map<string, string>>();

  readonly printer: WitPrinter;
  readonly iface: string | null;

  constructor(printer: WitPrinter, iface: string | null) {
    this.printer = printer;
    this.iface = iface;
  }

  bind(obj: object, name: string): void {
    if (!this.names.has(keyOf(obj))) this.names.set(keyOf(obj), name);
    this.taken.add(name);
    if (!isResource(obj) && NOMINAL.has((obj as ValType).kind)) {
      const key = structuralKey(obj as ValType);
      if (!this.structural.has(key)) this.structural.set(key, name);
    }
  }

  /** Import `name` from interface `iface` into this scope; returns the local name. */
  use(iface: string, name: string): string {
    let m = this.uses.get(iface);
    if (!m) this.uses.set(iface, (m = new Map()));
    const have = m.get(name);
    if (have !== undefined) return have;
    let local = name;
    for (let i = 2; this.taken.has(local); i++) local = `${name}${i}`;
    m.set(name, local);
    this.taken.add(local);
    return local;
  }

  /** The name a type goes by in this scope, if any. */
  nameOf(t: object): string | undefined {
    const local = this.names.get(keyOf(t));
    if (local !== undefined) return local;
    const origin = this.printer.origins.get(keyOf(t));
    if (origin && origin.iface !== null && origin.iface !== this.iface) {
      const local = this.use(origin.iface, origin.name);
      this.names.set(keyOf(t), local);
      return local;
    }
    if (!isResource(t) && NOMINAL.has((t as ValType).kind)) {
      return this.structural.get(structuralKey(t as ValType));
    }
    return undefined;
  }

  resourceName(r: ResourceType): string {
    const n = this.nameOf(r);
    if (n !== undefined) return n;
    return id(r.name && r.name.length > 0 ? r.name : `resource-${r.id}`);
  }

  /** A type as it appears in a use position. */
  ref(t: ValType): string {
    if (t === null || typeof t !== 'object') return '/* ? */';
    if (PRIMS.has(t.kind)) {
      // Aliases of primitives (`type filesize = u64`) are found by identity only.
      const n = this.nameOf(t);
      return n !== undefined ? id(n) : t.kind;
    }
    if (t.kind === 'own') return this.resourceName(t.resource);
    if (t.kind === 'borrow') return `borrow<${this.resourceName(t.resource)}>`;
    const named = this.nameOf(t);
    if (named !== undefined) return id(named);
    if (NOMINAL.has(t.kind)) return `/* ${this.structure(t)} */`;
    return this.structure(t);
  }

  /** The right-hand side of a type definition (nominal kinds use brace syntax). */
  structure(t: ValType): string {
    switch (t.kind) {
      case 'record': return `record { ${t.fields.map((f) => `${id(f.name)}: ${this.ref(f.type)}`).join(', ')} }`;
      case 'variant': return `variant { ${t.cases.map((c) => (c.type ? `${id(c.name)}(${this.ref(c.type)})` : id(c.name))).join(', ')} }`;
      case 'enum': return `enum { ${t.names.map(id).join(', ')} }`;
      case 'flags': return `flags { ${t.names.map(id).join(', ')} }`;
      case 'list': return t.length !== null && t.length !== undefined
        ? `list<${this.ref(t.elem)}, ${t.length}>` : `list<${this.ref(t.elem)}>`;
      case 'tuple': return `tuple<${t.types.map((x) => this.ref(x)).join(', ')}>`;
      case 'option': return `option<${this.ref(t.type)}>`;
      case 'result':
        if (!t.ok && !t.err) return 'result';
        if (!t.err) return `result<${this.ref(t.ok!)}>`;
        return `result<${t.ok ? this.ref(t.ok) : '_'}, ${this.ref(t.err)}>`;
      case 'stream': return t.elem ? `stream<${this.ref(t.elem)}>` : 'stream';
      case 'future': return t.elem ? `future<${this.ref(t.elem)}>` : 'future';
      case 'map': return `map<${this.ref(t.key)}, ${this.ref(t.value)}>`;
      case 'own': return this.resourceName(t.resource);
      case 'borrow': return `borrow<${this.resourceName(t.resource)}>`;
      default: return (t as { kind: string }).kind;
    }
  }

  params(f: FuncType, skip = 0): string {
    return `(${f.params.slice(skip).map((p) => `${id(p.name)}: ${this.ref(p.type)}`).join(', ')})`;
  }

  func(f: FuncType, skip = 0): string {
    const res = f.result ? ` -> ${this.ref(f.result)}` : '';
    return `${f.async ? 'async ' : ''}func${this.params(f, skip)}${res}`;
  }
}

/** A stable string for a type's structure, ignoring names; resources by identity. */
function structuralKey(t: ValType): string {
  if (!t || typeof t !== 'object') return '?';
  switch (t.kind) {
    case 'record': return `record{${t.fields.map((f) => `${f.name}:${structuralKey(f.type)}`).join(',')}}`;
    case 'variant': return `variant{${t.cases.map((c) => `${c.name}${c.type ? `(${structuralKey(c.type)})` : ''}`).join(',')}}`;
    case 'enum': return `enum{${t.names.join(',')}}`;
    case 'flags': return `flags{${t.names.join(',')}}`;
    case 'list': return `list<${structuralKey(t.elem)},${t.length ?? ''}>`;
    case 'tuple': return `tuple<${t.types.map(structuralKey).join(',')}>`;
    case 'option': return `option<${structuralKey(t.type)}>`;
    case 'result': return `result<${t.ok ? structuralKey(t.ok) : '_'},${t.err ? structuralKey(t.err) : '_'}>`;
    case 'stream': return `stream<${t.elem ? structuralKey(t.elem) : '_'}>`;
    case 'future': return `future<${t.elem ? structuralKey(t.elem) : '_'}>`;
    case 'map': return `map<${structuralKey(t.key)},${structuralKey(t.value)}>`;
    case 'own': return `own<#${t.resource?.id}>`;
    case 'borrow': return `borrow<#${t.resource?.id}>`;
    default: return (t as { kind: string }).kind;
  }
}

function errText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ');
}

function indent(lines: string[], by = '  '): string[] {
  return lines.map((l) => (l === '' ? '' : by + l));
}

type Entry = [string, ExternType];
interface TypeDefItem { name: string; type: DefType; alias?: string }
interface Member { role: FuncRole; name: string; f: FuncType; side: string }

class WitPrinter {
  readonly origins = new Map<object, Origin>();
  /** pkg → iface → rendered body */
  readonly packages = new Map<string, Map<string, string[]>>();
  readonly notes: string[] = [];

  register(obj: unknown, origin: Origin): void {
    if (typeof obj !== 'object' || obj === null) return;
    if (!this.origins.has(keyOf(obj))) this.origins.set(keyOf(obj), origin);
  }

  prepass(ct: ComponentType): void {
    for (const [name, ext] of [...safeEntries(ct.imports), ...safeEntries(ct.exports)]) {
      try {
        if (ext.kind === 'type') this.register(ext.type, { iface: null, name });
        else if (ext.kind === 'instance') {
          const iface = splitInterfaceName(name) ? name : null;
          for (const [n, e] of safeEntries(ext.type.exports)) {
            if (e.kind === 'type') this.register(e.type, { iface, name: n });
          }
        }
      } catch { /* ignore malformed entries */ }
    }
  }

  /** Binds names for type exports in `scope`; returns what must be defined locally. */
  bindTypes(scope: Scope, typeEntries: Entry[]): TypeDefItem[] {
    const defs: TypeDefItem[] = [];
    for (const [name, ext] of typeEntries) {
      if (ext.kind !== 'type') continue;
      const t = ext.type;
      if (typeof t !== 'object' || t === null) continue;
      const existing = scope.names.get(keyOf(t));
      if (existing !== undefined) { defs.push({ name, type: t, alias: existing }); scope.taken.add(name); continue; }
      const origin = this.origins.get(keyOf(t));
      if (origin && origin.iface !== null && origin.iface !== scope.iface) {
        const m = scope.uses.get(origin.iface) ?? new Map<string, string>();
        scope.uses.set(origin.iface, m);
        m.set(origin.name, name);
        scope.taken.add(name);
        scope.names.set(keyOf(t), name);
        continue;
      }
      scope.bind(t, name);
      defs.push({ name, type: t });
    }
    return defs;
  }

  /** Splits functions into resource members (keyed by resource) and everything else. */
  partition(defs: TypeDefItem[], entries: Entry[], side: (e: Entry) => string): { members: Map<string, Member[]>; rest: Entry[] } {
    const resourceNames = new Set(defs.filter((d) => isResource(d.type) && d.alias === undefined).map((d) => d.name));
    const members = new Map<string, Member[]>();
    const rest: Entry[] = [];
    for (const e of entries) {
      const [name, ext] = e;
      if (ext.kind === 'type') continue;
      if (ext.kind === 'func') {
        const role = classifyFunc(name);
        if (role.role !== 'free' && resourceNames.has(role.resource)) {
          const list = members.get(role.resource) ?? [];
          members.set(role.resource, list);
          list.push({ role, name, f: ext.type, side: side(e) });
          continue;
        }
      }
      rest.push(e);
    }
    return { members, rest };
  }

  renderTypes(scope: Scope, defs: TypeDefItem[], members: Map<string, Member[]>): string[] {
    const out: string[] = [];
    for (const d of defs) {
      try {
        out.push(...this.typeDef(scope, d.name, d.type, d.alias, members.get(d.name)));
      } catch (e) {
        out.push(`// type ${d.name}: could not print (${errText(e)})`);
      }
    }
    return out;
  }

  renderExterns(scope: Scope, entries: Entry[], prefix: string): string[] {
    const out: string[] = [];
    for (const [name, ext] of entries) {
      try {
        out.push(...this.extern(scope, name, ext, prefix));
      } catch (e) {
        out.push(`// ${prefix}${name}: could not print (${errText(e)})`);
      }
    }
    return out;
  }

  typeDef(scope: Scope, name: string, t: DefType, alias: string | undefined,
    members: Member[] | undefined): string[] {
    const n = id(name);
    if (alias !== undefined) return [`type ${n} = ${id(alias)};`];
    if (isResource(t)) {
      if (!members || members.length === 0) return [`resource ${n};`];
      const body: string[] = [];
      const sides = new Set(members.map((m) => m.side));
      for (const m of members) {
        const note = sides.size > 1 && m.side ? ` // ${m.side}` : '';
        try {
          body.push(this.member(scope, t, m.role, m.f) + note);
        } catch (e) {
          body.push(`// ${m.name}: could not print (${errText(e)})`);
        }
      }
      const head = sides.size === 1 && [...sides][0] === 'export' ? ['// exported resource'] : [];
      return [...head, `resource ${n} {`, ...indent(body), '}'];
    }
    if (!isValType(t)) {
      if (t.kind === 'func') return [`// type ${name} = ${scope.func(t)}`];
      return [`// type ${name}: ${t.kind} type`];
    }
    switch (t.kind) {
      case 'record':
        return [`record ${n} {`, ...indent(t.fields.map((f) => `${id(f.name)}: ${scope.ref(f.type)},`)), '}'];
      case 'variant':
        return [`variant ${n} {`, ...indent(t.cases.map((c) => (c.type ? `${id(c.name)}(${scope.ref(c.type)}),` : `${id(c.name)},`))), '}'];
      case 'enum':
        return [`enum ${n} {`, ...indent(t.names.map((x) => `${id(x)},`)), '}'];
      case 'flags':
        return [`flags ${n} {`, ...indent(t.names.map((x) => `${id(x)},`)), '}'];
      default:
        return [`type ${n} = ${scope.structure(t)};`];
    }
  }

  member(scope: Scope, r: ResourceType, role: FuncRole, f: FuncType): string {
    if (role.role === 'constructor') {
      const res = f.result;
      let tail = '';
      if (res && res.kind === 'result') {
        tail = ` -> ${scope.ref(res)}`;
      } else if (res && !(res.kind === 'own' && res.resource.root === r.root)) {
        tail = ` /* -> ${scope.ref(res)} */`;
      }
      return `constructor${scope.params(f)}${tail};`;
    }
    if (role.role === 'method') {
      const first = f.params[0];
      const hasSelf = first !== undefined && first.name === 'self' && first.type.kind === 'borrow';
      return `${id(role.name)}: ${f.async ? 'async ' : ''}func${scope.params(f, hasSelf ? 1 : 0)}${f.result ? ` -> ${scope.ref(f.result)}` : ''};`;
    }
    if (role.role === 'static') return `${id(role.name)}: static ${scope.func(f)};`;
    return `${id(role.name)}: ${scope.func(f)};`;
  }

  extern(scope: Scope, name: string, ext: ExternType, prefix: string): string[] {
    switch (ext.kind) {
      case 'func': {
        const role = classifyFunc(name);
        const label = role.role === 'free' && role.name !== name ? role.name : name;
        const n = label.startsWith('[') ? `%${label}` : id(label);
        const f = role.role === 'free' && role.async && !ext.type.async ? { ...ext.type, async: true } : ext.type;
        return [`${prefix}${n}: ${scope.func(f)};`];
      }
      case 'instance': {
        const split = splitInterfaceName(name);
        if (split && scope.iface === null && prefix !== '') {
          this.defineInterface(name, split, ext.type);
          return [`${prefix}${name};`];
        }
        const inner = new Scope(this, null);
        const body = this.interfaceBody(inner, ext.type);
        if (prefix === '') {
          // nested instance inside an interface: not expressible in WIT
          return [`// instance ${name}: interface {`, ...indent(body, '//   '), '// }'];
        }
        return [`${prefix}${id(name)}: interface {`, ...indent(body), '}'];
      }
      case 'value':
        return [`// ${prefix}${name}: value ${scope.ref(ext.type)}`];
      case 'component':
        return [`// ${prefix}${name}: component (${ext.type.imports.size} imports, ${ext.type.exports.size} exports)`];
      case 'module':
        return [`// ${prefix}${name}: core module (${ext.type.imports.length} imports, ${ext.type.exports.size} exports)`];
      case 'type':
        return [];
      default:
        return [`// ${prefix}${name}: ${(ext as { kind: string }).kind}`];
    }
  }

  interfaceBody(scope: Scope, it: InstanceType): string[] {
    const entries = safeEntries(it.exports);
    const defs = this.bindTypes(scope, entries);
    const { members, rest } = this.partition(defs, entries, () => '');
    const body = [...this.renderTypes(scope, defs, members), ...this.renderExterns(scope, rest, '')];
    const uses: string[] = [];
    for (const [iface, m] of scope.uses) {
      const parts = [...m].map(([orig, local]) => (orig === local ? id(orig) : `${id(orig)} as ${id(local)}`));
      uses.push(`use ${iface}.{${parts.join(', ')}};`);
    }
    return uses.length && body.length ? [...uses, '', ...body] : [...uses, ...body];
  }

  defineInterface(fullName: string, split: { pkg: string; iface: string }, it: InstanceType): void {
    const scope = new Scope(this, fullName);
    const body = this.interfaceBody(scope, it);
    let pkg = this.packages.get(split.pkg);
    if (!pkg) this.packages.set(split.pkg, (pkg = new Map()));
    const prev = pkg.get(split.iface);
    if (prev === undefined) {
      pkg.set(split.iface, body);
    } else if (prev.join('\n') !== body.join('\n')) {
      // imported and exported with different shapes: show the second as a comment
      this.notes.push(`// ${fullName} (second occurrence, differs from the first):`, ...body.map((l) => `//   ${l}`));
    }
  }

  world(ct: ComponentType, worldName: string): string {
    const scope = new Scope(this, null);
    const imports = safeEntries(ct.imports);
    const exports = safeEntries(ct.exports);
    const defs = this.bindTypes(scope, [...imports, ...exports]);
    const sideOf = new Map<Entry, string>();
    for (const e of imports) sideOf.set(e, 'import');
    for (const e of exports) sideOf.set(e, 'export');
    const { members, rest } = this.partition(defs, [...imports, ...exports], (e) => sideOf.get(e) ?? '');
    const typeLines = this.renderTypes(scope, defs, members);
    const importLines = this.renderExterns(scope, rest.filter((e) => sideOf.get(e) === 'import'), 'import ');
    const exportLines = this.renderExterns(scope, rest.filter((e) => sideOf.get(e) === 'export'), 'export ');
    const uses: string[] = [];
    for (const [iface, m] of scope.uses) {
      const parts = [...m].map(([orig, local]) => (orig === local ? id(orig) : `${id(orig)} as ${id(local)}`));
      uses.push(`use ${iface}.{${parts.join(', ')}};`);
    }
    const sections = [uses, typeLines, importLines, exportLines].filter((s) => s.length > 0);
    const body: string[] = [];
    sections.forEach((s, i) => { if (i > 0) body.push(''); body.push(...s); });

    const out: string[] = ['package root:component;', '', `world ${id(worldName)} {`, ...indent(body), '}'];
    for (const [pkg, ifaces] of this.packages) {
      out.push('', `package ${pkg} {`);
      let first = true;
      for (const [iface, lines] of ifaces) {
        if (!first) out.push('');
        first = false;
        out.push(...indent([`interface ${id(iface)} {`, ...indent(lines), '}']));
      }
      out.push('}');
    }
    if (this.notes.length) out.push('', ...this.notes);
    return out.join('\n') + '\n';
  }
}

function safeEntries(m: Map<string, ExternType> | undefined): Entry[] {
  try {
    return m instanceof Map ? [...m.entries()] : [];
  } catch {
    return [];
  }
}

/** Prints a component's imports and exports as a WIT world. Never throws. */
export function printWit(ct: ComponentType, worldName = 'root'): string {
  try {
    const p = new WitPrinter();
    p.prepass(ct);
    return p.world(ct, worldName);
  } catch (e) {
    return `package root:component;\n\n// could not print this component's type: ${errText(e)}\nworld ${id(worldName)} {}\n`;
  }
}
