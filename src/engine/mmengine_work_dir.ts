/**
 * mmengine work dirs (a `last_checkpoint` file naming `iter_N.pth`, or `iter_N.pth` files) met by
 * `train --resume`. Resuming one would need mmengine's optimizer, scheduler and message-hub state
 * mapped onto beitseg's; that is not done, so such a resume is refused with the way to start from
 * its weights (--load-from) instead of silently starting at iteration 0.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileText } from '../common/safe_text.js';

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

/** Throws when `target` (a --resume argument or the work dir) is an mmengine work dir or checkpoint. */
export function refuseMmengineResume(target: string): void {
  const ckpt = mmengineCheckpointOf(target);
  if (ckpt === null) return;
  throw new Error(
    `--resume: ${fileText(target, 300)} is an mmengine work dir or checkpoint ` +
      `(${fileText(path.basename(ckpt), 100)}); ` +
      "resuming mmengine's optimizer, scheduler and iteration is not supported. Start from its weights with " +
      `--load-from ${fileText(ckpt, 300)} (training starts at iteration 0)`,
  );
}
