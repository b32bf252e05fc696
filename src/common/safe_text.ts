/**
 * Rendering text that comes from a file (pickle globals, archive entry names, tensor keys,
 * header fields) inside an error message. A hostile file controls those bytes: printed raw they
 * can carry terminal escape sequences, bidi overrides or kilobytes of junk. Every error that
 * quotes file content goes through `quoteFileText` (or `fileText` where quotes would not fit).
 */

/** Longest excerpt of file text kept in a message, in characters (before escaping). */
export const FILE_TEXT_MAX_CHARS = 120;

/** Control, format (bidi, zero-width), separator and unpaired surrogate code points, plus `\`. */
const UNSAFE =
  /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cn}\\]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/gu;

function escapeChar(c: string): string {
  if (c === '\\') return '\\\\';
  if (c === '\n') return '\\n';
  if (c === '\r') return '\\r';
  if (c === '\t') return '\\t';
  const code = c.codePointAt(0)!;
  if (code < 0x100) return `\\x${code.toString(16).padStart(2, '0')}`;
  if (code < 0x10000) return `\\u${code.toString(16).padStart(4, '0')}`;
  return `\\u{${code.toString(16)}}`;
}

/**
 * File text made safe to print, without quotes: non-printable characters escaped (`\x1b`,
 * `\u202e`), cut to `maxChars` characters with a note of how much was left out.
 */
export function fileText(text: string, maxChars = FILE_TEXT_MAX_CHARS): string {
  const cut = text.length > maxChars;
  // Do not split a surrogate pair at the cut.
  let end = cut ? maxChars : text.length;
  if (cut && /[\uD800-\uDBFF]/.test(text[end - 1]!)) end--;
  const shown = text.slice(0, end).replace(UNSAFE, escapeChar);
  return cut ? `${shown}...(${text.length - end} more characters)` : shown;
}

/** File text made safe to print (see fileText), in quotes; a quote inside is escaped. */
export function quoteFileText(text: string, quote: "'" | '"' = "'", maxChars = FILE_TEXT_MAX_CHARS): string {
  return quote + fileText(text, maxChars).replaceAll(quote, `\\${quote}`) + quote;
}

/** A list from a file (shape, offsets, keys) for a message: at most `maxItems` shown. */
export function fileList(items: readonly unknown[], maxItems = 8): string {
  const shown = items
    .slice(0, maxItems)
    .map((x) => (typeof x === 'string' ? quoteFileText(x) : fileText(String(x), 40)));
  return shown.join(', ') + (items.length > maxItems ? `, ... (${items.length} in all)` : '');
}

/**
 * A whole message line made safe for a terminal: the same escaping as fileText, applied to the
 * entire text (for error lines and reports that embed file text, wherever it came from), cut at
 * `maxChars`.
 */
export function safeLine(text: string, maxChars = 4000): string {
  return fileText(text, maxChars);
}
