// The public embedding API: compile a component once, instantiate it many
// times with imports written in JavaScript (or exports of other instances).

import { decodeComponent } from '../binary/decode.ts';
import { LinkError, ValidationError } from '../errors.ts';
import { matchName } from '../types/names.ts';
import type { ComponentType, CoreModuleType, ExternType, InstanceType } from '../types/types.ts';
import { Matcher, moduleSubtype } from '../types/subtype.ts';
import { ResourceType } from '../types/types.ts';
import { moduleTypeOf } from '../runtime/modules.ts';
import { validateComponent, type ComponentDef, type Features } from '../types/validate.ts';
import { ComponentFunc, HostFunc } from '../runtime/call.ts';
import { RtComponent, RtInstance, instantiateDef, type RtValue } from '../runtime/instantiate.ts';
import { HostResource, RuntimeResource } from '../runtime/resources.ts';
import { AsyncLiftedFunc } from '../runtime/async-call.ts';
import { ErrorContext } from '../runtime/error-context.ts';
import { allProducers, attachDeviations, deviationsOf, type DeviationOptions, type MatchedDeviation } from '../runtime/deviations.ts';
import type { Producer } from '../binary/producers.ts';
import { withInstanceLimits, type CompileLimits, type InstanceLimits } from '../runtime/limits.ts';

const FUNC = Symbol('weir.func');
const INSTANCE = Symbol('weir.instance');

export type Imports = Record<string, unknown>;

export interface CompileOptions extends DeviationOptions {
  /** Component Model feature gates, e.g. { component_model_async: false } */
  features?: Features;
  /**
   * Size limits compiled into the core modules (src/runtime/limits.ts): each
   * linear memory and table may grow to at most this (growth past it returns -1);
   * a memory or table whose minimum is larger fails to instantiate.
   */
  limits?: CompileLimits;
}

/** Options of `Component.instantiate`. */
export interface InstantiateOptions {
  /** Count and copy limits of this instantiation (default: none beyond the Canonical ABI's). */
  limits?: InstanceLimits;
}

export class Component {
  /** @internal */ readonly def: ComponentDef;
  /** The `producers` custom sections of the component, its nested components and their core modules. */
  readonly producers: Producer[];
  private constructor(def: ComponentDef, producers: Producer[]) { this.def = def; this.producers = producers; }

  /** Decode and validate a component binary and compile its core modules. */
  static compile(bytes: Uint8Array | ArrayBuffer, options: CompileOptions = {}): Component {
    const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    const ast = decodeComponent(u8);
    const def = validateComponent(ast, options.features ?? {}, null, options.limits);
    // Known toolchain deviations (src/runtime/deviations.ts), recorded per nested component.
    attachDeviations(def, u8, options);
    return new Component(def, allProducers(def, u8));
  }

  /** Entries of Weir's table of known toolchain deviations that this component's producers match. */
  get deviations(): MatchedDeviation[] { return deviationsOf(this.def); }

  /** The component's imports and exports. */
  get type(): ComponentType { return this.def.type; }

  /** Instantiate with the given imports (keys are import names; versions match by semver). */
  instantiate(imports: Imports = {}, options: InstantiateOptions = {}): Instance {
    const args = new Map<string, RtValue>();
    for (const [name, t] of this.def.type.imports) {
      const key = matchName(name, imports);
      args.set(name, toRtValue(t, key === undefined ? undefined : imports[key], name));
    }
    return new Instance(withInstanceLimits(options.limits, () => instantiateDef(this.def, args, null, null)));
  }
}

export class Instance {
  /** @internal */ readonly rt: RtInstance;
  readonly exports: Record<string, any>;
  constructor(rt: RtInstance) {
    this.rt = rt;
    this.exports = exportsToJs(rt);
  }
}

function exportsToJs(rt: RtInstance): Record<string, any> {
  const out: Record<string, any> = {};
  Object.defineProperty(out, INSTANCE, { value: rt });
  for (const [name, v] of rt.exports) {
    const js = toJs(v);
    if (js !== undefined) out[name] = js;
  }
  return out;
}

function toJs(v: RtValue): unknown {
  if (v instanceof ComponentFunc) return wrapFunc(v);
  if (v instanceof RtInstance) return exportsToJs(v);
  if (v instanceof RuntimeResource) return v;
  if (v instanceof WebAssembly.Module) return v;
  if (v instanceof RtComponent) return v;
  return undefined;
}

/** Options an async export accepts as an extra last argument: `exports.f(a, b, { signal })`. */
export interface CallOptions {
  /** aborting it requests cancellation of the task (the Promise rejects with the signal's reason if the task is cancelled) */
  signal?: AbortSignal;
}

const wrappers = new WeakMap<ComponentFunc, Function>();
function wrapFunc(f: ComponentFunc): Function {
  let w = wrappers.get(f);
  if (!w) {
    const n = f.type.params.length;
    if (f instanceof AsyncLiftedFunc) {
      w = (...args: unknown[]) => {
        let signal: AbortSignal | undefined;
        if (args.length === n + 1) {
          const o = args.pop() as CallOptions | undefined;
          signal = o?.signal;
        }
        return f.call(args, null, signal);
      };
    } else if (f.type.async) {
      w = (...args: unknown[]) => {
        try { return Promise.resolve(f.call(args, null)); } catch (e) { return Promise.reject(e); }
      };
    } else w = (...args: unknown[]) => f.call(args, null);
    Object.defineProperty(w, FUNC, { value: f });
    wrappers.set(f, w);
  }
  return w;
}

function toRtValue(t: ExternType, js: unknown, name: string): RtValue {
  switch (t.kind) {
    case 'func': {
      if (typeof js !== 'function') throw new LinkError(`import ${JSON.stringify(name)}: expected a function, got ${describe(js)}`);
      const inner = (js as any)[FUNC];
      return inner instanceof ComponentFunc ? inner : new HostFunc(t.type, js as (...a: any[]) => unknown);
    }
    case 'instance': {
      if (js === undefined && isEmptyInstance(t.type)) return emptyInstance(t.type);
      if (js === null || typeof js !== 'object') throw new LinkError(`import ${JSON.stringify(name)}: expected an instance (an object of exports), got ${describe(js)}`);
      const rt = (js as any)[INSTANCE];
      if (rt instanceof RtInstance) {
        checkRtInstance(t.type, rt, name);
        return rt;
      }
      const exports = new Map<string, RtValue>();
      const obj = js as Record<string, unknown>;
      for (const [en, et] of t.type.exports) {
        const key = matchName(en, obj);
        const v = key === undefined ? undefined : obj[key];
        if (v === undefined && et.kind === 'type' && et.type instanceof ResourceType && et.type === et.type.root) {
          // a resource the host implements functions for but gives no type object: define it implicitly
          const implemented = Object.keys(obj).some((k) => k === `[constructor]${en}` || k.startsWith(`[method]${en}.`) || k.startsWith(`[static]${en}.`));
          if (!implemented) throw new LinkError(`import ${JSON.stringify(name)}: resource type ${JSON.stringify(en)} was not found`);
          continue;
        }
        if (v === undefined && et.kind === 'type') continue;
        if (v === undefined && et.kind === 'instance' && isEmptyInstance(et.type)) { exports.set(en, emptyInstance(et.type)); continue; }
        if (v === undefined) throw new LinkError(`import ${JSON.stringify(name)}: missing export ${JSON.stringify(en)}`);
        exports.set(en, toRtValue(et, v, `${name}#${en}`));
      }
      return new RtInstance(exports, null);
    }
    case 'type':
      if (!(t.type instanceof ResourceType)) return t.type; // non-resource type imports carry no value
      if (js instanceof RuntimeResource) return js;
      if (js === undefined) return new HostResource(name);
      throw new LinkError(`import ${JSON.stringify(name)}: expected resource found ${typeof js === 'function' ? 'func' : typeof js}`);
    case 'component':
      if (js instanceof Component) return new RtComponent(js.def, null);
      throw new LinkError(`import ${JSON.stringify(name)}: expected a Component`);
    case 'module': {
      if (!(js instanceof WebAssembly.Module)) throw new LinkError(`import ${JSON.stringify(name)}: expected a WebAssembly.Module, got ${describe(js)}`);
      const mt = moduleTypeOf(js);
      const err = mt ? moduleSubtype(mt, t.type) : moduleKindsMatch(js, t.type);
      if (err) throw new LinkError(`import ${JSON.stringify(name)}: ${err}`);
      return js;
    }
    case 'value':
      throw new LinkError('value imports (🪙) are not supported');
  }
}

function emptyInstance(t: InstanceType): RtInstance {
  const m = new Map<string, RtValue>();
  for (const [n, e] of t.exports) {
    if (e.kind === 'type') m.set(n, e.type);
    else if (e.kind === 'instance') m.set(n, emptyInstance(e.type));
  }
  return new RtInstance(m, null);
}

/** Type-check another instance's exports against the instance type an import expects. */
function checkRtInstance(t: InstanceType, rt: RtInstance, name: string): void {
  for (const [en, et] of t.exports) {
    const key = matchName(en, rt.exports);
    if (key === undefined) throw new LinkError(`import ${JSON.stringify(name)}: instance lacks export ${JSON.stringify(en)}`);
    const v = rt.exports.get(key)!;
    const where = `import ${JSON.stringify(name)}: export ${JSON.stringify(en)}`;
    switch (et.kind) {
      case 'func': {
        if (!(v instanceof ComponentFunc)) throw new LinkError(`${where}: expected func`);
        const err = new Matcher(new Map(), new Set()).funcShape(v.type, et.type);
        if (err) throw new LinkError(`${where}: ${err}`);
        break;
      }
      case 'module': {
        if (!(v instanceof WebAssembly.Module)) throw new LinkError(`${where}: expected core module`);
        const mt = moduleTypeOf(v);
        const err = mt ? moduleSubtype(mt, et.type) : moduleKindsMatch(v, et.type);
        if (err) throw new LinkError(`${where}: ${err}`);
        break;
      }
      case 'instance':
        if (!(v instanceof RtInstance)) throw new LinkError(`${where}: expected instance`);
        checkRtInstance(et.type, v, `${name}#${en}`);
        break;
      case 'component':
        if (!(v instanceof RtComponent)) throw new LinkError(`${where}: expected component`);
        break;
      case 'type':
        if (et.type instanceof ResourceType && !(v instanceof RuntimeResource)) throw new LinkError(`${where}: expected a resource type`);
        break;
    }
  }
}

/** An instance type whose exports are only (non-resource) types or such instances needs no value from the host. */
function isEmptyInstance(t: InstanceType): boolean {
  for (const e of t.exports.values()) {
    if (e.kind === 'type' && !(e.type instanceof ResourceType)) continue;
    if (e.kind === 'instance' && isEmptyInstance(e.type)) continue;
    return false;
  }
  return true;
}

/** For modules compiled outside Weir: compare what the JS API can see (names and kinds). */
function moduleKindsMatch(m: WebAssembly.Module, t: CoreModuleType): string | null {
  const exports = new Map(WebAssembly.Module.exports(m).map((e) => [e.name, e.kind as string]));
  for (const [name, et] of t.exports) {
    const k = exports.get(name);
    if (k === undefined) return `module export \`${name}\` not defined`;
    if (k !== et.kind) return `module export \`${name}\`: expected ${et.kind} found ${k}`;
  }
  for (const imp of WebAssembly.Module.imports(m)) {
    const e = t.imports.find((x) => x.module === imp.module && x.name === imp.name);
    if (!e) return `module import \`${imp.module}::${imp.name}\` not defined`;
    if (e.type.kind !== imp.kind) return `module import \`${imp.module}::${imp.name}\` has the wrong type`;
  }
  return null;
}

function describe(v: unknown): string {
  return v === undefined ? 'nothing (the import is missing)' : v === null ? 'null' : typeof v;
}

export { ErrorContext, HostResource, ValidationError };
