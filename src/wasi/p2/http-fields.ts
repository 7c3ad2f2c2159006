// wasi:http@0.2 `fields` over the shared core Fields (core/http/fields.ts):
// the 0.2 names (`entries` instead of `copy-all`, no `get-and-delete`) and the
// 0.2 header-error (invalid-syntax | forbidden | immutable; the core's
// size-exceeded and other become invalid-syntax, which 0.2 has for them).

import type { HostResource } from '../../runtime/resources.ts';
import { Fields, HeaderError as CoreHeaderError, type FieldEntries } from '../core/http/fields.ts';

export type HeaderError = { tag: 'invalid-syntax' | 'forbidden' | 'immutable' };

/** A `fields` resource value: the core Fields (sealed when it became a message's headers). */
export class FieldsBox {
  readonly fields: Fields;
  constructor(fields: Fields) { this.fields = fields; }
  /** Headers moved into a message become immutable (the guest sees them only as a child). */
  seal(): FieldsBox {
    this.fields.immutable = true;
    return this;
  }
}

/** Fields of a message that came from the network: the host-owned (forbidden) names are left out. */
export function fieldsFromEntries(entries: FieldEntries, immutable: boolean): FieldsBox {
  return new FieldsBox(Fields.fromTrusted(entries, immutable));
}

function attempt(f: () => void): { tag: 'ok' } | { tag: 'err'; val: HeaderError } {
  try {
    f();
    return { tag: 'ok' };
  } catch (e) {
    if (!(e instanceof CoreHeaderError)) throw e;
    const tag = e.tag === 'forbidden' || e.tag === 'immutable' ? e.tag : 'invalid-syntax';
    return { tag: 'err', val: { tag } };
  }
}

export function fieldsImports(resource: HostResource): Record<string, unknown> {
  return {
    fields: resource,
    '[constructor]fields': () => new FieldsBox(new Fields()),
    '[static]fields.from-list': (entries: [string, Uint8Array][]) => {
      let f: Fields | null = null;
      const r = attempt(() => { f = Fields.fromList(entries); });
      return r.tag === 'ok' ? { tag: 'ok', val: new FieldsBox(f!) } : r;
    },
    '[method]fields.get': (b: FieldsBox, name: string) => b.fields.get(name),
    '[method]fields.has': (b: FieldsBox, name: string) => b.fields.has(name),
    '[method]fields.set': (b: FieldsBox, name: string, values: Uint8Array[]) => attempt(() => b.fields.set(name, values)),
    '[method]fields.delete': (b: FieldsBox, name: string) => attempt(() => b.fields.delete(name)),
    '[method]fields.append': (b: FieldsBox, name: string, value: Uint8Array) => attempt(() => b.fields.append(name, value)),
    '[method]fields.entries': (b: FieldsBox) => b.fields.copyAll(),
    '[method]fields.clone': (b: FieldsBox) => new FieldsBox(b.fields.clone()),
  };
}
