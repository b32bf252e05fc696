/**
 * Config dicts in mmseg's structure (what mmengine's Config.dump('x.json') writes), with
 * strict validation: an unknown `type` or field is an error that lists what is supported.
 */
import { ConfigError } from '../config/errors.js';
import { readConfigFile } from '../config/load.js';

export { ConfigError };

export type Dict = Record<string, unknown>;

/**
 * A config file: JSON (what mmengine's Config.dump writes) or an mmseg `.py` config, read
 * without Python (src/config/), with `_base_` inheritance merged in either form.
 */
export function loadConfig(file: string): Dict {
  return readConfigFile(file);
}

export function isDict(v: unknown): v is Dict {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Throws when `d` has fields outside `known` (path names the dict, e.g. "model.backbone"). */
export function checkFields(d: Dict, known: readonly string[], path: string): void {
  const unknown = Object.keys(d).filter((k) => !known.includes(k));
  if (unknown.length) {
    throw new ConfigError(`${path}: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')} ` +
      `(supported: ${known.join(', ')})`);
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
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(`${path}.${key} must be a number, got ${JSON.stringify(v)}`);
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
