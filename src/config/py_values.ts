/**
 * The two Python types a config value has that JSON lacks, kept while a `.py` config is
 * evaluated so that `print-config --format py` can write them back as mmengine's Config.dump
 * does: floats (`1.0` is not `1`) and tuples (`(512, 512)` is not `[512, 512]`). Everything else
 * beitseg does with a config sees plain JSON data (toPlain) where both are ordinary numbers and
 * arrays.
 */

/** A Python float (JavaScript has one number type; an int is a plain `number`). */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** A Python tuple: an array whose prototype marks it, so Array.isArray and every array method still apply. */
export class PyTuple extends Array<unknown> {}

/** `items` marked as a tuple (in place). */
export function toTuple(items: unknown[]): unknown[] {
  Object.setPrototypeOf(items, PyTuple.prototype);
  return items;
}

export function isTuple(v: unknown): boolean {
  return v instanceof PyTuple;
}

export function isFloat(v: unknown): v is PyFloat {
  return v instanceof PyFloat;
}

/** An int or a float (bools are not numbers here). */
export function isNumeric(v: unknown): v is number | PyFloat {
  return typeof v === 'number' || v instanceof PyFloat;
}

/** The value of an int or float. */
export function numberOf(v: number | PyFloat): number {
  return typeof v === 'number' ? v : v.value;
}

/** `value` as a float when `float`, else as an int. */
export function pyNumber(value: number, float: boolean): number | PyFloat {
  return float ? new PyFloat(value) : value;
}

/** Plain JSON data: floats become numbers, tuples arrays (a new value; `v` is not changed). */
export function toPlain(v: unknown): unknown {
  if (v instanceof PyFloat) return v.value;
  if (Array.isArray(v)) return Array.from(v, toPlain);
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      Object.defineProperty(out, k, { value: toPlain(x), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return v;
}

/**
 * Python's repr() of a float: the shortest digits that read back to the same double (what
 * JavaScript also finds), written in fixed notation when the decimal exponent is in [-4, 16),
 * else as `d.ddde+XX` with at least two exponent digits; integral values keep a `.0`.
 */
export function floatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa, exp] = Math.abs(x).toExponential().split('e') as [string, string];
  const digits = mantissa.replace('.', '');
  const e = Number(exp);
  const sign = x < 0 ? '-' : '';
  if (e < -4 || e >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const ee = Math.abs(e).toString().padStart(2, '0');
    return `${sign}${m}e${e < 0 ? '-' : '+'}${ee}`;
  }
  if (e < 0) return `${sign}0.${'0'.repeat(-e - 1)}${digits}`;
  const int = digits.slice(0, e + 1).padEnd(e + 1, '0');
  const frac = digits.slice(e + 1);
  return `${sign}${int}.${frac || '0'}`;
}

/** Python's repr() of a string: single quotes unless the text has one and no double quote. */
export function strRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '\\' || ch === quote) out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch !== ' ' && /[\p{C}\p{Z}]/u.test(ch)) {
      if (cp < 0x100) out += `\\x${cp.toString(16).padStart(2, '0')}`;
      else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
      else out += `\\U${cp.toString(16).padStart(8, '0')}`;
    } else out += ch;
  }
  return out + quote;
}

/** Python's repr() of a config value: `None`, `True`, `1`, `1.0`, `'a'`, `[1, 2]`, `(1,)`, `{'a': 1}`. */
export function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return String(v);
  if (v instanceof PyFloat) return floatRepr(v.value);
  if (typeof v === 'string') return strRepr(v);
  if (Array.isArray(v)) {
    const items = v.map(pyRepr);
    if (!isTuple(v)) return `[${items.join(', ')}]`;
    return items.length === 1 ? `(${items[0]},)` : `(${items.join(', ')})`;
  }
  return `{${Object.entries(v as object)
    .map(([k, x]) => `${strRepr(k)}: ${pyRepr(x)}`)
    .join(', ')}}`;
}

/** Python's string order (by code point; JavaScript's `<` compares UTF-16 units). */
export function compareCodePoints(a: string, b: string): number {
  const [ca, cb] = [[...a], [...b]];
  for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
    const d = ca[i]!.codePointAt(0)! - cb[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return ca.length - cb.length;
}

/** Python's str(): a string as it is, anything else as repr(). */
export function pyStr(v: unknown): string {
  return typeof v === 'string' ? v : pyRepr(v);
}

/** Python's truth value: None, False, 0, 0.0, '' and empty containers are false. */
export function pyTruthy(v: unknown): boolean {
  if (v === null || v === undefined || v === false) return false;
  if (v === true) return true;
  if (isNumeric(v)) return numberOf(v) !== 0;
  if (typeof v === 'string' || Array.isArray(v)) return v.length > 0;
  return Object.keys(v as object).length > 0;
}
