// Canonical ABI (synchronous, plus async flattening helpers), compiled per type.
export * from './context.ts';
export * from '../types/layout.ts';
export * from './strings.ts';
export * from './plan.ts';
export * from './func.ts';
export * from './values.ts';
