/** Data transforms: mmseg/mmcv semantics with OpenCV numerics. */
export * from './sample.js';
export * from './cv_resize.js';
export * from './cv_color.js';
export * from './loading.js';
export * from './resize.js';
export * from './crop.js';
export * from './flip.js';
export * from './photometric.js';
export * from './pad.js';
export * from './normalize.js';
export * from './pack.js';
export * from './pipeline.js';
