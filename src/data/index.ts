/** Data layer entry points: plain typed arrays in, plain typed arrays out. */
export * from './types.js';
export * from './image_io.js';
export * from './rng.js';
export * from './datasets.js';
export * from './sampler.js';
export * from './sample_processor.js';
export * from './loader.js';
export * from './synthetic.js';
export * from './transforms/index.js';
