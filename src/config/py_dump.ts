/**
 * A merged config written as an mmengine `.py` config, the form mmengine's Config.dump('x.py')
 * gives: one `name = value` per top-level key, dicts as `dict(key=value)` (or `{'key': value}`
 * when a key is not a Python identifier), keys sorted at every level as mmengine sorts them,
 * floats as floats and tuples as tuples (the config must be read with `pyTypes`), `_delete_`
 * where mmengine keeps it. A value that fits in 79 columns stays on one line; a longer one puts
 * each item on its own line, indented by four spaces. Reading the file back (beitseg or
 * mmengine) gives the same values.
 */
import { ConfigError } from './errors.js';
import { isDict, type Dict } from './merge.js';
import { compareCodePoints, isTuple, pyRepr, strRepr } from './py_values.js';

const WIDTH = 79;
const INDENT = '    ';

const PY_KEYWORDS = new Set(
  (
    'False None True and as assert async await break class continue def del elif else except finally for from ' +
    'global if import in is lambda nonlocal not or pass raise return try while with yield'
  ).split(' '),
);

function isIdentifier(k: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) && !PY_KEYWORDS.has(k);
}

/** mmengine orders keys by str(key), which compares code points. */
function sortedEntries(d: Dict): [string, unknown][] {
  return Object.entries(d).sort(([a], [b]) => compareCodePoints(a, b));
}

/** The config as the text of a `.py` file. */
export function dumpPython(cfg: Dict): string {
  const lines: string[] = [];
  for (const [k, v] of sortedEntries(cfg)) {
    if (!isIdentifier(k)) {
      throw new ConfigError(`top-level key ${strRepr(k)} cannot be written as a Python variable; use --format json`);
    }
    lines.push(`${k} = ${formatValue(v, '', k.length + 3)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `v` written at `indent`, its first line starting `used` columns in and followed by `tail` characters. */
function formatValue(v: unknown, indent: string, used: number, tail = 0): string {
  const flat = inline(v);
  if (indent.length + used + flat.length + tail <= WIDTH || !(isDict(v) || Array.isArray(v)) || isEmpty(v)) return flat;
  const inner = indent + INDENT;
  const items: string[] = [];
  let open: string;
  let close: string;
  if (isDict(v)) {
    const named = Object.keys(v).every(isIdentifier);
    [open, close] = named ? ['dict(', ')'] : ['{', '}'];
    for (const [k, x] of sortedEntries(v)) {
      const head = named ? `${k}=` : `${strRepr(k)}: `;
      items.push(`${inner}${head}${formatValue(x, inner, head.length, 1)},`);
    }
  } else {
    [open, close] = isTuple(v) ? ['(', ')'] : ['[', ']'];
    for (const x of v as unknown[]) items.push(`${inner}${formatValue(x, inner, 0, 1)},`);
  }
  return `${open}\n${items.join('\n')}\n${indent}${close}`;
}

function isEmpty(v: unknown): boolean {
  return Array.isArray(v) ? v.length === 0 : Object.keys(v as Dict).length === 0;
}

/** `v` on one line. */
function inline(v: unknown): string {
  if (isDict(v)) {
    const entries = sortedEntries(v);
    if (entries.every(([k]) => isIdentifier(k)))
      return `dict(${entries.map(([k, x]) => `${k}=${inline(x)}`).join(', ')})`;
    return `{${entries.map(([k, x]) => `${strRepr(k)}: ${inline(x)}`).join(', ')}}`;
  }
  if (Array.isArray(v)) {
    const items = v.map(inline);
    if (!isTuple(v)) return `[${items.join(', ')}]`;
    return items.length === 1 ? `(${items[0]},)` : `(${items.join(', ')})`;
  }
  return pyRepr(v);
}
