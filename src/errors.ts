// Typed errors. Every failure Weir reports to a user is one of these. Each
// class has a stable machine-readable `code` ('WEIR_…'), which survives duplicate
// copies of the package where `instanceof` does not; branch on it, not on `name`
// or the message. A Trap also names its reason (`kind`, src/trap-reasons.ts).

import { TrapReason, trapKindOf, trapMessage, WASM_TRAP_KINDS, type TrapKind, type TrapReasonArgs, type TrapReasonName } from './trap-reasons.ts';

/** The `code` of each of Weir's own error classes. */
export type WeirErrorCode =
  | 'WEIR_DECODE' | 'WEIR_VALIDATION' | 'WEIR_LINK' | 'WEIR_TRAP'
  | 'WEIR_USAGE' | 'WEIR_SERVE_SETUP' | 'WEIR_TLS_SETUP' | 'WEIR_SERVE_LIMIT' | 'WEIR_INSTANCE_FAILED'
  | 'WEIR_SHUTTING_DOWN' | 'WEIR_NET_RULE' | 'WEIR_SERVE_START';

/** True for an error raised by Weir itself (any class with a 'WEIR_…' code). */
export function isWeirError(e: unknown): e is Error & { code: WeirErrorCode } {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('WEIR_');
}

/** Malformed binary input: names the byte offset and what was expected. */
export class DecodeError extends Error {
  override name = 'DecodeError';
  readonly code = 'WEIR_DECODE';
  offset: number;
  expected: string;
  constructor(offset: number, expected: string) {
    super(`malformed component at byte offset ${offset} (0x${offset.toString(16)}): ${expected}`);
    this.offset = offset;
    this.expected = expected;
  }
}

/** A well-formed binary that breaks a validation rule of the Component Model. */
export class ValidationError extends Error {
  override name = 'ValidationError';
  readonly code = 'WEIR_VALIDATION';
  rule: string;
  offset?: number;
  constructor(rule: string, detail: string, offset?: number) {
    super(`invalid component: ${rule}: ${detail}${offset !== undefined ? ` (at byte offset ${offset})` : ''}`);
    this.rule = rule;
    this.offset = offset;
  }
}

/** Imports that do not satisfy what a component needs. */
export class LinkError extends Error {
  override name = 'LinkError';
  readonly code = 'WEIR_LINK';
}

/**
 * A runtime trap. `reason` is the message (the spec's text), `kind` its stable
 * name in TrapReason ('cannot-leave-component', 'wasm-unreachable', …; 'other'
 * for a message the table does not hold). `wasmStack` holds the wasm frames when known.
 */
export class Trap extends Error {
  override name = 'Trap';
  readonly code = 'WEIR_TRAP';
  reason: string;
  kind: TrapKind;
  constructor(reason: string, options?: { cause?: unknown; kind?: TrapKind }) {
    super(reason, options);
    this.reason = reason;
    this.kind = options?.kind ?? kindOf(reason, options?.cause);
  }
  get wasmStack(): string[] {
    const src = this.cause instanceof Error ? this.cause.stack : this.stack;
    return (src ?? '').split('\n').filter((l) => l.includes('wasm://') || l.includes('wasm-function'));
  }
}

function kindOf(message: string, cause: unknown): TrapKind {
  const k = trapKindOf(message);
  return k === 'other' && cause instanceof WebAssembly.RuntimeError ? (WASM_TRAP_KINDS.get(cause.message) ?? 'wasm-trap') : k;
}

type TrapOf = <K extends TrapReasonName>(kind: K, ...args: TrapReasonArgs<K>) => Trap;
type ThrowTrap = <K extends TrapReasonName>(kind: K, ...args: TrapReasonArgs<K>) => never;
type ThrowTrapIf = <K extends TrapReasonName>(cond: boolean, kind: K, ...args: TrapReasonArgs<K>) => void;

// The values go in as separate parameters, not a rest array or a built
// message, so a check that passes allocates nothing.
function trapOfImpl(kind: string, a?: unknown, b?: unknown, c?: unknown, d?: unknown): Trap {
  // The types admit only names of the table; a plain message from untyped code still makes a Trap.
  if (!Object.hasOwn(TrapReason, kind)) return new Trap(kind);
  return new Trap((trapMessage as (k: string, ...v: unknown[]) => string)(kind, a, b, c, d), { kind: kind as TrapReasonName });
}

/** A Trap for a named reason: `trapOf('unknown-handle', i)`. */
export const trapOf = trapOfImpl as TrapOf;

/** Throw the Trap for a named reason: `trap('unknown-handle', i)`. */
export const trap: ThrowTrap = ((kind: string, a?: unknown, b?: unknown, c?: unknown, d?: unknown): never => {
  throw trapOfImpl(kind, a, b, c, d);
}) as ThrowTrap;

/** Throw the Trap for a named reason when `cond` holds: `trapIf(!inst.mayLeave, 'cannot-leave-component')`. */
export const trapIf: ThrowTrapIf = ((cond: boolean, kind: string, a?: unknown, b?: unknown, c?: unknown, d?: unknown): void => {
  if (cond) throw trapOfImpl(kind, a, b, c, d);
}) as ThrowTrapIf;
