/**
 * The class names and palette a checkpoint carries: `meta.dataset_meta` {classes, palette} in
 * mmengine 1.x runner checkpoints, `meta.CLASSES` / `meta.PALETTE` in mmseg 0.x ones. mmseg's
 * init_model uses them when the config names no classes; so does beitseg (inference/metainfo.ts).
 * Names come from the file: escaped and cut (fileText); a malformed entry is ignored, not an error.
 */
import { fileText } from '../common/safe_text.js';

export interface CheckpointClasses {
  classes: string[];
  /** One [r, g, b] per class, or null when the checkpoint has none (or a malformed one). */
  palette: [number, number, number][] | null;
  /** Where it was found, e.g. 'meta.dataset_meta'. */
  source: string;
}

/** Most classes read from a checkpoint (ADE20K-full has 847). */
const MAX_CLASSES = 10_000;

function get(v: unknown, key: string): unknown {
  return v instanceof Map ? v.get(key) : undefined;
}

function readClasses(v: unknown): string[] | null {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_CLASSES) return null;
  if (!v.every((x) => typeof x === 'string')) return null;
  return (v as string[]).map((x) => fileText(x, 100));
}

function readPalette(v: unknown, n: number): [number, number, number][] | null {
  if (!Array.isArray(v) || v.length !== n) return null;
  const ok = v.every(
    (c) => Array.isArray(c) && c.length === 3 && c.every((x) => Number.isInteger(x) && x >= 0 && x <= 255),
  );
  return ok ? (v as number[][]).map((c) => [c[0]!, c[1]!, c[2]!]) : null;
}

/** Classes and palette from an unpickled torch.save object, or null when it holds none. */
export function checkpointClasses(root: unknown): CheckpointClasses | null {
  const meta = get(root, 'meta');
  const dm = get(meta, 'dataset_meta');
  const fromEngine = readClasses(get(dm, 'classes'));
  if (fromEngine) {
    return {
      classes: fromEngine,
      palette: readPalette(get(dm, 'palette'), fromEngine.length),
      source: 'meta.dataset_meta',
    };
  }
  const old = readClasses(get(meta, 'CLASSES'));
  if (old) return { classes: old, palette: readPalette(get(meta, 'PALETTE'), old.length), source: 'meta.CLASSES' };
  return null;
}
