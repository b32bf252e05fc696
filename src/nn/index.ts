export { Module, type LoadResult } from './module.js';
export { Linear } from './linear.js';
export { Conv2d, ConvTranspose2d } from './conv.js';
export { LayerNorm, BatchNorm2d } from './norm.js';
export { ConvModule } from './conv_module.js';
