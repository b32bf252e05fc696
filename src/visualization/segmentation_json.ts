/**
 * The JSON description of one segmentation, the same for `beitseg predict` (`<stem>.json`,
 * `--json`) and the HTTP API (/v1/segment): docs/json-schema.md documents it. Classes are an
 * array (largest share first) so that each carries its id, pixel count and colour, and names
 * that repeat or look like numbers stay unambiguous.
 */
import type { LabelMap } from '../data/types.js';
import { classShares } from './overlay.js';

export interface ClassEntry {
  /** The class id: the value in the label PNG. */
  id: number;
  name: string;
  /** Fraction of the image's pixels, in [0, 1], rounded to 6 decimals. */
  share: number;
  pixels: number;
  /** The palette colour of the overlay, [r, g, b]. */
  color: [number, number, number];
}

export interface SegmentationJson {
  width: number;
  height: number;
  /** Classes present, largest share first (ties: smaller id first). */
  classes: ClassEntry[];
  /** The names of `classes`, in the same order. */
  present: string[];
}

export interface ClassMeta {
  classes: readonly string[];
  palette: readonly (readonly [number, number, number])[];
}

export function segmentationJson(label: LabelMap, meta: ClassMeta): SegmentationJson {
  const classes = classShares(label.data, meta.classes).classes.map((c) => {
    const [r, g, b] = meta.palette[c.id] ?? [0, 0, 0];
    return { id: c.id, name: c.name, share: Number(c.share.toFixed(6)), pixels: c.pixels, color: [r, g, b] };
  }) satisfies ClassEntry[];
  return { width: label.width, height: label.height, classes, present: classes.map((c) => c.name) };
}
