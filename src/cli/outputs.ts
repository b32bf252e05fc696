/**
 * Where predict and eval write by default, and the checks of an output path made before any
 * model or data is loaded, so a wrong --out fails at once with one line instead of after the
 * model has loaded (and never half-way through the outputs).
 */
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from './options.js';

/** work_dirs/<config name>/<command>: beside train's work_dirs/<config name>. */
export function defaultOutDir(command: string, config: string): string {
  const name = path.basename(config).replace(/\.(py|json)$/i, '');
  return path.join('work_dirs', name, command);
}

/** The deepest existing folder on the way to `p`; throws if a file stands where a folder must be. */
function existingAncestor(p: string, option: string): string {
  let dir = path.resolve(p);
  for (;;) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(dir, { throwIfNoEntry: false });
    } catch (e) {
      // ENOTDIR: a file further up; the loop reaches it and names it
      if ((e as NodeJS.ErrnoException).code !== 'ENOTDIR') throw e;
    }
    if (st) {
      if (!st.isDirectory()) throw new UsageError(`${option} ${p}: ${dir} is a file, not a folder`);
      return dir;
    }
    const up = path.dirname(dir);
    if (up === dir) return dir;
    dir = up;
  }
}

function checkWritable(dir: string, option: string, p: string): void {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new UsageError(`${option} ${p}: cannot write in ${dir}`);
  }
}

/** An output folder: absent (it will be made), or a writable folder. */
export function checkOutDir(dir: string, option = '--out'): void {
  checkWritable(existingAncestor(dir, option), option, dir);
}

/** An output file: not a folder, in a folder that exists or can be made. */
export function checkOutFile(file: string, option = '--out'): void {
  if (fs.statSync(file, { throwIfNoEntry: false })?.isDirectory())
    throw new UsageError(`${option} ${file}: is a folder; name a file`);
  checkWritable(existingAncestor(path.dirname(path.resolve(file)), option), option, file);
}
