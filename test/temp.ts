/** The tests' one temporary-directory helper (issue 31.7): a fresh folder under the OS temp dir. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A fresh, empty directory named `prefix` plus a random suffix; the caller removes it. */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A fresh temporary directory, removed by the returned cleanup function. */
export function makeTempDir(prefix = 'beitseg-test-'): { dir: string; cleanup: () => void } {
  const dir = tempDir(prefix);
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
