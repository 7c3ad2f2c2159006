// Core modules known to Weir, with their types, so that a core module supplied
// as an import can be checked against the module type the component expects.

import { parseCoreModuleType } from '../binary/core-module.ts';
import type { CoreModuleType } from '../types/types.ts';

const moduleTypes = new WeakMap<WebAssembly.Module, CoreModuleType>();

/** Compile a core module and remember its type. */
export function compileCoreModule(bytes: Uint8Array): WebAssembly.Module {
  const type = parseCoreModuleType(bytes, 0);
  const m = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  moduleTypes.set(m, type);
  return m;
}

export function registerModuleType(m: WebAssembly.Module, t: CoreModuleType): void {
  moduleTypes.set(m, t);
}

export function moduleTypeOf(m: WebAssembly.Module): CoreModuleType | undefined {
  return moduleTypes.get(m);
}
