/**
 * What an exported model carries besides its graph (ONNX metadata_props, key "beitseg"): the
 * classes, palette, normalisation, test Resize scale, test_cfg and TTA, so that an .onnx file
 * alone is enough to predict. Plain data, no tensors: the browser bundle reads it too.
 */
export const META_KEY = 'beitseg';
export const META_FORMAT = 'beitseg-onnx/1';

/** Whether a --weights argument names an exported ONNX model (by its extension). */
export function isOnnxFile(file: string | null | undefined): boolean {
  return typeof file === 'string' && /\.onnx$/i.test(file);
}

export interface ModelMeta {
  format: typeof META_FORMAT;
  classes: string[];
  palette: [number, number, number][];
  mean: [number, number, number];
  std: [number, number, number];
  /** Test Resize scale (w, h) with keep_ratio, or null: images are fed at their own size. */
  scale: [number, number] | null;
  testCfg: { mode: 'whole' | 'slide'; crop_size?: [number, number]; stride?: [number, number] };
  alignCorners: boolean;
  numClasses: number;
  /** The graph's input: a fixed window ([h, w]) or any size (null). */
  window: [number, number] | null;
  /** The config's tta_pipeline (scale factors of the loaded image, flip), or null. */
  tta: { scales: number[]; flip: boolean } | null;
  precision: 'fp32' | 'fp16' | 'int8';
  opset: number;
}

function fail(file: string, what: string): never {
  throw new Error(`${file}: metadata "${META_KEY}" ${what}`);
}

function numbers(v: unknown, n: number, file: string, key: string): number[] {
  if (!Array.isArray(v) || v.length !== n || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    fail(file, `.${key} must be ${n} numbers`);
  }
  return v as number[];
}

/** Parses and checks the metadata JSON; every problem is one line naming the field. */
export function parseModelMeta(json: string | undefined, file: string): ModelMeta {
  if (json === undefined) {
    throw new Error(
      `${file}: not a beitseg export (no "${META_KEY}" metadata_props entry); export it with beitseg export`,
    );
  }
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(json);
  } catch {
    fail(file, 'is not valid JSON');
  }
  if (m.format !== META_FORMAT) fail(file, `.format is ${JSON.stringify(m.format)}, expected "${META_FORMAT}"`);
  const classes = m.classes;
  if (!Array.isArray(classes) || !classes.every((c) => typeof c === 'string')) fail(file, '.classes must be strings');
  if (m.numClasses !== classes.length) fail(file, `.numClasses (${m.numClasses}) is not the class count`);
  const palette = m.palette;
  if (!Array.isArray(palette) || palette.length !== classes.length) fail(file, '.palette must have a colour per class');
  palette.forEach((c, i) => numbers(c, 3, file, `palette[${i}]`));
  numbers(m.mean, 3, file, 'mean');
  numbers(m.std, 3, file, 'std');
  if (m.scale !== null) numbers(m.scale, 2, file, 'scale');
  if (m.window !== null) numbers(m.window, 2, file, 'window');
  const t = m.testCfg as ModelMeta['testCfg'] | undefined;
  if (!t || (t.mode !== 'whole' && t.mode !== 'slide')) fail(file, '.testCfg.mode must be "whole" or "slide"');
  if (t.mode === 'slide') {
    numbers(t.crop_size, 2, file, 'testCfg.crop_size');
    numbers(t.stride, 2, file, 'testCfg.stride');
  }
  return m as unknown as ModelMeta;
}
