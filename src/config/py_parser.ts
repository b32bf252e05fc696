/**
 * A parser for the subset of Python that mmengine config files use, so that mmseg `.py`
 * configs are read without Python and without executing anything:
 *
 *   statements   NAME = expr   (one target; `;` separates statements; a bare string is a docstring)
 *   expressions  literals (int, float, str with implicit concatenation, True/False/None),
 *                names, lists, tuples, {k: v} dicts, dict(k=v, **other) calls, list
 *                comprehensions [expr for NAME in expr], + - * / // % ** and unary -/+,
 *                subscripts x[i], attribute paths on `_base_` (checked by the evaluator)
 *
 * Everything else (import, def, class, loops, if, with, lambda, comparisons, calls other than
 * dict) is an error naming the file, line and construct.
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

export type Expr =
  | { kind: 'const'; value: number | string | boolean | null; line: number }
  | { kind: 'name'; name: string; line: number }
  | { kind: 'list'; items: Expr[]; tuple: boolean; line: number }
  | { kind: 'dict'; entries: DictEntry[]; line: number }
  | { kind: 'comp'; element: Expr; target: string; iter: Expr; line: number }
  | { kind: 'binary'; op: string; left: Expr; right: Expr; line: number }
  | { kind: 'unary'; op: string; operand: Expr; line: number }
  | { kind: 'attr'; object: Expr; attr: string; line: number }
  | { kind: 'index'; object: Expr; index: Expr; line: number };

/** A dict entry: key (an expression, or null for `**spread`) and value. */
export interface DictEntry {
  key: Expr | null;
  value: Expr;
}

export interface Assignment {
  target: string;
  value: Expr;
  line: number;
}

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
  not: "the 'not' operator",
  and: "the 'and' operator",
  or: "the 'or' operator",
  if: 'a conditional expression',
  lambda: 'lambda',
  in: "the 'in' operator",
  is: "the 'is' operator",
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
        return { target: t.text, value, line: t.line };
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

  expr(): Expr {
    const e = this.arith();
    const t = this.tok;
    if (t.kind === 'op' && COMPARISONS.includes(t.text)) {
      this.fail(`comparison '${t.text}' is not supported in configs`);
    }
    if (t.kind === 'name' && EXPRESSION_KEYWORDS[t.text] && t.text !== 'in') {
      this.fail(`${EXPRESSION_KEYWORDS[t.text]} is not supported in configs`);
    }
    if (t.kind === 'op' && ['&', '|', '^', '<<', '>>', '@', ':='].includes(t.text)) {
      this.fail(`operator '${t.text}' is not supported in configs`);
    }
    return e;
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
        const index = this.expr();
        if (this.isOp(':')) this.fail('slices are not supported in configs');
        this.expectOp(']', 'to close the subscript');
        e = { kind: 'index', object: e, index, line };
      } else if (this.isOp('(')) {
        e = this.call(e, line);
      } else {
        return e;
      }
    }
  }

  private call(callee: Expr, line: number): Expr {
    if (callee.kind !== 'name' || callee.name !== 'dict') {
      const name = callee.kind === 'name' ? callee.name : callee.kind === 'attr' ? `.${callee.attr}` : 'an expression';
      this.fail(`calling ${name}(...) is not supported in configs (the only call allowed is dict(...))`, line);
    }
    this.i++;
    const entries: DictEntry[] = [];
    while (!this.isOp(')')) {
      if (this.isOp('**')) {
        this.i++;
        entries.push({ key: null, value: this.expr() });
      } else {
        const k = this.tok;
        if (k.kind !== 'name' || !(this.tokens[this.i + 1]?.kind === 'op' && this.tokens[this.i + 1].text === '=')) {
          this.fail('dict(...) takes only keyword arguments (key=value) and **mappings here');
        }
        this.i += 2;
        entries.push({ key: { kind: 'const', value: k.text, line: k.line }, value: this.expr() });
      }
      if (this.isName('for')) this.fail('comprehensions are only supported inside [...]');
      if (!this.isOp(',')) break;
      this.i++;
    }
    this.expectOp(')', 'to close dict(');
    return { kind: 'dict', entries, line };
  }

  private atom(): Expr {
    const t = this.tok;
    const line = t.line;
    if (t.kind === 'number') {
      this.i++;
      return { kind: 'const', value: this.number(t), line };
    }
    if (t.kind === 'string') {
      let value = '';
      while (this.tok.kind === 'string') value += this.tokens[this.i++].text;
      return { kind: 'const', value, line };
    }
    if (t.kind === 'name') {
      this.i++;
      if (t.text === 'True' || t.text === 'False') return { kind: 'const', value: t.text === 'True', line };
      if (t.text === 'None') return { kind: 'const', value: null, line };
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

  private number(t: Token): number {
    const s = t.text.replace(/_/g, '');
    let v: number;
    if (/^0[xX]/.test(s)) v = parseInt(s.slice(2), 16);
    else if (/^0[oO]/.test(s)) v = parseInt(s.slice(2), 8);
    else if (/^0[bB]/.test(s)) v = parseInt(s.slice(2), 2);
    else v = Number(s);
    if (!Number.isFinite(v)) this.fail(`number ${t.text} is out of range`);
    if (/^[0-9]+$/.test(s) && !Number.isSafeInteger(v)) this.fail(`integer ${t.text} is too large to be exact`);
    return v;
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
    if (this.isName('for')) return this.comprehension(first, line);
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

  private comprehension(element: Expr, line: number): Expr {
    this.i++;
    const target = this.tok;
    if (target.kind !== 'name' || STATEMENT_KEYWORDS[target.text]) {
      this.fail('a list comprehension must loop over one plain name');
    }
    this.i++;
    if (this.isOp(',')) this.fail('a list comprehension must loop over one plain name (no unpacking)');
    if (!this.isName('in')) this.fail(`expected 'in' in the list comprehension, found ${this.describe(this.tok)}`);
    this.i++;
    const iter = this.arith();
    if (this.isName('if')) this.fail("conditions in list comprehensions ('if') are not supported");
    if (this.isName('for')) this.fail('nested loops in list comprehensions are not supported');
    this.expectOp(']', 'to close the list comprehension');
    return { kind: 'comp', element, target: target.text, iter, line };
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
        if (this.isName('for')) this.fail('set and dict comprehensions are not supported');
        if (!this.isOp(':')) {
          this.fail('set literals are not supported in configs (a {...} must be a dict of key: value)');
        }
        this.i++;
        entries.push({ key, value: this.expr() });
        if (this.isName('for')) this.fail('dict comprehensions are not supported');
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
