/**
 * mmengine work dirs (a `last_checkpoint` file naming `iter_N.pth`, or `iter_N.pth` files) met by
 * `train --resume`: which runner checkpoint to continue (mmengine_resume.ts reads it).
 */
import fs from 'node:fs';
import path from 'node:path';

/** The checkpoint an mmengine work dir (or an mmengine .pth file) points at, or null if it is not one. */
export function mmengineCheckpointOf(target: string): string | null {
  let st: fs.Stats;
  try {
    st = fs.statSync(target);
  } catch {
    return null;
  }
  if (st.isFile()) return /\.pth$/i.test(target) ? target : null;
  if (!st.isDirectory()) return null;
  const last = path.join(target, 'last_checkpoint');
  if (fs.existsSync(last)) {
    // mmengine writes the checkpoint's path, one line
    const named = fs.readFileSync(last, 'utf8').slice(0, 4096).trim();
    // a moved work dir still holds the file under the same name
    if (named) return path.isAbsolute(named) && fs.existsSync(named) ? named : path.join(target, path.basename(named));
  }
  const iters = fs
    .readdirSync(target)
    .map((f) => /^iter_(\d+)\.pth$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(a[1]) - Number(b[1]));
  return iters.length ? path.join(target, iters[iters.length - 1]![0]) : null;
}
