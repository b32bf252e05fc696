/**
 * Test-time preprocessing as mmseg: keep-ratio Resize into `scale` (cv2 bilinear, mmcv
 * rounding), then the data preprocessor's (x − mean) / std on RGB, as an NCHW tensor.
 */
import { checkFields, checkList, ConfigError, isDict, numList, type Dict } from '../config/schema.js';
import type { RgbImage } from '../data/types.js';
import { IMAGENET_MEAN, IMAGENET_STD, normalizeImage } from '../data/transforms/normalize.js';
import { fromArray, type Device, type Tensor } from '../tensor/tensor.js';

export { scaledTestSize, testResize } from './resize_plan.js';

export interface Preprocess {
  mean: [number, number, number];
  std: [number, number, number];
  /** Test Resize scale (w, h) with keep_ratio, or null to feed images at their own size. */
  scale: [number, number] | null;
}

/** mean/std of the data preprocessor (model.data_preprocessor, or 0.x img_norm_cfg), RGB order. */
export function normalization(cfg: Dict): { mean: [number, number, number]; std: [number, number, number] } {
  const model = isDict(cfg.model) ? cfg.model : {};
  const dp = isDict(model.data_preprocessor)
    ? model.data_preprocessor
    : isDict(cfg.data_preprocessor)
      ? cfg.data_preprocessor
      : isDict(cfg.img_norm_cfg)
        ? cfg.img_norm_cfg
        : {};
  const triple = (key: string, fallback: [number, number, number]): [number, number, number] => {
    const v = numList(dp, key, 'model.data_preprocessor', fallback);
    if (v.length !== 3) throw new Error(`model.data_preprocessor.${key} must have 3 values`);
    // a zero std divides by zero: NaN logits and a constant prediction
    if (key === 'std') checkList(v, 'model.data_preprocessor.std', { nonZero: true });
    return [v[0], v[1], v[2]];
  };
  if (dp.bgr_to_rgb === false || dp.to_rgb === false) {
    throw new Error('model.data_preprocessor: bgr_to_rgb=false is not supported (images are fed as RGB)');
  }
  return { mean: triple('mean', [...IMAGENET_MEAN]), std: triple('std', [...IMAGENET_STD]) };
}

/**
 * mean/std (see normalization) and the Resize scale of the test pipeline (`pipeline`, default
 * the config's test_pipeline; `where` names it in errors).
 */
export function preprocessFromConfig(
  cfg: Dict,
  pipeline?: unknown[],
  where = pipeline ? 'the dataloader pipeline' : 'test_pipeline',
): Preprocess {
  const steps = pipeline ?? (Array.isArray(cfg.test_pipeline) ? cfg.test_pipeline : null);
  return { ...normalization(cfg), scale: steps ? testScale(steps, where) : [2560, 640] };
}

/** Transforms a test pipeline may hold: only Resize changes what the model sees. */
export const TEST_TRANSFORMS = ['LoadImageFromFile', 'LoadAnnotations', 'Resize', 'PackSegInputs'];

function testScale(pipeline: unknown[], where: string): [number, number] | null {
  let scale: [number, number] | null = null;
  for (const [i, step] of pipeline.entries()) {
    if (!isDict(step) || typeof step.type !== 'string' || !TEST_TRANSFORMS.includes(step.type)) {
      const type = JSON.stringify(isDict(step) ? step.type : step);
      throw new ConfigError(
        `${where}[${i}].type ${type} is not supported in a test pipeline ` +
          `(supported: ${TEST_TRANSFORMS.join(', ')})`,
      );
    }
    if (step.type === 'Resize' && !scale) {
      checkFields(step, ['type', 'scale', 'keep_ratio', 'img_scale'], `${where}[${i}]`);
      if (step.keep_ratio === false) throw new Error('test_pipeline Resize keep_ratio=false is not supported');
      const key = step.scale !== undefined ? 'scale' : 'img_scale';
      const s = checkList(numList(step, key, `${where}[${i}]`), `${where}[${i}].${key}`, { gt: 0 });
      if (s.length !== 2) throw new ConfigError(`${where}[${i}].${key} must be (w, h), got ${JSON.stringify(s)}`);
      scale = [s[0], s[1]];
    }
  }
  return scale;
}

/** RGB uint8 HWC -> normalised float32 [1, 3, H, W] on `device` (the data pipeline's normalisation). */
export function toInputTensor(img: RgbImage, pp: Preprocess, device: Device = 'cpu'): Tensor {
  const chw = fromArray(normalizeImage(img, pp), [1, 3, img.height, img.width]);
  if (device === 'cpu') return chw;
  const moved = chw.to(device);
  chw.dispose();
  return moved;
}
