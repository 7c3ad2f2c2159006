// The public embedding API: compile a component once, instantiate it many
// times with imports written in JavaScript (or exports of other instances).

import { decodeComponent } from '../binary/decode.ts';
import { LinkError, ValidationError } from '../errors.ts';
import { matchName } from '../types/names.ts';
import type { ComponentType, ExternType } from '../types/types.ts';
import { validateComponent, type ComponentDef, type Features } from '../types/validate.ts';
import { ComponentFunc, HostFunc } from '../runtime/call.ts';
import { RtComponent, RtInstance, instantiateDef, type RtValue } from '../runtime/instantiate.ts';
import { HostResource, RuntimeResource } from '../runtime/resources.ts';

const FUNC = Symbol('weir.func');
const INSTANCE = Symbol('weir.instance');

export type Imports = Record<string, unknown>;

export interface CompileOptions {
  /** Component Model feature gates, e.g. { component_model_async: false } */
  features?: Features;
}

export class Component {
  /** @internal */ readonly def: ComponentDef;
  private constructor(def: ComponentDef) { this.def = def; }

  /** Decode and validate a component binary and compile its core modules. */
  static compile(bytes: Uint8Array | ArrayBuffer, options: CompileOptions = {}): Component {
    const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    const ast = decodeComponent(u8);
    return new Component(validateComponent(ast, options.features ?? {}));
  }

  /** The component's imports and exports. */
  get type(): ComponentType { return this.def.type; }

  /** Instantiate with the given imports (keys are import names; versions match by semver). */
  instantiate(imports: Imports = {}): Instance {
    const args = new Map<string, RtValue>();
    for (const [name, t] of this.def.type.imports) {
      const key = matchName(name, imports);
      args.set(name, toRtValue(t, key === undefined ? undefined : imports[key], name));
    }
    return new Instance(instantiateDef(this.def, args, null, null));
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

const wrappers = new WeakMap<ComponentFunc, Function>();
function wrapFunc(f: ComponentFunc): Function {
  let w = wrappers.get(f);
  if (!w) {
    w = (...args: unknown[]) => f.call(args, null);
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
      if (js === null || typeof js !== 'object') throw new LinkError(`import ${JSON.stringify(name)}: expected an instance (an object of exports), got ${describe(js)}`);
      const rt = (js as any)[INSTANCE];
      const exports = new Map<string, RtValue>();
      for (const [en, et] of t.type.exports) {
        if (rt instanceof RtInstance) {
          const key = matchName(en, rt.exports);
          if (key === undefined) throw new LinkError(`import ${JSON.stringify(name)}: instance lacks export ${JSON.stringify(en)}`);
          exports.set(en, rt.exports.get(key)!);
          continue;
        }
        const key = matchName(en, js as Record<string, unknown>);
        const v = key === undefined ? undefined : (js as Record<string, unknown>)[key];
        if (v === undefined && et.kind === 'type') continue; // bound to a fresh host resource
        if (v === undefined) throw new LinkError(`import ${JSON.stringify(name)}: missing export ${JSON.stringify(en)}`);
        exports.set(en, toRtValue(et, v, `${name}#${en}`));
      }
      return new RtInstance(exports, null);
    }
    case 'type':
      if (js instanceof RuntimeResource) return js;
      if (js === undefined) return new HostResource(name);
      if (typeof js === 'object' || typeof js === 'function') return t.type; // non-resource type imports carry no value
      throw new LinkError(`import ${JSON.stringify(name)}: expected a resource type`);
    case 'component':
      if (js instanceof Component) return new RtComponent(js.def, null);
      throw new LinkError(`import ${JSON.stringify(name)}: expected a Component`);
    case 'module':
      if (js instanceof WebAssembly.Module) return js;
      throw new LinkError(`import ${JSON.stringify(name)}: expected a WebAssembly.Module`);
    case 'value':
      throw new LinkError('value imports (🪙) are not supported');
  }
}

function describe(v: unknown): string {
  return v === undefined ? 'nothing (the import is missing)' : v === null ? 'null' : typeof v;
}

export { HostResource, ValidationError };
