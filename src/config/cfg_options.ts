/**
 * `--cfg-options a.b.c=value ...` as mmengine's DictAction reads them: the value is an int,
 * float, true/false (any case), None, a list `[a,b]` or `a,b`, a tuple `(a,b)` (nested
 * brackets allowed), else a string; spaces are dropped and surrounding quotes stripped. The
 * options are merged into the config like Config.merge_from_dict(allow_list_keys=True): a
 * digit key indexes into a list (`train_pipeline.1.scale=[512,512]`).
 */
import { ConfigError } from './errors.js';
import { mergeInto, setKey, type Dict } from './merge.js';
import { PyFloat, toPlain, toTuple } from './py_values.js';

export interface CfgOption {
  key: string;
  value: unknown;
}

function scalar(v: string, option: string): unknown {
  if (/^[+-]?\d+$/.test(v)) {
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw new ConfigError(`--cfg-options ${option}: integer ${v} is too large`);
    return n;
  }
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v)) return new PyFloat(Number(v));
  if (/^[+-]?(inf|infinity|nan)$/i.test(v)) {
    throw new ConfigError(`--cfg-options ${option}: ${v} is not a finite number`);
  }
  const lower = v.toLowerCase();
  if (lower === 'true' || lower === 'false') return lower === 'true';
  if (v === 'None') return null;
  return v;
}

/** Index of the first comma outside brackets. */
function nextComma(s: string, option: string): number {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '(' || c === '[') depth++;
    else if (c === ')' || c === ']') depth--;
    else if (c === ',' && depth === 0) return i;
    if (depth < 0) throw new ConfigError(`--cfg-options ${option}: unbalanced brackets`);
  }
  if (depth !== 0) throw new ConfigError(`--cfg-options ${option}: unbalanced brackets`);
  return s.length;
}

/** The value as DictAction gives it: plain JSON, or with Python's floats and tuples marked (py_values.ts). */
export function parseOptionValue(raw: string, option = raw, pyTypes = false): unknown {
  const value = richValue(raw, option);
  return pyTypes ? value : toPlain(value);
}

function richValue(raw: string, option: string): unknown {
  let v = raw.replace(/^['"]+|['"]+$/g, '').replace(/ /g, '');
  const tuple = v.startsWith('(') && v.endsWith(')');
  if (tuple || (v.startsWith('[') && v.endsWith(']'))) v = v.slice(1, -1);
  else if (!v.includes(',')) return scalar(v, option);
  const values: unknown[] = [];
  while (v.length > 0) {
    const i = nextComma(v, option);
    values.push(richValue(v.slice(0, i), option));
    v = v.slice(i + 1);
  }
  return tuple ? toTuple(values) : values;
}

/**
 * `key=value` strings (as given on the command line) into options: plain JSON values, or with
 * `pyTypes` Python's floats and tuples kept (for print-config --format py).
 */
export function parseCfgOptions(args: readonly string[], pyTypes = false): CfgOption[] {
  return args.map((arg) => {
    const eq = arg.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--cfg-options: expected key=value, got '${arg}'`);
    const key = arg.slice(0, eq);
    if (!/^[A-Za-z_0-9]+(\.[A-Za-z_0-9]+)*$/.test(key)) {
      throw new ConfigError(`--cfg-options: '${key}' is not a dotted key (e.g. model.decode_head.num_classes)`);
    }
    return { key, value: parseOptionValue(arg.slice(eq + 1), arg, pyTypes) };
  });
}

/** `cfg` with the options merged in (a new object; `cfg` is not changed). */
export function applyCfgOptions(cfg: Dict, options: readonly CfgOption[]): Dict {
  const nested: Dict = {};
  for (const { key, value } of options) {
    const parts = key.split('.');
    let d = nested;
    for (const p of parts.slice(0, -1)) {
      const next = Object.hasOwn(d, p) ? d[p] : undefined;
      if (next === undefined || typeof next !== 'object' || next === null || Array.isArray(next)) setKey(d, p, {});
      d = d[p] as Dict;
    }
    setKey(d, parts[parts.length - 1], value);
  }
  return mergeInto(nested, cfg, '--cfg-options', true) as Dict;
}
