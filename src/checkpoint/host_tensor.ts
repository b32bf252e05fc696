/**
 * HostTensor and the dtype table now live in src/common/ (below both tensor/ and checkpoint/);
 * re-exported here because the checkpoint layer's public API (src/checkpoint/index.ts) and
 * existing importers name them through this path.
 */
export * from '../common/host_tensor.js';
