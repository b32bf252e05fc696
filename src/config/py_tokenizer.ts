/**
 * Tokens of the Python subset mmengine config files use (see py_parser.ts for why this is
 * hand-written): names, numbers, strings in every quote form (with r/u prefixes, escapes and
 * triple quotes), operators, and NEWLINE at the end of each logical line. Comments are
 * dropped; a backslash before the line end and any open bracket continue the line.
 * Indentation starts a block (def, for, if ...), which configs never need: the parser refuses it.
 */
import { sourceError } from './errors.js';

export type TokenKind = 'name' | 'number' | 'string' | 'fstring' | 'op' | 'newline' | 'indent' | 'end';

export interface Token {
  kind: TokenKind;
  /**
   * Names and operators: the text; numbers: the source text; strings: the decoded value; f-strings:
   * the decoded value with `{...}` fields (and `{{`/`}}`) left for the parser.
   */
  text: string;
  line: number;
}

const OPERATORS = [
  '**=',
  '//=',
  '>>=',
  '<<=',
  '...',
  '**',
  '//',
  '==',
  '!=',
  '<=',
  '>=',
  '->',
  '+=',
  '-=',
  '*=',
  '/=',
  '%=',
  '&=',
  '|=',
  '^=',
  ':=',
  '<<',
  '>>',
  '+',
  '-',
  '*',
  '/',
  '%',
  '(',
  ')',
  '[',
  ']',
  '{',
  '}',
  ',',
  ':',
  '.',
  ';',
  '=',
  '<',
  '>',
  '@',
  '&',
  '|',
  '^',
  '~',
];

const PREFIXED_INT = '0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+';
const DECIMAL = '(?:\\d(?:_?\\d)*)?\\.?\\d(?:_?\\d)*(?:[eE][+-]?\\d(?:_?\\d)*)?\\.?';
const NUMBER = new RegExp(`^(?:${PREFIXED_INT}|${DECIMAL})[jJ]?`);
const STRING_PREFIX = /^([rRuUbBfF]{0,2})(['"])/;

const SIMPLE_ESCAPES: Record<string, string> = {
  '\\': '\\',
  "'": "'",
  '"': '"',
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
};

export class Tokenizer {
  private pos = 0;
  private line = 1;
  private depth = 0;
  private atLineStart = true;
  readonly tokens: Token[] = [];

  constructor(
    private readonly src: string,
    private readonly file: string,
  ) {}

  run(): Token[] {
    while (this.pos < this.src.length) this.next();
    this.pushNewline();
    this.tokens.push({ kind: 'end', text: '', line: this.line });
    return this.tokens;
  }

  private fail(message: string): never {
    throw sourceError(this.file, this.line, message);
  }

  private pushNewline(): void {
    const last = this.tokens[this.tokens.length - 1];
    if (last && last.kind !== 'newline') this.tokens.push({ kind: 'newline', text: '', line: this.line });
    this.atLineStart = true;
  }

  private next(): void {
    const src = this.src;
    const c = src[this.pos];
    if (this.atLineStart && this.depth === 0) {
      const indent = /^[ \t\f]*/.exec(src.slice(this.pos))![0];
      const rest = src.slice(this.pos + indent.length);
      // the parser reports it, after any block statement on the line before
      if (indent.length && rest.length && !/^(#|\r?\n|\\\r?\n)/.test(rest)) {
        this.tokens.push({ kind: 'indent', text: '', line: this.line });
      }
      this.atLineStart = false;
      this.pos += indent.length;
      return;
    }
    if (c === '\n') {
      this.pos++;
      if (this.depth === 0) this.pushNewline();
      this.line++;
      return;
    }
    if (c === ' ' || c === '\t' || c === '\f' || c === '\r') {
      this.pos++;
      return;
    }
    if (c === '#') {
      while (this.pos < src.length && src[this.pos] !== '\n') this.pos++;
      return;
    }
    if (c === '\\') {
      const m = /^\\\r?\n/.exec(src.slice(this.pos, this.pos + 3));
      if (!m) this.fail('unexpected backslash (line continuation must end the line)');
      this.pos += m[0].length;
      this.line++;
      return;
    }
    const head = src.slice(this.pos, this.pos + 4);
    const str = STRING_PREFIX.exec(head);
    if (str) {
      this.string(str[1], str[2]);
      return;
    }
    if (/[A-Za-z_]/.test(c) || c.charCodeAt(0) > 127) {
      this.name();
      return;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[this.pos + 1] ?? ''))) {
      this.number();
      return;
    }
    for (const op of OPERATORS) {
      if (src.startsWith(op, this.pos)) {
        this.tokens.push({ kind: 'op', text: op, line: this.line });
        this.pos += op.length;
        if ('([{'.includes(op)) this.depth++;
        if (')]}'.includes(op)) this.depth = Math.max(0, this.depth - 1);
        return;
      }
    }
    this.fail(`unexpected character ${JSON.stringify(c)}`);
  }

  private name(): void {
    const m = /^[\p{L}\p{Nl}_][\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}]*/u.exec(this.src.slice(this.pos));
    if (!m) this.fail(`unexpected character ${JSON.stringify(this.src[this.pos])}`);
    this.tokens.push({ kind: 'name', text: m[0], line: this.line });
    this.pos += m[0].length;
  }

  private number(): void {
    const m = NUMBER.exec(this.src.slice(this.pos));
    if (!m?.[0]) this.fail('malformed number');
    if (/[jJ]$/.test(m[0])) this.fail(`complex number ${m[0]} is not supported`);
    if (/^0\d*[1-9]/.test(m[0]) && !/[.eE]/.test(m[0])) {
      this.fail(`leading zeros in ${m[0]} are not allowed in Python 3`);
    }
    this.tokens.push({ kind: 'number', text: m[0], line: this.line });
    this.pos += m[0].length;
    if (/^[A-Za-z_0-9]/.test(this.src[this.pos] ?? '')) this.fail(`malformed number ${m[0]}${this.src[this.pos]}`);
  }

  private string(prefix: string, quote: string): void {
    const p = prefix.toLowerCase();
    if (p.includes('b')) this.fail('bytes literals are not supported');
    const startLine = this.line;
    this.pos += prefix.length;
    const triple = this.src.startsWith(quote.repeat(3), this.pos);
    const delim = triple ? quote.repeat(3) : quote;
    this.pos += delim.length;
    let out = '';
    for (;;) {
      if (this.pos >= this.src.length) throw sourceError(this.file, startLine, 'unterminated string');
      if (this.src.startsWith(delim, this.pos)) {
        this.pos += delim.length;
        break;
      }
      const c = this.src[this.pos];
      if (c === '\n') {
        if (!triple) throw sourceError(this.file, startLine, 'unterminated string (end of line)');
        this.line++;
      }
      if (c === '\\') {
        out += this.escape(p.includes('r'), triple);
        continue;
      }
      out += c;
      this.pos++;
    }
    this.tokens.push({ kind: p.includes('f') ? 'fstring' : 'string', text: out, line: startLine });
  }

  /** One escape sequence starting at the backslash; raw strings keep it as written. */
  private escape(raw: boolean, triple: boolean): string {
    const src = this.src;
    const n = src[this.pos + 1];
    if (n === undefined) this.fail('unterminated string');
    if (n === '\n' || (n === '\r' && src[this.pos + 2] === '\n')) {
      const len = n === '\n' ? 2 : 3;
      this.pos += len;
      this.line++;
      return raw ? src.slice(this.pos - len, this.pos) : '';
    }
    if (raw) {
      this.pos += 2;
      return `\\${n}`;
    }
    if (SIMPLE_ESCAPES[n] !== undefined) {
      this.pos += 2;
      return SIMPLE_ESCAPES[n];
    }
    const hex = (len: number): string => {
      const digits = src.slice(this.pos + 2, this.pos + 2 + len);
      if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(digits)) this.fail(`malformed \\${n} escape`);
      this.pos += 2 + len;
      return String.fromCodePoint(parseInt(digits, 16));
    };
    if (n === 'x') return hex(2);
    if (n === 'u') return hex(4);
    if (n === 'U') return hex(8);
    const oct = /^[0-7]{1,3}/.exec(src.slice(this.pos + 1, this.pos + 4));
    if (oct) {
      this.pos += 1 + oct[0].length;
      return String.fromCodePoint(parseInt(oct[0], 8));
    }
    if (n === 'N') this.fail('\\N{...} escapes are not supported');
    void triple;
    // Python keeps an unknown escape as written
    this.pos += 2;
    return `\\${n}`;
  }
}

export function tokenize(src: string, file: string): Token[] {
  return new Tokenizer(src, file).run();
}
