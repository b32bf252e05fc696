/**
 * An image with a legend panel at its right: a colour swatch, the class name and its share of the
 * pixels for each class present, largest first. The panel is an SVG we write ourselves (names
 * escaped), rasterised by sharp, so the legend reads the same in any image viewer.
 */
import sharp from 'sharp';
import { makeImage, type RgbImage } from '../data/types.js';
import type { Rgb } from '../data/metainfo.js';

export interface LegendEntry {
  name: string;
  colour: Rgb;
  /** Fraction of the pixels (0..1). */
  share: number;
}

const ROW = 18;
const PANEL_WIDTH = 190;
const MAX_ROWS = 20;

export const escapeXml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function panelSvg(entries: readonly LegendEntry[], height: number): string {
  const shown = entries.slice(0, MAX_ROWS);
  const rows = shown.map((e, i) => {
    const y = 6 + i * ROW;
    const [r, g, b] = e.colour;
    const name = e.name.length > 18 ? `${e.name.slice(0, 17)}…` : e.name;
    return (
      `<rect x="6" y="${y}" width="14" height="14" fill="rgb(${r},${g},${b})" stroke="#333" stroke-width="0.5"/>` +
      `<text x="26" y="${y + 11.5}" font-size="12" fill="#111">${escapeXml(name)}</text>` +
      `<text x="${PANEL_WIDTH - 6}" y="${y + 11.5}" font-size="12" fill="#444" text-anchor="end">` +
      `${(e.share * 100).toFixed(1)}%</text>`
    );
  });
  if (entries.length > MAX_ROWS) {
    rows.push(
      `<text x="6" y="${6 + MAX_ROWS * ROW + 11.5}" font-size="12" fill="#444">` +
        `+ ${entries.length - MAX_ROWS} more</text>`,
    );
  }
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${PANEL_WIDTH}" height="${height}" ` +
    `font-family="DejaVu Sans, Arial, sans-serif"><rect width="100%" height="100%" fill="white"/>` +
    `${rows.join('')}</svg>`
  );
}

/** `img` with the legend of `entries` to its right (white panel; the image is not scaled). */
export async function withLegend(img: RgbImage, entries: readonly LegendEntry[]): Promise<RgbImage> {
  const rows = Math.min(entries.length, MAX_ROWS) + (entries.length > MAX_ROWS ? 1 : 0);
  const height = Math.max(img.height, 12 + rows * ROW);
  const width = img.width + PANEL_WIDTH;
  const panel = await sharp(Buffer.from(panelSvg(entries, height)))
    .png()
    .toBuffer();
  const { data, info } = await sharp({
    create: { width, height, channels: 3, background: { r: 255, g: 255, b: 255 } },
  })
    .composite([
      { input: Buffer.from(img.data), raw: { width: img.width, height: img.height, channels: 3 }, left: 0, top: 0 },
      { input: panel, left: img.width, top: 0 },
    ])
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return makeImage(info.height, info.width, new Uint8Array(data));
}
