export * from './tensor.js';
export * as F from './functional.js';
export * from './runtime.js';
export { tidy, keep, Scope } from './scope.js';
