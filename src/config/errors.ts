/** The error every config problem raises: one line naming the file, key or field. */
export class ConfigError extends Error {}

/** A config problem at a place in a .py file: "file:line: message". */
export function sourceError(file: string, line: number, message: string): ConfigError {
  return new ConfigError(`${file}:${line}: ${message}`);
}
