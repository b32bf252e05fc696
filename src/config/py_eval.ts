/**
 * Evaluates the statements of a parsed mmengine `.py` config (py_parser.ts) into plain JSON
 * values: tuples become lists (as Config.dump writes them), dict(...) and {...} become objects.
 * Nothing is executed: names resolve to values assigned earlier in the same file, `_base_.a.b`
 * to the merged base configs, and the only operations are arithmetic on numbers and joining
 * or repeating strings and lists.
 */
import { sourceError } from './errors.js';
import { deepCopy, isDict, setKey, type Dict } from './merge.js';
import type { Assignment, Expr } from './py_parser.js';

type Scope = Map<string, unknown>;

export class Evaluator {
  constructor(
    private readonly file: string,
    private readonly base: Dict | null,
  ) {}

  private fail(line: number, message: string): never {
    throw sourceError(this.file, line, message);
  }

  /** The file's variables in assignment order (a later assignment replaces an earlier one). */
  run(statements: Assignment[], skip: (name: string) => boolean = () => false): Dict {
    const scope: Scope = new Map();
    for (const s of statements) {
      if (skip(s.target)) continue;
      if (s.target === '_base_' && scope.size) this.fail(s.line, '_base_ must be assigned before anything else');
      scope.set(s.target, this.eval(s.value, scope));
    }
    const out: Dict = {};
    for (const [k, v] of scope) if (!k.startsWith('__')) setKey(out, k, v);
    return out;
  }

  eval(e: Expr, scope: Scope): unknown {
    switch (e.kind) {
      case 'const':
        return e.value;
      case 'name':
        return this.name(e.name, e.line, scope);
      case 'list':
        return e.items.map((x) => this.eval(x, scope));
      case 'dict':
        return this.dict(e, scope);
      case 'comp':
        return this.comprehension(e, scope);
      case 'unary':
        return this.unary(e.op, this.eval(e.operand, scope), e.line);
      case 'binary':
        return this.binary(e.op, this.eval(e.left, scope), this.eval(e.right, scope), e.line);
      case 'attr':
        return this.attribute(e);
      case 'index':
        return this.index(this.eval(e.object, scope), this.eval(e.index, scope), e.line);
    }
  }

  private name(name: string, line: number, scope: Scope): unknown {
    if (scope.has(name)) return deepCopy(scope.get(name));
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
        for (const [k, v] of Object.entries(spread)) setKey(out, k, v);
        continue;
      }
      const k = this.eval(key, scope);
      if (typeof k !== 'string' && typeof k !== 'number') {
        this.fail(key.line, `dict keys must be strings or numbers, got ${typeName(k)}`);
      }
      setKey(out, String(k), this.eval(value, scope));
    }
    return out;
  }

  private comprehension(e: Extract<Expr, { kind: 'comp' }>, scope: Scope): unknown[] {
    const iter = this.eval(e.iter, scope);
    if (!Array.isArray(iter)) {
      this.fail(e.line, `a list comprehension must loop over a list or tuple, got ${typeName(iter)}`);
    }
    return iter.map((item) => {
      const inner: Scope = new Map(scope);
      inner.set(e.target, item);
      return this.eval(e.element, inner);
    });
  }

  private unary(op: string, v: unknown, line: number): number {
    if (typeof v !== 'number') this.fail(line, `unary '${op}' needs a number, got ${typeName(v)}`);
    return op === '-' ? -v : v;
  }

  private binary(op: string, a: unknown, b: unknown, line: number): unknown {
    if (op === '*' && (typeof a === 'number' || typeof b === 'number')) {
      const len = typeof a === 'number' ? lengthOf(b) : lengthOf(a);
      if (len * Math.abs(typeof a === 'number' ? a : (b as number)) > MAX_REPEAT) {
        this.fail(line, `repetition longer than ${MAX_REPEAT}`);
      }
    }
    if (typeof a === 'number' && typeof b === 'number') return this.arithmetic(op, a, b, line);
    if (op === '+' && typeof a === 'string' && typeof b === 'string') return a + b;
    if (op === '+' && Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
    if (op === '*' && (typeof a === 'string' || Array.isArray(a)) && Number.isInteger(b)) return repeat(a, b as number);
    if (op === '*' && (typeof b === 'string' || Array.isArray(b)) && Number.isInteger(a)) return repeat(b, a as number);
    this.fail(line, `'${op}' is not supported between ${typeName(a)} and ${typeName(b)}`);
  }

  private arithmetic(op: string, a: number, b: number, line: number): number {
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
    return r;
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
    return deepCopy(v);
  }

  private index(obj: unknown, idx: unknown, line: number): unknown {
    if (Array.isArray(obj)) {
      if (!Number.isInteger(idx)) this.fail(line, `list indices must be integers, got ${typeName(idx)}`);
      const i = (idx as number) < 0 ? obj.length + (idx as number) : (idx as number);
      if (i < 0 || i >= obj.length) this.fail(line, `list index ${idx} out of range (length ${obj.length})`);
      return deepCopy(obj[i]);
    }
    if (isDict(obj)) {
      const k = typeof idx === 'number' ? String(idx) : idx;
      if (typeof k !== 'string' || !Object.hasOwn(obj, k)) {
        this.fail(line, `key ${JSON.stringify(idx)} not found`);
      }
      return deepCopy(obj[k]);
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
  for (let i = 0; i < n; i++) out.push(...deepCopy(v as unknown[]));
  return out as T;
}

function typeName(v: unknown): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'a list';
  if (isDict(v)) return 'a dict';
  if (typeof v === 'boolean') return 'a bool';
  return `a ${typeof v}`;
}
