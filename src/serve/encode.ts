/**
 * What /v1/segment answers: the label PNG (the same bytes `beitseg predict` writes as
 * `<name>_pred.png`), the colour overlay PNG, and the JSON summary with the label map as a
 * base64 PNG or as per-class run-length runs.
 */
import { encodeImage } from '../data/image_io.js';
import { encodePngLabel } from '../data/png.js';
import { makeLabel, type RgbImage } from '../data/types.js';
import type { DatasetMeta } from '../inference/metainfo.js';
import { overlay } from '../visualization/overlay.js';
import { segmentationJson, type SegmentationJson } from '../visualization/segmentation_json.js';
import type { Segmentation } from './scheduler.js';

export function labelPng(seg: Segmentation): Buffer {
  return encodePngLabel(seg.pred, seg.height, seg.width);
}

export async function overlayPng(
  img: RgbImage,
  seg: Segmentation,
  meta: DatasetMeta,
  opacity: number,
): Promise<Uint8Array> {
  const label = makeLabel(seg.height, seg.width, seg.pred);
  return encodeImage(overlay(img, label, meta.palette, { alpha: opacity }), 'png');
}

/**
 * Runs of each class over the row-major label map, as flat [start, length, start, length, ...]
 * (pixel index y * width + x), keyed by class id.
 */
export function perClassRle(seg: Segmentation): Record<string, number[]> {
  const runs: Record<string, number[]> = {};
  const data = seg.pred;
  let start = 0;
  for (let i = 1; i <= data.length; i++) {
    if (i < data.length && data[i] === data[start]) continue;
    (runs[data[start]] ??= []).push(start, i - start);
    start = i;
  }
  return runs;
}

export type LabelEncoding = 'png' | 'rle' | 'none';

/** The API's JSON: predict's schema (docs/json-schema.md) plus, optionally, the label map itself. */
export interface SegmentJson extends SegmentationJson {
  label?: { encoding: 'png'; data: string } | { encoding: 'rle'; order: 'row-major'; runs: Record<string, number[]> };
}

export function segmentJson(seg: Segmentation, meta: DatasetMeta, labels: LabelEncoding): SegmentJson {
  const out: SegmentJson = segmentationJson(makeLabel(seg.height, seg.width, seg.pred), meta);
  if (labels === 'png') out.label = { encoding: 'png', data: labelPng(seg).toString('base64') };
  else if (labels === 'rle') out.label = { encoding: 'rle', order: 'row-major', runs: perClassRle(seg) };
  return out;
}
