// The component binary format (Binary.md) as a typed AST. Indices stay
// unresolved here; validation resolves them. Every node keeps the byte offset
// it was decoded from so later errors can point at the input.

/** Primitive value types (Binary.md `primvaltype`). */
export type PrimName =
  | 'bool' | 's8' | 'u8' | 's16' | 'u16' | 's32' | 'u32' | 's64' | 'u64'
  | 'f32' | 'f64' | 'char' | 'string' | 'error-context';

// Core wasm types, as core modules and core type definitions state them.
export type CoreValType = 'i32' | 'i64' | 'f32' | 'f64' | 'v128' | 'funcref' | 'externref' | 'ref';
export interface CoreFuncType { kind: 'func'; params: CoreValType[]; results: CoreValType[] }
export type CoreExternType =
  | { kind: 'func'; type: CoreFuncType }
  | { kind: 'table'; elem: CoreValType; min: number; max: number | null; is64?: boolean }
  | { kind: 'memory'; min: number; max: number | null; shared: boolean; is64: boolean }
  | { kind: 'global'; type: CoreValType; mutable: boolean }
  | { kind: 'tag'; type: CoreFuncType };
export interface CoreModuleType {
  kind: 'module';
  imports: { module: string; name: string; type: CoreExternType }[];
  exports: Map<string, CoreExternType>;
}

export type CoreSort = 'func' | 'table' | 'memory' | 'global' | 'tag' | 'type' | 'module' | 'instance';
export type Sort =
  | { core: CoreSort }
  | 'func' | 'value' | 'type' | 'component' | 'instance';

export interface SortIdx { sort: Sort; idx: number }
export interface CoreSortIdx { sort: CoreSort; idx: number }

export interface NameAttrs {
  name: string;
  implements?: string;
  versionSuffix?: string;
  externalId?: string;
}

// ---- core instances ----
export type CoreInstanceExpr =
  | { kind: 'instantiate'; module: number; args: { name: string; instance: number }[]; offset: number }
  | { kind: 'exports'; exports: { name: string; item: CoreSortIdx }[]; offset: number };

// ---- component instances ----
export type InstanceExpr =
  | { kind: 'instantiate'; component: number; args: { name: string; item: SortIdx }[]; offset: number }
  | { kind: 'exports'; exports: { name: NameAttrs; item: SortIdx }[]; offset: number };

// ---- aliases ----
export type Alias =
  | { kind: 'export'; sort: Sort; instance: number; name: string; offset: number }
  | { kind: 'core-export'; sort: Sort; instance: number; name: string; offset: number }
  | { kind: 'outer'; sort: Sort; count: number; idx: number; offset: number };

// ---- types ----
export type ValTypeRef = { kind: 'idx'; idx: number } | { kind: 'prim'; name: PrimName };

export type DefValType =
  | { kind: 'prim'; name: PrimName }
  | { kind: 'record'; fields: { name: string; type: ValTypeRef }[] }
  | { kind: 'variant'; cases: { name: string; type: ValTypeRef | null }[] }
  | { kind: 'list'; elem: ValTypeRef; length: number | null }
  | { kind: 'tuple'; types: ValTypeRef[] }
  | { kind: 'flags'; names: string[] }
  | { kind: 'enum'; names: string[] }
  | { kind: 'option'; type: ValTypeRef }
  | { kind: 'result'; ok: ValTypeRef | null; err: ValTypeRef | null }
  | { kind: 'own'; idx: number }
  | { kind: 'borrow'; idx: number }
  | { kind: 'stream'; elem: ValTypeRef | null }
  | { kind: 'future'; elem: ValTypeRef | null }
  | { kind: 'map'; key: ValTypeRef; value: ValTypeRef };

export interface FuncTypeAst { kind: 'func'; async: boolean; params: { name: string; type: ValTypeRef }[]; result: ValTypeRef | null }

export type ExternTypeAst =
  | { kind: 'module'; idx: number }
  | { kind: 'func'; idx: number }
  | { kind: 'value'; bound: { kind: 'eq'; idx: number } | { kind: 'type'; type: ValTypeRef } }
  | { kind: 'type'; bound: { kind: 'eq'; idx: number } | { kind: 'sub-resource' } }
  | { kind: 'component'; idx: number }
  | { kind: 'instance'; idx: number };

export type InstanceDecl =
  | { kind: 'core-type'; type: CoreTypeAst; offset: number }
  | { kind: 'type'; type: TypeAst; offset: number }
  | { kind: 'alias'; alias: Alias; offset: number }
  | { kind: 'export'; name: NameAttrs; type: ExternTypeAst; offset: number };

export type ComponentDecl = InstanceDecl | { kind: 'import'; name: NameAttrs; type: ExternTypeAst; offset: number };

export type TypeAst =
  | { kind: 'defval'; type: DefValType; offset: number }
  | (FuncTypeAst & { offset: number })
  | { kind: 'component'; decls: ComponentDecl[]; offset: number }
  | { kind: 'instance'; decls: InstanceDecl[]; offset: number }
  | { kind: 'resource'; rep: 'i32' | 'i64'; dtor: number | null; offset: number };

// core types in a component: only module types and function types (plus GC forms we keep opaque)
export type CoreValTypeAst = CoreValType;
export type CoreExternTypeAst =
  | { kind: 'func'; typeIdx: number }
  | { kind: 'table'; elem: CoreValTypeAst; min: number; max: number | null; is64: boolean }
  | { kind: 'memory'; min: number; max: number | null; shared: boolean; is64: boolean }
  | { kind: 'global'; type: CoreValTypeAst; mutable: boolean }
  | { kind: 'tag'; typeIdx: number };
export type ModuleDecl =
  | { kind: 'import'; module: string; name: string; type: CoreExternTypeAst }
  | { kind: 'type'; type: CoreTypeAst }
  | { kind: 'alias'; count: number; idx: number }
  | { kind: 'export'; name: string; type: CoreExternTypeAst };
export type CoreTypeAst =
  | { kind: 'func'; params: CoreValTypeAst[]; results: CoreValTypeAst[]; offset: number }
  | { kind: 'gc'; offset: number } // struct/array/rec groups: kept opaque, rejected where a func type is required
  | { kind: 'module'; decls: ModuleDecl[]; offset: number };

// ---- canon ----
export interface CanonOpts {
  stringEncoding?: 'utf8' | 'utf16' | 'latin1+utf16';
  memory?: number;
  realloc?: number;
  postReturn?: number;
  async?: boolean;
  callback?: number;
  /** 🛸 GC ABI options (wasmtime's component-model-gc proposal) */
  coreType?: number;
  gc?: boolean;
  /** set when an option appears twice or conflicts; validation reports it */
  duplicate?: string;
}

export type Canon =
  | { kind: 'lift'; func: number; opts: CanonOpts; type: number }
  | { kind: 'lower'; func: number; opts: CanonOpts }
  | { kind: 'resource.new' | 'resource.drop' | 'resource.rep'; type: number; async?: boolean }
  | { kind: 'backpressure.inc' | 'backpressure.dec' | 'task.cancel' | 'subtask.drop' | 'error-context.drop'
      | 'waitable-set.new' | 'waitable-set.drop' | 'waitable.join' | 'thread.index' | 'thread.resume-later' }
  | { kind: 'task.return'; result: ValTypeRef | null; opts: CanonOpts }
  | { kind: 'context.get' | 'context.set'; type: CoreValTypeAst; index: number }
  | { kind: 'subtask.cancel'; async: boolean }
  | { kind: 'stream.new' | 'stream.drop-readable' | 'stream.drop-writable'
      | 'future.new' | 'future.drop-readable' | 'future.drop-writable'; type: number }
  | { kind: 'stream.read' | 'stream.write' | 'future.read' | 'future.write'; type: number; opts: CanonOpts }
  | { kind: 'stream.cancel-read' | 'stream.cancel-write' | 'future.cancel-read' | 'future.cancel-write'; type: number; async: boolean }
  | { kind: 'error-context.new' | 'error-context.debug-message'; opts: CanonOpts }
  | { kind: 'waitable-set.wait' | 'waitable-set.poll'; cancellable: boolean; memory: number }
  | { kind: 'thread.new-indirect'; type: number; table: number }
  | { kind: 'thread.suspend' | 'thread.yield' | 'thread.suspend-then-resume' | 'thread.yield-then-resume'
      | 'thread.suspend-then-promote' | 'thread.yield-then-promote'; cancellable: boolean }
  | { kind: 'thread.spawn-ref'; shared: boolean; type: number }
  | { kind: 'thread.spawn-indirect'; shared: boolean; type: number; table: number }
  | { kind: 'thread.available-parallelism'; shared: boolean };

// ---- top-level definitions, in binary order ----
export type Definition =
  | { kind: 'core-module'; bytes: Uint8Array; offset: number }
  | { kind: 'core-instance'; expr: CoreInstanceExpr; offset: number }
  | { kind: 'core-type'; type: CoreTypeAst; offset: number }
  | { kind: 'component'; component: ComponentAst; offset: number }
  | { kind: 'instance'; expr: InstanceExpr; offset: number }
  | { kind: 'alias'; alias: Alias; offset: number }
  | { kind: 'type'; type: TypeAst; offset: number }
  | { kind: 'canon'; canon: Canon; offset: number }
  | { kind: 'start'; func: number; args: number[]; results: number; offset: number }
  | { kind: 'import'; name: NameAttrs; type: ExternTypeAst; offset: number }
  | { kind: 'export'; name: NameAttrs; item: SortIdx; type: ExternTypeAst | null; offset: number }
  | { kind: 'value'; offset: number };

export interface ComponentAst {
  definitions: Definition[];
  /** byte range of this component in the input */
  offset: number;
  end: number;
  customSections: { name: string; offset: number; size: number }[];
}
