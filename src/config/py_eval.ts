/**
 * Evaluates the statements of a parsed mmengine `.py` config (py_parser.ts) into JSON-like
 * values with Python's floats and tuples marked (py_values.ts; toPlain makes plain JSON of
 * them), dict(...) and {...} as objects. Nothing is executed: names resolve to values assigned
 * earlier in the same file, `_base_.a.b` to the merged base configs, and the only operations
 * are arithmetic, comparisons and truth tests, and joining, slicing or repeating strings and
 * lists, with Python's results (int / int is a float, `(1,) + (2,)` a tuple).
 */
import { sourceError } from './errors.js';
import { deepCopy, isDict, setKey, type Dict } from './merge.js';
import type { Assignment, Comparison, Expr } from './py_parser.js';
import {
  isFloat,
  isNumeric,
  isTuple,
  numberOf,
  pyNumber,
  pyRepr,
  pyStr,
  pyTruthy,
  compareCodePoints,
  PyFloat,
  toPlain,
  toTuple,
} from './py_values.js';
import { uniqueBy } from '../common/unique.js';

type Scope = Map<string, unknown>;

/** Expressions one config load may evaluate (all its files together); mmseg's configs need a few thousand. */
export const MAX_STEPS = 1_000_000;
/**
 * Values one config load may build or copy, counted as list items, dict entries and string
 * characters (mmseg's configs build a few thousand). `[a]*n` and every read of a name copy their
 * value, so without this count small files build gigabytes.
 */
export const MAX_BUILT = 4_000_000;

/** The step and size budget of one config load, shared by every file and evaluator of it. */
export class EvalBudget {
  steps = 0;
  built = 0;
  constructor(
    readonly maxSteps = MAX_STEPS,
    readonly maxBuilt = MAX_BUILT,
  ) {}

  step(file: string, line: number): void {
    if (++this.steps > this.maxSteps) {
      throw sourceError(file, line, `the config takes more than ${this.maxSteps} evaluation steps (loops too long)`);
    }
  }

  /** Counts `units` more values built; refuses before the work when the total would pass the limit. */
  charge(units: number, file: string, line: number): void {
    this.built += units;
    if (!(this.built <= this.maxBuilt)) {
      throw sourceError(
        file,
        line,
        `the config builds more than ${this.maxBuilt} values (list items, dict entries, string characters); ` +
          'a config never needs that many',
      );
    }
  }

  /** The budget left for building (for sizing a value before copying it). */
  get left(): number {
    return this.maxBuilt - this.built;
  }
}

/**
 * What copying `v` costs: 1 per value plus the length of each string, walked iteratively and
 * stopping (returning Infinity) once past `cap`, so sizing a huge value is itself cheap.
 */
export function sizeOf(v: unknown, cap: number): number {
  let total = 0;
  const todo: unknown[] = [v];
  while (todo.length > 0) {
    const x = todo.pop();
    total += 1;
    if (typeof x === 'string') total += x.length;
    else if (Array.isArray(x)) for (const c of x) todo.push(c);
    else if (isDict(x)) for (const c of Object.values(x)) todo.push(c);
    if (total > cap) return Number.POSITIVE_INFINITY;
  }
  return total;
}

export class Evaluator {
  constructor(
    private readonly file: string,
    private readonly base: Dict | null,
    private readonly budget: EvalBudget = new EvalBudget(),
  ) {}

  private fail(line: number, message: string): never {
    throw sourceError(this.file, line, message);
  }

  /** A deep copy of `v`, counted against the budget first. */
  private copy<T>(v: T, line: number): T {
    this.budget.charge(sizeOf(v, this.budget.left + 1), this.file, line);
    return deepCopy(v);
  }

  /**
   * Dict variables whose dict was stored into another value (line of the first such use). Values
   * are copies here, but in Python that value holds the same dict, so a later NAME.update(...)
   * would change it too: refused rather than evaluated differently.
   */
  private shared = new Map<string, number>();

  /** The file's variables in assignment order (a later assignment replaces an earlier one). */
  run(statements: Assignment[], skip: (name: string) => boolean = () => false): Dict {
    const scope: Scope = new Map();
    this.shared = new Map();
    for (const s of statements) {
      if (skip(s.target)) continue;
      if (s.kind === 'update') {
        // Python's dict.update: keys of the argument replace those of the dict, in place
        const d = scope.get(s.target);
        if (!scope.has(s.target)) this.name(s.target, s.line, scope);
        if (!isDict(d)) this.fail(s.line, `${s.target}.update(...): ${s.target} is ${typeName(d)}, not a dict`);
        const usedAt = this.shared.get(s.target);
        if (usedAt !== undefined) {
          this.fail(
            s.line,
            `${s.target}.update(...) after ${s.target} was put into another value on line ${usedAt}: in Python ` +
              'that value would change too; move the update before that line',
          );
        }
        const add = this.eval(s.value, scope) as Dict;
        for (const [k, v] of Object.entries(add)) setKey(d as Dict, k, v);
        continue;
      }
      const value = this.stored(s.value, scope);
      this.shared.delete(s.target);
      scope.set(s.target, value);
    }
    const out: Dict = {};
    for (const [k, v] of scope) if (!k.startsWith('__')) setKey(out, k, v);
    return out;
  }

  /** An expression whose value is stored (assigned, a list item, a dict value): a dict variable it yields is shared. */
  private stored(e: Expr, scope: Scope): unknown {
    return this.eval(e, scope, true);
  }

  /** The value of `e`; with `store`, a dict variable that becomes the value is noted as shared. */
  eval(e: Expr, scope: Scope, store = false): unknown {
    this.budget.step(this.file, e.line);
    switch (e.kind) {
      case 'const':
        this.budget.charge(typeof e.value === 'string' ? e.value.length + 1 : 1, this.file, e.line);
        return e.value;
      case 'name':
        if (store && isDict(scope.get(e.name)) && !this.shared.has(e.name)) this.shared.set(e.name, e.line);
        return this.name(e.name, e.line, scope);
      case 'list': {
        this.budget.charge(e.items.length + 1, this.file, e.line);
        const items = e.items.map((x) => this.stored(x, scope));
        return e.tuple ? toTuple(items) : items;
      }
      case 'dict':
        return this.dict(e, scope);
      case 'comp':
        return this.comprehension(e, scope);
      case 'call':
        return this.call(e, scope);
      case 'fstring':
        return this.fstring(e, scope);
      case 'unary':
        return this.unary(e.op, this.eval(e.operand, scope), e.line);
      case 'binary':
        return this.binary(e.op, this.eval(e.left, scope), this.eval(e.right, scope), e.line);
      case 'attr':
        return this.attribute(e);
      case 'index':
        return this.index(this.eval(e.object, scope), this.eval(e.index, scope), e.line);
      case 'slice':
        return this.slice(e, scope);
      case 'compare':
        return this.compare(e, scope);
      case 'boolop': {
        // Python's and/or give one of their operands, the right one evaluated only when needed
        const left = this.eval(e.left, scope, store);
        return pyTruthy(left) === (e.op === 'and') ? this.eval(e.right, scope, store) : left;
      }
      case 'not':
        return !pyTruthy(this.eval(e.operand, scope));
      case 'cond':
        return this.eval(pyTruthy(this.eval(e.test, scope)) ? e.body : e.orelse, scope, store);
    }
  }

  /** A chain `a < b <= c`: each pair compared in turn, stopping at the first false one. */
  private compare(e: Extract<Expr, { kind: 'compare' }>, scope: Scope): boolean {
    let left = this.eval(e.first, scope);
    for (const { op, right } of e.rest) {
      const r = this.eval(right, scope);
      if (!this.comparePair(op, left, r, e.line)) return false;
      left = r;
    }
    return true;
  }

  private comparePair(op: Comparison, a: unknown, b: unknown, line: number): boolean {
    switch (op) {
      case '==':
        return pyEquals(a, b);
      case '!=':
        return !pyEquals(a, b);
      case 'in':
        return this.contains(b, a, line);
      case 'not in':
        return !this.contains(b, a, line);
      case 'is':
      case 'is not': {
        const singleton = (v: unknown) => v === null || typeof v === 'boolean';
        if (!singleton(a) && !singleton(b)) {
          this.fail(line, `'${op}' is supported only against None, True or False (use == to compare values)`);
        }
        return (a === b) === (op === 'is');
      }
      default: {
        const c = pyOrder(a, b, (m) => this.fail(line, `'${op}': ${m}`));
        return op === '<' ? c < 0 : op === '<=' ? c <= 0 : op === '>' ? c > 0 : c >= 0;
      }
    }
  }

  /** Python's `item in container` for strings, lists, tuples and dicts (keys). */
  private contains(container: unknown, item: unknown, line: number): boolean {
    if (typeof container === 'string') {
      if (typeof item !== 'string') this.fail(line, `'in <string>' needs a string on the left, got ${typeName(item)}`);
      return container.includes(item as string);
    }
    if (Array.isArray(container)) return container.some((x) => pyEquals(x, item));
    if (isDict(container)) return Object.keys(container).some((k) => pyEquals(k, dictKeyOf(item)));
    this.fail(line, `'in' needs a string, list, tuple or dict on the right, got ${typeName(container)}`);
  }

  /** `x[start:stop:step]` of a list, tuple or string, with Python's bounds and negative indices. */
  private slice(e: Extract<Expr, { kind: 'slice' }>, scope: Scope): unknown {
    const obj = this.eval(e.object, scope);
    const part = (x: Expr | null): number | null => {
      if (x === null) return null;
      const v = this.eval(x, scope);
      if (v === null) return null;
      if (!Number.isInteger(v)) this.fail(e.line, `slice indices must be integers or None, got ${typeName(v)}`);
      return v as number;
    };
    const [start, stop, step] = [part(e.start), part(e.stop), part(e.step)];
    if (step === 0) this.fail(e.line, 'slice step cannot be zero');
    if (typeof obj !== 'string' && !Array.isArray(obj)) this.fail(e.line, `${typeName(obj)} cannot be sliced`);
    const items = typeof obj === 'string' ? [...obj] : (obj as unknown[]);
    const picked = sliceIndices(items.length, start, stop, step ?? 1).map((i) => items[i]);
    this.budget.charge(picked.length + 1, this.file, e.line);
    if (typeof obj === 'string') return picked.join('');
    const copied = picked.map((x) => this.copy(x, e.line));
    return isTuple(obj) ? toTuple(copied) : copied;
  }

  private name(name: string, line: number, scope: Scope): unknown {
    if (scope.has(name)) return this.copy(scope.get(name), line);
    if (name === '_base_') this.fail(line, '_base_ can only be used as _base_.NAME');
    this.fail(
      line,
      `name '${name}' is not defined (a config can use only names assigned earlier in the same file ` +
        'and _base_.NAME for values of its base files)',
    );
  }

  private dict(e: Extract<Expr, { kind: 'dict' }>, scope: Scope): Dict {
    const out: Dict = {};
    for (const { key, value } of e.entries) {
      if (key === null) {
        const spread = this.eval(value, scope);
        if (!isDict(spread)) this.fail(e.line, `** needs a dict, got ${typeName(spread)}`);
        const entries = Object.entries(spread);
        this.budget.charge(entries.length, this.file, e.line);
        for (const [k, v] of entries) setKey(out, k, v);
        continue;
      }
      const k = this.dictKey(this.eval(key, scope), key.line);
      this.budget.charge(1, this.file, e.line);
      setKey(out, k, this.stored(value, scope));
    }
    return out;
  }

  /**
   * A list, set or dict comprehension. Loop variables are set in the scope and restored after
   * (not a scope copy per item: a nested comprehension would copy every variable per step).
   */
  private comprehension(e: Extract<Expr, { kind: 'comp' }>, scope: Scope): unknown {
    const names = [...new Set(e.loops.flatMap((l) => l.targets))];
    const saved = names.map((n) => [n, scope.has(n), scope.get(n)] as const);
    const items: unknown[] = [];
    const out: Dict = {};
    const loop = (depth: number): void => {
      if (depth === e.loops.length) {
        this.budget.charge(1, this.file, e.line);
        if (e.form === 'dict')
          setKey(out, this.dictKey(this.eval(e.key!, scope), e.line), this.stored(e.element, scope));
        else items.push(this.stored(e.element, scope));
        return;
      }
      const { targets, iter, conds } = e.loops[depth]!;
      const values = this.iterable(this.eval(iter, scope), e.line, 'a comprehension');
      for (const item of values) {
        this.budget.step(this.file, e.line);
        if (targets.length === 1) scope.set(targets[0]!, item);
        else {
          if (!Array.isArray(item) || item.length !== targets.length) {
            this.fail(e.line, `cannot unpack ${typeName(item)} into ${targets.length} names (${targets.join(', ')})`);
          }
          targets.forEach((t, i) => scope.set(t, item[i]));
        }
        if (conds.every((c) => pyTruthy(this.eval(c, scope)))) loop(depth + 1);
      }
    };
    try {
      loop(0);
    } finally {
      for (const [n, had, v] of saved) {
        if (had) scope.set(n, v);
        else scope.delete(n);
      }
    }
    if (e.form === 'dict') return out;
    return e.form === 'set' ? uniqueValues(items) : items;
  }

  private dictKey(k: unknown, line: number): string {
    if (typeof k !== 'string' && !isNumeric(k)) {
      this.fail(line, `dict keys must be strings or numbers, got ${typeName(k)}`);
    }
    return dictKeyOf(k);
  }

  /** The items a loop or builtin goes over: a list's items, a string's characters, a dict's keys. */
  private iterable(v: unknown, line: number, what: string): unknown[] {
    if (Array.isArray(v)) return v;
    if (typeof v === 'string') {
      this.budget.charge(v.length, this.file, line);
      return [...v];
    }
    if (isDict(v)) return Object.keys(v);
    this.fail(line, `${what} needs a list, tuple, string or dict, got ${typeName(v)}`);
  }

  /** f'...': literal parts and fields formatted as Python's str()/format() would. */
  private fstring(e: Extract<Expr, { kind: 'fstring' }>, scope: Scope): string {
    let out = '';
    for (const p of e.parts) {
      out += typeof p === 'string' ? p : formatField(this.eval(p.expr, scope), p.spec, (m) => this.fail(e.line, m));
      this.budget.charge(out.length, this.file, e.line);
    }
    return out;
  }

  /** A call of one of the pure builtins (py_parser.ts BUILTINS); nothing else can be called. */
  private call(e: Extract<Expr, { kind: 'call' }>, scope: Scope): unknown {
    const args = e.args.map((a) => this.eval(a, scope));
    const kw = this.dict({ kind: 'dict', entries: e.kwargs, line: e.line }, scope);
    const kwNames = Object.keys(kw);
    const fail = (m: string): never => this.fail(e.line, `${e.name}(): ${m}`);
    const arity = (min: number, max: number, kws: string[] = []) => {
      if (args.length < min || args.length > max) {
        fail(`takes ${min === max ? min : `${min} to ${max}`} positional arguments, got ${args.length}`);
      }
      const bad = kwNames.filter((k) => !kws.includes(k));
      if (bad.length) fail(`unexpected keyword argument ${bad.join(', ')}`);
    };
    const num = (v: unknown, what = 'a number'): number => {
      if (typeof v === 'boolean') return v ? 1 : 0;
      if (!isNumeric(v)) fail(`expected ${what}, got ${typeName(v)}`);
      return numberOf(v as number | PyFloat);
    };
    switch (e.name) {
      case 'dict': {
        arity(0, 1, kwNames);
        const out: Dict = {};
        const src = args[0];
        if (isDict(src)) for (const [k, v] of Object.entries(src)) setKey(out, k, v);
        else {
          for (const pair of this.iterable(src, e.line, 'dict()')) {
            if (!Array.isArray(pair) || pair.length !== 2) fail('expected a mapping or (key, value) pairs');
            const [k, v] = pair as unknown[];
            setKey(out, this.dictKey(k, e.line), v);
          }
        }
        for (const [k, v] of Object.entries(kw)) setKey(out, k, v);
        return out;
      }
      case 'sum': {
        arity(1, 2, ['start']);
        let acc: unknown = args[1] ?? (Object.hasOwn(kw, 'start') ? kw.start : 0);
        for (const x of this.iterable(args[0], e.line, 'sum()')) {
          this.budget.step(this.file, e.line);
          acc = this.binary('+', acc, x, e.line);
        }
        return acc;
      }
      case 'range': {
        arity(1, 3);
        const [a, b, c] = args.map((x) => {
          if (typeof x !== 'number' || !Number.isInteger(x)) fail(`expected integers, got ${typeName(x)}`);
          return x as number;
        });
        const [start, stop, step] = args.length === 1 ? [0, a!, 1] : [a!, b!, c ?? 1];
        if (step === 0) fail('step must not be zero');
        const n = Math.max(0, Math.ceil((stop - start) / step));
        if (n > MAX_REPEAT) fail(`a range of ${n} items is longer than ${MAX_REPEAT}`);
        this.budget.charge(n + 1, this.file, e.line);
        return Array.from({ length: n }, (_, i) => start + i * step);
      }
      case 'int': {
        arity(1, 1);
        const v = args[0];
        if (typeof v === 'string') {
          if (!/^\s*[-+]?\d(?:_?\d)*\s*$/.test(v)) fail(`invalid literal for int(): ${JSON.stringify(v.slice(0, 40))}`);
          const r = Number(v.replace(/_/g, ''));
          if (!Number.isSafeInteger(r)) fail('the integer is too large to be exact');
          return r;
        }
        return Math.trunc(num(v));
      }
      case 'float': {
        arity(1, 1);
        const v = args[0];
        if (typeof v === 'string') {
          const r = Number(v.trim());
          if (v.trim() === '' || !Number.isFinite(r)) fail(`could not convert ${JSON.stringify(v.slice(0, 40))}`);
          return new PyFloat(r);
        }
        return new PyFloat(num(v));
      }
      case 'str':
        arity(1, 1);
        return pyStr(args[0]);
      case 'len': {
        arity(1, 1);
        const v = args[0];
        if (typeof v === 'string' || Array.isArray(v)) return v.length;
        if (isDict(v)) return Object.keys(v).length;
        return fail(`object of type ${typeName(v)} has no len()`);
      }
      case 'min':
      case 'max': {
        arity(1, Number.POSITIVE_INFINITY);
        const items = args.length === 1 ? this.iterable(args[0], e.line, `${e.name}()`) : args;
        if (items.length === 0) fail('an empty sequence has no minimum or maximum');
        let best = items[0];
        for (const x of items) {
          const c = pyOrder(x, best, (m) => fail(m));
          if (e.name === 'min' ? c < 0 : c > 0) best = x;
        }
        return best;
      }
      case 'enumerate': {
        arity(1, 2, ['start']);
        const start = num(args[1] ?? (Object.hasOwn(kw, 'start') ? kw.start : 0), 'an integer start');
        const items = this.iterable(args[0], e.line, 'enumerate()');
        this.budget.charge(3 * items.length, this.file, e.line);
        return items.map((x, i) => toTuple([start + i, x]));
      }
      case 'zip': {
        arity(0, Number.POSITIVE_INFINITY);
        const lists = args.map((a) => this.iterable(a, e.line, 'zip()'));
        const n = lists.length ? Math.min(...lists.map((l) => l.length)) : 0;
        this.budget.charge(n * (lists.length + 1), this.file, e.line);
        return Array.from({ length: n }, (_, i) => toTuple(lists.map((l) => l[i])));
      }
      case 'list':
      case 'tuple': {
        arity(0, 1);
        const items = args.length === 0 ? [] : [...this.iterable(args[0], e.line, `${e.name}()`)];
        this.budget.charge(items.length, this.file, e.line);
        return e.name === 'tuple' ? toTuple(items) : items;
      }
      case 'round': {
        arity(1, 2, ['ndigits']);
        const x = num(args[0]);
        const nd = args[1] ?? kw.ndigits ?? null;
        // round(x) is an int; round(x, n) has x's type
        if (nd === null) return roundHalfEven(x);
        const d = num(nd, 'an integer ndigits');
        if (!Number.isInteger(d) || Math.abs(d) > 400) fail('ndigits must be an integer between -400 and 400');
        return pyNumber(roundToDigits(x, d), isFloat(args[0]));
      }
      case 'abs':
        arity(1, 1);
        return pyNumber(Math.abs(num(args[0])), isFloat(args[0]));
    }
  }

  private unary(op: string, v: unknown, line: number): number | PyFloat {
    if (!isNumeric(v)) this.fail(line, `unary '${op}' needs a number, got ${typeName(v)}`);
    if (op !== '-') return v;
    // an int's negation is an int (no -0)
    return isFloat(v) ? new PyFloat(-v.value) : 0 - v;
  }

  private binary(op: string, a: unknown, b: unknown, line: number): unknown {
    if (op === '*' && (typeof a === 'number' || typeof b === 'number') && typeof a !== typeof b) {
      const n = typeof a === 'number' ? a : (b as number);
      const v = typeof a === 'number' ? b : a;
      // the count alone is bounded (`[]*10**15` looped 10**15 times), then what the result would hold
      if (Math.abs(n) > MAX_REPEAT) this.fail(line, `repetition longer than ${MAX_REPEAT} (count ${n})`);
      if (lengthOf(v) * Math.max(0, n) > MAX_REPEAT) this.fail(line, `repetition longer than ${MAX_REPEAT}`);
      if (typeof v === 'string' || Array.isArray(v)) {
        if (n > 0) this.budget.charge(sizeOf(v, this.budget.left + 1) * n, this.file, line);
      }
    }
    if (isNumeric(a) && isNumeric(b)) return this.arithmetic(op, a, b, line);
    if (op === '+' && typeof a === 'string' && typeof b === 'string') {
      this.budget.charge(a.length + b.length, this.file, line);
      return a + b;
    }
    if (op === '+' && Array.isArray(a) && Array.isArray(b) && isTuple(a) === isTuple(b)) {
      this.budget.charge(a.length + b.length, this.file, line);
      const joined = [...a, ...b];
      return isTuple(a) ? toTuple(joined) : joined;
    }
    if (op === '*' && (typeof a === 'string' || Array.isArray(a)) && Number.isInteger(b)) return repeat(a, b as number);
    if (op === '*' && (typeof b === 'string' || Array.isArray(b)) && Number.isInteger(a)) return repeat(b, a as number);
    this.fail(line, `'${op}' is not supported between ${typeName(a)} and ${typeName(b)}`);
  }

  /** Python's arithmetic: a float when either side is one, for `/`, and for an int to a negative power. */
  private arithmetic(op: string, x: number | PyFloat, y: number | PyFloat, line: number): number | PyFloat {
    const [a, b] = [numberOf(x), numberOf(y)];
    const float = isFloat(x) || isFloat(y) || op === '/' || (op === '**' && b < 0);
    if ((op === '/' || op === '//' || op === '%') && b === 0) this.fail(line, 'division by zero');
    let r: number;
    switch (op) {
      case '+':
        r = a + b;
        break;
      case '-':
        r = a - b;
        break;
      case '*':
        r = a * b;
        break;
      case '/':
        r = a / b;
        break;
      case '//':
        r = Math.floor(a / b);
        break;
      case '%':
        r = a - b * Math.floor(a / b);
        break;
      case '**':
        if (a === 0 && b < 0) this.fail(line, 'zero to a negative power');
        r = a ** b;
        break;
      default:
        this.fail(line, `operator '${op}' is not supported`);
    }
    if (!Number.isFinite(r)) this.fail(line, `the result of '${op}' is not a finite number`);
    if (!float && !Number.isSafeInteger(r)) this.fail(line, `the integer result of '${op}' is too large to be exact`);
    return pyNumber(float ? r : r + 0, float);
  }

  /** `_base_.a.b[...]`: a value of the merged base configs. */
  private attribute(e: Extract<Expr, { kind: 'attr' }>): unknown {
    const path: string[] = [];
    let cur: Expr = e;
    while (cur.kind === 'attr') {
      path.unshift(cur.attr);
      cur = cur.object;
    }
    if (cur.kind !== 'name' || cur.name !== '_base_') {
      const attr = path.join('.');
      this.fail(e.line, `attribute access (.${attr}) is only supported on _base_ (e.g. _base_.model.backbone)`);
    }
    if (!this.base) this.fail(e.line, `_base_.${path.join('.')}: this file has no _base_`);
    let v: unknown = this.base;
    for (const [i, key] of path.entries()) {
      if (!isDict(v) || !Object.hasOwn(v, key)) {
        this.fail(e.line, `_base_.${path.slice(0, i + 1).join('.')} is not defined in the base configs`);
      }
      v = v[key];
    }
    return this.copy(v, e.line);
  }

  private index(obj: unknown, idx: unknown, line: number): unknown {
    if (Array.isArray(obj)) {
      if (typeof idx !== 'number' || !Number.isInteger(idx)) {
        this.fail(line, `list indices must be integers, got ${typeName(idx)}`);
      }
      const i = (idx as number) < 0 ? obj.length + (idx as number) : (idx as number);
      if (i < 0 || i >= obj.length) this.fail(line, `list index ${idx} out of range (length ${obj.length})`);
      return this.copy(obj[i], line);
    }
    if (isDict(obj)) {
      const k = typeof idx === 'string' || isNumeric(idx) ? dictKeyOf(idx) : null;
      if (k === null || !Object.hasOwn(obj, k)) this.fail(line, `key ${pyRepr(idx)} not found`);
      return this.copy(obj[k], line);
    }
    if (typeof obj === 'string' && typeof idx === 'number' && Number.isInteger(idx)) {
      const chars = [...obj];
      const i = idx < 0 ? chars.length + idx : idx;
      if (i < 0 || i >= chars.length) this.fail(line, `string index ${idx} out of range (length ${chars.length})`);
      return chars[i];
    }
    this.fail(line, `${typeName(obj)} cannot be indexed`);
  }
}

/** Bound on the length a `*` repetition may produce (a config never needs more). */
const MAX_REPEAT = 1_000_000;

function lengthOf(v: unknown): number {
  return typeof v === 'string' || Array.isArray(v) ? v.length : 0;
}

function repeat<T extends string | unknown[]>(v: T, n: number): T {
  if (typeof v === 'string') return v.repeat(Math.max(0, n)) as T;
  const out: unknown[] = [];
  for (let i = 0; i < n; i++) for (const x of v as unknown[]) out.push(deepCopy(x));
  return (isTuple(v) ? toTuple(out) : out) as T;
}

/** Python's round(): halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Python's round(x, ndigits): x's exact binary value rounded to `ndigits` decimals, halves to
 * even, then read back as the nearest double (scaling by 10**ndigits in floating point would
 * round twice: round(2.675, 2) is 2.67 in Python because 2.675 is stored as 2.67499...).
 */
function roundToDigits(x: number, ndigits: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  // x = mantissa * 2**exponent exactly
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(x));
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  const mantissa = biased === 0 ? fraction : fraction | (1n << 52n);
  const exponent = (biased === 0 ? 1 : biased) - 1075;
  let num = mantissa * (exponent > 0 ? 1n << BigInt(exponent) : 1n);
  let den = exponent < 0 ? 1n << BigInt(-exponent) : 1n;
  if (ndigits >= 0) num *= 10n ** BigInt(ndigits);
  else den *= 10n ** BigInt(-ndigits);
  let q = num / den;
  const twice = 2n * (num - q * den);
  if (twice > den || (twice === den && q % 2n === 1n)) q += 1n;
  const r = Number(`${q}e${-ndigits}`);
  return x < 0 ? -r : r;
}

/** A set's items in first-seen order (JSON has no sets: mmengine's JSON dump writes a list). */
function uniqueValues(items: unknown[]): unknown[] {
  return uniqueBy(items, (x) => JSON.stringify(toPlain(x)));
}

/** The JSON key a Python dict key becomes: a string as it is, a number as its int or float text. */
function dictKeyOf(k: unknown): string {
  if (isFloat(k)) return Number.isInteger(k.value) ? String(k.value) : pyRepr(k);
  return String(k);
}

/** The number a bool, int or float stands for in comparisons; undefined for anything else. */
function comparableNumber(v: unknown): number | undefined {
  if (typeof v === 'boolean') return Number(v);
  return isNumeric(v) ? numberOf(v) : undefined;
}

/** Python's `a == b`: numbers (and bools) by value, lists only with lists and tuples with tuples. */
function pyEquals(a: unknown, b: unknown): boolean {
  const [x, y] = [comparableNumber(a), comparableNumber(b)];
  if (x !== undefined || y !== undefined) return x === y;
  if (Array.isArray(a) && Array.isArray(b)) {
    return isTuple(a) === isTuple(b) && a.length === b.length && a.every((v, i) => pyEquals(v, b[i]));
  }
  if (isDict(a) && isDict(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && pyEquals(a[k], b[k]));
  }
  return a === b;
}

/**
 * Python's ordering of two values (negative, zero, positive): numbers and bools by value,
 * strings by code point, lists with lists and tuples with tuples item by item; anything else
 * is refused as Python refuses it.
 */
function pyOrder(a: unknown, b: unknown, fail: (m: string) => never): number {
  const [x, y] = [comparableNumber(a), comparableNumber(b)];
  if (x !== undefined && y !== undefined) return x - y;
  if (typeof a === 'string' && typeof b === 'string') return compareCodePoints(a, b);
  if (Array.isArray(a) && Array.isArray(b) && isTuple(a) === isTuple(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      if (!pyEquals(a[i], b[i])) return pyOrder(a[i], b[i], fail);
    }
    return a.length - b.length;
  }
  return fail(`${typeName(a)} and ${typeName(b)} cannot be ordered`);
}

/** The indices `x[start:stop:step]` takes from a sequence of `length` items (Python's slice.indices). */
function sliceIndices(length: number, start: number | null, stop: number | null, step: number): number[] {
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  const bound = (v: number | null, dflt: number, lo: number, hi: number) =>
    v === null ? dflt : clamp(v < 0 ? v + length : v, lo, hi);
  const out: number[] = [];
  if (step > 0) {
    const [s, e] = [bound(start, 0, 0, length), bound(stop, length, 0, length)];
    for (let i = s; i < e; i += step) out.push(i);
  } else {
    const [s, e] = [bound(start, length - 1, -1, length - 1), bound(stop, -1, -1, length - 1)];
    for (let i = s; i > e; i += step) out.push(i);
  }
  return out;
}

/** Python's format() of a config value (the `{x:spec}` of an f-string), with the format specs configs use. */
export function formatField(v: unknown, spec: string, fail: (m: string) => never): string {
  if (!spec) return pyStr(v);
  const m = /^(0?)(\d*)(?:\.(\d+))?([dfe%]?)$/.exec(spec);
  if (!m || !isNumeric(v)) return fail(`f-string format spec ${JSON.stringify(spec)} is not supported`);
  const [, zero, width, prec, type] = m;
  const x = numberOf(v);
  let s: string;
  if (type === 'd') {
    if (isFloat(v)) return fail(`format spec 'd' needs an integer, got the float ${pyRepr(v)}`);
    s = String(x);
  } else if (type === 'e') s = x.toExponential(prec === undefined ? 6 : Number(prec)).replace(/e([+-])(\d)$/, 'e$10$2');
  else if (type === '%') s = `${(x * 100).toFixed(prec === undefined ? 6 : Number(prec))}%`;
  else if (type === 'f' || prec !== undefined) s = x.toFixed(prec === undefined ? 6 : Number(prec));
  else s = pyRepr(v);
  return width ? s.padStart(Number(width), zero ? '0' : ' ') : s;
}

function typeName(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (isTuple(v)) return 'a tuple';
  if (Array.isArray(v)) return 'a list';
  if (isFloat(v)) return 'a float';
  if (typeof v === 'number') return 'an int';
  if (isDict(v)) return 'a dict';
  if (typeof v === 'boolean') return 'a bool';
  return `a ${typeof v}`;
}
