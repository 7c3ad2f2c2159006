// Instantiation: replays a validated component's definitions, building the
// run-time index spaces. Core modules were compiled during validation and are
// reused by every instance.

import type { Canon, CanonOpts, CoreSort, Sort } from '../binary/ast.ts';
import type { CanonOptions } from '../abi/context.ts';
import { LinkError } from '../errors.ts';
import type { CanonInfo, ComponentDef } from '../types/validate.ts';
import { ResourceType, type ComponentType, type DefType, type ExternType, type FuncType, type InstanceType } from '../types/types.ts';
import { ComponentFunc, HostFunc, toTrap } from './call.ts';
import { ComponentInstanceState } from './instance.ts';
import { HostResource, RuntimeResource } from './resources.ts';
import { wrapRealloc } from './task.ts';
import { buildCanon, prepareInstance } from './canon.ts';
import { registerModuleType } from './modules.ts';
import { applyInstanceLimits, chargeCoreInstance } from './limits.ts';

/** A component instance's exports at run time. */
export class RtInstance {
  exports: Map<string, RtValue>;
  state: ComponentInstanceState | null;
  constructor(exports: Map<string, RtValue>, state: ComponentInstanceState | null) {
    this.exports = exports;
    this.state = state;
  }
}

/** A component definition closed over the run-time scope it was defined in. */
export class RtComponent {
  def: ComponentDef;
  outer: RtScope | null;
  constructor(def: ComponentDef, outer: RtScope | null) {
    this.def = def;
    this.outer = outer;
  }
}

export type RtValue = ComponentFunc | RtInstance | RtComponent | WebAssembly.Module | RuntimeResource | DefType;

/** Run-time index spaces of one component instance. */
export class RtScope {
  parent: RtScope | null;
  coreFuncs: Function[] = [];
  coreTables: WebAssembly.Table[] = [];
  coreMemories: WebAssembly.Memory[] = [];
  coreGlobals: WebAssembly.Global[] = [];
  coreTags: unknown[] = [];
  coreModules: WebAssembly.Module[] = [];
  coreInstances: Record<string, unknown>[] = [];
  funcs: ComponentFunc[] = [];
  types: (RuntimeResource | DefType)[] = [];
  components: RtComponent[] = [];
  instances: RtInstance[] = [];
  constructor(parent: RtScope | null) { this.parent = parent; }
}

/**
 * Bind the resource types mentioned by a static extern type to the runtime
 * resources of the value supplied for it.
 */
export function bindResources(t: ExternType, v: RtValue | undefined, inst: ComponentInstanceState): void {
  if (t.kind === 'type' && t.type instanceof ResourceType) {
    const cur = inst.resources.get(t.type.root);
    if (!cur) inst.resources.set(t.type.root, v instanceof RuntimeResource ? v : new HostResource(t.type.name));
    else if (v instanceof RuntimeResource && v !== cur) throw new LinkError(`mismatched resource types: ${t.type.name || 'resource'} is bound to a different resource`);
    return;
  }
  if (t.kind === 'instance') {
    const exports = v instanceof RtInstance ? v.exports : undefined;
    for (const [name, et] of t.type.exports) bindResources(et, exports?.get(name), inst);
  }
}

export function instantiateDef(def: ComponentDef, args: Map<string, RtValue>, outer: RtScope | null, parentState: ComponentInstanceState | null): RtInstance {
  const state = new ComponentInstanceState(parentState);
  applyInstanceLimits(state);
  prepareInstance(def, state);
  const s = new RtScope(outer);
  const exports = new Map<string, RtValue>();
  const defs = def.ast.definitions;
  for (let i = 0; i < defs.length; i++) {
    const d = defs[i];
    switch (d.kind) {
      case 'core-module': {
        const m = def.modules.get(i)!;
        registerModuleType(m, def.moduleTypes.get(m)!);
        s.coreModules.push(m);
        break;
      }
      case 'core-instance': {
        const e = d.expr;
        if (e.kind === 'instantiate') {
          const imports: Record<string, Record<string, unknown>> = {};
          for (const a of e.args) imports[a.name] = s.coreInstances[a.instance];
          let inst: WebAssembly.Instance;
          chargeCoreInstance(s.coreModules[e.module]);
          try {
            inst = new WebAssembly.Instance(s.coreModules[e.module], imports as WebAssembly.Imports);
          } catch (err) {
            if (err instanceof WebAssembly.LinkError) throw new LinkError(`core instantiation failed: ${err.message}`);
            state.poison();
            throw toTrap(err);
          }
          s.coreInstances.push(inst.exports as Record<string, unknown>);
        } else {
          const ex: Record<string, unknown> = {};
          for (const x of e.exports) ex[x.name] = coreItem(s, x.item.sort, x.item.idx);
          s.coreInstances.push(ex);
        }
        break;
      }
      case 'core-type': break;
      case 'component': s.components.push(new RtComponent(def.children.get(i)!, s)); break;
      case 'instance': {
        const e = d.expr;
        if (e.kind === 'instantiate') {
          const c = s.components[e.component];
          const a = new Map<string, RtValue>();
          for (const x of e.args) a.set(x.name, item(s, x.item.sort, x.item.idx));
          const child = instantiateDef(c.def, a, c.outer, state);
          const it = def.info.get(i) as InstanceType | undefined;
          if (it) for (const [name, et] of it.exports) bindResources(et, child.exports.get(name), state);
          s.instances.push(child);
        } else {
          const ex = new Map<string, RtValue>();
          for (const x of e.exports) ex.set(x.name.name, item(s, x.item.sort, x.item.idx));
          s.instances.push(new RtInstance(ex, null));
        }
        break;
      }
      case 'alias': {
        const a = d.alias;
        if (a.kind === 'export') {
          let v = s.instances[a.instance].exports.get(a.name);
          const st = def.info.get(i) as ExternType | undefined;
          if (v === undefined && st?.kind === 'type') {
            // a host instance need not supply type exports: value types carry no run-time value, and resources
            // were bound when the instance was imported
            if (st.type instanceof ResourceType) bindResources(st, undefined, state);
            v = st.type instanceof ResourceType ? state.resource(st.type) : st.type;
          }
          if (v === undefined) throw new LinkError(`instance has no export ${JSON.stringify(a.name)}`);
          if (st) bindResources(st, v, state);
          pushValue(s, a.sort, v);
        } else if (a.kind === 'core-export') {
          const ci = s.coreInstances[a.instance];
          const v = ci[a.name];
          pushCore(s, (a.sort as { core: CoreSort }).core, v);
        } else {
          let t: RtScope = s;
          for (let n = 0; n < a.count; n++) t = t.parent!;
          const sort = a.sort;
          if (typeof sort !== 'string') {
            if (sort.core === 'module') s.coreModules.push(t.coreModules[a.idx]);
            // core types have no run-time value
          } else if (sort === 'type') s.types.push(t.types[a.idx]);
          else if (sort === 'component') s.components.push(t.components[a.idx]);
        }
        break;
      }
      case 'type': {
        const t = def.info.get(i) as DefType;
        if (t instanceof ResourceType) {
          const dtorIdx = t.defined?.dtor ?? null;
          const dtor = dtorIdx === null ? null : (s.coreFuncs[dtorIdx] as (rep: any) => void);
          const R = new RuntimeResource(t.name, state, dtor);
          state.resources.set(t, R);
          s.types.push(R);
        } else s.types.push(t);
        break;
      }
      case 'canon': canonDefinition(s, d.canon, def.info.get(i) as CanonInfo, state); break;
      case 'start': case 'value': throw new LinkError('value definitions (🪙) are not supported');
      case 'import': {
        const t = def.info.get(i) as ExternType;
        const v = args.get(d.name.name);
        if (v === undefined) throw new LinkError(`missing import ${JSON.stringify(d.name.name)}`);
        bindResources(t, v, state);
        pushExtern(s, t, v, state);
        break;
      }
      case 'export': {
        const v = item(s, d.item.sort, d.item.idx);
        exports.set(d.name.name, v);
        const t = def.info.get(i) as ExternType;
        bindResources(t, v, state);
        pushExtern(s, t, v, state);
        break;
      }
    }
  }
  return new RtInstance(exports, state);
}

function pushExtern(s: RtScope, t: ExternType, v: RtValue, state: ComponentInstanceState): void {
  switch (t.kind) {
    case 'func': s.funcs.push(v as ComponentFunc); break;
    case 'instance': s.instances.push(v as RtInstance); break;
    case 'component': s.components.push(v as RtComponent); break;
    case 'module': s.coreModules.push(v as WebAssembly.Module); break;
    case 'type': s.types.push(t.type instanceof ResourceType ? state.resource(t.type) : (v as DefType)); break;
    case 'value': break;
  }
}

function pushValue(s: RtScope, sort: Sort, v: RtValue): void {
  if (typeof sort !== 'string') { s.coreModules.push(v as WebAssembly.Module); return; }
  switch (sort) {
    case 'func': s.funcs.push(v as ComponentFunc); break;
    case 'instance': s.instances.push(v as RtInstance); break;
    case 'component': s.components.push(v as RtComponent); break;
    case 'type': s.types.push(v as RuntimeResource | DefType); break;
    case 'value': break;
  }
}

function pushCore(s: RtScope, sort: CoreSort, v: unknown): void {
  switch (sort) {
    case 'func': s.coreFuncs.push(v as Function); break;
    case 'table': s.coreTables.push(v as WebAssembly.Table); break;
    case 'memory': s.coreMemories.push(v as WebAssembly.Memory); break;
    case 'global': s.coreGlobals.push(v as WebAssembly.Global); break;
    case 'tag': s.coreTags.push(v); break;
    default: break;
  }
}

function coreItem(s: RtScope, sort: CoreSort, idx: number): unknown {
  switch (sort) {
    case 'func': return s.coreFuncs[idx];
    case 'table': return s.coreTables[idx];
    case 'memory': return s.coreMemories[idx];
    case 'global': return s.coreGlobals[idx];
    case 'tag': return s.coreTags[idx];
    default: throw new LinkError(`core sort ${sort} cannot be exported`);
  }
}

function item(s: RtScope, sort: Sort, idx: number): RtValue {
  if (typeof sort !== 'string') return s.coreModules[idx];
  switch (sort) {
    case 'func': return s.funcs[idx];
    case 'instance': return s.instances[idx];
    case 'component': return s.components[idx];
    case 'type': return s.types[idx];
    default: throw new LinkError('value definitions (🪙) are not supported');
  }
}

function canonOptions(s: RtScope, o: CanonOpts, memory64: boolean | undefined, state: ComponentInstanceState): CanonOptions {
  return {
    memory: o.memory !== undefined ? s.coreMemories[o.memory] : null,
    realloc: o.realloc !== undefined ? wrapRealloc(state, s.coreFuncs[o.realloc] as NonNullable<CanonOptions['realloc']>) : null,
    postReturn: o.postReturn !== undefined ? s.coreFuncs[o.postReturn] : null,
    stringEncoding: o.stringEncoding ?? 'utf8',
    memory64: !!memory64,
  };
}

function canonDefinition(s: RtScope, c: Canon, info: CanonInfo, state: ComponentInstanceState): void {
  const opts = (o: CanonOpts) => canonOptions(s, o, info?.memory64, state);
  const f = buildCanon(state, c, info, s, opts);
  if (c.kind === 'lift') s.funcs.push(f as ComponentFunc);
  else s.coreFuncs.push(f as Function);
}

export type { ComponentType, FuncType, HostFunc };
