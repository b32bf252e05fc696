/**
 * The TTA a config's `tta_pipeline` describes (mmseg 1.x):
 *
 *   tta_pipeline = [
 *       dict(type='LoadImageFromFile', backend_args=None),
 *       dict(type='TestTimeAug', transforms=[
 *           [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in img_ratios],
 *           [dict(type='RandomFlip', prob=0., direction='horizontal'),
 *            dict(type='RandomFlip', prob=1., direction='horizontal')],
 *           [dict(type='LoadAnnotations')], [dict(type='PackSegInputs')]])]
 *
 * TestTimeAug runs every combination of one transform per list. Resize(scale_factor=r) scales
 * the image as loaded (there is no test Resize in this pipeline), unlike mmseg 0.x's
 * img_ratios, which multiplied the test scale. RandomFlip with prob 1 is a flipped view, prob 0
 * the unflipped one. Anything else in it is an error naming the entry.
 */
import { checkFields, checkNumber, ConfigError, isDict, type Dict } from '../config/schema.js';

export interface ConfigTta {
  /** Resize scale factors, applied to the loaded image's size. */
  scales: number[];
  /** Whether a horizontally flipped view is added to each scale. */
  flip: boolean;
}

const PASSIVE = ['LoadImageFromFile', 'LoadAnnotations', 'PackSegInputs'];

/** The config's TTA, or null when it has no tta_pipeline. */
export function ttaFromConfig(cfg: Dict): ConfigTta | null {
  const p = cfg.tta_pipeline;
  if (p === undefined || p === null) return null;
  if (!Array.isArray(p)) throw new ConfigError('tta_pipeline must be a list of transforms');
  let found: ConfigTta | null = null;
  for (const [i, step] of p.entries()) {
    const where = `tta_pipeline[${i}]`;
    if (!isDict(step)) throw new ConfigError(`${where} must be a transform dict`);
    if (step.type === 'TestTimeAug') {
      if (found) throw new ConfigError(`${where}: only one TestTimeAug is supported`);
      found = testTimeAug(step, where);
    } else if (typeof step.type !== 'string' || !PASSIVE.includes(step.type)) {
      const supported = ['TestTimeAug', ...PASSIVE].join(', ');
      throw new ConfigError(`${where}.type ${JSON.stringify(step.type)} is not supported (supported: ${supported})`);
    }
  }
  if (!found) throw new ConfigError('tta_pipeline has no TestTimeAug entry');
  return found;
}

function testTimeAug(step: Dict, where: string): ConfigTta {
  checkFields(step, ['type', 'transforms'], where);
  const groups = step.transforms;
  if (!Array.isArray(groups) || !groups.every(Array.isArray)) {
    throw new ConfigError(`${where}.transforms must be a list of lists`);
  }
  let scales: number[] | null = null;
  let flips: boolean[] | null = null;
  for (const [g, group] of (groups as unknown[][]).entries()) {
    const gw = `${where}.transforms[${g}]`;
    if (!group.length) throw new ConfigError(`${gw} is empty`);
    const types = group.map((t, i) => {
      if (!isDict(t)) throw new ConfigError(`${gw}[${i}] must be a transform dict`);
      return t.type;
    });
    const dicts = group as Dict[];
    if (types.every((t) => t === 'Resize')) {
      if (scales) throw new ConfigError(`${gw}: a second list of Resize transforms is not supported`);
      scales = dicts.map((t, i) => resizeFactor(t, `${gw}[${i}]`));
    } else if (types.every((t) => t === 'RandomFlip')) {
      if (flips) throw new ConfigError(`${gw}: a second list of RandomFlip transforms is not supported`);
      flips = dicts.map((t, i) => flipOf(t, `${gw}[${i}]`));
    } else if (!types.every((t) => typeof t === 'string' && PASSIVE.includes(t))) {
      throw new ConfigError(
        `${gw}: ${JSON.stringify(types)} is not supported ` +
          `(a list of Resize(scale_factor=r), a list of RandomFlip, or ${PASSIVE.join('/')})`,
      );
    }
  }
  const flipSet = flips ?? [false];
  if (flipSet.length !== new Set(flipSet).size) throw new ConfigError(`${where}: the RandomFlip list repeats a view`);
  if (!flipSet.includes(false)) throw new ConfigError(`${where}: TTA without the unflipped view is not supported`);
  return { scales: scales ?? [1], flip: flipSet.includes(true) };
}

function resizeFactor(t: Dict, where: string): number {
  checkFields(
    t,
    ['type', 'scale_factor', 'keep_ratio', 'scale', 'interpolation', 'backend', 'clip_object_border'],
    where,
  );
  if (t.scale != null) {
    throw new ConfigError(`${where}: Resize with a fixed scale is not supported in tta_pipeline (use scale_factor)`);
  }
  if (t.keep_ratio !== true) throw new ConfigError(`${where}: keep_ratio must be True`);
  if (t.interpolation !== undefined && t.interpolation !== 'bilinear') {
    throw new ConfigError(`${where}.interpolation must be bilinear`);
  }
  return checkNumber(t.scale_factor as number, `${where}.scale_factor`, { gt: 0 });
}

function flipOf(t: Dict, where: string): boolean {
  checkFields(t, ['type', 'prob', 'direction'], where);
  if (t.direction !== undefined && t.direction !== 'horizontal') {
    throw new ConfigError(`${where}.direction must be 'horizontal'`);
  }
  if (t.prob !== 0 && t.prob !== 1) {
    throw new ConfigError(`${where}.prob must be 0 or 1 in a TTA pipeline, got ${JSON.stringify(t.prob)}`);
  }
  return t.prob === 1;
}

export { imageScaledSize } from './resize_plan.js';
