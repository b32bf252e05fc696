/** An error that becomes an HTTP answer: a status code and a one-line message for the client. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(oneLine(message));
    this.name = 'HttpError';
  }
}

/** The first line of a message, trimmed (libvips and libtorch messages can span several lines). */
export function oneLine(message: string): string {
  const first =
    message
      .split('\n')
      .map((s) => s.trim())
      .find((s) => s.length > 0) ?? 'error';
  return first.length > 300 ? `${first.slice(0, 297)}...` : first;
}
