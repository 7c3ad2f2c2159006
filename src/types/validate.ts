// Validation of a decoded component (Explainer.md, Binary.md, CanonicalABI.md
// "Canonical Definitions"). Walks the definitions in order, building every
// index space with resolved types. The result (ComponentDef) is the plan that
// instantiation replays: core modules compiled once, types resolved, function
// adapters chosen.

import type {
  Alias, Canon, CanonOpts, ComponentAst, ComponentDecl, CoreExternTypeAst, CoreTypeAst, DefValType,
  Definition, ExternTypeAst, InstanceDecl, NameAttrs, Sort, TypeAst, ValTypeRef,
} from '../binary/ast.ts';
import { parseCoreModuleType } from '../binary/core-module.ts';
import { compileLimitedModule, type CompileLimits } from '../binary/limits.ts';
import { DecodeError, LinkError, ValidationError } from '../errors.ts';
import { Matcher, coreFuncTypeEqual, moduleSubtype, namedTypes, substDef, substExtern, type Subst } from './subtype.ts';
import {
  ResourceType, type ComponentType, type CoreExternType, type CoreFuncType, type CoreModuleType, type DefType,
  type ExternType, type FuncType, type InstanceType, type ValType,
} from './types.ts';
import { parseExternName, uniquenessKey } from './names.ts';
import { flattenFuncType, flattenTypes, flattenType, elemSize, MAX_FLAT_ASYNC_PARAMS, MAX_FLAT_PARAMS, MAX_FLAT_RESULTS } from './layout.ts';

export type Features = Record<string, boolean>;

type CoreDefType = CoreFuncType | CoreModuleType | { kind: 'gc' };

/** One index space per sort; shared by components and component/instance type scopes. */
export class Scope {
  coreFuncs: CoreFuncType[] = [];
  coreTables: CoreExternType[] = [];
  coreMemories: CoreExternType[] = [];
  coreGlobals: CoreExternType[] = [];
  coreTags: CoreExternType[] = [];
  coreTypes: CoreDefType[] = [];
  coreModules: CoreModuleType[] = [];
  coreInstances: Map<string, CoreExternType>[] = [];
  funcs: FuncType[] = [];
  values: ValType[] = [];
  types: DefType[] = [];
  components: ComponentType[] = [];
  instances: InstanceType[] = [];
  /** resources defined (not imported) in this scope: outer aliases of types referring to them across a component boundary are rejected */
  definedResources = new Set<ResourceType>();
  parent: Scope | null;
  kind: 'component' | 'type';
  constructor(parent: Scope | null, kind: 'component' | 'type') {
    this.parent = parent;
    this.kind = kind;
  }
}

export interface CanonInfo {
  ft?: FuncType;
  rt?: ResourceType;
  valType?: ValType | null;
  memory64?: boolean;
}

/** The validated plan of one component. Per-definition info is indexed like `ast.definitions`. */
export interface ComponentDef {
  ast: ComponentAst;
  type: ComponentType;
  features: Features;
  /** compiled core modules by definition index */
  modules: Map<number, WebAssembly.Module>;
  /** the type of each compiled core module */
  moduleTypes: Map<WebAssembly.Module, CoreModuleType>;
  /** nested component plans by definition index */
  children: Map<number, ComponentDef>;
  /** resolved info by definition index (canon, types, imports) */
  info: Map<number, CanonInfo | DefType | ExternType>;
}

const MAX_TYPE_DEPTH = 100;

const depths = new WeakMap<ValType, number>();
/** Nesting depth of a value type (memoized: types are built bottom-up). */
function typeDepth(t: ValType): number {
  const d0 = depths.get(t);
  if (d0 !== undefined) return d0;
  let d = 1;
  const sub = (x: ValType | null) => { if (x) d = Math.max(d, 1 + typeDepth(x)); };
  switch (t.kind) {
    case 'record': t.fields.forEach((f) => sub(f.type)); break;
    case 'variant': t.cases.forEach((c) => sub(c.type)); break;
    case 'list': sub(t.elem); break;
    case 'tuple': t.types.forEach(sub); break;
    case 'option': sub(t.type); break;
    case 'result': sub(t.ok); sub(t.err); break;
    case 'stream': case 'future': sub(t.elem); break;
    case 'map': sub(t.key); sub(t.value); break;
  }
  depths.set(t, d);
  return d;
}

export function validateComponent(ast: ComponentAst, features: Features = {}, parent: Scope | null = null, limits?: CompileLimits): ComponentDef {
  const v = new ComponentValidator(ast, features, parent);
  v.limits = limits;
  return v.run();
}

function fail(rule: string, detail: string, offset?: number): never {
  throw new ValidationError(rule, detail, offset);
}

function sortName(s: Sort): string {
  return typeof s === 'string' ? s : `core ${s.core}`;
}

function containsBorrow(t: ValType, seen = new Set<ValType>()): boolean {
  return someType(t, (x) => x.kind === 'borrow');
}

function someType(t: ValType, p: (t: ValType) => boolean): boolean {
  if (p(t)) return true;
  switch (t.kind) {
    case 'record': return t.fields.some((f) => someType(f.type, p));
    case 'variant': return t.cases.some((c) => c.type !== null && someType(c.type, p));
    case 'list': return someType(t.elem, p);
    case 'tuple': return t.types.some((x) => someType(x, p));
    case 'option': return someType(t.type, p);
    case 'result': return (t.ok !== null && someType(t.ok, p)) || (t.err !== null && someType(t.err, p));
    case 'map': return someType(t.key, p) || someType(t.value, p);
    // streams/futures are handles: their element types are checked when defined
    default: return false;
  }
}

function needsMemory(t: ValType): boolean {
  return someType(t, (x) => x.kind === 'string' || (x.kind === 'list' && x.length === null) || x.kind === 'map');
}

export function resourcesIn(t: ValType, out: Set<ResourceType>): void {
  someType(t, (x) => { if (x.kind === 'own' || x.kind === 'borrow') out.add(x.resource.root); return false; });
}

function isValType(t: DefType): t is ValType {
  return !(t instanceof ResourceType) && t.kind !== 'func' && t.kind !== 'component' && t.kind !== 'instance' && t.kind !== 'module';
}

class ComponentValidator {
  scope: Scope;
  def: ComponentDef;
  imports = new Map<string, ExternType>();
  exports = new Map<string, ExternType>();
  importKeys = new Set<string>();
  exportKeys = new Set<string>();
  importedResources: ResourceType[] = [];
  /** resource names visible for [constructor]/[method]/[static] checks */
  importedResourceNames = new Map<string, ResourceType>();
  exportedResourceNames = new Map<string, ResourceType>();
  /** resource types introduced by imports or exports: exported types may only use these */
  namedResources = new Set<ResourceType>();

  features: Features;
  /** compile-time limits (src/runtime/limits.ts): they rewrite core modules' memory and table maxima */
  limits: CompileLimits | undefined = undefined;
  constructor(ast: ComponentAst, features: Features, parent: Scope | null) {
    this.features = features;
    this.scope = new Scope(parent, 'component');
    this.def = { ast, type: null as unknown as ComponentType, features, modules: new Map(), moduleTypes: new Map(), children: new Map(), info: new Map() };
  }

  run(): ComponentDef {
    const defs = this.def.ast.definitions;
    for (let i = 0; i < defs.length; i++) this.definition(defs[i], i);
    this.def.type = {
      kind: 'component', imports: this.imports, exports: this.exports,
      importedResources: this.importedResources,
      exportedResources: exportedResourcesOf(this.imports, this.exports, this.importedResources),
    };
    return this.def;
  }

  // ---------- definitions ----------
  definition(d: Definition, i: number): void {
    const s = this.scope;
    switch (d.kind) {
      case 'core-module': {
        let mt: CoreModuleType;
        try {
          mt = parseCoreModuleType(d.bytes, d.offset);
        } catch (e) {
          if (e instanceof ValidationError || e instanceof DecodeError) throw e;
          throw new ValidationError('core module', (e as Error).message, d.offset);
        }
        let m: WebAssembly.Module;
        try {
          m = compileLimitedModule(d.bytes, this.limits);
        } catch (e) {
          if (e instanceof LinkError) throw e; // a limit the module cannot be compiled under (src/runtime/limits.ts)
          throw new ValidationError('core module must be valid', `core module at byte offset ${d.offset}: ${(e as Error).message}`, d.offset);
        }
        const seen = new Set<string>();
        for (const imp of mt.imports) {
          const k = `${imp.module}\0${imp.name}`;
          if (seen.has(k)) throw new ValidationError('core module', `duplicate import name \`${imp.module}:${imp.name}\``, d.offset);
          seen.add(k);
        }
        this.def.modules.set(i, m);
        this.def.moduleTypes.set(m, mt);
        s.coreModules.push(mt);
        return;
      }
      case 'core-instance': return this.coreInstance(d.expr);
      case 'core-type': s.coreTypes.push(this.coreType(d.type, s)); return;
      case 'component': {
        const child = validateComponent(d.component, this.features, s, this.limits);
        this.def.children.set(i, child);
        s.components.push(child.type);
        return;
      }
      case 'instance':
        this.instance(d.expr);
        this.def.info.set(i, s.instances[s.instances.length - 1]);
        return;
      case 'alias':
        this.alias(d.alias, s, true);
        if (d.alias.kind === 'export') this.def.info.set(i, s.instances[d.alias.instance].exports.get(d.alias.name)!);
        return;
      case 'type': {
        const t = this.typeDef(d.type, s);
        if (t instanceof ResourceType) s.definedResources.add(t);
        this.def.info.set(i, t);
        s.types.push(t);
        return;
      }
      case 'canon': return this.canon(d.canon, i, d.offset);
      case 'start': fail('start', 'value definitions and start functions (🪙) are not supported', d.offset);
      case 'import': return this.import(d.name, d.type, i, d.offset);
      case 'export': return this.export(d, i);
      case 'value': fail('values', 'value definitions (🪙) are not supported', d.offset);
    }
  }

  coreInstance(e: import('../binary/ast.ts').CoreInstanceExpr): void {
    const s = this.scope;
    if (e.kind === 'instantiate') {
      const mt = s.coreModules[e.module];
      if (!mt) fail('core instantiate', `module index ${e.module} out of bounds`, e.offset);
      const args = new Map<string, Map<string, CoreExternType>>();
      for (const a of e.args) {
        if (args.has(a.name)) fail('core instantiate', `duplicate argument name ${JSON.stringify(a.name)}`, e.offset);
        const inst = s.coreInstances[a.instance];
        if (!inst) fail('core instantiate', `core instance index ${a.instance} out of bounds`, e.offset);
        args.set(a.name, inst);
      }
      for (const imp of mt.imports) {
        const arg = args.get(imp.module);
        if (!arg) fail('core instantiate: missing argument', `module import ${JSON.stringify(imp.module)} not supplied`, e.offset);
        const t = arg.get(imp.name);
        if (!t) fail('core instantiate: missing import', `${imp.module}::${imp.name} not exported by the argument instance`, e.offset);
        const m = coreExternImportMatch(t, imp.type);
        if (m) fail('core instantiate: import type mismatch', `${imp.module}::${imp.name}: ${m}`, e.offset);
      }
      s.coreInstances.push(new Map(mt.exports));
      return;
    }
    const exports = new Map<string, CoreExternType>();
    for (const x of e.exports) {
      if (exports.has(x.item.sort === 'func' ? x.name : x.name)) fail('core instance exports', `duplicate export name ${JSON.stringify(x.name)}`, e.offset);
      exports.set(x.name, this.coreItemType(x.item.sort, x.item.idx, e.offset));
    }
    s.coreInstances.push(exports);
  }

  coreItemType(sort: string, idx: number, offset: number): CoreExternType {
    const s = this.scope;
    const get = <T>(arr: T[], what: string): T => {
      const t = arr[idx];
      if (t === undefined) fail('index out of bounds', `core ${what} index ${idx}`, offset);
      return t;
    };
    switch (sort) {
      case 'func': return { kind: 'func', type: get(s.coreFuncs, 'func') };
      case 'table': return get(s.coreTables, 'table');
      case 'memory': return get(s.coreMemories, 'memory');
      case 'global': return get(s.coreGlobals, 'global');
      case 'tag': return get(s.coreTags, 'tag');
    }
    fail('core instance exports', `core sort ${sort} cannot be exported from a core instance`, offset);
  }

  instance(e: import('../binary/ast.ts').InstanceExpr): void {
    const s = this.scope;
    if (e.kind === 'instantiate') {
      const ct = s.components[e.component];
      if (!ct) fail('instantiate', `component index ${e.component} out of bounds`, e.offset);
      const args = new Map<string, ExternType>();
      for (const a of e.args) {
        if (args.has(a.name)) fail('instantiate', `duplicate argument name ${JSON.stringify(a.name)}`, e.offset);
        args.set(a.name, this.itemType(a.item.sort, a.item.idx, e.offset));
      }
      s.instances.push(instantiateType(ct, args, e.offset));
      return;
    }
    const exports = new Map<string, ExternType>();
    const keys = new Set<string>();
    const resNames = new Map<string, ResourceType>();
    for (const x of e.exports) {
      this.checkName(x.name, keys, 'instance export', e.offset);
      let t = this.itemType(x.item.sort, x.item.idx, e.offset);
      // like an export declarator, a type export of a bag of exports introduces a new name for the type
      if (t.kind === 'type' && t.type instanceof ResourceType) {
        t = { kind: 'type', type: ResourceType.alias(t.type, x.name.name) };
        resNames.set(x.name.name, t.type as ResourceType);
      }
      if (t.kind === 'func') this.checkAnnotated(x.name.name, t, resNames, e.offset, true);
      exports.set(x.name.name, t);
    }
    s.instances.push({ kind: 'instance', exports });
  }

  /** The extern type of an item in one of this component's index spaces. */
  itemType(sort: Sort, idx: number, offset: number): ExternType {
    const s = this.scope;
    const get = <T>(arr: T[], what: string): T => {
      const t = arr[idx];
      if (t === undefined) fail('index out of bounds', `${what} index ${idx} out of bounds`, offset);
      return t;
    };
    if (typeof sort !== 'string') {
      if (sort.core === 'module') return { kind: 'module', type: get(s.coreModules, 'core module') };
      fail('sort', `core ${sort.core} cannot be used as a component-level item`, offset);
    }
    switch (sort) {
      case 'func': return { kind: 'func', type: get(s.funcs, 'func') };
      case 'value': fail('values', 'value definitions (🪙) are not supported', offset);
      case 'type': return { kind: 'type', type: get(s.types, 'type') };
      case 'component': return { kind: 'component', type: get(s.components, 'component') };
      case 'instance': return { kind: 'instance', type: get(s.instances, 'instance') };
    }
  }

  // ---------- aliases ----------
  alias(a: Alias, s: Scope, inComponent: boolean): void {
    switch (a.kind) {
      case 'export': {
        const it = s.instances[a.instance];
        if (!it) fail('alias', `instance index ${a.instance} out of bounds`, a.offset);
        const t = it.exports.get(a.name);
        if (!t) fail('alias export', `instance ${a.instance} has no export named ${JSON.stringify(a.name)}`, a.offset);
        if (!sortMatches(a.sort, t)) fail('alias export', `export ${JSON.stringify(a.name)} is a ${t.kind}, not a ${sortName(a.sort)}`, a.offset);
        if (!inComponent && a.sort !== 'type' && a.sort !== 'instance' && !(a.sort === 'func' || a.sort === 'component'))
          fail('alias in type', `only type and instance exports may be aliased in a type`, a.offset);
        pushExtern(s, t);
        return;
      }
      case 'core-export': {
        const it = s.coreInstances[a.instance];
        if (!it) fail('alias', `core instance index ${a.instance} out of bounds`, a.offset);
        if (typeof a.sort === 'string') fail('alias core export', 'sort must be a core sort', a.offset);
        const t = it.get(a.name);
        if (!t) fail('alias core export', `core instance ${a.instance} has no export named ${JSON.stringify(a.name)}`, a.offset);
        if (t.kind !== a.sort.core) fail('alias core export', `export ${JSON.stringify(a.name)} is a ${t.kind}, not a ${a.sort.core}`, a.offset);
        switch (t.kind) {
          case 'func': s.coreFuncs.push(t.type); break;
          case 'table': s.coreTables.push(t); break;
          case 'memory': s.coreMemories.push(t); break;
          case 'global': s.coreGlobals.push(t); break;
          case 'tag': s.coreTags.push(t); break;
        }
        return;
      }
      case 'outer': {
        let target: Scope | null = s;
        let crossesComponent = false;
        for (let n = 0; n < a.count; n++) {
          if (target.kind === 'component') crossesComponent = true;
          target = target.parent;
          if (!target) fail('outer alias', `outer count ${a.count} exceeds the number of enclosing scopes`, a.offset);
        }
        const sort = a.sort;
        if (typeof sort !== 'string') {
          if (sort.core === 'type') {
            const t = target.coreTypes[a.idx];
            if (t === undefined) fail('outer alias', `core type index ${a.idx} out of bounds`, a.offset);
            s.coreTypes.push(t);
            return;
          }
          if (sort.core === 'module') {
            const t = target.coreModules[a.idx];
            if (!t) fail('outer alias', `core module index ${a.idx} out of bounds`, a.offset);
            if (!inComponent) fail('outer alias', 'only types may be outer-aliased in a type declarator', a.offset);
            s.coreModules.push(t);
            return;
          }
          fail('outer alias', `sort core ${sort.core} cannot be outer-aliased`, a.offset);
        }
        if (sort === 'type') {
          const t = target.types[a.idx];
          if (t === undefined) fail('outer alias', `type index ${a.idx} out of bounds`, a.offset);
          if (crossesComponent && a.count > 0 && refersToDefinedResource(t, target))
            fail('outer alias', 'an outer alias across a component boundary cannot refer to a resource type', a.offset);
          s.types.push(t);
          return;
        }
        if (sort === 'component') {
          if (!inComponent) fail('outer alias', 'only types may be outer-aliased in a type declarator', a.offset);
          const t = target.components[a.idx];
          if (!t) fail('outer alias', `component index ${a.idx} out of bounds`, a.offset);
          s.components.push(t);
          return;
        }
        fail('outer alias', `sort ${sort} cannot be outer-aliased`, a.offset);
      }
    }
  }

  // ---------- types ----------
  coreType(t: CoreTypeAst, s: Scope): CoreDefType {
    if (t.kind === 'func') return { kind: 'func', params: t.params, results: t.results };
    if (t.kind === 'gc') return { kind: 'gc' };
    // module type: validated with a fresh core type index space whose parent is `s`
    const inner = new Scope(s, 'type');
    const imports: CoreModuleType['imports'] = [];
    const exports = new Map<string, CoreExternType>();
    for (const d of t.decls) {
      switch (d.kind) {
        case 'import':
          if (imports.some((x) => x.module === d.module && x.name === d.name)) fail('core module type', `duplicate import name \`${d.module}:${d.name}\``, t.offset);
          if (d.type.kind === 'memory' && !d.type.is64 && (d.type.min > 65536 || (d.type.max ?? 0) > 65536)) fail('core module type', 'memory size must be at most 65536 pages (4GiB)', t.offset);
          imports.push({ module: d.module, name: d.name, type: this.coreExternType(d.type, inner, t.offset) });
          break;
        case 'type':
          if (d.type.kind === 'module') fail('module type', 'module types cannot be nested in module types', t.offset);
          inner.coreTypes.push(this.coreType(d.type, inner));
          break;
        case 'alias': {
          let target: Scope | null = inner;
          for (let n = 0; n < d.count; n++) { target = target?.parent ?? null; }
          if (!target) fail('outer alias', `outer count ${d.count} exceeds the number of enclosing scopes`, t.offset);
          const at = target.coreTypes[d.idx];
          if (at === undefined) fail('outer alias', `core type index ${d.idx} out of bounds`, t.offset);
          if (at.kind === 'module') fail('outer alias', 'a module type cannot be aliased into a module type', t.offset);
          inner.coreTypes.push(at);
          break;
        }
        case 'export':
          if (exports.has(d.name)) fail('module type', `duplicate export ${JSON.stringify(d.name)}`, t.offset);
          exports.set(d.name, this.coreExternType(d.type, inner, t.offset));
          break;
      }
    }
    return { kind: 'module', imports, exports };
  }

  coreExternType(t: CoreExternTypeAst, s: Scope, offset: number): CoreExternType {
    if (t.kind === 'func' || t.kind === 'tag') {
      const ft = s.coreTypes[t.typeIdx];
      if (!ft) fail('index out of bounds', `core type index ${t.typeIdx}`, offset);
      if (ft.kind !== 'func') fail('core extern type', `core type ${t.typeIdx} is not a function type`, offset);
      return { kind: t.kind, type: ft };
    }
    return t;
  }

  valType(r: ValTypeRef, s: Scope, offset: number): ValType {
    if (r.kind === 'prim') {
      if (r.name === 'error-context' && this.features.component_model_error_context === false) fail('feature', 'error-context is not enabled', offset);
      return { kind: r.name };
    }
    const t = s.types[r.idx];
    if (t === undefined) fail('index out of bounds', `type index ${r.idx} out of bounds`, offset);
    if (!isValType(t)) fail('valtype', `type index ${r.idx} is not a value type`, offset);
    return t;
  }

  defValType(d: DefValType, s: Scope, offset: number): ValType {
    const vt = (r: ValTypeRef) => this.valType(r, s, offset);
    const uniqueLabels = (names: string[], what: string) => {
      const seen = new Set<string>();
      for (const n of names) {
        if (!/^[a-zA-Z]/.test(n) || parseExternName(n)?.kind !== 'label') fail('name must be kebab-case', `${what} label ${JSON.stringify(n)} is not kebab-case`, offset);
        const k = n.toLowerCase();
        if (seen.has(k)) fail('names must be unique', `${what} label ${JSON.stringify(n)} conflicts with another`, offset);
        seen.add(k);
      }
    };
    let t: ValType;
    switch (d.kind) {
      case 'prim': return this.valType({ kind: 'prim', name: d.name }, s, offset);
      case 'record':
        if (d.fields.length === 0) fail('record', 'a record must have at least one field', offset);
        uniqueLabels(d.fields.map((f) => f.name), 'record field');
        t = { kind: 'record', fields: d.fields.map((f) => ({ name: f.name, type: vt(f.type) })) };
        break;
      case 'variant':
        if (d.cases.length === 0) fail('variant', 'a variant must have at least one case', offset);
        uniqueLabels(d.cases.map((c) => c.name), 'variant case');
        t = { kind: 'variant', cases: d.cases.map((c) => ({ name: c.name, type: c.type && vt(c.type) })) };
        break;
      case 'list':
        if (d.length !== null) {
          if (this.features.component_model_fixed_length_lists === false || !this.features.component_model_fixed_length_lists && false) fail('feature', 'fixed-length lists are not enabled', offset);
          if (d.length === 0) fail('fixed-length list', 'a fixed-length list must have a length greater than 0', offset);
        }
        t = { kind: 'list', elem: vt(d.elem), length: d.length };
        break;
      case 'tuple':
        if (d.types.length === 0) fail('tuple', 'a tuple must have at least one element', offset);
        t = { kind: 'tuple', types: d.types.map(vt) };
        break;
      case 'flags':
        if (d.names.length === 0) fail('flags', 'flags must have at least one label', offset);
        if (d.names.length > 32) fail('flags', 'flags can have at most 32 labels', offset);
        uniqueLabels(d.names, 'flags');
        t = { kind: 'flags', names: d.names };
        break;
      case 'enum':
        if (d.names.length === 0) fail('enum', 'an enum must have at least one case', offset);
        uniqueLabels(d.names, 'enum case');
        t = { kind: 'enum', names: d.names };
        break;
      case 'option': t = { kind: 'option', type: vt(d.type) }; break;
      case 'result': t = { kind: 'result', ok: d.ok && vt(d.ok), err: d.err && vt(d.err) }; break;
      case 'own': case 'borrow': {
        const r = s.types[d.idx];
        if (r === undefined) fail('index out of bounds', `type index ${d.idx} out of bounds`, offset);
        if (!(r instanceof ResourceType)) fail('handle type', `type index ${d.idx} is not a resource type`, offset);
        return { kind: d.kind, resource: r };
      }
      case 'stream': case 'future': {
        if (this.features.component_model_async === false) fail('feature', `${d.kind} types require the async feature`, offset);
        const elem = d.elem && vt(d.elem);
        if (elem && containsBorrow(elem)) fail(`${d.kind} element type`, `a ${d.kind} element type cannot contain a borrow`, offset);
        if (elem && d.kind === 'stream' && elem.kind === 'char') fail('stream element type', '(stream char) is not allowed', offset);
        t = { kind: d.kind, elem } as ValType;
        break;
      }
      case 'map': {
        if (this.features.component_model_map === false) fail('feature', 'map types are not enabled', offset);
        const key = vt(d.key);
        const keyKinds = ['bool', 's8', 'u8', 's16', 'u16', 's32', 'u32', 's64', 'u64', 'char', 'string'];
        if (!keyKinds.includes(key.kind)) fail('map key type', `a map key must be a primitive integer, bool, char or string type, found ${key.kind}`, offset);
        t = { kind: 'map', key, value: vt(d.value) };
        break;
      }
    }
    if (elemSize(t, 'i64') >= 2 ** 28) fail('value type size', 'the type is too large (elem_size must be less than 2^28)', offset);
    if (typeDepth(t) > MAX_TYPE_DEPTH) fail('type nesting', `type nesting is too deep (more than ${MAX_TYPE_DEPTH} levels)`, offset);
    return t;
  }

  funcType(t: import('../binary/ast.ts').FuncTypeAst, s: Scope, offset: number): FuncType {
    if (t.async && this.features.component_model_async === false) fail('feature', 'async function types require the async feature', offset);
    const seen = new Set<string>();
    const params = t.params.map((p) => {
      if (parseExternName(p.name)?.kind !== 'label') fail('name must be kebab-case', `parameter name ${JSON.stringify(p.name)} is not kebab-case`, offset);
      const k = p.name.toLowerCase();
      if (seen.has(k)) fail('names must be unique', `duplicate parameter name ${JSON.stringify(p.name)}`, offset);
      seen.add(k);
      return { name: p.name, type: this.valType(p.type, s, offset) };
    });
    const result = t.result && this.valType(t.result, s, offset);
    if (result && containsBorrow(result)) fail('function result', 'a function result type cannot contain a borrow', offset);
    return { kind: 'func', async: t.async, params, result };
  }

  typeDef(t: TypeAst, s: Scope): DefType {
    switch (t.kind) {
      case 'defval': return this.defValType(t.type, s, t.offset);
      case 'func': return this.funcType(t, s, t.offset);
      case 'resource': {
        if (s.kind !== 'component') fail('resource type', 'resource types cannot be defined inside component or instance types', t.offset);
        if (t.rep !== 'i32') fail('resource type', 'resource representation must be i32', t.offset);
        if (t.dtor !== null) {
          const f = s.coreFuncs[t.dtor];
          if (!f) fail('index out of bounds', `core func index ${t.dtor} out of bounds`, t.offset);
          if (!coreFuncTypeEqual(f, { kind: 'func', params: ['i32'], results: [] })) fail('resource destructor', 'a resource destructor must have type [i32] -> []', t.offset);
        }
        return new ResourceType('', { rep: t.rep, dtor: t.dtor });
      }
      case 'instance': return this.instanceType(t.decls, s, t.offset);
      case 'component': return this.componentType(t.decls, s, t.offset);
    }
  }

  instanceType(decls: InstanceDecl[], s: Scope, offset: number): InstanceType {
    const inner = new Scope(s, 'type');
    const exports = new Map<string, ExternType>();
    const keys = new Set<string>();
    const resNames = new Map<string, ResourceType>();
    for (const d of decls) this.decl(d, inner, exports, keys, resNames, null, offset);
    return { kind: 'instance', exports };
  }

  componentType(decls: ComponentDecl[], s: Scope, offset: number): ComponentType {
    const inner = new Scope(s, 'type');
    const exports = new Map<string, ExternType>();
    const imports = new Map<string, ExternType>();
    const ekeys = new Set<string>();
    const ikeys = new Set<string>();
    const eres = new Map<string, ResourceType>();
    const ires = new Map<string, ResourceType>();
    const importedResources: ResourceType[] = [];
    const exportedResources: ResourceType[] = [];
    const importNamed = new Set<object>(), named = new Set<object>();
    for (const d of decls) {
      if (d.kind === 'import') {
        importedResources.push(...this.declExtern(d.name, d.type, inner, imports, ikeys, ires, 'import', d.offset, importNamed));
        collectLocalNames(imports.get(d.name.name)!, importNamed);
        collectLocalNames(imports.get(d.name.name)!, named);
      } else if (d.kind === 'export') {
        exportedResources.push(...this.declExtern(d.name, d.type, inner, exports, ekeys, eres, 'export', d.offset, named));
        collectLocalNames(exports.get(d.name.name)!, named);
      } else this.decl(d, inner, exports, ekeys, eres, null, offset);
    }
    return { kind: 'component', imports, exports, importedResources, exportedResources };
  }

  decl(d: InstanceDecl, inner: Scope, exports: Map<string, ExternType>, keys: Set<string>, resNames: Map<string, ResourceType>, _x: null, offset: number): void {
    switch (d.kind) {
      case 'core-type': inner.coreTypes.push(this.coreType(d.type, inner)); return;
      case 'type': {
        if (d.type.kind === 'resource') fail('resource type', 'resource types cannot be defined inside component or instance types', d.offset);
        inner.types.push(this.typeDef(d.type, inner));
        return;
      }
      case 'alias': {
        const a = d.alias;
        if (a.kind === 'outer' && a.sort !== 'type' && !(typeof a.sort !== 'string' && a.sort.core === 'type'))
          fail('alias in type', 'outer aliases in a type declarator may only alias types', d.offset);
        if (a.kind === 'core-export') fail('alias in type', 'core export aliases are not allowed in a type declarator', d.offset);
        if (a.kind === 'export' && a.sort !== 'type' && a.sort !== 'instance') fail('alias in type', 'export aliases in a type declarator may only alias types and instances', d.offset);
        this.alias(a, inner, false);
        return;
      }
      case 'export': this.declExtern(d.name, d.type, inner, exports, keys, resNames, 'export', d.offset); return;
    }
  }

  /** An import/export declarator in a type; returns the fresh resource type for `(sub resource)`. */
  declExtern(na: NameAttrs, et: ExternTypeAst, inner: Scope, map: Map<string, ExternType>, keys: Set<string>, resNames: Map<string, ResourceType>, what: string, offset: number, visible?: Set<object>): ResourceType[] {
    this.checkName(na, keys, what, offset);
    let [t, fresh] = freshen(this.externType(et, inner, offset, na.name), true);
    if (visible) this.checkVisible(t, what as 'import' | 'export', visible, offset);
    if (na.implements !== undefined && t.kind !== 'instance') fail('implements', `only instances can have an \`implements\` attribute`, offset);
    t = nameType(t, na.name, et);
    this.checkAnnotated(na.name, t, resNames, offset);
    map.set(na.name, t);
    pushExtern(inner, t);
    if (t.kind === 'type' && t.type instanceof ResourceType) {
      resNames.set(na.name, t.type);
      if (et.kind === 'type' && et.bound.kind === 'sub-resource') fresh.push(t.type);
    }
    return fresh;
  }

  externType(et: ExternTypeAst, s: Scope, offset: number, name: string): ExternType {
    const get = <T>(arr: T[], idx: number, what: string): T => {
      const t = arr[idx];
      if (t === undefined) fail('index out of bounds', `${what} index ${idx} out of bounds`, offset);
      return t;
    };
    switch (et.kind) {
      case 'module': {
        const t = get(s.coreTypes, et.idx, 'core type');
        if (t.kind !== 'module') fail('extern type', `core type ${et.idx} is not a module type`, offset);
        return { kind: 'module', type: t };
      }
      case 'func': {
        const t = get(s.types, et.idx, 'type');
        if (t instanceof ResourceType || t.kind !== 'func') fail('extern type', `type ${et.idx} is not a function type`, offset);
        return { kind: 'func', type: t };
      }
      case 'value': fail('values', 'value imports/exports (🪙) are not supported', offset);
      case 'type': {
        if (et.bound.kind === 'sub-resource') {
          const r = new ResourceType(name);
          if (s.kind === 'type') typeLocalResources.add(r);
          return { kind: 'type', type: r };
        }
        const t = get(s.types, et.bound.idx, 'type');
        return { kind: 'type', type: t };
      }
      case 'component': {
        const t = get(s.types, et.idx, 'type');
        if (t instanceof ResourceType || t.kind !== 'component') fail('extern type', `type ${et.idx} is not a component type`, offset);
        return { kind: 'component', type: t };
      }
      case 'instance': {
        const t = get(s.types, et.idx, 'type');
        if (t instanceof ResourceType || t.kind !== 'instance') fail('extern type', `type ${et.idx} is not an instance type`, offset);
        return { kind: 'instance', type: t };
      }
    }
  }

  checkName(na: NameAttrs, keys: Set<string>, what: string, offset: number): void {
    const p = parseExternName(na.name);
    if (!p) fail('name must be kebab-case', `${what} name ${JSON.stringify(na.name)} is not a valid plain name or interface name`, offset);
    const key = uniquenessKey(na.name);
    if (keys.has(key)) fail('names must be strongly-unique', `${what} name ${JSON.stringify(na.name)} conflicts with an earlier name`, offset);
    keys.add(key);
    if (na.implements !== undefined) {
      if (this.features.component_model_implements === false) fail('feature', 'the implements attribute is not enabled', offset);
      if (p.kind !== 'label') fail('implements', `an implements-annotated ${what} must have a plain name`, offset);
      const ip = parseExternName(na.implements);
      if (!ip || ip.kind !== 'interface') fail('implements', `${JSON.stringify(na.implements)} is not an interface name`, offset);
    }
    if (na.versionSuffix !== undefined) {
      if (p.kind !== 'interface' || !p.version) fail('versionsuffix', 'a versionsuffix must follow an interface version', offset);
    }
  }

  /** `strict`: the function must use the very type index the scope named (bags of exports), not another alias of it. */
  checkAnnotated(name: string, t: ExternType, resNames: Map<string, ResourceType>, offset: number, strict = false): void {
    const p = parseExternName(name);
    if (!p) return;
    if (p.kind !== 'constructor' && p.kind !== 'method' && p.kind !== 'static') {
      return;
    }
    if (t.kind !== 'func') fail('annotated name', `${JSON.stringify(name)} must be a function`, offset);
    const rt = resNames.get(p.resource!);
    if (!rt) fail('annotated name', `${JSON.stringify(name)} refers to ${JSON.stringify(p.resource)}, which is not a preceding resource in the same scope`, offset);
    const ft = t.type;
    if (strict) {
      const used = new Set<object>();
      collectRefs(t, used, false);
      for (const r of used) if (r instanceof ResourceType && r.root === rt.root && r !== rt)
        fail('annotated name', `resource used in function ${JSON.stringify(name)} does not have a name in this context`, offset);
    }
    if (p.kind === 'constructor') {
      const r = ft.result;
      const ok = r !== null && ((r.kind === 'own' && r.resource.root === rt.root)
        || (r.kind === 'result' && r.ok !== null && r.ok.kind === 'own' && r.ok.resource.root === rt.root));
      if (!ok) fail('constructor result', `${JSON.stringify(name)} must return (own ${p.resource}) or a result of it`, offset);
    } else if (p.kind === 'method') {
      const first = ft.params[0];
      if (!first || first.name !== 'self' || first.type.kind !== 'borrow' || first.type.resource.root !== rt.root)
        fail('method receiver', `${JSON.stringify(name)} must take (param "self" (borrow ${p.resource})) first`, offset);
    }
  }

  // ---------- imports / exports ----------
  import(na: NameAttrs, et: ExternTypeAst, i: number, offset: number): void {
    this.checkName(na, this.importKeys, 'import', offset);
    let [t, fresh] = freshen(this.externType(et, this.scope, offset, na.name), false);
    this.importedResources.push(...fresh);
    this.checkVisible(t, 'import', this.importNamed, offset);
    t = nameType(t, na.name, et);
    collectLocalNames(t, this.importNamed);
    collectLocalNames(t, this.named);
    this.checkAnnotated(na.name, t, this.importedResourceNames, offset);
    if (na.implements !== undefined && t.kind !== 'instance') fail('implements', 'implements-annotated imports must be instances', offset);
    if (t.kind === 'type' && t.type instanceof ResourceType) {
      this.importedResourceNames.set(na.name, t.type);
      if (et.kind === 'type' && et.bound.kind === 'sub-resource') this.importedResources.push(t.type);
    }
    collectResources(t, this.namedResources);
    this.imports.set(na.name, t);
    this.def.info.set(i, t);
    pushExtern(this.scope, t);
  }

  export(d: Extract<Definition, { kind: 'export' }>, i: number): void {
    const na = d.name;
    this.checkName(na, this.exportKeys, 'export', d.offset);
    let t = this.itemType(d.item.sort, d.item.idx, d.offset);
    if (d.type) {
      const asc = this.externType(d.type, this.scope, d.offset, na.name);
      const m = new Matcher(new Map(), new Set(asc.kind === 'type' && asc.type instanceof ResourceType && d.type.kind === 'type' && d.type.bound.kind === 'sub-resource' ? [asc.type.root] : []));
      const err = m.extern(t, asc);
      if (err) fail('export type ascription', `export ${JSON.stringify(na.name)}: ${err}`, d.offset);
      // a `(sub resource)` ascription exports an abstract resource type distinct from the original
      t = asc;
    }
    if (na.implements !== undefined && t.kind !== 'instance') fail('implements', 'implements-annotated exports must be instances', d.offset);
    this.checkVisible(t, 'export', this.named, d.offset);
    t = nameType(t, na.name, d.type ?? { kind: 'func', idx: 0 });
    this.checkAnnotated(na.name, t, this.exportedResourceNames, d.offset);
    if (t.kind === 'type' && t.type instanceof ResourceType) this.exportedResourceNames.set(na.name, t.type);
    collectLocalNames(t, this.named);
    if (t.kind === 'func' && t.type.result && containsBorrow(t.type.result)) fail('export', 'exported function results cannot contain borrow', d.offset);
    this.exports.set(na.name, t);
    this.def.info.set(i, t);
    pushExtern(this.scope, t);
  }

  /** types named by this component's imports (usable by later imports and exports) */
  importNamed = new Set<object>();
  /** types named by imports or exports (usable by later exports) */
  named = new Set<object>();

  /** External visibility of types (Explainer.md): nominal types used by an import/export must have a name. */
  checkVisible(t: ExternType, what: 'import' | 'export', named: Set<object>, offset: number): void {
    const local = new Set<object>();
    collectLocalNames(t, local);
    const refs = new Set<object>();
    collectRefs(t, refs, false);
    for (const r of refs) {
      if (named.has(r) || local.has(r)) continue;
      const kind = t.kind === 'type' ? 'type' : t.kind;
      fail('external visibility of types', `${kind} not valid to be used as ${what}: ${JSON.stringify((r as { name?: string }).name ?? '')} ${r instanceof ResourceType ? 'resource' : (r as ValType).kind} type has no externally-visible name (import or export it first)`, offset);
    }
  }

  // ---------- canon ----------
  canon(c: Canon, i: number, offset: number): void {
    const s = this.scope;
    const coreFunc = (idx: number): CoreFuncType => {
      const f = s.coreFuncs[idx];
      if (!f) fail('index out of bounds', `core func index ${idx} out of bounds`, offset);
      return f;
    };
    const typeAt = (idx: number): DefType => {
      const t = s.types[idx];
      if (t === undefined) fail('index out of bounds', `type index ${idx} out of bounds`, offset);
      return t;
    };
    const resource = (idx: number, mustBeLocal: boolean): ResourceType => {
      const t = typeAt(idx);
      if (!(t instanceof ResourceType)) fail('resource builtin', `type ${idx} is not a resource type`, offset);
      if (mustBeLocal && !s.definedResources.has(t.root)) fail('resource builtin', `type ${idx} is not a resource defined by this component`, offset);
      return t;
    };
    const asyncOn = () => { if (this.features.component_model_async === false) fail('feature', `${c.kind} requires the async feature`, offset); };
    const pushCore = (params: CoreFuncType['params'], results: CoreFuncType['results'], info?: CanonInfo) => {
      s.coreFuncs.push({ kind: 'func', params, results });
      if (info) this.def.info.set(i, info);
    };
    switch (c.kind) {
      case 'lift': {
        const core = coreFunc(c.func);
        const ft = typeAt(c.type);
        if (ft instanceof ResourceType || ft.kind !== 'func') fail('canon lift', `type ${c.type} is not a function type`, offset);
        const m64 = this.checkOpts(c.opts, 'lift', ft, offset);
        const flat = flattenFuncType(ft, 'lift', { memory64: m64, async: !!c.opts.async, callback: c.opts.callback !== undefined });
        if (!coreFuncTypeEqual(core, { kind: 'func', params: flat.params, results: flat.results }))
          fail('canon lift: core function type', `core function has type ${sig(core)}, but the lifted type requires ${sig(flat)}`, offset);
        if (c.opts.postReturn !== undefined) {
          const pr = coreFunc(c.opts.postReturn);
          if (!coreFuncTypeEqual(pr, { kind: 'func', params: flat.results, results: [] })) fail('canon lift: post-return type', `post-return must have type ${sig({ params: flat.results, results: [] })}`, offset);
        }
        if (c.opts.callback !== undefined) {
          const cb = coreFunc(c.opts.callback);
          if (!coreFuncTypeEqual(cb, { kind: 'func', params: ['i32', 'i32', 'i32'], results: ['i32'] })) fail('canon lift: callback type', 'callback must have type [i32 i32 i32] -> [i32]', offset);
        }
        s.funcs.push(ft);
        this.def.info.set(i, { ft, memory64: m64 });
        return;
      }
      case 'lower': {
        const ft = s.funcs[c.func];
        if (!ft) fail('index out of bounds', `func index ${c.func} out of bounds`, offset);
        const m64 = this.checkOpts(c.opts, 'lower', ft, offset);
        const flat = flattenFuncType(ft, 'lower', { memory64: m64, async: !!c.opts.async });
        pushCore(flat.params, flat.results, { ft, memory64: m64 });
        return;
      }
      case 'resource.new': { const rt = resource(c.type, true); pushCore([rt.defined!.rep], ['i32'], { rt }); return; }
      case 'resource.drop': { const rt = resource(c.type, false); pushCore(['i32'], [], { rt }); return; }
      case 'resource.rep': { const rt = resource(c.type, true); pushCore(['i32'], [rt.defined!.rep], { rt }); return; }
      case 'backpressure.inc': case 'backpressure.dec': asyncOn(); pushCore([], []); return;
      case 'task.return': {
        asyncOn();
        const rt = c.result && this.valType(c.result, s, offset);
        const ft: FuncType = { kind: 'func', async: false, params: rt ? [{ name: 'v', type: rt }] : [], result: null };
        const m64 = this.checkOpts(c.opts, 'task.return', ft, offset);
        const flatParams = flattenTypes(ft.params.map((p) => p.type), m64 ? 'i64' : 'i32');
        pushCore(flatParams.length > MAX_FLAT_PARAMS ? [m64 ? 'i64' : 'i32'] : flatParams, [], { valType: rt, memory64: m64 });
        return;
      }
      case 'task.cancel': asyncOn(); pushCore([], []); return;
      case 'context.get': case 'context.set': {
        asyncOn();
        if (c.type !== 'i32') fail(c.kind, 'context slots have type i32', offset);
        if (c.index > 1) fail(c.kind, `context slot index ${c.index} out of range (0..1)`, offset);
        if (c.kind === 'context.get') pushCore([], ['i32']); else pushCore(['i32'], []);
        return;
      }
      case 'subtask.cancel': asyncOn(); pushCore(['i32'], ['i32']); return;
      case 'subtask.drop': asyncOn(); pushCore(['i32'], []); return;
      case 'stream.new': case 'future.new': {
        asyncOn();
        const t = this.streamType(c.type, c.kind.startsWith('stream') ? 'stream' : 'future', offset);
        pushCore([], ['i64'], { valType: t });
        return;
      }
      case 'stream.read': case 'stream.write': case 'future.read': case 'future.write': {
        asyncOn();
        const t = this.streamType(c.type, c.kind.startsWith('stream') ? 'stream' : 'future', offset);
        const elem = (t as { elem: ValType | null }).elem;
        if (c.opts.postReturn !== undefined || c.opts.callback !== undefined) fail('canonopt', `${c.kind} does not take post-return or callback`, offset);
        const ft: FuncType = { kind: 'func', async: false, params: elem ? [{ name: 'v', type: elem }] : [], result: null };
        const m64 = this.checkOpts(c.opts, c.kind.endsWith('read') ? 'lower' : 'lift-param', ft, offset, true);
        if (elem && (needsMemory(elem) || true) && c.opts.memory === undefined && elem !== null) fail('canonopt: memory required', `${c.kind} of a non-empty element type requires a memory`, offset);
        pushCore(c.kind.startsWith('stream') ? ['i32', 'i32', 'i32'] : ['i32', 'i32'], ['i32'], { valType: t, memory64: m64 });
        return;
      }
      case 'stream.cancel-read': case 'stream.cancel-write': case 'future.cancel-read': case 'future.cancel-write': {
        asyncOn();
        const t = this.streamType(c.type, c.kind.startsWith('stream') ? 'stream' : 'future', offset);
        pushCore(['i32'], ['i32'], { valType: t });
        return;
      }
      case 'stream.drop-readable': case 'stream.drop-writable': case 'future.drop-readable': case 'future.drop-writable': {
        asyncOn();
        const t = this.streamType(c.type, c.kind.startsWith('stream') ? 'stream' : 'future', offset);
        pushCore(['i32'], [], { valType: t });
        return;
      }
      case 'error-context.new': case 'error-context.debug-message': {
        if (this.features.component_model_error_context === false) fail('feature', 'error-context is not enabled', offset);
        const ft: FuncType = { kind: 'func', async: false, params: [{ name: 's', type: { kind: 'string' } }], result: null };
        const m64 = this.checkOpts(c.opts, c.kind === 'error-context.new' ? 'lift-param' : 'lower', ft, offset);
        if (c.kind === 'error-context.new') pushCore(['i32', 'i32'], ['i32'], { memory64: m64 });
        else pushCore(['i32', 'i32'], [], { memory64: m64 });
        return;
      }
      case 'error-context.drop': pushCore(['i32'], []); return;
      case 'waitable-set.new': asyncOn(); pushCore([], ['i32']); return;
      case 'waitable-set.wait': case 'waitable-set.poll': {
        asyncOn();
        const mem = s.coreMemories[c.memory];
        if (!mem) fail('index out of bounds', `core memory index ${c.memory} out of bounds`, offset);
        pushCore(['i32', 'i32'], ['i32']);
        return;
      }
      case 'waitable-set.drop': asyncOn(); pushCore(['i32'], []); return;
      case 'waitable.join': asyncOn(); pushCore(['i32', 'i32'], []); return;
      case 'thread.yield': asyncOn(); pushCore([], ['i32']); return;
      case 'thread.index': pushCore([], ['i32']); return;
      case 'thread.new-indirect': {
        const ft = s.coreTypes[c.type];
        if (!ft || ft.kind !== 'func') fail('thread.new-indirect', `core type ${c.type} is not a function type`, offset);
        if (!coreFuncTypeEqual(ft, { kind: 'func', params: ['i32'], results: [] })) fail('thread.new-indirect', 'the thread start function must have type [i32] -> []', offset);
        const tbl = s.coreTables[c.table];
        if (!tbl) fail('index out of bounds', `core table index ${c.table} out of bounds`, offset);
        pushCore(['i32', 'i32'], ['i32']);
        return;
      }
      case 'thread.resume-later': pushCore(['i32'], []); return;
      case 'thread.suspend': pushCore([], ['i32']); return;
      case 'thread.suspend-then-resume': case 'thread.yield-then-resume':
      case 'thread.suspend-then-promote': case 'thread.yield-then-promote':
        pushCore(['i32'], ['i32']); return;
      case 'thread.spawn-ref': case 'thread.spawn-indirect': case 'thread.available-parallelism':
        fail('feature', `${c.kind} (shared-everything threads 🧵②) is not supported`, offset);
    }
  }

  streamType(idx: number, kind: 'stream' | 'future', offset: number): ValType {
    const t = this.scope.types[idx];
    if (t === undefined) fail('index out of bounds', `type index ${idx} out of bounds`, offset);
    if (t instanceof ResourceType || t.kind !== kind) fail(`${kind} builtin`, `type ${idx} is not a ${kind} type`, offset);
    return t as ValType;
  }

  /** canonopt validation; returns whether the memory is 64-bit. */
  checkOpts(o: CanonOpts, use: 'lift' | 'lower' | 'task.return' | 'lift-param', ft: FuncType, offset: number, copyBuiltin = false): boolean {
    const s = this.scope;
    if (o.duplicate) fail('canonopt', `option ${o.duplicate} given more than once`, offset);
    let m64 = false;
    if (o.memory !== undefined) {
      const m = s.coreMemories[o.memory];
      if (!m) fail('index out of bounds', `core memory index ${o.memory} out of bounds`, offset);
      if (m.kind !== 'memory') fail('canonopt memory', 'not a memory', offset);
      m64 = m.is64;
      if (m64 && this.features.component_model_memory64 !== true) fail('canonopt memory', 'a 64-bit memory requires the memory64 feature', offset);
      if (m.shared) fail('canonopt memory', 'memory must not be shared', offset);
    }
    if (o.realloc !== undefined) {
      const f = s.coreFuncs[o.realloc];
      if (!f) fail('index out of bounds', `core func index ${o.realloc} out of bounds`, offset);
      const a = m64 ? 'i64' : 'i32';
      if (!coreFuncTypeEqual(f, { kind: 'func', params: [a, a, a, a], results: [a] })) fail('canonopt realloc', `realloc must have type [${a} ${a} ${a} ${a}] -> [${a}]`, offset);
      if (o.memory === undefined) fail('canonopt realloc', 'realloc requires a memory option', offset);
    }
    if (o.gc || o.coreType !== undefined) {
      if (!this.features.component_model_gc) fail('feature', 'the gc canonical option requires the component-model GC feature', offset);
      // The GC ABI passes values as GC references; Weir implements it only where it coincides with the linear-memory ABI.
      if (o.gc && (ft.params.length > 0 || ft.result !== null)) fail('canonopt gc', 'the gc ABI is only supported for functions without parameters or results', offset);
      if (o.coreType !== undefined) {
        const ct = s.coreTypes[o.coreType];
        if (!ct || ct.kind !== 'func') fail('canonopt core-type', `core type ${o.coreType} is not a function type`, offset);
        if (ct.params.length > 0 || ct.results.length > 0) fail('canonopt core-type', 'core-type must match the lowered signature', offset);
      }
    }
    if (o.postReturn !== undefined && use !== 'lift') fail('canonopt post-return', 'post-return is only allowed on canon lift', offset);
    if (o.async) {
      if (this.features.component_model_async === false) fail('feature', 'the async option requires the async feature', offset);
      if (use !== 'lift' && use !== 'lower' && !copyBuiltin) fail('canonopt async', `async is not allowed on ${use}`, offset);
      if (!ft.async && use === 'lift') fail('canonopt async', 'async lift requires an async function type', offset);
      if (!ft.async && use === 'lower' && !copyBuiltin) fail('canonopt async', 'async lower requires an async function type', offset);
      if (o.postReturn !== undefined) fail('canonopt async', 'async cannot be combined with post-return', offset);
      if (use === 'lift' && o.callback === undefined && this.features.component_model_async_stackful === false) fail('canonopt async', 'async lift requires a callback', offset);
      // CanonicalABI.md says an async lower always requires a memory; like wasmtime (whose async tests
      // rely on it), only require it when the async ABI passes something through memory.
      if (use === 'lower' && !copyBuiltin && o.memory === undefined && (ft.result !== null || flattenTypes(ft.params.map((p) => p.type), 'i32').length > MAX_FLAT_ASYNC_PARAMS)) fail('canonopt async', 'async lower requires a memory', offset);
    }
    if (o.callback !== undefined) {
      if (!o.async) fail('canonopt callback', 'callback requires async', offset);
      if (use !== 'lift') fail('canonopt callback', 'callback is only allowed on canon lift', offset);
    }
    // lift(T)/lower(T) requirements
    const needRealloc = (t: ValType) => { if (needsMemory(t) && o.realloc === undefined) fail('canonopt: realloc required', 'realloc is required to lift a type containing strings or lists', offset); };
    const needMemory = (t: ValType) => { if (needsMemory(t) && o.memory === undefined) fail('canonopt: memory required', 'memory is required to lower a type containing strings or lists', offset); };
    const params = ft.params.map((p) => p.type);
    const pt = m64 ? 'i64' : 'i32';
    if (use === 'lift') {
      params.forEach(needRealloc);
      if (ft.result) needMemory(ft.result);
      const nparams = flattenTypes(params, pt).length;
      if (nparams > MAX_FLAT_PARAMS && o.realloc === undefined) fail('canonopt: realloc required', 'realloc is required when parameters are passed in memory', offset);
      const nres = ft.result ? flattenType(ft.result, pt).length : 0;
      if (nres > (o.async ? MAX_FLAT_PARAMS : MAX_FLAT_RESULTS) && o.memory === undefined) fail('canonopt: memory required', 'memory is required when results are returned in memory', offset);
    } else if (use === 'lower') {
      params.forEach(needMemory);
      if (ft.result) needRealloc(ft.result);
      const nparams = flattenTypes(params, pt).length;
      const nres = ft.result ? flattenType(ft.result, pt).length : 0;
      if (nparams > (o.async ? MAX_FLAT_ASYNC_PARAMS : MAX_FLAT_PARAMS) && o.memory === undefined) fail('canonopt: memory required', 'memory is required when parameters are passed in memory', offset);
      if (nres > (o.async ? 0 : 1) && o.memory === undefined) fail('canonopt: memory required', 'memory is required when results are returned in memory', offset);
    } else if (use === 'task.return') {
      params.forEach(needMemory);
      const nparams = flattenTypes(params, pt).length;
      if (nparams > MAX_FLAT_PARAMS && o.memory === undefined) fail('canonopt: memory required', 'memory is required when results are passed in memory', offset);
    } else if (use === 'lift-param') {
      params.forEach(needMemory);
    }
    return m64;
  }
}

function sig(f: { params: string[]; results: string[] }): string {
  return `[${f.params.join(' ')}] -> [${f.results.join(' ')}]`;
}

function sortMatches(s: Sort, t: ExternType): boolean {
  if (typeof s !== 'string') return s.core === 'module' && t.kind === 'module';
  return s === t.kind;
}

function pushExtern(s: Scope, t: ExternType): void {
  switch (t.kind) {
    case 'func': s.funcs.push(t.type); break;
    case 'instance': s.instances.push(t.type); break;
    case 'component': s.components.push(t.type); break;
    case 'module': s.coreModules.push(t.type); break;
    case 'type': s.types.push(t.type); break;
    case 'value': s.values.push(t.type); break;
  }
}

function collectResources(t: ExternType, out: Set<ResourceType>): void {
  switch (t.kind) {
    case 'func': for (const p of t.type.params) resourcesIn(p.type, out); if (t.type.result) resourcesIn(t.type.result, out); break;
    case 'instance': for (const e of t.type.exports.values()) collectResources(e, out); break;
    case 'type': if (t.type instanceof ResourceType) out.add(t.type.root); else if (isValType(t.type)) resourcesIn(t.type, out); break;
    default: break;
  }
}

function refersToDefinedResource(t: DefType, _scope: Scope): boolean {
  if (t instanceof ResourceType) return true;
  const rs = new Set<ResourceType>();
  if (isValType(t)) resourcesIn(t, rs);
  else if (t.kind === 'func') collectResources({ kind: 'func', type: t }, rs);
  else if (t.kind === 'instance') collectResources({ kind: 'instance', type: t }, rs);
  else if (t.kind === 'component') {
    for (const e of t.imports.values()) collectResources(e, rs);
    for (const e of t.exports.values()) collectResources(e, rs);
    for (const r of t.importedResources) rs.delete(r);
    for (const r of t.exportedResources) rs.delete(r);
  }
  for (const r of rs) if (!typeLocalResources.has(r.root)) return true;
  return false;
}

/**
 * The new type index an import/export of a type introduces: an alias of a
 * resource, or a copy of a value type, which is the type's externally-visible name.
 */
function nameType(t: ExternType, name: string, et: ExternTypeAst): ExternType {
  if (t.kind !== 'type') return t;
  const x = t.type;
  let n: DefType;
  if (et.kind === 'type' && et.bound.kind === 'sub-resource') { namedTypes.add(x); return t; }
  if (x instanceof ResourceType) n = ResourceType.alias(x, name);
  else if (isValType(x)) n = { ...x } as ValType;
  else return t;
  namedTypes.add(n);
  return { kind: 'type', type: n };
}

const NOMINAL = new Set(['record', 'variant', 'enum', 'flags']);

/** type objects that an extern type itself names (its type exports, recursively) */
function collectLocalNames(t: ExternType, out: Set<object>): void {
  if (t.kind === 'type') { out.add(t.type); return; }
  if (t.kind === 'instance') for (const x of t.type.exports.values()) collectLocalNames(x, out);
}

/** nominal types (resources, records, variants, enums, flags) that an extern type refers to */
function collectRefs(t: ExternType, out: Set<object>, self: boolean): void {
  const val = (v: ValType, includeSelf: boolean) => {
    if (includeSelf && NOMINAL.has(v.kind)) { out.add(v); return; }
    switch (v.kind) {
      case 'own': case 'borrow': out.add(v.resource); return;
      case 'record': v.fields.forEach((f) => val(f.type, true)); return;
      case 'variant': v.cases.forEach((c) => c.type && val(c.type, true)); return;
      case 'list': val(v.elem, true); return;
      case 'tuple': v.types.forEach((x) => val(x, true)); return;
      case 'option': val(v.type, true); return;
      case 'result': if (v.ok) val(v.ok, true); if (v.err) val(v.err, true); return;
      case 'stream': case 'future': if (v.elem) val(v.elem, true); return;
      case 'map': val(v.key, true); val(v.value, true); return;
    }
  };
  switch (t.kind) {
    case 'func': for (const p of t.type.params) val(p.type, true); if (t.type.result) val(t.type.result, true); return;
    case 'type':
      if (isValType(t.type)) val(t.type, self);
      else if (t.type instanceof ResourceType) return;
      else if (t.type.kind === 'func') collectRefs({ kind: 'func', type: t.type }, out, true);
      else if (t.type.kind === 'instance') collectRefs({ kind: 'instance', type: t.type }, out, false);
      return;
    case 'instance': for (const x of t.type.exports.values()) collectRefs(x, out, false); return;
    default: return;
  }
}

/** resource types introduced by `(sub resource)` declarators inside component/instance types */
const typeLocalResources = new WeakSet<ResourceType>();

/**
 * Give an imported/declared instance its own copies of the abstract resource
 * types its instance type declares, so two imports of one instance type do
 * not share resource types. Returns the new resource types.
 */
function freshen(t: ExternType, inType: boolean): [ExternType, ResourceType[]] {
  const local: ResourceType[] = [];
  const walk = (e: ExternType) => {
    if (e.kind === 'instance') for (const x of e.type.exports.values()) {
      if (x.kind === 'type' && x.type instanceof ResourceType && typeLocalResources.has(x.type.root)) local.push(x.type.root);
      else walk(x);
    }
  };
  walk(t);
  if (local.length === 0) return [t, []];
  const subst: Subst = new Map();
  for (const r of local) {
    const f = new ResourceType(r.name);
    if (inType) typeLocalResources.add(f);
    subst.set(r, f);
  }
  return [substExtern(t, subst), [...subst.values()]];
}

function exportedResourcesOf(imports: Map<string, ExternType>, exports: Map<string, ExternType>, imported: ResourceType[]): ResourceType[] {
  const fromImports = new Set<ResourceType>(imported);
  for (const t of imports.values()) collectResources(t, fromImports);
  const out = new Set<ResourceType>();
  for (const t of exports.values()) collectResources(t, out);
  return [...out].filter((r) => !fromImports.has(r));
}

function coreExternImportMatch(actual: CoreExternType, expected: CoreExternType): string | null {
  return moduleSubtype({ kind: 'module', imports: [], exports: new Map([['x', actual]]) }, { kind: 'module', imports: [], exports: new Map([['x', expected]]) });
}

/**
 * The instance type produced by instantiating a component of type `ct` with
 * `args`: imports are matched (binding imported resource types to the
 * arguments'), exported `(sub resource)` types become fresh.
 */
export function instantiateType(ct: ComponentType, args: Map<string, ExternType>, offset?: number): InstanceType {
  const m = new Matcher(new Map(), new Set(ct.importedResources));
  for (const [name, it] of ct.imports) {
    const a = args.get(name);
    if (!a) fail('instantiate: missing argument', `import ${JSON.stringify(name)} is not supplied`, offset);
    const err = m.extern(a, it);
    if (err) fail('instantiate: argument type mismatch', `argument ${JSON.stringify(name)}: ${err}`, offset);
  }
  const subst: Subst = new Map(m.bind);
  for (const [name, it] of ct.imports) {
    const a = args.get(name)!;
    if (it.kind === 'type' && a.kind === 'type' && isValType(it.type) && isValType(a.type) && it.type !== a.type) subst.set(it.type, a.type);
    // Value types exported by an imported instance are the argument's types
    // too (they matched): the instance type refers to the argument's
    // (externally named) types, not the component's own copies.
    else if (it.kind === 'instance' && a.kind === 'instance') bindInstanceValTypes(it.type, a.type, subst);
  }
  for (const r of ct.exportedResources) subst.set(r, new ResourceType(r.name));
  const exports = new Map<string, ExternType>();
  for (const [name, et] of ct.exports) exports.set(name, substExtern(et, subst));
  return { kind: 'instance', exports };
}

function bindInstanceValTypes(it: InstanceType, a: InstanceType, subst: Subst): void {
  for (const [name, e] of it.exports) {
    const x = a.exports.get(name);
    if (!x) continue;
    if (e.kind === 'type' && x.kind === 'type' && isValType(e.type) && isValType(x.type) && e.type !== x.type && !subst.has(e.type)) subst.set(e.type, x.type);
    else if (e.kind === 'instance' && x.kind === 'instance') bindInstanceValTypes(e.type, x.type, subst);
  }
}

export { substDef };
