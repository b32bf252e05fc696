/**
 * Where `predict` writes each input's outputs: the inputs' folders mirrored under --out,
 * relative to their deepest common folder (inputs from one folder land directly in --out), so
 * a/img.jpg and b/img.jpg get out/a/img_* and out/b/img_*. Inputs that would still share a stem
 * (a/img.jpg and a/img.png) are refused before any work, listing each clash.
 */
import path from 'node:path';
import { uniqueBy } from '../common/unique.js';

/** The deepest folder holding every one of `dirs` (absolute paths). */
function commonAncestor(dirs: string[]): string {
  let common = dirs[0].split(path.sep);
  for (const d of dirs.slice(1)) {
    const parts = d.split(path.sep);
    let i = 0;
    while (i < common.length && i < parts.length && common[i] === parts[i]) i++;
    common = common.slice(0, i);
  }
  return common.join(path.sep) || path.sep;
}

/** The same file named twice (a path and a glob that matches it) is kept once, in first order. */
export function uniqueInputs(files: string[]): string[] {
  return uniqueBy(files, (f) => path.resolve(f));
}

/** One output stem (path without suffix) per input, in input order; throws on a clash. */
export function outputStems(files: string[], outDir: string): string[] {
  if (files.length === 0) return [];
  const resolved = files.map((f) => path.resolve(f));
  const base = commonAncestor(resolved.map((f) => path.dirname(f)));
  const stems = resolved.map((f) =>
    path.join(outDir, path.relative(base, path.dirname(f)), path.basename(f, path.extname(f))),
  );
  const byStem = new Map<string, string[]>();
  stems.forEach((s, i) => byStem.set(s, [...(byStem.get(s) ?? []), files[i]]));
  const clashes = [...byStem].filter(([, inputs]) => inputs.length > 1);
  if (clashes.length) {
    const list = clashes.map(([stem, inputs]) => `${inputs.join(', ')} -> ${stem}_pred.png`).join('; ');
    throw new Error(
      `predict: inputs would overwrite each other's outputs (same folder and name): ${list}; ` +
        'rename them or run predict on them separately',
    );
  }
  return stems;
}
