export * from './tensor.js';
export * as F from './functional.js';
export * from './runtime.js';
export { tidy, keep, consume, Scope } from './scope.js';
export * from './cuda_graph.js';
