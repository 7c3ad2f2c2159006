// The one table of trap reasons: a stable kebab-case name for every trap the
// runtime raises, beside its message. Call sites name the reason
// (`trapIf(!inst.mayLeave, 'cannot-leave-component')`); the message is built
// only when the trap is thrown. Messages are the Component Model test suite's
// texts where it has one (assert_trap matches on them): change a message here
// only together with the suite. A Trap carries the name as `kind`.

/** Name → message (a string, or a function of the values the message names). */
export const TrapReason = {
  // ---- entering and leaving instances, calls (CanonicalABI.md: canon lift / canon lower)
  'cannot-leave-component': 'cannot leave component instance',
  'cannot-enter-component': 'cannot enter component instance',
  'instance-poisoned': 'cannot enter component instance: it trapped earlier',
  'borrows-remain': 'borrow handles still remain at the end of the call',
  'host-function-failed': (message: string) => `host function failed: ${message}`,
  'call-stack-exhausted': 'call stack exhausted',
  'uncaught-wasm-exception': 'thrown Wasm exception',
  'not-supported': (what: string) => `${what} is not supported`,

  // ---- tasks and the scheduler
  'not-in-task': 'this built-in can only be called from within a task',
  'cannot-block-sync-task': 'cannot block a synchronous task before returning',
  'sync-task-deadlock': 'cannot block a synchronous task before returning: deadlock detected: event loop cannot make further progress',
  'deadlock': 'deadlock detected: event loop cannot make further progress',
  'cannot-block-outside-task': 'cannot block outside of a task (e.g. in a start function)',
  'unsupported-callback-code': 'unsupported callback code',
  'invalid-callback-waitable-set': 'callback returned an invalid waitable set index',
  'exclusive-thread-set': 'internal: exclusive thread already set',
  'async-export-no-result': 'async-lifted export failed to produce a result',
  'task-already-returned': 'cannot return from a task that already returned or was cancelled',
  'task-cancel-not-delivered': 'task.cancel called without a delivered cancellation',
  'task-cancel-sync': 'task.cancel called from a synchronous task',
  'task-return-sync': 'invalid `task.return` signature and/or options for current task (the task is synchronous)',
  'task-return-mismatch': 'invalid `task.return` signature and/or options for current task',
  'backpressure-overflow': 'backpressure counter overflow',
  'backpressure-underflow': 'backpressure counter underflow',

  // ---- handles and handle tables
  'unknown-handle': (i: number) => `unknown handle index ${i}`,
  'handle-table-full': 'handle table is full',
  'handle-table-limit': (limit: string) => `handle table is full: resource limit exceeded (${limit})`,
  'move-lent-handle': (i: number) => `cannot move handle index ${i} while it is lent out`,
  'drop-lent-handle': (i: number) => `cannot drop handle index ${i} while it is lent out`,
  'handle-not-own': (i: number) => `handle index ${i} is a borrow, not an own`,
  'handle-not-resource': (i: number) => `handle index ${i} is not a resource`,
  'handle-wrong-resource-type': (i: number) => `handle index ${i} has the wrong resource type`,
  'handle-not-waitable-set': (i: number) => `handle index ${i} is not a waitable set`,
  'handle-not-waitable': (i: number) => `handle index ${i} is not a waitable`,
  'handle-not-subtask': (i: number) => `handle index ${i} is not a subtask`,
  'handle-not-error-context': (i: number) => `handle index ${i} is not an error-context`,
  'handle-not-stream-end': (i: number, end: 'readable' | 'writable') => `handle index ${i} is not a ${end} stream end`,
  'handle-not-future-end': (i: number, end: 'readable' | 'writable') => `handle index ${i} is not a ${end} future end`,
  'handle-not-copy-end': (i: number, what: string) => `handle index ${i} is not a ${what} end`,
  'handle-wrong-cancel-type': (i: number) => `handle index ${i} has the wrong type for this cancel`,

  // ---- waitables, waitable sets, subtasks
  'drop-nonempty-waitable-set': 'cannot drop waitable set with waiters (it still contains waitables)',
  'drop-waitable-set-with-waiters': 'cannot drop waitable set with waiters',
  'join-sync-waited': 'cannot join a waitable that a synchronous operation is waiting on',
  'sync-in-waitable-set': 'waitable cannot be used synchronously while added to a waitable set',
  'drop-unresolved-subtask': 'cannot drop a subtask which has not yet resolved',
  'subtask-cancel-after-resolve': '`subtask.cancel` called after terminal status delivered',
  'subtask-cancel-twice': '`subtask.cancel` called twice',

  // ---- streams and futures
  'stream-type-mismatch': 'stream type mismatch',
  'future-type-mismatch': 'future type mismatch',
  'copy-type-mismatch': 'stream/future type mismatch',
  'lift-stream-after-drop': 'cannot lift stream after being notified that the writable end dropped',
  'lift-stream-while-reading': 'cannot lift stream while a read is in progress',
  'lift-stream-in-waitable-set': "cannot lift stream while it's in a waitable set",
  'lift-future-after-read': 'cannot lift future after previous read succeeded',
  'lift-future-while-reading': 'cannot lift future while a read is in progress',
  'lift-future-in-waitable-set': "cannot lift future while it's in a waitable set",
  'stream-read-after-drop': 'cannot read after being notified that the writable end dropped',
  'stream-write-after-drop': 'cannot write after being notified that the readable end dropped',
  'future-read-after-read': 'cannot read from future after previous read succeeded',
  'future-write-after-write': 'cannot write to future after previous write succeeded or readable end dropped',
  'concurrent-copy': 'cannot have concurrent operations active on a future/stream',
  'cancel-without-copy': 'cannot cancel a copy that is not in progress',
  'copy-count-too-large': 'stream read/write count too large',
  'copy-budget-exhausted': 'value too large to copy through a stream or future (the copy budget was exhausted)',
  'same-instance-copy': 'cannot read from and write to intra-component future/stream with non-numeric payload',
  'drop-busy-copy-end': 'cannot drop busy stream or future',
  'drop-unwritten-future': 'cannot drop future write end without first writing a value',

  // ---- threads
  'thread-not-suspended': 'thread is not suspended',
  'table-index-out-of-bounds': (i: number) => `table index ${i} out of bounds`,
  'uninitialized-table-element': 'uninitialized table element',

  // ---- canonical ABI: memory, strings, values
  'missing-memory': 'canonical ABI operation requires a `memory` option',
  'missing-realloc': 'canonical ABI operation requires a `realloc` option',
  'misaligned-pointer': (ptr: number, align: number) => `misaligned pointer: ${ptr} is not aligned to ${align}`,
  'out-of-bounds': (ptr: number, size: number, memorySize: number) => `out of bounds memory access: ${ptr}+${size} exceeds memory size ${memorySize}`,
  'realloc-limit': (size: number) => `allocation size ${size} exceeds the realloc limit`,
  'string-too-long': (bytes: number) => `string byte length ${bytes} exceeds MAX_STRING_BYTE_LENGTH`,
  'string-units-too-long': (units: number) => `string of ${units} code units exceeds MAX_STRING_BYTE_LENGTH`,
  'invalid-utf8': 'invalid utf-8 in string',
  'invalid-utf16': 'invalid utf-16 in string (unpaired surrogate)',
  'char-out-of-range': (codePoint: number) => `invalid char: code point 0x${codePoint.toString(16)} is out of range`,
  'char-surrogate': (codePoint: number) => `invalid char: code point 0x${codePoint.toString(16)} is a surrogate`,
  'list-too-long': (bytes: number) => `list byte length ${bytes} exceeds MAX_LIST_BYTE_LENGTH`,
  'list-realloc-limit': (bytes: number) => `list byte length ${bytes} exceeds the realloc limit`,
  'invalid-discriminant': (i: number, cases: number) => `invalid variant discriminant: case index ${i} is out of range for ${cases} cases`,

  // ---- limits (-W / -S)
  'resource-limit': (what: string, n: number, flag: string, limit: number) => `resource limit exceeded: ${what} count too high at ${n} (${flag} ${limit})`,
  'hostcall-fuel-exhausted': (limit: number) => `hostcall-fuel exhausted: a call of a host import may copy at most ${limit} bytes of strings and lists out of the guest`,

  // ---- WASI hosts (a guest breaking an interface's rules)
  'poll-empty-list': 'wasi:io/poll.poll: the list of pollables is empty',
  'response-outparam-already-set': 'wasi:http/types.response-outparam.set: already set',
} as const;

export type TrapReasonName = keyof typeof TrapReason;

/** The values a reason's message names (none for a fixed message). */
export type TrapReasonArgs<K extends TrapReasonName> =
  (typeof TrapReason)[K] extends (...args: infer A) => string ? A : [];

/**
 * Core wasm traps, named by the message V8 gives the WebAssembly.RuntimeError
 * (the texts are V8's, checked on Node 26; any other RuntimeError is 'wasm-trap').
 */
export const WASM_TRAP_KINDS: ReadonlyMap<string, WasmTrapKind> = new Map<string, WasmTrapKind>([
  ['unreachable', 'wasm-unreachable'],
  ['memory access out of bounds', 'wasm-memory-out-of-bounds'],
  ['divide by zero', 'wasm-divide-by-zero'],
  ['remainder by zero', 'wasm-divide-by-zero'],
  ['divide result unrepresentable', 'wasm-integer-overflow'],
  ['float unrepresentable in integer range', 'wasm-bad-conversion-to-integer'],
  ['table index is out of bounds', 'wasm-table-out-of-bounds'],
  ['function signature mismatch', 'wasm-indirect-call-mismatch'],
  ['null function or function signature mismatch', 'wasm-indirect-call-mismatch'],
]);

export type WasmTrapKind =
  | 'wasm-unreachable' | 'wasm-memory-out-of-bounds' | 'wasm-divide-by-zero' | 'wasm-integer-overflow'
  | 'wasm-bad-conversion-to-integer' | 'wasm-table-out-of-bounds' | 'wasm-indirect-call-mismatch' | 'wasm-trap';

/**
 * What a Trap's `kind` can be: a named reason, a core wasm trap, or 'other'
 * (a Trap constructed from a message the table does not hold).
 */
export type TrapKind = TrapReasonName | WasmTrapKind | 'other';

/** The message of a reason, given the values it names. */
export const trapMessage = ((kind: TrapReasonName, a?: unknown, b?: unknown, c?: unknown, d?: unknown): string => {
  const m = TrapReason[kind] as string | ((a: unknown, b: unknown, c: unknown, d: unknown) => string);
  return typeof m === 'string' ? m : m(a, b, c, d);
}) as <K extends TrapReasonName>(kind: K, ...args: TrapReasonArgs<K>) => string;

let byMessage: Map<string, TrapReasonName> | null = null;

/** The kind of a trap message: a fixed reason of the table, a core wasm trap, or 'other'. */
export function trapKindOf(message: string): TrapKind {
  if (byMessage === null) {
    byMessage = new Map();
    for (const [k, m] of Object.entries(TrapReason)) if (typeof m === 'string') byMessage.set(m, k as TrapReasonName);
  }
  return byMessage.get(message) ?? WASM_TRAP_KINDS.get(message) ?? 'other';
}
