/**
 * Config dicts in mmseg's structure (what mmengine's Config.dump('x.json') writes), with
 * strict validation: an unknown `type` or field is an error that lists what is supported.
 */
import { ConfigError } from './errors.js';
import { isDict, type Dict } from './merge.js';
import { readConfigFile } from './load.js';

export { ConfigError, isDict, type Dict };

/**
 * A config file: JSON (what mmengine's Config.dump writes) or an mmseg `.py` config, read
 * without Python (src/config/), with `_base_` inheritance merged in either form.
 */
export function loadConfig(file: string): Dict {
  return readConfigFile(file);
}

/** Throws when `d` has fields outside `known` (path names the dict, e.g. "model.backbone"). */
export function checkFields(d: Dict, known: readonly string[], path: string): void {
  const unknown = Object.keys(d).filter((k) => !known.includes(k));
  if (unknown.length) {
    throw new ConfigError(
      `${path}: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')} ` +
        `(supported: ${known.join(', ')})`,
    );
  }
}

export function checkType(d: Dict, supported: readonly string[], path: string): string {
  const t = d.type;
  if (typeof t !== 'string' || !supported.includes(t)) {
    throw new ConfigError(`${path}.type: ${JSON.stringify(t)} is not supported (supported: ${supported.join(', ')})`);
  }
  return t;
}

export function getDict(d: Dict, key: string, path: string): Dict {
  const v = d[key];
  if (!isDict(v)) throw new ConfigError(`${path}.${key} must be an object`);
  return v;
}

export function num(d: Dict, key: string, path: string, fallback?: number): number {
  const v = d[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new ConfigError(`${path}.${key} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

export function bool(d: Dict, key: string, path: string, fallback?: boolean): boolean {
  const v = d[key] ?? fallback;
  if (typeof v !== 'boolean') throw new ConfigError(`${path}.${key} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

export function numList(d: Dict, key: string, path: string, fallback?: number[]): number[] {
  const v = d[key] ?? fallback;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) {
    throw new ConfigError(`${path}.${key} must be a list of numbers, got ${JSON.stringify(v)}`);
  }
  return v as number[];
}

export function pairOf(d: Dict, key: string, path: string, fallback?: number | [number, number]): [number, number] {
  const v = d[key] ?? fallback;
  if (typeof v === 'number') return [v, v];
  const l = numList({ [key]: v }, key, path);
  if (l.length !== 2) throw new ConfigError(`${path}.${key} must be a number or a pair, got ${JSON.stringify(v)}`);
  return [l[0], l[1]];
}

/**
 * env_cfg.cudnn_benchmark as mmengine applies it (default true in mmseg's runtime config):
 * cuDNN autotunes its convolution algorithms on a CUDA device. No effect on CPU.
 */
export function cudnnBenchmarkOf(cfg: Dict): boolean {
  const env = cfg.env_cfg;
  if (env === undefined) return true;
  if (!isDict(env)) throw new ConfigError('env_cfg must be an object');
  return bool(env, 'cudnn_benchmark', 'env_cfg', true);
}

/** Bounds a config number must meet; checked by `checkNumber`. */
export interface NumberRule {
  integer?: boolean;
  /** strictly greater than */
  gt?: number;
  /** greater than or equal */
  ge?: number;
  /** strictly less than */
  lt?: number;
  /** less than or equal (a sane upper bound: sizes past it would exhaust memory, not describe a model) */
  le?: number;
  /** not equal to zero */
  nonZero?: boolean;
}

/** `v` (shown as `where`, e.g. "model.test_cfg.stride[0]") if it meets `rule`, else a ConfigError. */
export function checkNumber(v: number, where: string, rule: NumberRule): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new ConfigError(`${where} must be a number, got ${JSON.stringify(v)}`);
  }
  if (rule.integer && !Number.isInteger(v)) throw new ConfigError(`${where} must be an integer, got ${v}`);
  if (rule.gt !== undefined && !(v > rule.gt)) throw new ConfigError(`${where} must be > ${rule.gt}, got ${v}`);
  if (rule.ge !== undefined && !(v >= rule.ge)) throw new ConfigError(`${where} must be >= ${rule.ge}, got ${v}`);
  if (rule.lt !== undefined && !(v < rule.lt)) throw new ConfigError(`${where} must be < ${rule.lt}, got ${v}`);
  if (rule.le !== undefined && !(v <= rule.le)) throw new ConfigError(`${where} must be <= ${rule.le}, got ${v}`);
  if (rule.nonZero && v === 0) throw new ConfigError(`${where} must not be 0`);
  return v;
}

/** Every element of `list` (the field `path.key`) checked against `rule`. */
export function checkList(list: readonly number[], where: string, rule: NumberRule): number[] {
  return list.map((v, i) => checkNumber(v, `${where}[${i}]`, rule));
}

/** num() with bounds. */
export function numIn(d: Dict, key: string, path: string, rule: NumberRule, fallback?: number): number {
  return checkNumber(num(d, key, path, fallback), `${path}.${key}`, rule);
}

/** pairOf() with bounds on both elements (a single number is checked once). */
export function pairIn(
  d: Dict,
  key: string,
  path: string,
  rule: NumberRule,
  fallback?: number | [number, number],
): [number, number] {
  const v = d[key] ?? fallback;
  const pair = pairOf(d, key, path, fallback);
  if (typeof v === 'number') checkNumber(v, `${path}.${key}`, rule);
  else checkList(pair, `${path}.${key}`, rule);
  return pair;
}

export const POSITIVE_INT: NumberRule = { integer: true, gt: 0 };

/** A positive integer of at most `max`. */
export function positiveIntUpTo(max: number): NumberRule {
  return { integer: true, gt: 0, le: max };
}
