/**
 * Segmentation datasets from mmseg-style config dicts.
 *
 *   { type: 'ADE20KDataset', data_root: 'data/ade/ADEChallengeData2016',
 *     data_prefix: { img_path: 'images/validation', seg_map_path: 'annotations/validation' } }
 *   { type: 'BaseSegDataset', data_root, data_prefix, img_suffix: '.jpg',
 *     seg_map_suffix: '.png', reduce_zero_label: false, metainfo: { classes, palette } }
 *
 * File list as mmseg's BaseSegDataset.load_data_list: every file under the
 * image folder (recursively, skipping names that start with '.') ending in
 * img_suffix, its label = same relative path with seg_map_suffix in the label
 * folder, sorted by image path. With `ann_file` the names come from that text
 * file instead (one per line, without suffix).
 *
 * Unlike mmseg (which only fails when a missing label is loaded) every label
 * is checked to exist up front; a missing one is an error naming the image,
 * or with skipBad a warning and the pair is skipped.
 *
 * Class names/palette: cfg.metainfo if given, else ROOT/metainfo.json if it
 * exists (written by make-synthetic-dataset; our extension), else the type's
 * own (ADE20K's 150 classes for ADE20KDataset).
 */

import fs from 'node:fs/promises';
import path from 'node:path';
import type { Sample, TransformConfig } from './transforms/sample.js';
import { ADE20K_CLASSES, ADE20K_PALETTE, generatePalette, type Rgb } from './metainfo.js';

export interface DatasetMetainfo {
  classes: string[];
  palette: [number, number, number][];
}

export interface DatasetConfig {
  type: string;
  data_root?: string;
  data_prefix?: { img_path?: string; seg_map_path?: string };
  img_suffix?: string;
  seg_map_suffix?: string;
  reduce_zero_label?: boolean;
  ann_file?: string;
  metainfo?: { classes?: string[]; palette?: number[][] };
  /** Kept for the loader; the dataset itself does not run it. */
  pipeline?: TransformConfig[];
  [key: string]: unknown;
}

export interface DataItem {
  imgPath: string;
  /** Absent when the dataset has no label folder (inference on images only). */
  segMapPath?: string;
  reduceZeroLabel: boolean;
}

export interface DatasetOptions {
  /** Warn and skip images whose label is missing, instead of throwing. */
  skipBad?: boolean;
  /** Where warnings go (default console.warn). */
  warn?: (message: string) => void;
}

interface TypeDefaults {
  img_suffix: string;
  seg_map_suffix: string;
  reduce_zero_label: boolean;
  metainfo?: DatasetMetainfo;
}

const ADE_META: DatasetMetainfo = {
  classes: [...ADE20K_CLASSES],
  palette: ADE20K_PALETTE.map((c) => [c[0], c[1], c[2]]),
};

const DATASET_TYPES: Record<string, TypeDefaults> = {
  ADE20KDataset: { img_suffix: '.jpg', seg_map_suffix: '.png', reduce_zero_label: true, metainfo: ADE_META },
  BaseSegDataset: { img_suffix: '.jpg', seg_map_suffix: '.png', reduce_zero_label: false },
};

export const SUPPORTED_DATASETS: readonly string[] = Object.keys(DATASET_TYPES);

const ALLOWED_FIELDS = [
  'type',
  'data_root',
  'data_prefix',
  'img_suffix',
  'seg_map_suffix',
  'reduce_zero_label',
  'ann_file',
  'metainfo',
  'pipeline',
  'test_mode',
  'serialize_data',
  'lazy_init',
  'indices',
];

export class SegDataset {
  constructor(
    readonly type: string,
    readonly items: readonly DataItem[],
    readonly metainfo: DatasetMetainfo,
    readonly pipeline: readonly TransformConfig[] | undefined,
    readonly root: string,
  ) {}

  get length(): number {
    return this.items.length;
  }

  /** The pipeline input for item i (a fresh object each call). */
  sample(i: number): Sample {
    const it = this.items[i];
    if (!it) throw new Error(`dataset index ${i} out of range (0..${this.items.length - 1})`);
    return { imgPath: it.imgPath, segMapPath: it.segMapPath, reduceZeroLabel: it.reduceZeroLabel, extra: { index: i } };
  }
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isDirectory();
  } catch {
    return false;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

/** Relative paths of files under dir ending with suffix, recursively, skipping dot-names. */
async function listFiles(dir: string, suffix: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await fs.readdir(path.join(dir, rel), { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const r = rel ? path.join(rel, e.name) : e.name;
      if (e.isDirectory()) await walk(r);
      else if (e.isFile() && r.endsWith(suffix)) out.push(r);
    }
  };
  await walk('');
  return out;
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function parseMetainfo(raw: unknown, where: string): DatasetMetainfo {
  if (!raw || typeof raw !== 'object') throw new Error(`${where}: metainfo must be an object with 'classes'`);
  const m = raw as { classes?: unknown; palette?: unknown };
  if (!Array.isArray(m.classes) || m.classes.length === 0 || !m.classes.every((c) => typeof c === 'string')) {
    throw new Error(`${where}: metainfo.classes must be a non-empty list of names`);
  }
  const classes = m.classes as string[];
  let palette: [number, number, number][];
  if (m.palette == null) {
    palette = generatePalette(classes.length).map((c: Rgb) => [c[0], c[1], c[2]]);
  } else {
    const okColour = (c: unknown): boolean =>
      Array.isArray(c) && c.length === 3 && c.every((v) => Number.isInteger(v) && v >= 0 && v <= 255);
    if (!Array.isArray(m.palette) || m.palette.length !== classes.length || !m.palette.every(okColour)) {
      throw new Error(`${where}: metainfo.palette must hold one [r, g, b] (0..255) per class (${classes.length})`);
    }
    palette = (m.palette as number[][]).map((c) => [c[0], c[1], c[2]]);
  }
  return { classes, palette };
}

/** Build a dataset from an mmseg-style config dict. */
export async function buildDataset(cfg: DatasetConfig, opts: DatasetOptions = {}): Promise<SegDataset> {
  if (!cfg || typeof cfg !== 'object' || typeof cfg.type !== 'string') {
    throw new Error(`dataset config must be an object with a string 'type', got ${JSON.stringify(cfg)}`);
  }
  const defaults = DATASET_TYPES[cfg.type];
  if (!defaults) throw new Error(`unknown dataset type '${cfg.type}'; supported: ${SUPPORTED_DATASETS.join(', ')}`);
  for (const k of Object.keys(cfg)) {
    if (!ALLOWED_FIELDS.includes(k)) {
      throw new Error(
        `${cfg.type}: unknown field '${k}'; supported fields: ${ALLOWED_FIELDS.filter((f) => f !== 'type').join(', ')}`,
      );
    }
  }
  const warn = opts.warn ?? ((m: string) => console.warn(m));
  const root = cfg.data_root ?? '';
  const prefix = cfg.data_prefix ?? {};
  for (const k of Object.keys(prefix)) {
    if (k !== 'img_path' && k !== 'seg_map_path')
      throw new Error(`${cfg.type}: unknown data_prefix field '${k}'; supported: img_path, seg_map_path`);
  }
  const imgSuffix = cfg.img_suffix ?? defaults.img_suffix;
  const segSuffix = cfg.seg_map_suffix ?? defaults.seg_map_suffix;
  const reduceZero = cfg.reduce_zero_label ?? defaults.reduce_zero_label;
  const imgDir = path.join(root, prefix.img_path ?? '');
  const segDir = prefix.seg_map_path == null ? undefined : path.join(root, prefix.seg_map_path);

  if (!(await isDir(imgDir))) throw new Error(`${cfg.type}: image folder not found: ${imgDir}`);
  if (segDir !== undefined && !(await isDir(segDir)))
    throw new Error(`${cfg.type}: annotation folder not found: ${segDir}`);

  let names: string[];
  if (cfg.ann_file) {
    const annPath = path.isAbsolute(cfg.ann_file) ? cfg.ann_file : path.join(root, cfg.ann_file);
    let text: string;
    try {
      text = await fs.readFile(annPath, 'utf8');
    } catch {
      throw new Error(`${cfg.type}: ann_file not found: ${annPath}`);
    }
    names = text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l.length > 0)
      .map((l) => l + imgSuffix);
  } else {
    names = await listFiles(imgDir, imgSuffix);
  }

  const items: DataItem[] = [];
  for (const rel of names) {
    const imgPath = path.join(imgDir, rel);
    let segMapPath: string | undefined;
    if (segDir !== undefined) {
      segMapPath = path.join(segDir, rel.slice(0, rel.length - imgSuffix.length) + segSuffix);
      const problem = !(await exists(segMapPath))
        ? `image ${imgPath} has no label (expected ${segMapPath})`
        : cfg.ann_file && !(await exists(imgPath))
          ? `image listed in ${cfg.ann_file} not found: ${imgPath}`
          : undefined;
      if (problem) {
        if (opts.skipBad) {
          warn(`${cfg.type}: skipping: ${problem}`);
          continue;
        }
        throw new Error(`${cfg.type}: ${problem}`);
      }
    }
    items.push({ imgPath, segMapPath, reduceZeroLabel: reduceZero });
  }
  items.sort((a, b) => byCodeUnits(a.imgPath, b.imgPath));
  if (items.length === 0) {
    throw new Error(`${cfg.type}: no images ending in '${imgSuffix}' found in ${imgDir}`);
  }

  let metainfo: DatasetMetainfo | undefined;
  if (cfg.metainfo) {
    metainfo = parseMetainfo(cfg.metainfo, cfg.type);
  } else if (root && (await exists(path.join(root, 'metainfo.json')))) {
    const p = path.join(root, 'metainfo.json');
    let raw: unknown;
    try {
      raw = JSON.parse(await fs.readFile(p, 'utf8'));
    } catch (e) {
      throw new Error(`${cfg.type}: cannot read ${p}: ${(e as Error).message}`);
    }
    metainfo = parseMetainfo(raw, p);
  } else if (defaults.metainfo) {
    metainfo = {
      classes: [...defaults.metainfo.classes],
      palette: defaults.metainfo.palette.map((c) => [...c] as [number, number, number]),
    };
  } else {
    throw new Error(
      `${cfg.type}: metainfo with 'classes' is required (in the config or as ${path.join(root, 'metainfo.json')})`,
    );
  }
  return new SegDataset(cfg.type, items, metainfo, cfg.pipeline, root);
}
