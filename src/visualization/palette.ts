/**
 * Colour palettes for drawing label maps. The tables themselves are dataset metadata and live
 * in ../data/metainfo.ts (ADE20K's classes and palette, the generated palette); they are
 * re-exported here for drawing code.
 */
export { ADE20K_CLASSES, ADE20K_PALETTE, generatePalette, type Rgb } from '../data/metainfo.js';
import type { Rgb } from '../data/metainfo.js';

/** Palette as a flat Uint8Array of RGB triples (e.g. for a palette PNG). */
export function paletteBytes(palette: readonly Rgb[]): Uint8Array {
  const out = new Uint8Array(palette.length * 3);
  palette.forEach((c, i) => out.set(c, 3 * i));
  return out;
}
