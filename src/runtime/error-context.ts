// 📝 error-context values (CanonicalABI.md "canon error-context.new").

/** An error-context value: a handle-table entry in the guest, this object in JS. */
export class ErrorContext {
  readonly debugMessage: string;
  constructor(debugMessage = '') { this.debugMessage = debugMessage; }
}
