// Typed errors. Every failure Weir reports to a user is one of these.

/** Malformed binary input: names the byte offset and what was expected. */
export class DecodeError extends Error {
  override name = 'DecodeError';
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
}

/** A runtime trap, with the spec's reason. `wasmStack` holds the wasm frames when known. */
export class Trap extends Error {
  override name = 'Trap';
  reason: string;
  constructor(reason: string, options?: { cause?: unknown }) {
    super(reason, options);
    this.reason = reason;
  }
  get wasmStack(): string[] {
    const src = this.cause instanceof Error ? this.cause.stack : this.stack;
    return (src ?? '').split('\n').filter((l) => l.includes('wasm://') || l.includes('wasm-function'));
  }
}

export function trap(reason: string): never {
  throw new Trap(reason);
}

export function trapIf(cond: boolean, reason: string): void {
  if (cond) throw new Trap(reason);
}
