/**
 * Config values as JSON text that keeps what JSON loses, for comparing beitseg's evaluation of a
 * config with Python's own: floats in Python's repr (so `1.0` is not `1`), tuples tagged as
 * {"__tuple__": [...]}, keys sorted. pythonValues runs /usr/bin/python3 on a config file (pure Python, no
 * bases) and writes its module variables the same way.
 */
import fs from 'node:fs';
import { exec } from '../child.js';
import { floatRepr, isTuple, PyFloat } from '../../src/config/py_values.js';

export const python3 = '/usr/bin/python3';
export const havePython = fs.existsSync(python3);

export function taggedJson(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean' || typeof v === 'number') return String(v);
  if (v instanceof PyFloat) return floatRepr(v.value);
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) {
    const list = `[${v.map(taggedJson).join(', ')}]`;
    return isTuple(v) ? `{"__tuple__": ${list}}` : list;
  }
  const entries = Object.keys(v as object)
    .sort()
    .map((k) => `${JSON.stringify(k)}: ${taggedJson((v as Record<string, unknown>)[k])}`);
  return `{${entries.join(', ')}}`;
}

const TAGGER = `
import json, sys
def tag(v):
    if isinstance(v, tuple):
        return {'__tuple__': [tag(x) for x in v]}
    if isinstance(v, list):
        return [tag(x) for x in v]
    if isinstance(v, dict):
        return {(k if isinstance(k, str) else str(k)): tag(x) for k, x in v.items()}
    return v
ns = {}
exec(compile(open(sys.argv[1]).read(), sys.argv[1], 'exec'), ns)
print(json.dumps({k: tag(v) for k, v in ns.items() if not k.startswith('__')}, ensure_ascii=False, sort_keys=True))
`;

/** Python's values of the config file's variables, as taggedJson writes them. */
export async function pythonValues(file: string): Promise<string> {
  const { stdout } = await exec(python3, ['-c', TAGGER, file], { timeout: 30_000 });
  return stdout.trim();
}
