/**
 * Reads a config file as mmengine's Config.fromfile does, without Python: `.py` files through
 * the parser of py_parser.ts, `.json` files as JSON. Both may inherit: `_base_` (a relative
 * path or a list of them) is loaded first, the bases are joined (a key in two bases is an
 * error, as in mmengine), and the file's own values are merged into them (merge.ts).
 * `{{_base_.a.b}}` placeholders (also quoted) and `_base_.a.b` references read values of the
 * merged bases. The result is plain JSON data, what Config.dump('x.json') writes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, sourceError } from './errors.js';
import { deepCopy, isDict, mergeInto, setKey, stripDeleteKeys, type Dict } from './merge.js';
import { Evaluator } from './py_eval.js';
import { parsePython } from './py_parser.js';

/** Deepest `_base_` chain accepted (a deeper one is almost certainly a cycle through links). */
const MAX_BASE_DEPTH = 32;
/** Largest config file read (mmseg's are a few kB). */
const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

export function readConfigFile(file: string): Dict {
  return load(path.resolve(file), file, []);
}

function readText(file: string, shown: string): string {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    throw new ConfigError(`cannot read config ${shown}: ${(err as Error).message}`);
  }
  if (!st.isFile()) throw new ConfigError(`config ${shown} is not a file`);
  if (st.size > MAX_CONFIG_BYTES) {
    throw new ConfigError(`config ${shown} is ${st.size} bytes (limit ${MAX_CONFIG_BYTES})`);
  }
  return fs.readFileSync(file, 'utf8');
}

function load(file: string, shown: string, stack: string[]): Dict {
  if (stack.includes(file)) {
    const chain = [...stack, file].map((f) => path.basename(f)).join(' -> ');
    throw new ConfigError(`config ${shown}: _base_ cycle (${chain})`);
  }
  if (stack.length >= MAX_BASE_DEPTH) {
    throw new ConfigError(`config ${shown}: _base_ chain deeper than ${MAX_BASE_DEPTH}`);
  }
  const text = readText(file, shown);
  const ext = path.extname(file).toLowerCase();
  // anything but .py is read as JSON, as before .py configs were supported
  if (ext === '.py') return loadPy(text, file, shown, [...stack, file]);
  return loadJson(text, file, shown, [...stack, file]);
}

function loadJson(text: string, file: string, shown: string, stack: string[]): Dict {
  let cfg: unknown;
  try {
    cfg = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config ${shown} is not valid JSON: ${(err as Error).message}`);
  }
  if (!isDict(cfg)) throw new ConfigError(`config ${shown} is not valid JSON: top level is not an object`);
  if (cfg._base_ === undefined) return cfg;
  const { _base_: bases, ...own } = cfg;
  const base = loadBases(bases, file, shown, stack, 0);
  return stripDeleteKeys(mergeInto(own, base, shown) as Dict);
}

function loadPy(text: string, file: string, shown: string, stack: string[]): Dict {
  const statements = parsePython(substitutePlaceholders(text), shown);
  const baseAt = statements.findIndex((s) => s.target === '_base_');
  const baseStmt = baseAt >= 0 ? statements[baseAt] : null;
  let base: Dict | null = null;
  if (baseStmt) {
    // mmengine reads _base_ before the rest; a later one could not be used by what precedes it
    if (baseAt > 0) throw sourceError(shown, baseStmt.line, '_base_ must be assigned before anything else');
    const value = new Evaluator(shown, null).eval(baseStmt.value, new Map());
    base = loadBases(value, file, shown, stack, baseStmt.line);
  }
  const own = new Evaluator(shown, base).run(statements, (name) => name === '_base_');
  return base ? stripDeleteKeys(mergeInto(own, base, shown) as Dict) : stripDeleteKeys(own);
}

/**
 * `{{_base_.a.b}}` (optionally in quotes) becomes the expression `_base_.a.b`. The text is
 * changed only within lines, so line numbers in errors stay right.
 */
export function substitutePlaceholders(text: string): string {
  return text.replace(/(['"]?)\{\{\s*(_base_(?:\.[A-Za-z_]\w*)+)\s*\}\}\1/g, (_m, _q, ref: string) => ref);
}

function loadBases(value: unknown, file: string, shown: string, stack: string[], line: number): Dict {
  const where = (msg: string) => (line ? sourceError(shown, line, msg) : new ConfigError(`config ${shown}: ${msg}`));
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) {
    throw where('_base_ must be a path or a list of paths (strings)');
  }
  const merged: Dict = {};
  const origin = new Map<string, string>();
  for (const rel of list as string[]) {
    if (rel.includes('::')) {
      throw where(`_base_ '${rel}': package-scoped bases (scope::path) are not supported; use a relative path`);
    }
    const target = path.resolve(path.dirname(file), rel);
    const shownTarget = path.join(path.dirname(shown), rel);
    if (!fs.existsSync(target)) throw where(`_base_ '${rel}' not found (looked for ${shownTarget})`);
    const cfg = load(target, shownTarget, stack);
    for (const [k, v] of Object.entries(cfg)) {
      if (origin.has(k)) {
        throw where(`key '${k}' is defined in two bases (${origin.get(k)} and ${rel}); mmengine refuses this too`);
      }
      origin.set(k, rel);
      setKey(merged, k, deepCopy(v));
    }
  }
  return merged;
}
