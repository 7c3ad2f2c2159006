// Composition on the command line (and through the API): components given in
// order c0, c1, …, cn. Every import of ci that the host does not provide is
// linked to the export of the same name (semver-compatible) of the nearest
// later component cj (j > i) that has it, as a direct guest-to-guest call (an
// async export stays async: no HTTP hop, bodies pass as streams). A
// middleware (imports wasi:http/handler) thus calls the handler of the next
// component. Instantiation runs from last to first.

import type { Component, Imports, Instance } from '../host/component.ts';
import { matchName } from '../types/names.ts';

export interface Part {
  /** For messages: usually the file name. */
  name: string;
  component: Component;
}

export class CompositionError extends Error {
  override name = 'LinkError';
  readonly code = 'WEIR_LINK';
}

/** For each part: import name → index of the part that provides it (-1 = the host). */
export type LinkPlan = Map<string, { from: number; key: string }>[];

/** Works out every link before anything is instantiated; throws CompositionError naming the unsatisfied import. */
export function planComposition(parts: Part[], hostImports: Imports): LinkPlan {
  const plan: LinkPlan = [];
  for (let i = 0; i < parts.length; i++) {
    const links = new Map<string, { from: number; key: string }>();
    for (const name of parts[i].component.type.imports.keys()) {
      const hostKey = matchName(name, hostImports);
      if (hostKey !== undefined) { links.set(name, { from: -1, key: hostKey }); continue; }
      let found = false;
      for (let j = i + 1; j < parts.length; j++) {
        const key = matchName(name, parts[j].component.type.exports);
        if (key !== undefined) { links.set(name, { from: j, key }); found = true; break; }
      }
      if (!found) {
        const searched = parts.slice(i + 1).map((p) => p.name);
        throw new CompositionError(`${parts[i].name}: import ${JSON.stringify(name)} is not provided by the host`
          + (searched.length ? ` nor exported by ${searched.join(', ')}` : ' and no later component was given to link it to'));
      }
    }
    plan.push(links);
  }
  return plan;
}

/** Instantiates the parts last to first with the plan's links; returns the instances in command-line order. */
export function instantiateComposition(parts: Part[], plan: LinkPlan, hostImports: Imports, options?: Parameters<Component['instantiate']>[1]): Instance[] {
  const instances: Instance[] = new Array(parts.length);
  for (let i = parts.length - 1; i >= 0; i--) {
    let imports = hostImports;
    const links = plan[i];
    for (const [name, { from, key }] of links) {
      if (from < 0) continue;
      if (imports === hostImports) imports = { ...hostImports };
      imports[name] = instances[from].exports[key];
    }
    instances[i] = parts[i].component.instantiate(imports, options);
  }
  return instances;
}
