// Resolved component-level types (Explainer.md "Type Definitions").
// Type indices from the binary are resolved away during validation, so every
// consumer (ABI planner, linker, WIT printer) sees plain structural values.
// Resource types are the only nominal types: compared by object identity.

// The names of primitive value types and the core wasm types are the binary
// format's vocabulary (binary/ast.ts); they are re-exported here for every
// layer above.
import type { CoreExternType, CoreModuleType, PrimName } from '../binary/ast.ts';
export type { CoreExternType, CoreFuncType, CoreModuleType, CoreValType, PrimName } from '../binary/ast.ts';

export interface PrimType { kind: PrimName }
export interface RecordType { kind: 'record'; fields: { name: string; type: ValType }[] }
export interface VariantType { kind: 'variant'; cases: { name: string; type: ValType | null }[] }
export interface ListType { kind: 'list'; elem: ValType; length: number | null }
export interface TupleType { kind: 'tuple'; types: ValType[] }
export interface FlagsType { kind: 'flags'; names: string[] }
export interface EnumType { kind: 'enum'; names: string[] }
export interface OptionType { kind: 'option'; type: ValType }
export interface ResultType { kind: 'result'; ok: ValType | null; err: ValType | null }
export interface OwnType { kind: 'own'; resource: ResourceType }
export interface BorrowType { kind: 'borrow'; resource: ResourceType }
export interface StreamType { kind: 'stream'; elem: ValType | null }
export interface FutureType { kind: 'future'; elem: ValType | null }
export interface MapType { kind: 'map'; key: ValType; value: ValType }

export type ValType =
  | PrimType | RecordType | VariantType | ListType | TupleType | FlagsType | EnumType
  | OptionType | ResultType | OwnType | BorrowType | StreamType | FutureType | MapType;

export interface FuncType {
  kind: 'func';
  async: boolean;
  params: { name: string; type: ValType }[];
  result: ValType | null;
}

let nextResourceId = 1;

/** A resource type. Fresh identity for each definition, import, or `(sub resource)` bound. */
export class ResourceType {
  readonly kind = 'resource' as const;
  readonly id = nextResourceId++;
  /** For defined resources: the core rep type and destructor (core func index in the defining component). */
  name: string;
  defined: { rep: 'i32' | 'i64'; dtor: number | null } | null;
  /**
   * The resource this one is an alias of. Exporting or importing a type gives
   * it a new type index (an "externally-visible name") that is still the same
   * resource: identity comparisons use `root`.
   */
  declare root: ResourceType;
  constructor(name: string, defined: { rep: 'i32' | 'i64'; dtor: number | null } | null = null) {
    this.name = name;
    this.defined = defined;
    // non-enumerable: keeps types printable (JSON, inspect) despite the self-reference
    Object.defineProperty(this, 'root', { value: this, writable: true, enumerable: false });
  }
  static alias(r: ResourceType, name = r.name): ResourceType {
    const a = new ResourceType(name || r.name, r.defined);
    a.root = r.root;
    return a;
  }
}

/** A type export/import in an instance or component type: either equal to a value type or a resource. */
export type TypeBound = { kind: 'eq'; type: DefType } | { kind: 'sub-resource' };

export type DefType = ValType | FuncType | ComponentType | InstanceType | ResourceType | CoreModuleType;

export interface ExternDesc { name: string; type: ExternType }

export type ExternType =
  | { kind: 'func'; type: FuncType }
  | { kind: 'instance'; type: InstanceType }
  | { kind: 'component'; type: ComponentType }
  | { kind: 'module'; type: CoreModuleType }
  | { kind: 'type'; type: DefType }          // after resolving bounds; resources are ResourceType
  | { kind: 'value'; type: ValType };

export interface InstanceType { kind: 'instance'; exports: Map<string, ExternType> }

export interface ComponentType {
  kind: 'component';
  imports: Map<string, ExternType>;
  exports: Map<string, ExternType>;
  /** Resources introduced by `(sub resource)` imports: substituted at instantiation. */
  importedResources: ResourceType[];
  /** Resources introduced by `(sub resource)` exports: fresh per instantiation. */
  exportedResources: ResourceType[];
}

export const prim = (kind: PrimName): PrimType => ({ kind });
