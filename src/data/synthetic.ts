/**
 * Deterministic synthetic segmentation data in the ADE20K layout, for tests
 * and for smoke-training without the real dataset:
 *
 *   ROOT/images/{training,validation}/synth_000000.jpg      (JPEG, quality 90)
 *   ROOT/annotations/{training,validation}/synth_000000.png (8-bit grey PNG)
 *   ROOT/metainfo.json                                      ({classes, palette, ...})
 *
 * Label values follow ADE20K: 0 = "other" (ignored after reduce_zero_label),
 * 1..C = classes, so with reduce_zero_label the train ids are 0..C-1 and
 * metainfo.classes[k] names train id k.
 *
 * Each scene is a background (a class, or "other") with 2-6 shapes painted
 * over it: rotated ellipses, star-shaped polygons and straight bands. Every
 * class has its own base colour and texture (stripes in one of four
 * orientations, checkers, dots, grid, rings, plain) with its own period, plus
 * per-image brightness jitter and pixel noise, so colour alone is not quite
 * enough and a small CNN has something to learn. "Other" is low-frequency
 * brownish noise.
 *
 * Scene 'full' (the demo's showcase): every pixel belongs to a real class, no "other"
 * anywhere, and label values are the class ids themselves (0..C-1, metainfo reduce_zero_label
 * false): nothing is ignored in training or evaluation, and predicted ids equal the annotations'.
 *
 * Same seed and options -> byte-identical files (the RNG is seeded per image
 * from (seed, index); sharp's JPEG encoder is deterministic).
 */

import fs from 'node:fs/promises';
import path from 'node:path';
import { encodeImage, writeFileAtomic } from './image_io.js';
import { encodePngLabel } from './png.js';
import { deriveSeed, Rng } from './rng.js';
import { makeImage, makeLabel, type LabelMap, type RgbImage } from './types.js';

export interface SyntheticOptions {
  /** Total number of images (training + validation). Default 200. */
  n?: number;
  height?: number;
  width?: number;
  /** Number of real classes (label values 1..classes); max 254. Default 8. */
  classes?: number;
  seed?: number;
  /** How many of the n images go to validation (default n/5, at least 1 when n > 1). */
  splitVal?: number;
  jpegQuality?: number;
  /**
   * 'ade' (default): ADE20K's convention, 0 = "other" (ignored after reduce_zero_label) in about
   * 1 scene background in 3 and 1 shape in 6. 'full': every pixel a class, label values 0..C-1.
   */
  scene?: SceneKind;
  /** Called after each image is written. */
  onProgress?: (done: number, total: number) => void;
}

export interface SyntheticSummary {
  root: string;
  train: number;
  val: number;
  classes: string[];
}

export type SceneKind = 'ade' | 'full';

type Pattern = 'hstripes' | 'vstripes' | 'dstripes' | 'astripes' | 'checker' | 'dots' | 'grid' | 'rings' | 'plain';
const PATTERNS: Pattern[] = [
  'hstripes',
  'vstripes',
  'checker',
  'dots',
  'dstripes',
  'grid',
  'rings',
  'astripes',
  'plain',
];

export interface ClassStyle {
  name: string;
  colour: [number, number, number];
  pattern: Pattern;
  period: number;
  /** Pattern contrast (how far the texture moves the colour). */
  amplitude: number;
}

/** Well-separated base colours; later classes reuse them with other patterns. */
const BASE_COLOURS: [number, number, number][] = [
  [200, 60, 50],
  [60, 170, 70],
  [50, 90, 200],
  [220, 200, 60],
  [160, 70, 190],
  [60, 190, 200],
  [230, 130, 40],
  [120, 120, 120],
  [240, 150, 170],
  [110, 70, 30],
  [150, 200, 120],
  [30, 40, 90],
];

/** The fixed style table for `classes` classes (independent of the seed). */
export function classStyles(classes: number): ClassStyle[] {
  const out: ClassStyle[] = [];
  for (let k = 0; k < classes; k++) {
    const pattern = PATTERNS[k % PATTERNS.length];
    const colour = BASE_COLOURS[k % BASE_COLOURS.length];
    const period = 6 + ((k * 5) % 11);
    out.push({
      name: `${pattern}_${k}`,
      colour: [...colour],
      pattern,
      period,
      amplitude: pattern === 'plain' ? 0 : 45,
    });
  }
  return out;
}

function textureValue(p: Pattern, period: number, x: number, y: number): number {
  // Returns a value in [-1, 1].
  const t = (v: number): number => (Math.floor(v / (period / 2)) % 2 === 0 ? 1 : -1);
  switch (p) {
    case 'hstripes':
      return t(y);
    case 'vstripes':
      return t(x);
    case 'dstripes':
      return t(x + y + 1000);
    case 'astripes':
      return t(x - y + 1000);
    case 'checker':
      return t(x) * t(y);
    case 'dots': {
      const cx = (x % period) - period / 2;
      const cy = (y % period) - period / 2;
      return cx * cx + cy * cy < (period * period) / 10 ? 1 : -0.4;
    }
    case 'grid':
      return x % period < 2 || y % period < 2 ? 1 : -0.5;
    case 'rings':
      return Math.sin(Math.sqrt(x * x + y * y) * ((2 * Math.PI) / period));
    case 'plain':
      return 0;
  }
}

interface Shape {
  cls: number;
  inside(x: number, y: number): boolean;
}

function randomShape(rng: Rng, h: number, w: number, cls: number): Shape {
  const kind = rng.randint(3);
  const cx = rng.uniform(0, w);
  const cy = rng.uniform(0, h);
  const size = Math.min(h, w);
  if (kind === 0) {
    const a = rng.uniform(0.12, 0.4) * size;
    const b = rng.uniform(0.12, 0.4) * size;
    const th = rng.uniform(0, Math.PI);
    const c = Math.cos(th);
    const s = Math.sin(th);
    return {
      cls,
      inside: (x, y) => {
        const dx = x - cx;
        const dy = y - cy;
        const u = (dx * c + dy * s) / a;
        const v = (-dx * s + dy * c) / b;
        return u * u + v * v <= 1;
      },
    };
  }
  if (kind === 1) {
    // Star-shaped polygon: vertices at sorted angles with random radii.
    const k = rng.randint(3, 8);
    const pts: [number, number][] = [];
    const angles = Array.from({ length: k }, () => rng.uniform(0, 2 * Math.PI)).sort((p, q) => p - q);
    for (const ang of angles) {
      const r = rng.uniform(0.1, 0.45) * size;
      pts.push([cx + r * Math.cos(ang), cy + r * Math.sin(ang)]);
    }
    return {
      cls,
      inside: (x, y) => {
        let inside = false;
        for (let i = 0, j = k - 1; i < k; j = i++) {
          const [xi, yi] = pts[i];
          const [xj, yj] = pts[j];
          if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
        }
        return inside;
      },
    };
  }
  // Band between two parallel lines through (cx, cy).
  const th = rng.uniform(0, Math.PI);
  const half = rng.uniform(0.05, 0.18) * size;
  const nx = Math.cos(th);
  const ny = Math.sin(th);
  return { cls, inside: (x, y) => Math.abs((x - cx) * nx + (y - cy) * ny) <= half };
}

/**
 * Generate one scene (image + label) from an RNG. Labels are 0 = other, 1..C (scene 'ade'), or
 * 0..C-1 with no other (scene 'full').
 */
export function generateScene(
  rng: Rng,
  height: number,
  width: number,
  styles: readonly ClassStyle[],
  scene: SceneKind = 'ade',
): { img: RgbImage; label: LabelMap } {
  const C = styles.length;
  const full = scene === 'full';
  const label = makeLabel(height, width);
  // Background: a class 70% of the time, "other" (0) otherwise ('full': always a class).
  const bg = full || rng.random() < 0.7 ? rng.randint(1, C + 1) : 0;
  label.data.fill(bg);
  const nShapes = rng.randint(2, 7);
  const shapes: Shape[] = [];
  for (let i = 0; i < nShapes; i++) {
    // 1 in 6 shapes is "other", so ignore regions appear inside scenes too ('ade' only).
    const cls = !full && rng.random() < 1 / 6 ? 0 : rng.randint(1, C + 1);
    shapes.push(randomShape(rng, height, width, cls));
  }
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (const s of shapes) if (s.inside(x + 0.5, y + 0.5)) label.data[y * width + x] = s.cls;
    }
  }
  // Per-image jitter: brightness per class and texture phase.
  const jitter = Array.from({ length: C + 1 }, () => rng.uniform(-20, 20));
  const ox = rng.randint(64);
  const oy = rng.randint(64);
  // "Other": low-frequency noise from a coarse random grid, bilinearly interpolated.
  const gs = 16;
  const gh = Math.ceil(height / gs) + 2;
  const gw = Math.ceil(width / gs) + 2;
  const grid = Float64Array.from({ length: gh * gw }, () => rng.uniform(-1, 1));
  const img = makeImage(height, width);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const cls = label.data[y * width + x];
      const noise = rng.uniform(-12, 12);
      let r: number;
      let g: number;
      let b: number;
      if (cls === 0) {
        const fy = y / gs;
        const fx = x / gs;
        const y0 = Math.floor(fy);
        const x0 = Math.floor(fx);
        const ty = fy - y0;
        const tx = fx - x0;
        const v =
          (1 - ty) * ((1 - tx) * grid[y0 * gw + x0] + tx * grid[y0 * gw + x0 + 1]) +
          ty * ((1 - tx) * grid[(y0 + 1) * gw + x0] + tx * grid[(y0 + 1) * gw + x0 + 1]);
        const base = 110 + 50 * v + jitter[0];
        r = base + 15;
        g = base;
        b = base - 20;
      } else {
        const st = styles[cls - 1];
        const t = textureValue(st.pattern, st.period, x + ox, y + oy) * st.amplitude + jitter[cls];
        [r, g, b] = [st.colour[0] + t, st.colour[1] + t, st.colour[2] + t];
      }
      const o = (y * width + x) * 3;
      img.data[o] = clampByte(r + noise);
      img.data[o + 1] = clampByte(g + noise);
      img.data[o + 2] = clampByte(b + noise);
    }
  }
  if (full) for (let i = 0; i < label.data.length; i++) label.data[i] -= 1;
  return { img, label };
}

function clampByte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}

export function syntheticName(i: number): string {
  return `synth_${String(i).padStart(6, '0')}`;
}

/** Write a synthetic dataset to `root`. */
export async function makeSyntheticDataset(root: string, opts: SyntheticOptions = {}): Promise<SyntheticSummary> {
  const n = opts.n ?? 200;
  const height = opts.height ?? 256;
  const width = opts.width ?? 320;
  const classes = opts.classes ?? 8;
  const seed = opts.seed ?? 0;
  const quality = opts.jpegQuality ?? 90;
  const scene = opts.scene ?? 'ade';
  if (scene !== 'ade' && scene !== 'full') {
    throw new Error(`synthetic dataset: scene must be 'ade' or 'full', got ${JSON.stringify(scene)}`);
  }
  const val = opts.splitVal ?? (n > 1 ? Math.max(1, Math.floor(n / 5)) : 0);
  const int = (v: number, what: string, lo: number, hi: number): void => {
    if (!Number.isInteger(v) || v < lo || v > hi)
      throw new Error(`synthetic dataset: ${what} must be an integer in [${lo}, ${hi}], got ${v}`);
  };
  int(n, 'n', 1, 1e7);
  int(height, 'height', 8, 16384);
  int(width, 'width', 8, 16384);
  int(classes, 'classes', 1, 254);
  int(seed, 'seed', 0, Number.MAX_SAFE_INTEGER);
  int(val, 'split-val', 0, n);
  int(quality, 'jpeg quality', 1, 100);

  const styles = classStyles(classes);
  const train = n - val;
  for (const split of ['training', 'validation']) {
    await fs.mkdir(path.join(root, 'images', split), { recursive: true });
    await fs.mkdir(path.join(root, 'annotations', split), { recursive: true });
  }
  for (let i = 0; i < n; i++) {
    const split = i < train ? 'training' : 'validation';
    const rng = new Rng(deriveSeed(seed, i));
    const { img, label } = generateScene(rng, height, width, styles, scene);
    const name = syntheticName(i);
    await writeFileAtomic(path.join(root, 'images', split, `${name}.jpg`), await encodeImage(img, 'jpeg', { quality }));
    await writeFileAtomic(
      path.join(root, 'annotations', split, `${name}.png`),
      encodePngLabel(label.data, height, width),
    );
    opts.onProgress?.(i + 1, n);
  }
  const meta = {
    classes: styles.map((s) => s.name),
    palette: styles.map((s) => s.colour),
    reduce_zero_label: scene === 'ade',
    note:
      scene === 'ade'
        ? 'label value 0 = other (ignored with reduce_zero_label); value k = classes[k - 1]'
        : 'every pixel is a class: label value k = classes[k] (no reduce_zero_label)',
    generator: {
      seed,
      n,
      height,
      width,
      classes,
      split_val: val,
      jpeg_quality: quality,
      ...(scene === 'ade' ? {} : { scene }),
    },
  };
  await writeFileAtomic(path.join(root, 'metainfo.json'), Buffer.from(`${JSON.stringify(meta, null, 2)}\n`));
  return { root, train, val, classes: meta.classes };
}
