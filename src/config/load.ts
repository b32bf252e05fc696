/**
 * Reads a config file as mmengine's Config.fromfile does, without Python: `.py` files through
 * the parser of py_parser.ts, `.json` files as JSON, `.yaml`/`.yml` through the `yaml` package.
 * Each may inherit: `_base_` (a relative path, `mmseg::path`, or a list of them) is loaded first,
 * the bases are joined (a key in two bases is an error, as in mmengine), and the file's own
 * values are merged into them (merge.ts). `{{_base_.a.b}}` placeholders (also quoted) and
 * `_base_.a.b` references read values of the merged bases; mmengine's predefined variables
 * (`{{ fileDirname }}`, ...) and `{{$NAME:default}}` environment variables are substituted in the
 * text first. The result is plain JSON data, what Config.dump('x.json') writes, with every
 * `_delete_` removed; with `pyTypes` it keeps Python's floats and tuples (py_values.ts) and the
 * `_delete_` keys mmengine keeps, what Config.dump('x.py') writes.
 *
 * Bounds: one load (all its files) shares one evaluation budget (py_eval.ts), each base file is
 * read once however often it is listed, and a base may only be read from the config's tree (the
 * nearest folder above the config that holds a `_base_` folder, else the config's own folder),
 * the mmseg config folder, or folders named in BEITSEG_CONFIG_ROOTS.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml, Scalar, type ParseOptions, type ScalarTag, type Tags } from 'yaml';
import { ConfigError, sourceError } from './errors.js';
import { deepCopy, isDict, mergeInto, setKey, stripDeleteKeys, type Dict } from './merge.js';
import { EvalBudget, Evaluator, sizeOf } from './py_eval.js';
import { parsePython } from './py_parser.js';
import { PyFloat, toPlain } from './py_values.js';
import { fileText, quoteFileText } from '../common/safe_text.js';
import { MMSEG_CONFIGS_ENV } from './mmseg_configs_env.js';

/** Deepest `_base_` chain accepted (a deeper one is almost certainly a cycle through links). */
const MAX_BASE_DEPTH = 32;
/** Largest config file read (mmseg's are a few kB). */
const MAX_CONFIG_BYTES = 16 * 1024 * 1024;
/** Most distinct files one config load may read (mmseg's configs read at most a dozen). */
const MAX_CONFIG_FILES = 500;

/** Environment variable naming mmseg's `configs` folder, for `mmseg::` bases. */
export { MMSEG_CONFIGS_ENV };
/** Environment variable listing further folders (path-delimiter separated) that `_base_` may read. */
export const CONFIG_ROOTS_ENV = 'BEITSEG_CONFIG_ROOTS';

export interface ReadConfigOptions {
  /** mmseg's `configs` folder, where `mmseg::x/y.py` bases are found (default: $BEITSEG_MMSEG_CONFIGS). */
  mmsegConfigs?: string;
  /** Further folders `_base_` files may be read from (default: $BEITSEG_CONFIG_ROOTS). */
  allowedRoots?: string[];
  /** Environment for `{{$NAME:default}}` (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Keep Python's floats and tuples and mmengine's leftover `_delete_` keys (for print-config --format py). */
  pyTypes?: boolean;
}

/** What one config load shares across its files. */
interface LoadContext {
  budget: EvalBudget;
  /** Files loaded so far (by real path), each read once. */
  cache: Map<string, Dict>;
  /** Real paths of the folders bases may come from. */
  roots: string[];
  mmsegConfigs: string | null;
  env: NodeJS.ProcessEnv;
}

export function readConfigFile(file: string, options: ReadConfigOptions = {}): Dict {
  const abs = path.resolve(file);
  const env = options.env ?? process.env;
  const mmseg = options.mmsegConfigs ?? (env[MMSEG_CONFIGS_ENV] || null);
  const extra = options.allowedRoots ?? (env[CONFIG_ROOTS_ENV] ?? '').split(path.delimiter).filter(Boolean);
  const roots = [configTree(abs), ...(mmseg ? [mmseg] : []), ...extra].map(realOrSelf);
  const ctx: LoadContext = { budget: new EvalBudget(), cache: new Map(), roots, mmsegConfigs: mmseg, env };
  const cfg = load(abs, file, [], ctx);
  return options.pyTypes ? cfg : plainConfig(cfg);
}

/** A config as beitseg uses it: plain JSON data without `_delete_` keys. */
export function plainConfig(cfg: Dict): Dict {
  return toPlain(stripDeleteKeys(cfg)) as Dict;
}

function realOrSelf(p: string): string {
  try {
    return fs.realpathSync(path.resolve(p));
  } catch {
    return path.resolve(p);
  }
}

/** The nearest folder at or above the config's own that holds a `_base_` folder (mmseg's `configs/`). */
function configTree(file: string): string {
  const own = path.dirname(file);
  for (let dir = own; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, '_base_'))) return dir;
    if (path.dirname(dir) === dir) return own;
  }
}

function inside(file: string, root: string): boolean {
  const rel = path.relative(root, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
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

function load(file: string, shown: string, stack: string[], ctx: LoadContext): Dict {
  if (stack.includes(file)) {
    const chain = [...stack, file].map((f) => path.basename(f)).join(' -> ');
    throw new ConfigError(`config ${shown}: _base_ cycle (${chain})`);
  }
  if (stack.length >= MAX_BASE_DEPTH) {
    throw new ConfigError(`config ${shown}: _base_ chain deeper than ${MAX_BASE_DEPTH}`);
  }
  const cached = ctx.cache.get(file);
  if (cached) return cached;
  if (ctx.cache.size >= MAX_CONFIG_FILES) {
    throw new ConfigError(`config ${shown}: more than ${MAX_CONFIG_FILES} distinct _base_ files`);
  }
  const text = readText(file, shown);
  const ext = path.extname(file).toLowerCase();
  const next = [...stack, file];
  // anything but .py and .yaml is read as JSON, as before .py configs were supported
  const cfg =
    ext === '.py'
      ? loadPy(text, file, shown, next, ctx)
      : ext === '.yaml' || ext === '.yml'
        ? loadData(parseYamlText(substitutePredefined(text, file, shown, ctx.env), shown), file, shown, next, ctx)
        : loadData(parseJsonText(substitutePredefined(text, file, shown, ctx.env), shown), file, shown, next, ctx);
  ctx.cache.set(file, cfg);
  return cfg;
}

function parseJsonText(text: string, shown: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    // JSON.parse quotes the text it stopped at: file text, so escaped and cut short
    throw new ConfigError(`config ${shown} is not valid JSON: ${fileText((err as Error).message)}`);
  }
}

/** The YAML schema's tags with floats read as Python floats (py_values.ts), as PyYAML gives them to mmengine. */
function pyFloatTags(tags: Tags): Tags {
  return tags.map((t) => {
    if (typeof t !== 'object' || t.tag !== 'tag:yaml.org,2002:float' || !('resolve' in t)) return t;
    const scalarTag = t as ScalarTag;
    return {
      ...scalarTag,
      resolve: (value: string, onError: (message: string) => void, options: ParseOptions) => {
        const v: unknown = scalarTag.resolve(value, onError, options);
        return new PyFloat(Number(v instanceof Scalar ? v.value : v));
      },
    };
  });
}

function parseYamlText(text: string, shown: string): unknown {
  try {
    // plain data only: no custom tags, merge keys or aliases beyond a small count
    return parseYaml(text, { maxAliasCount: 100, merge: false, customTags: pyFloatTags });
  } catch (err) {
    throw new ConfigError(`config ${shown} is not valid YAML: ${fileText((err as Error).message.split('\n')[0]!)}`);
  }
}

function loadData(cfg: unknown, file: string, shown: string, stack: string[], ctx: LoadContext): Dict {
  if (!isDict(cfg)) throw new ConfigError(`config ${shown}: top level is not a mapping of keys to values`);
  ctx.budget.charge(sizeOf(cfg, ctx.budget.left + 1), shown, 1);
  if (cfg._base_ === undefined) return cfg;
  const { _base_: bases, ...own } = cfg;
  const base = loadBases(bases, file, shown, stack, 0, ctx);
  return mergeInto(own, base, shown) as Dict;
}

function loadPy(text: string, file: string, shown: string, stack: string[], ctx: LoadContext): Dict {
  if (/^\s*(?:with\s+read_base\s*\(|from\s+mmengine\.config\s+import\b[^\n]*\bread_base\b)/m.test(text)) {
    throw new ConfigError(
      `config ${shown}: mmengine's lazy-import configs (with read_base(): ...) are not supported: they import ` +
        'Python modules and call them, which beitseg never does; use the classic config of the same model ' +
        '(_base_ = [...] with dict(type=...))',
    );
  }
  const statements = parsePython(substitutePlaceholders(substitutePredefined(text, file, shown, ctx.env)), shown);
  const baseStmt = statements.find((s) => s.kind === 'assign' && s.target === '_base_') ?? null;
  let base: Dict | null = null;
  if (baseStmt && baseStmt.kind === 'assign') {
    // mmengine reads _base_ before the rest of the file: what precedes it may not use the bases
    const value = new Evaluator(shown, null, ctx.budget).eval(baseStmt.value, new Map());
    base = loadBases(value, file, shown, stack, baseStmt.line, ctx);
  }
  const own = new Evaluator(shown, base, ctx.budget).run(statements, (name) => name === '_base_');
  return base ? (mergeInto(own, base, shown) as Dict) : own;
}

/**
 * `{{_base_.a.b}}` (optionally in quotes) becomes the expression `_base_.a.b`. The text is
 * changed only within lines, so line numbers in errors stay right.
 */
export function substitutePlaceholders(text: string): string {
  return text.replace(/(['"]?)\{\{\s*(_base_(?:\.[A-Za-z_]\w*)+)\s*\}\}\1/g, (_m, _q, ref: string) => ref);
}

/**
 * mmengine's predefined variables (`{{ fileDirname }}`, `{{ fileBasename }}`,
 * `{{ fileBasenameNoExtension }}`, `{{ fileExtname }}`) and environment variables
 * (`{{$NAME:default}}`, `{{ $NAME }}`), substituted in the text before it is parsed, as
 * mmengine's Config does. A variable with neither a value nor a default is an error.
 */
export function substitutePredefined(text: string, file: string, shown: string, env: NodeJS.ProcessEnv): string {
  const ext = path.extname(file);
  const vars: Record<string, string> = {
    fileDirname: path.dirname(file),
    fileBasename: path.basename(file),
    fileBasenameNoExtension: path.basename(file, ext),
    fileExtname: ext,
  };
  const backslashes = (v: string) => v.replace(/\\/g, '\\\\');
  let out = text.replace(
    /\{\{\s*(fileDirname|fileBasename|fileBasenameNoExtension|fileExtname)\s*\}\}/g,
    (_m, name: string) => backslashes(vars[name]!),
  );
  out = out.replace(/\{\{(['"]?)\s*\$(\w+)\s*(?::\s*([^\s}'"]*?))?\s*\1\}\}/g, (_m, _q, name: string, dflt) => {
    const v = env[name];
    if (v !== undefined) return backslashes(v);
    if (dflt !== undefined && dflt !== '') return dflt as string;
    throw new ConfigError(
      `config ${shown}: environment variable ${name} in {{$${name}}} is not set and has no default ` +
        `({{$${name}:value}})`,
    );
  });
  return out;
}

function loadBases(value: unknown, file: string, shown: string, stack: string[], line: number, ctx: LoadContext): Dict {
  const where = (msg: string) => (line ? sourceError(shown, line, msg) : new ConfigError(`config ${shown}: ${msg}`));
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) {
    throw where('_base_ must be a path or a list of paths (strings)');
  }
  const merged: Dict = {};
  const origin = new Map<string, string>();
  for (const rel of list as string[]) {
    const { target, shownTarget } = resolveBase(rel, file, shown, ctx, where);
    const cfg = load(target, shownTarget, stack, ctx);
    ctx.budget.charge(sizeOf(cfg, ctx.budget.left + 1), shown, line || 1);
    for (const [k, v] of Object.entries(cfg)) {
      if (origin.has(k)) {
        throw where(
          `key ${quoteFileText(k)} is defined in two bases (${origin.get(k)} and ${rel}); mmengine refuses this too`,
        );
      }
      origin.set(k, rel);
      setKey(merged, k, deepCopy(v));
    }
  }
  return merged;
}

const BASE_EXTENSIONS = ['.py', '.json', '.yaml', '.yml'];

/** Where a `_base_` entry points, checked against the allowed folders before anything is read. */
function resolveBase(
  rel: string,
  file: string,
  shown: string,
  ctx: LoadContext,
  where: (msg: string) => ConfigError,
): { target: string; shownTarget: string } {
  const q = quoteFileText(rel);
  let target: string;
  let shownTarget: string;
  const scoped = /^(\w+)::(.*)$/.exec(rel);
  if (scoped) {
    if (scoped[1] !== 'mmseg') {
      throw where(`_base_ ${q}: only the mmseg:: scope is supported (from --mmseg-configs / ${MMSEG_CONFIGS_ENV})`);
    }
    if (!ctx.mmsegConfigs) {
      throw where(
        `_base_ ${q} names a file of mmsegmentation's config tree: give its configs folder with ` +
          `--mmseg-configs DIR or ${MMSEG_CONFIGS_ENV}=DIR`,
      );
    }
    target = path.resolve(ctx.mmsegConfigs, scoped[2]!);
    shownTarget = path.join(ctx.mmsegConfigs, scoped[2]!);
  } else if (rel.includes('::')) {
    throw where(`_base_ ${q}: package-scoped bases other than mmseg:: are not supported; use a relative path`);
  } else {
    target = path.resolve(path.dirname(file), rel);
    shownTarget = path.join(path.dirname(shown), rel);
  }
  if (!BASE_EXTENSIONS.includes(path.extname(target).toLowerCase())) {
    throw where(`_base_ ${q} must be a .py, .json, .yaml or .yml file`);
  }
  const real = realOrSelf(target);
  if (!ctx.roots.some((r) => inside(real, r))) {
    throw where(
      `_base_ ${q} is outside the config's tree (${fileText(ctx.roots[0]!)}); bases are read only from there, ` +
        `the --mmseg-configs folder and folders listed in ${CONFIG_ROOTS_ENV}`,
    );
  }
  if (!fs.existsSync(target)) throw where(`_base_ ${q} not found (looked for ${fileText(shownTarget)})`);
  return { target: real, shownTarget };
}
