// Weir's public entry point.
export { Component, Instance, type Imports, type CompileOptions, type InstantiateOptions, type CallOptions } from './host/component.ts';
export { WASMTIME_LIMIT_DEFAULTS, type CompileLimits, type InstanceLimits } from './runtime/limits.ts';
export { ErrorContext } from './runtime/error-context.ts';
export { HostResource, ResourceHandle, RuntimeResource } from './runtime/resources.ts';
export { mayBlock } from './runtime/call.ts';
export { DecodeError, ValidationError, LinkError, Trap, isWeirError, type WeirErrorCode } from './errors.ts';
export { TrapReason, trapMessage, type TrapKind, type TrapReasonName } from './trap-reasons.ts';
export type { ComponentType, InstanceType, FuncType, ValType, ExternType } from './types/types.ts';
export { compileCoreModule } from './runtime/modules.ts';
export { DEVIATIONS, type AppliedDeviation, type DeviationEntry, type DeviationMode, type MatchedDeviation } from './runtime/deviations.ts';
export type { Producer } from './binary/producers.ts';
export { createWasi, createWasiP2Imports, createWasiP3Imports, runCommand, findRunExport, ExitSignal, WasiError, type WasiConfig } from './wasi/index.ts';
export { HttpClient, OutboundPolicy, HttpError, type HttpConfig, type ErrorCode as HttpErrorCode } from './wasi/index.ts';
export { NetRuleError, type NetworkConfig, type SocketAddrCheck, type SocketAddrUse, type CheckedAddress } from './wasi/index.ts';
export { createRequestListener, createHandler, createServeMachine, ServeMachine, ServeSetupError, SERVE_DEFAULTS, type ServeOptions as HttpServeOptions, type RequestListener, type Handler as HttpHandler, type Serveable } from './serve/index.ts';
export { ServeObservation, ServeMetrics, JsonAccessLog, type ServeObserver, type RequestRecord, type RequestSink } from './serve/index.ts'; // H9
export { LimitedHandler, ServeLimitError, SERVE_LIMIT_DEFAULTS, type ServeLimits } from './serve/index.ts'; // H8: request-level limits
export type { ServeComponentsOptions, WorkerServer, ServeStartError } from './cli/serve-workers.ts';

/**
 * `weir serve --workers N` as an API: serves `options.files` on worker threads
 * with the CPU watchdog (see src/cli/serve-workers.ts). Loaded on first use,
 * so importing Weir does not load worker_threads. Rejects with a
 * ServeStartError (`code` 'WEIR_SERVE_START', `report` as weir serve prints it).
 */
export async function serveComponents(options: import('./cli/serve-workers.ts').ServeComponentsOptions): Promise<import('./cli/serve-workers.ts').WorkerServer> {
  return (await import('./cli/serve-workers.ts')).serveComponents(options);
}
export { Fields as HttpFields, HeaderError } from './wasi/core/http/fields.ts';
