/**
 * A parser for the subset of Python that mmengine config files use, so that mmseg `.py`
 * configs are read without Python and without executing anything:
 *
 *   statements   NAME = expr   (one target; `;` separates statements; a bare string is a docstring)
 *                NAME.update(...)   (dict.update on a variable)
 *   expressions  literals (int, float, str with implicit concatenation, f-strings, True/False/None),
 *                names, lists, tuples, {k: v} dicts, calls of the pure builtins in BUILTINS
 *                (dict(k=v, **other), sum, range, len, ...), list/set/dict comprehensions
 *                (one or more `for TARGET in expr`, each with optional `if COND` clauses),
 *                + - * / // % ** and unary -/+, comparisons (== != < <= > >= in, not in,
 *                is/is not against None/True/False) and chains of them, and/or/not,
 *                `a if cond else b`, subscripts x[i] and slices x[a:b:c], attribute paths on
 *                `_base_` (checked by the evaluator)
 *
 * Everything else (import, def, class, loops, if statements, with, lambda, calls of other
 * names, methods other than update) is an error naming the file, line and construct.
 *
 * Why hand-written: the npm registry has no small, maintained parser for Python's expression
 * subset that fits. @lezer/python is an editor grammar with error recovery (bad input yields a
 * tree with error nodes, not a clear error with a line) that leaves literal decoding and all
 * evaluation to the caller; tree-sitter-python needs a native or wasm runtime; filbert
 * (2015) and dt-python-parser (antlr4, big) are unmaintained or heavy. The subset is small
 * enough that a recursive-descent parser is shorter than the glue around any of them.
 */
import { sourceError } from './errors.js';
import { tokenize, type Token } from './py_tokenizer.js';
import { PyFloat } from './py_values.js';

export type Expr =
  | { kind: 'const'; value: number | PyFloat | string | boolean | null; line: number }
  | { kind: 'name'; name: string; line: number }
  | { kind: 'list'; items: Expr[]; tuple: boolean; line: number }
  | { kind: 'dict'; entries: DictEntry[]; line: number }
  | { kind: 'comp'; form: 'list' | 'set' | 'dict'; key: Expr | null; element: Expr; loops: CompLoop[]; line: number }
  | { kind: 'call'; name: Builtin; args: Expr[]; kwargs: DictEntry[]; line: number }
  | { kind: 'fstring'; parts: (string | { expr: Expr; spec: string })[]; line: number }
  | { kind: 'binary'; op: string; left: Expr; right: Expr; line: number }
  | { kind: 'unary'; op: string; operand: Expr; line: number }
  | { kind: 'attr'; object: Expr; attr: string; line: number }
  | { kind: 'index'; object: Expr; index: Expr; line: number }
  | { kind: 'slice'; object: Expr; start: Expr | null; stop: Expr | null; step: Expr | null; line: number }
  | { kind: 'compare'; first: Expr; rest: { op: Comparison; right: Expr }[]; line: number }
  | { kind: 'boolop'; op: 'and' | 'or'; left: Expr; right: Expr; line: number }
  | { kind: 'not'; operand: Expr; line: number }
  | { kind: 'cond'; test: Expr; body: Expr; orelse: Expr; line: number };

/** The comparison operators (chained as in Python: `a < b < c`). */
export type Comparison = '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'not in' | 'is' | 'is not';

/** A dict entry: key (an expression, or null for `**spread`) and value. */
export interface DictEntry {
  key: Expr | null;
  value: Expr;
}

/** One `for TARGETS in ITER [if COND ...]` of a comprehension (several targets unpack each item). */
export interface CompLoop {
  targets: string[];
  iter: Expr;
  conds: Expr[];
}

/** The builtins a config may call: pure functions of their arguments (evaluated in py_eval.ts). */
export const BUILTINS = [
  'dict',
  'sum',
  'range',
  'int',
  'float',
  'str',
  'len',
  'min',
  'max',
  'enumerate',
  'zip',
  'list',
  'tuple',
  'round',
  'abs',
] as const;
export type Builtin = (typeof BUILTINS)[number];

export type Assignment =
  | { kind: 'assign'; target: string; value: Expr; line: number }
  /** `NAME.update(mapping, **kw)`: entries merged into the dict NAME holds (a shallow update, as Python's). */
  | { kind: 'update'; target: string; value: Expr; line: number };

const STATEMENT_KEYWORDS: Record<string, string> = {
  import: 'import statement',
  from: 'import statement',
  def: 'function definition',
  class: 'class definition',
  for: 'for loop',
  while: 'while loop',
  if: 'if statement',
  with: 'with statement',
  try: 'try statement',
  lambda: 'lambda',
  del: 'del statement',
  global: 'global statement',
  nonlocal: 'nonlocal statement',
  return: 'return statement',
  assert: 'assert statement',
  raise: 'raise statement',
  async: 'async statement',
  pass: 'pass statement',
  yield: 'yield',
  await: 'await',
  match: 'match statement',
};

const EXPRESSION_KEYWORDS: Record<string, string> = {
  lambda: 'lambda',
  yield: 'yield',
  await: 'await',
};

const COMPARISONS = ['==', '!=', '<', '>', '<=', '>='];

export class Parser {
  private i = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly file: string,
  ) {}

  private get tok(): Token {
    return this.tokens[this.i];
  }

  private fail(message: string, line = this.tok.line): never {
    throw sourceError(this.file, line, message);
  }

  private isOp(text: string): boolean {
    return this.tok.kind === 'op' && this.tok.text === text;
  }

  private expectOp(text: string, what: string): void {
    if (!this.isOp(text)) this.fail(`expected '${text}' ${what}, found ${this.describe(this.tok)}`);
    this.i++;
  }

  private describe(t: Token): string {
    if (t.kind === 'end') return 'the end of the file';
    if (t.kind === 'newline') return 'the end of the line';
    if (t.kind === 'string') return 'a string';
    return `'${t.text}'`;
  }

  parseModule(): Assignment[] {
    const out: Assignment[] = [];
    while (this.tok.kind !== 'end') {
      if (this.tok.kind === 'newline' || this.isOp(';')) {
        this.i++;
        continue;
      }
      const stmt = this.statement();
      if (stmt) out.push(stmt);
      if (this.isOp(';')) continue;
      if (!this.atLineEnd()) {
        this.fail(`unexpected ${this.describe(this.tok)} after the statement`);
      }
    }
    return out;
  }

  private atLineEnd(): boolean {
    return this.tok.kind === 'newline' || this.tok.kind === 'end';
  }

  private statement(): Assignment | null {
    const t = this.tok;
    if (t.kind === 'indent') {
      this.fail('unexpected indentation (blocks such as def, class, for, if are not supported in configs)');
    }
    if (t.kind === 'name' && STATEMENT_KEYWORDS[t.text] && !this.isAssignmentAhead()) {
      this.fail(`${STATEMENT_KEYWORDS[t.text]} is not supported in configs (only NAME = value assignments)`);
    }
    if (t.kind === 'op' && t.text === '@') this.fail('decorators are not supported in configs');
    if (t.kind === 'name' && this.tokens[this.i + 1]?.kind === 'op') {
      const op = this.tokens[this.i + 1].text;
      if (op === '=') {
        this.i += 2;
        const value = this.exprOrTuple();
        if (this.isOp('=')) this.fail('chained assignment (a = b = ...) is not supported');
        return { kind: 'assign', target: t.text, value, line: t.line };
      }
      const m = this.tokens[this.i + 2];
      const after = this.tokens[this.i + 3];
      if (op === '.' && m?.kind === 'name' && m.text === 'update' && after?.kind === 'op' && after.text === '(') {
        this.i += 3;
        const call = this.call({ kind: 'name', name: 'dict', line: t.line }, t.line);
        return { kind: 'update', target: t.text, value: call, line: t.line };
      }
      if (op.length >= 2 && op.endsWith('=') && !COMPARISONS.includes(op)) {
        this.fail(`augmented assignment '${op}' is not supported (write ${t.text} = ${t.text} ${op.slice(0, -1)} ...)`);
      }
      if (op === ':') this.fail('annotated assignments are not supported');
    }
    const value = this.exprOrTuple();
    if (this.isOp('=')) this.fail('only a plain name can be assigned (no unpacking, subscripts or attributes)', t.line);
    if (value.kind === 'const' && typeof value.value === 'string') return null;
    this.fail('an expression on its own is not a config statement (only NAME = value assignments)', t.line);
  }

  /** True when the keyword-looking name is really assigned (`match = 1` is legal Python). */
  private isAssignmentAhead(): boolean {
    const n = this.tokens[this.i + 1];
    return n?.kind === 'op' && n.text === '=' && ['match'].includes(this.tok.text);
  }

  /** expr, or a bare tuple `a, b` */
  private exprOrTuple(): Expr {
    const line = this.tok.line;
    const first = this.expr();
    if (!this.isOp(',')) return first;
    const items = [first];
    while (this.isOp(',')) {
      this.i++;
      if (this.atExprEnd()) break;
      items.push(this.expr());
    }
    return { kind: 'list', items, tuple: true, line };
  }

  private atExprEnd(): boolean {
    const t = this.tok;
    return t.kind === 'newline' || t.kind === 'end' || (t.kind === 'op' && [')', ']', '}', ';', '='].includes(t.text));
  }

  /** A full expression: `body if test else orelse` or a disjunction. */
  expr(): Expr {
    const body = this.disjunction();
    if (!this.isName('if')) return body;
    const line = this.tok.line;
    this.i++;
    const test = this.disjunction();
    if (!this.isName('else'))
      this.fail(`expected 'else' in the conditional expression, found ${this.describe(this.tok)}`);
    this.i++;
    return { kind: 'cond', test, body, orelse: this.expr(), line };
  }

  private disjunction(): Expr {
    return this.boolChain('or', () => this.conjunction());
  }

  private conjunction(): Expr {
    return this.boolChain('and', () => this.inversion());
  }

  /** `a op b op c`, left-associative. */
  private boolChain(op: 'and' | 'or', operand: () => Expr): Expr {
    let left = operand();
    while (this.isName(op)) {
      const line = this.tok.line;
      this.i++;
      left = { kind: 'boolop', op, left, right: operand(), line };
    }
    return left;
  }

  private inversion(): Expr {
    if (!this.isName('not')) return this.comparison();
    const line = this.tok.line;
    this.i++;
    return { kind: 'not', operand: this.inversion(), line };
  }

  private comparison(): Expr {
    const line = this.tok.line;
    const first = this.arith();
    const rest: { op: Comparison; right: Expr }[] = [];
    for (;;) {
      const op = this.comparisonOp();
      if (!op) break;
      rest.push({ op, right: this.arith() });
    }
    const t = this.tok;
    if (t.kind === 'op' && ['&', '|', '^', '<<', '>>', '@', ':='].includes(t.text)) {
      this.fail(`operator '${t.text}' is not supported in configs`);
    }
    return rest.length ? { kind: 'compare', first, rest, line } : first;
  }

  /** The comparison operator at the cursor (consumed), or null. */
  private comparisonOp(): Comparison | null {
    const t = this.tok;
    const next = this.tokens[this.i + 1];
    if (t.kind === 'op' && COMPARISONS.includes(t.text)) {
      this.i++;
      return t.text as Comparison;
    }
    if (t.kind !== 'name') return null;
    if (t.text === 'in') {
      this.i++;
      return 'in';
    }
    if (t.text === 'not' && next?.kind === 'name' && next.text === 'in') {
      this.i += 2;
      return 'not in';
    }
    if (t.text === 'is') {
      const not = next?.kind === 'name' && next.text === 'not';
      this.i += not ? 2 : 1;
      return not ? 'is not' : 'is';
    }
    return null;
  }

  private arith(): Expr {
    let left = this.term();
    while (this.isOp('+') || this.isOp('-')) {
      const { text: op, line } = this.tok;
      this.i++;
      left = { kind: 'binary', op, left, right: this.term(), line };
    }
    return left;
  }

  private term(): Expr {
    let left = this.factor();
    while (['*', '/', '//', '%'].some((o) => this.isOp(o))) {
      const { text: op, line } = this.tok;
      this.i++;
      left = { kind: 'binary', op, left, right: this.factor(), line };
    }
    return left;
  }

  private factor(): Expr {
    if (this.isOp('-') || this.isOp('+')) {
      const { text: op, line } = this.tok;
      this.i++;
      return { kind: 'unary', op, operand: this.factor(), line };
    }
    if (this.isOp('~')) this.fail("operator '~' is not supported in configs");
    const t = this.tok;
    if (t.kind === 'name' && EXPRESSION_KEYWORDS[t.text]) {
      this.fail(`${EXPRESSION_KEYWORDS[t.text]} is not supported in configs`);
    }
    return this.power();
  }

  private power(): Expr {
    const base = this.primary();
    if (!this.isOp('**')) return base;
    const line = this.tok.line;
    this.i++;
    return { kind: 'binary', op: '**', left: base, right: this.factor(), line };
  }

  private primary(): Expr {
    let e = this.atom();
    for (;;) {
      const line = this.tok.line;
      if (this.isOp('.')) {
        this.i++;
        if (this.tok.kind !== 'name') {
          this.fail(`expected an attribute name after '.', found ${this.describe(this.tok)}`);
        }
        e = { kind: 'attr', object: e, attr: this.tok.text, line };
        this.i++;
      } else if (this.isOp('[')) {
        this.i++;
        e = this.subscript(e, line);
      } else if (this.isOp('(')) {
        e = this.call(e, line);
      } else {
        return e;
      }
    }
  }

  /** `[index]` or `[start:stop:step]` (each part optional), the '[' already read. */
  private subscript(object: Expr, line: number): Expr {
    const start = this.isOp(':') ? null : this.expr();
    if (!this.isOp(':')) {
      this.expectOp(']', 'to close the subscript');
      return { kind: 'index', object, index: start!, line };
    }
    this.i++;
    const part = (): Expr | null => (this.isOp(']') || this.isOp(':') ? null : this.expr());
    const stop = part();
    let step: Expr | null = null;
    if (this.isOp(':')) {
      this.i++;
      step = part();
    }
    this.expectOp(']', 'to close the slice');
    return { kind: 'slice', object, start, stop, step, line };
  }

  private call(callee: Expr, line: number): Expr {
    if (callee.kind !== 'name' || !(BUILTINS as readonly string[]).includes(callee.name)) {
      const name = callee.kind === 'name' ? callee.name : callee.kind === 'attr' ? `.${callee.attr}` : 'an expression';
      this.fail(
        `calling ${name}(...) is not supported in configs (the calls allowed are the pure builtins ` +
          `${BUILTINS.join(', ')}, and NAME.update(...) as a statement)`,
        line,
      );
    }
    const name = callee.name as Builtin;
    this.i++;
    const args: Expr[] = [];
    const kwargs: DictEntry[] = [];
    while (!this.isOp(')')) {
      if (this.isOp('**')) {
        this.i++;
        kwargs.push({ key: null, value: this.expr() });
      } else if (
        this.tok.kind === 'name' &&
        this.tokens[this.i + 1]?.kind === 'op' &&
        this.tokens[this.i + 1].text === '='
      ) {
        const k = this.tok;
        this.i += 2;
        kwargs.push({ key: { kind: 'const', value: k.text, line: k.line }, value: this.expr() });
      } else {
        if (kwargs.length) this.fail(`${name}(...): a positional argument after keyword arguments`);
        if (this.isOp('*')) this.fail(`${name}(*...): argument unpacking is not supported in configs`);
        const arg = this.expr();
        // a generator argument, as in sum(x for x in y): read as the list comprehension it equals
        args.push(this.isName('for') ? this.comprehension('list', null, arg, this.tok.line, ')') : arg);
      }
      if (!this.isOp(',')) break;
      this.i++;
    }
    this.expectOp(')', `to close ${name}(`);
    if (name === 'dict' && args.length === 0) return { kind: 'dict', entries: kwargs, line };
    return { kind: 'call', name, args, kwargs, line };
  }

  private atom(): Expr {
    const t = this.tok;
    const line = t.line;
    if (t.kind === 'number') {
      this.i++;
      return { kind: 'const', value: this.number(t), line };
    }
    if (t.kind === 'string' || t.kind === 'fstring') {
      const parts: (string | { expr: Expr; spec: string })[] = [];
      while (this.tok.kind === 'string' || this.tok.kind === 'fstring') {
        const s = this.tokens[this.i++];
        if (s.kind === 'string') parts.push(s.text);
        else parts.push(...this.fstringParts(s.text, s.line));
      }
      if (parts.every((p) => typeof p === 'string')) return { kind: 'const', value: parts.join(''), line };
      return { kind: 'fstring', parts, line };
    }
    if (t.kind === 'name') {
      this.i++;
      if (t.text === 'True' || t.text === 'False') return { kind: 'const', value: t.text === 'True', line };
      if (t.text === 'None') return { kind: 'const', value: null, line };
      if (['and', 'or', 'not', 'in', 'is', 'else', 'for'].includes(t.text)) this.fail(`unexpected '${t.text}'`, line);
      if (STATEMENT_KEYWORDS[t.text] && t.text !== 'match') {
        this.fail(`${STATEMENT_KEYWORDS[t.text]} is not supported in configs`, line);
      }
      return { kind: 'name', name: t.text, line };
    }
    if (this.isOp('(')) return this.parenthesised();
    if (this.isOp('[')) return this.listDisplay();
    if (this.isOp('{')) return this.dictDisplay();
    if (this.isOp('...')) this.fail('Ellipsis is not supported in configs');
    this.fail(`unexpected ${this.describe(t)}`);
  }

  /** The literal text and `{expr[:spec]}` fields of an f-string body (`{{` and `}}` are braces). */
  private fstringParts(body: string, line: number): (string | { expr: Expr; spec: string })[] {
    const parts: (string | { expr: Expr; spec: string })[] = [];
    let lit = '';
    let i = 0;
    while (i < body.length) {
      const c = body[i]!;
      if ((c === '{' || c === '}') && body[i + 1] === c) {
        lit += c;
        i += 2;
        continue;
      }
      if (c === '}') this.fail("f-string: single '}' is not allowed", line);
      if (c !== '{') {
        lit += c;
        i++;
        continue;
      }
      // the field runs to the matching '}' (brackets and quotes inside it nest)
      let depth = 0;
      let quote = '';
      let j = i + 1;
      let colon = -1;
      for (; j < body.length; j++) {
        const d = body[j]!;
        if (quote) {
          if (d === quote) quote = '';
        } else if (d === "'" || d === '"') quote = d;
        else if ('([{'.includes(d)) depth++;
        else if (')]'.includes(d) || (d === '}' && depth > 0)) depth--;
        else if (d === '}') break;
        else if (d === ':' && depth === 0 && colon < 0) colon = j;
        else if (d === '!' && depth === 0 && body[j + 1] !== '=') {
          this.fail('f-string conversions (!r, !s, !a) are not supported in configs', line);
        }
      }
      if (j >= body.length) this.fail("f-string: expected '}'", line);
      const exprText = body.slice(i + 1, colon >= 0 ? colon : j);
      const spec = colon >= 0 ? body.slice(colon + 1, j) : '';
      if (lit) parts.push(lit);
      lit = '';
      const sub = new Parser(
        tokenize(exprText, this.file).map((t) => ({ ...t, line })),
        this.file,
      );
      const expr = sub.expr();
      if (sub.tok.kind !== 'newline' && sub.tok.kind !== 'end') this.fail('f-string: malformed field', line);
      parts.push({ expr, spec });
      i = j + 1;
    }
    if (lit) parts.push(lit);
    return parts;
  }

  /** An int, or a float when the literal has a '.' or an exponent (as Python reads it). */
  private number(t: Token): number | PyFloat {
    const s = t.text.replace(/_/g, '');
    let v: number;
    if (/^0[xX]/.test(s)) v = parseInt(s.slice(2), 16);
    else if (/^0[oO]/.test(s)) v = parseInt(s.slice(2), 8);
    else if (/^0[bB]/.test(s)) v = parseInt(s.slice(2), 2);
    else v = Number(s);
    if (!Number.isFinite(v)) this.fail(`number ${t.text} is out of range`);
    if (/^[0-9]+$/.test(s) && !Number.isSafeInteger(v)) this.fail(`integer ${t.text} is too large to be exact`);
    return /^[0-9]*\.|^[0-9.]+[eE]/.test(s) ? new PyFloat(v) : v;
  }

  private parenthesised(): Expr {
    const line = this.tok.line;
    this.i++;
    if (this.isOp(')')) {
      this.i++;
      return { kind: 'list', items: [], tuple: true, line };
    }
    const first = this.expr();
    if (this.isName('for')) this.fail('generator expressions are not supported (use a list comprehension [...])');
    if (this.isOp(')')) {
      this.i++;
      return first;
    }
    const items = [first];
    while (this.isOp(',')) {
      this.i++;
      if (this.isOp(')')) break;
      items.push(this.expr());
    }
    this.expectOp(')', 'to close the tuple');
    return { kind: 'list', items, tuple: true, line };
  }

  private isName(text: string): boolean {
    return this.tok.kind === 'name' && this.tok.text === text;
  }

  private listDisplay(): Expr {
    const line = this.tok.line;
    this.i++;
    const items: Expr[] = [];
    if (this.isOp(']')) {
      this.i++;
      return { kind: 'list', items, tuple: false, line };
    }
    if (this.isOp('*')) this.fail('* unpacking is not supported in configs (use + to join lists)');
    const first = this.expr();
    if (this.isName('for')) return this.comprehension('list', null, first, line, ']');
    items.push(first);
    while (this.isOp(',')) {
      this.i++;
      if (this.isOp(']')) break;
      if (this.isOp('*')) this.fail('* unpacking is not supported in configs (use + to join lists)');
      items.push(this.expr());
    }
    this.expectOp(']', 'to close the list');
    return { kind: 'list', items, tuple: false, line };
  }

  /** `for TARGETS in ITER` clauses up to `close`, the comprehension's element already read. */
  private comprehension(
    form: 'list' | 'set' | 'dict',
    key: Expr | null,
    element: Expr,
    line: number,
    close: string,
  ): Expr {
    const loops: CompLoop[] = [];
    while (this.isName('for')) {
      this.i++;
      const paren = this.isOp('(');
      if (paren) this.i++;
      const targets: string[] = [];
      for (;;) {
        const target = this.tok;
        if (target.kind !== 'name' || STATEMENT_KEYWORDS[target.text]) {
          this.fail('a comprehension must loop over plain names (for x in ..., for i, x in ...)');
        }
        targets.push(target.text);
        this.i++;
        if (!this.isOp(',')) break;
        this.i++;
      }
      if (paren) this.expectOp(')', 'to close the loop targets');
      if (!this.isName('in')) this.fail(`expected 'in' in the comprehension, found ${this.describe(this.tok)}`);
      this.i++;
      const iter = this.disjunction();
      const conds: Expr[] = [];
      while (this.isName('if')) {
        this.i++;
        conds.push(this.disjunction());
      }
      loops.push({ targets, iter, conds });
    }
    // a generator argument's ')' is the call's to close
    if (close !== ')') this.expectOp(close, 'to close the comprehension');
    return { kind: 'comp', form, key, element, loops, line };
  }

  private dictDisplay(): Expr {
    const line = this.tok.line;
    this.i++;
    const entries: DictEntry[] = [];
    while (!this.isOp('}')) {
      if (this.isOp('**')) {
        this.i++;
        entries.push({ key: null, value: this.expr() });
      } else {
        const key = this.expr();
        if (this.isName('for') && entries.length === 0) return this.comprehension('set', null, key, line, '}');
        if (!this.isOp(':')) {
          this.fail('set literals are not supported in configs (a {...} must be a dict of key: value)');
        }
        this.i++;
        const value = this.expr();
        if (this.isName('for') && entries.length === 0) return this.comprehension('dict', key, value, line, '}');
        entries.push({ key, value });
      }
      if (!this.isOp(',')) break;
      this.i++;
    }
    this.expectOp('}', 'to close the dict');
    return { kind: 'dict', entries, line };
  }
}

export function parsePython(src: string, file: string): Assignment[] {
  return new Parser(tokenize(src, file), file).parseModule();
}
