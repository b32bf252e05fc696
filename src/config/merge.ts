/**
 * mmengine's config merge (Config._merge_a_into_b): a child dict is merged into its base key
 * by key, recursively; `_delete_=True` in a child dict replaces the base's dict instead; any
 * other value (lists included) replaces the base's value whole. With `allowListKeys`
 * (--cfg-options), a digit key indexes into a list of the base.
 *
 * `_delete_` is removed where mmengine pops it (from a child dict merged over a base key) and
 * kept elsewhere, as mmengine's dump shows it; stripDeleteKeys removes the rest before a config
 * is used.
 */
import { ConfigError } from './errors.js';
import { PyFloat, pyTruthy } from './py_values.js';

export type Dict = Record<string, unknown>;

export const DELETE_KEY = '_delete_';

export function isDict(v: unknown): v is Dict {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof PyFloat);
}

/** Sets d[key] as an own property even for names such as "__proto__". */
export function setKey(d: Dict, key: string, value: unknown): void {
  Object.defineProperty(d, key, { value, enumerable: true, writable: true, configurable: true });
}

export function deepCopy<T>(v: T): T {
  if (Array.isArray(v)) return v.map(deepCopy) as T;
  if (isDict(v)) {
    const out: Dict = {};
    for (const [k, x] of Object.entries(v)) setKey(out, k, deepCopy(x));
    return out as T;
  }
  return v;
}

function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

/** `child` merged into a copy of `base`; `where` names the merge in errors (e.g. the child file). */
export function mergeInto(
  child: Dict,
  base: Dict | unknown[],
  where: string,
  allowListKeys = false,
  path = '',
): Dict | unknown[] {
  if (Array.isArray(base)) {
    const out = base.slice();
    for (const [k, v] of Object.entries(child)) {
      if (!allowListKeys || !/^\d+$/.test(k)) {
        const what = path || 'the value';
        throw new ConfigError(`${where}: ${join(path, k)}: ${what} is a list; only list indices can be set in it`);
      }
      const i = Number(k);
      if (i >= out.length) {
        throw new ConfigError(`${where}: index ${i} exceeds the length (${out.length}) of the list ${path}`);
      }
      out[i] = mergeValue(v, out[i], where, allowListKeys, join(path, i));
    }
    return out;
  }
  const out: Dict = { ...base };
  for (const [k, v] of Object.entries(child)) {
    const inBase = Object.hasOwn(base, k);
    setKey(out, k, inBase ? mergeValue(v, base[k], where, allowListKeys, join(path, k)) : v);
  }
  return out;
}

function mergeValue(v: unknown, b: unknown, where: string, allowListKeys: boolean, path: string): unknown {
  if (!isDict(v)) return v;
  // mmengine pops the key here and replaces the base value when it was true (nested ones stay)
  const { [DELETE_KEY]: del, ...child } = v;
  if (pyTruthy(del)) return child;
  if (isDict(b) || (allowListKeys && Array.isArray(b))) return mergeInto(child, b, where, allowListKeys, path);
  const baseKind = b === null ? 'None' : Array.isArray(b) ? 'a list' : `a ${typeof b}`;
  throw new ConfigError(
    `${where}: ${path} is a dict here but ${baseKind} ` +
      'in the base config; set _delete_=True in it to replace the base value',
  );
}

/** Removes every `_delete_` key (after merging, as mmengine does). */
export function stripDeleteKeys<T>(v: T): T {
  if (Array.isArray(v)) return v.map(stripDeleteKeys) as T;
  if (isDict(v)) {
    const out: Dict = {};
    for (const [k, x] of Object.entries(v)) if (k !== DELETE_KEY) setKey(out, k, stripDeleteKeys(x));
    return out as T;
  }
  return v;
}
