// Type equality and subtyping between component types (Explainer.md
// "Subtyping"), with resource-type substitution for instantiation.

import type {
  ComponentType, CoreExternType, CoreFuncType, CoreModuleType, DefType, ExternType, FuncType, InstanceType, ValType,
} from './types.ts';
import { ResourceType } from './types.ts';

/** Substitution applied to resource types of a component type while it is being matched/instantiated. */
export type Subst = Map<ResourceType | object, any>;

/** Types that carry an externally-visible name (introduced by an import or export). */
export const namedTypes = new WeakSet<object>();

/** Substitution keeps object identity for unchanged types and shares copies of shared types. */
const substCache = new WeakMap<Subst, Map<object, object>>();

function mentionsSubst(t: ValType, s: Subst): boolean {
  if (s.has(t)) return true;
  switch (t.kind) {
    case 'own': case 'borrow': return s.has(t.resource.root);
    case 'record': return t.fields.some((f) => mentionsSubst(f.type, s));
    case 'variant': return t.cases.some((c) => c.type !== null && mentionsSubst(c.type, s));
    case 'list': return mentionsSubst(t.elem, s);
    case 'tuple': return t.types.some((x) => mentionsSubst(x, s));
    case 'option': return mentionsSubst(t.type, s);
    case 'result': return (t.ok !== null && mentionsSubst(t.ok, s)) || (t.err !== null && mentionsSubst(t.err, s));
    case 'stream': case 'future': return t.elem !== null && mentionsSubst(t.elem, s);
    case 'map': return mentionsSubst(t.key, s) || mentionsSubst(t.value, s);
    default: return false;
  }
}

/** Substitute a resource type; aliases map to (shared) aliases of the substitute so names survive. */
export function substResource(r: ResourceType, s: Subst): ResourceType {
  const to = s.get(r.root);
  if (!to) return r;
  if (r === r.root) return to;
  let cache = substCache.get(s);
  if (!cache) substCache.set(s, (cache = new Map()));
  let a = cache.get(r) as ResourceType | undefined;
  if (!a) {
    a = ResourceType.alias(to, r.name);
    if (namedTypes.has(r)) namedTypes.add(a);
    cache.set(r, a);
  }
  return a;
}

export function substValType(t: ValType, s: Subst): ValType {
  if (s.size === 0 || !mentionsSubst(t, s)) return t;
  let cache = substCache.get(s);
  if (!cache) substCache.set(s, (cache = new Map()));
  const hit = cache.get(t);
  if (hit) return hit as ValType;
  const direct = s.get(t);
  if (direct) return direct as ValType;
  let out: ValType;
  switch (t.kind) {
    case 'own': case 'borrow': out = { kind: t.kind, resource: substResource(t.resource, s) }; break;
    case 'record': out = { kind: 'record', fields: t.fields.map((f) => ({ name: f.name, type: substValType(f.type, s) })) }; break;
    case 'variant': out = { kind: 'variant', cases: t.cases.map((c) => ({ name: c.name, type: c.type && substValType(c.type, s) })) }; break;
    case 'list': out = { kind: 'list', elem: substValType(t.elem, s), length: t.length }; break;
    case 'tuple': out = { kind: 'tuple', types: t.types.map((x) => substValType(x, s)) }; break;
    case 'option': out = { kind: 'option', type: substValType(t.type, s) }; break;
    case 'result': out = { kind: 'result', ok: t.ok && substValType(t.ok, s), err: t.err && substValType(t.err, s) }; break;
    case 'stream': case 'future': out = { kind: t.kind, elem: t.elem && substValType(t.elem, s) } as ValType; break;
    case 'map': out = { kind: 'map', key: substValType(t.key, s), value: substValType(t.value, s) }; break;
    default: return t;
  }
  if (namedTypes.has(t)) namedTypes.add(out);
  cache.set(t, out);
  return out;
}

export function substFunc(f: FuncType, s: Subst): FuncType {
  if (s.size === 0) return f;
  return { kind: 'func', async: f.async, params: f.params.map((p) => ({ name: p.name, type: substValType(p.type, s) })), result: f.result && substValType(f.result, s) };
}

export function substDef(t: DefType, s: Subst): DefType {
  if (s.size === 0) return t;
  if (t instanceof ResourceType) return substResource(t, s);
  switch (t.kind) {
    case 'func': return substFunc(t, s);
    case 'instance': return substInstance(t, s);
    case 'component': return { kind: 'component', imports: substMap(t.imports, s), exports: substMap(t.exports, s), importedResources: t.importedResources, exportedResources: t.exportedResources };
    case 'module': return t;
    default: return substValType(t, s);
  }
}

function substMap(m: Map<string, ExternType>, s: Subst): Map<string, ExternType> {
  const out = new Map<string, ExternType>();
  for (const [k, v] of m) out.set(k, substExtern(v, s));
  return out;
}

export function substInstance(t: InstanceType, s: Subst): InstanceType {
  return s.size === 0 ? t : { kind: 'instance', exports: substMap(t.exports, s) };
}

export function substExtern(e: ExternType, s: Subst): ExternType {
  if (s.size === 0) return e;
  switch (e.kind) {
    case 'func': return { kind: 'func', type: substFunc(e.type, s) };
    case 'instance': return { kind: 'instance', type: substInstance(e.type, s) };
    case 'component': return { kind: 'component', type: substDef(e.type, s) as ComponentType };
    case 'module': return e;
    case 'type': return { kind: 'type', type: substDef(e.type, s) };
    case 'value': return { kind: 'value', type: substValType(e.type, s) };
  }
}

/**
 * Structural equality of value types. With `anyResource`, handles match
 * whatever resource they name (funcShape: checked when bound at run time).
 */
export function valTypeEqual(a: ValType, b: ValType, anyResource = false): boolean {
  if (a === b) return true;
  if (a.kind !== b.kind) return false;
  const eq = (x: ValType, y: ValType): boolean => valTypeEqual(x, y, anyResource);
  const opt = (x: ValType | null, y: ValType | null): boolean => x === null || y === null ? x === y : eq(x, y);
  switch (a.kind) {
    case 'own': case 'borrow': return anyResource || a.resource.root === (b as typeof a).resource.root;
    case 'record': { const bb = b as typeof a; return a.fields.length === bb.fields.length && a.fields.every((f, i) => f.name === bb.fields[i].name && eq(f.type, bb.fields[i].type)); }
    case 'variant': { const bb = b as typeof a; return a.cases.length === bb.cases.length && a.cases.every((c, i) => c.name === bb.cases[i].name && opt(c.type, bb.cases[i].type)); }
    case 'list': { const bb = b as typeof a; return a.length === bb.length && eq(a.elem, bb.elem); }
    case 'tuple': { const bb = b as typeof a; return a.types.length === bb.types.length && a.types.every((t, i) => eq(t, bb.types[i])); }
    case 'flags': case 'enum': { const bb = b as typeof a; return a.names.length === bb.names.length && a.names.every((n, i) => n === bb.names[i]); }
    case 'option': return eq(a.type, (b as typeof a).type);
    case 'result': { const bb = b as typeof a; return opt(a.ok, bb.ok) && opt(a.err, bb.err); }
    case 'stream': case 'future': return opt(a.elem, (b as typeof a).elem);
    case 'map': { const bb = b as typeof a; return eq(a.key, bb.key) && eq(a.value, bb.value); }
    default: return true;
  }
}

function optEqual(a: ValType | null, b: ValType | null): boolean {
  return a === null || b === null ? a === b : valTypeEqual(a, b);
}

export function funcTypeEqual(a: FuncType, b: FuncType): boolean {
  return a.async === b.async && a.params.length === b.params.length
    && a.params.every((p, i) => p.name === b.params[i].name && valTypeEqual(p.type, b.params[i].type))
    && optEqual(a.result, b.result);
}

export function coreFuncTypeEqual(a: CoreFuncType, b: CoreFuncType): boolean {
  return a.params.length === b.params.length && a.results.length === b.results.length
    && a.params.every((p, i) => p === b.params[i]) && a.results.every((r, i) => r === b.results[i]);
}

/**
 * Is `actual` a subtype of `expected`? Resource types imported by `expected`'s
 * surrounding component (in `bind`) are bound on first sight, so matching an
 * instantiation's arguments fills in the substitution.
 */
export class Matcher {
  bind: Subst;
  bindable: Set<ResourceType>;
  /** Set while funcShape compares: handles nested in structural types match any resource too. */
  private shapeOnly = false;
  constructor(bind: Subst = new Map(), bindable: Set<ResourceType> = new Set()) {
    this.bind = bind;
    this.bindable = bindable;
  }

  resource(actual: ResourceType, expected: ResourceType): string | null {
    const e = expected.root, a = actual.root;
    const bound = this.bind.get(e);
    if (bound) return bound.root === a ? null : 'resource types differ';
    if (this.bindable.has(e)) { this.bind.set(e, a); return null; }
    return a === e ? null : 'resource types differ';
  }

  val(a: ValType, e: ValType): string | null {
    if (e.kind === 'own' || e.kind === 'borrow') {
      if (a.kind !== e.kind) return `expected ${e.kind}, found ${a.kind}`;
      return this.resource(a.resource, e.resource);
    }
    if (a.kind !== e.kind) return `expected ${e.kind}, found ${a.kind}`;
    // structural types: compare after substitution of bound resources
    return valTypeEqual(a, substValType(e, this.bind), this.shapeOnly) ? null : `type mismatch in ${e.kind}`;
  }

  func(a: FuncType, e: FuncType): string | null {
    if (a.async !== e.async) return 'function async-ness differs';
    if (a.params.length !== e.params.length) return 'function parameter count differs';
    for (let i = 0; i < a.params.length; i++) {
      if (a.params[i].name !== e.params[i].name) return `function parameter name: expected ${e.params[i].name}, found ${a.params[i].name}`;
      const m = this.val(a.params[i].type, e.params[i].type);
      if (m) return `parameter ${a.params[i].name}: ${m}`;
    }
    if ((a.result === null) !== (e.result === null)) return 'function result presence differs';
    if (a.result && e.result) { const m = this.val(a.result, e.result); if (m) return `result: ${m}`; }
    return null;
  }

  /** Function types compared with resources treated as wildcards (they are checked when bound at run time). */
  funcShape(a: FuncType, e: FuncType): string | null {
    const strip = (f: FuncType): FuncType => f;
    const save = this.resource;
    this.resource = () => null;
    const saveShape = this.shapeOnly;
    this.shapeOnly = true;
    try { return this.func(strip(a), e); } finally { this.resource = save; this.shapeOnly = saveShape; }
  }

  def(a: DefType, e: DefType): string | null {
    if (e instanceof ResourceType) return a instanceof ResourceType ? this.resource(a, e) : 'expected a resource type';
    if (a instanceof ResourceType) return 'expected a non-resource type';
    switch (e.kind) {
      case 'func': return a.kind === 'func' ? this.func(a, e) : 'expected a function type';
      case 'instance': return a.kind === 'instance' ? this.instance(a, e) : 'expected an instance type';
      case 'component': return a.kind === 'component' ? this.component(a, e) : 'expected a component type';
      case 'module': return a.kind === 'module' ? moduleSubtype(a, e) : 'expected a module type';
      default: return a.kind === 'func' || a.kind === 'instance' || a.kind === 'component' || a.kind === 'module' ? 'expected a value type' : this.val(a, e);
    }
  }

  extern(a: ExternType, e: ExternType): string | null {
    if (a.kind !== e.kind) return `expected ${e.kind}, found ${a.kind}`;
    switch (e.kind) {
      case 'func': return this.func((a as typeof e).type, e.type);
      case 'instance': return this.instance((a as typeof e).type, e.type);
      case 'component': return this.component((a as typeof e).type, e.type);
      case 'module': return moduleSubtype((a as typeof e).type, e.type);
      case 'type': return this.def((a as typeof e).type, e.type);
      case 'value': return this.val((a as typeof e).type, e.type);
    }
  }

  instance(a: InstanceType, e: InstanceType): string | null {
    for (const [name, et] of e.exports) {
      const at = a.exports.get(name);
      if (!at) return `missing export ${JSON.stringify(name)}`;
      const m = this.extern(at, et);
      if (m) return `export ${JSON.stringify(name)}: ${m}`;
    }
    return null;
  }

  component(a: ComponentType, e: ComponentType): string | null {
    // contravariant imports: every import of `a` must be provided by `e`'s imports
    const inner = new Matcher(new Map(this.bind), new Set([...this.bindable, ...a.importedResources]));
    for (const [name, at] of a.imports) {
      const et = e.imports.get(name);
      if (!et) return `component imports ${JSON.stringify(name)}, which the expected type does not supply`;
      const m = inner.extern(et, at);
      if (m) return `import ${JSON.stringify(name)}: ${m}`;
    }
    for (const r of a.exportedResources) { /* fresh on both sides: bind positionally by name below */ void r; }
    const outer = new Matcher(new Map([...this.bind, ...inner.bind]), new Set([...this.bindable, ...e.exportedResources]));
    for (const [name, et] of e.exports) {
      const at = a.exports.get(name);
      if (!at) return `missing export ${JSON.stringify(name)}`;
      const m = outer.extern(substExtern(at, inner.bind), et);
      if (m) return `export ${JSON.stringify(name)}: ${m}`;
    }
    return null;
  }
}

export function moduleSubtype(a: CoreModuleType, e: CoreModuleType): string | null {
  for (const imp of a.imports) {
    const ei = e.imports.find((x) => x.module === imp.module && x.name === imp.name);
    if (!ei) return `module imports ${imp.module}::${imp.name}, which the expected type does not supply`;
    const m = coreExternSubtype(ei.type, imp.type);
    if (m) return `import ${imp.module}::${imp.name}: ${m}`;
  }
  for (const [name, et] of e.exports) {
    const at = a.exports.get(name);
    if (!at) return `missing core export ${JSON.stringify(name)}`;
    const m = coreExternSubtype(at, et);
    if (m) return `core export ${JSON.stringify(name)}: ${m}`;
  }
  return null;
}

export function coreExternSubtype(a: CoreExternType, e: CoreExternType): string | null {
  if (a.kind !== e.kind) return `expected core ${e.kind}, found ${a.kind}`;
  switch (e.kind) {
    case 'func': case 'tag': return coreFuncTypeEqual((a as typeof e).type, e.type) ? null : 'core function types differ';
    case 'global': { const g = a as typeof e; return g.type === e.type && g.mutable === e.mutable ? null : 'core global types differ'; }
    case 'memory': case 'table': {
      const x = a as { min: number; max: number | null; is64?: boolean; shared?: boolean; elem?: string };
      const y = e as { min: number; max: number | null; is64?: boolean; shared?: boolean; elem?: string };
      if (!!x.is64 !== !!y.is64) return 'index types differ';
      if (e.kind === 'memory' && !!x.shared !== !!y.shared) return 'memory sharedness differs';
      if (e.kind === 'table' && x.elem !== y.elem) return 'table element types differ';
      if (x.min < y.min) return 'limits minimum too small';
      if (y.max !== null && (x.max === null || x.max > y.max)) return 'limits maximum too large';
      return null;
    }
  }
}
