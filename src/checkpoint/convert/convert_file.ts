/**
 * The `convert` command's work: read any supported BEiT checkpoint, rename it to mmseg keys,
 * optionally resize the relative-position tables to the target window, and write safetensors
 * (or, for a .pth/.pt destination, a torch.save checkpoint {'meta', 'state_dict'} as mmseg
 * writes them) atomically. Image checkpoints (official, pretraining, already converted) come out
 * at backbone level, named as mmseg's beit2mmseg names them but without its patch_embed
 * duplicate; unilm ADE20K, Hugging Face BEiT (with config.json) and mmseg segmentor checkpoints
 * come out as full segmentor state dicts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { HostTensor } from '../../common/host_tensor.js';
import { readCheckpoint, type CheckpointDescription } from '../read_checkpoint.js';
import { convertCheckpoint, toMmsegBackbone, detectLayout, type ConversionReport } from './beit2mmseg.js';
import { resizeRelPosTables, type ResizeTablesResult } from './relpos_resize.js';
import { writeSafetensors } from '../formats/safetensors.js';
import { convertHfBeit, type HfBeitConversion } from './hf_beit.js';
import { writeTorchCheckpoint } from '../formats/pth_writer.js';
import type { PickleValue } from '../formats/pickle_writer.js';
import { stateDictStats, type StateDictStats } from '../param_stats.js';
import type { PthReadOptions } from '../formats/pth.js';

export interface ConvertFileOptions extends PthReadOptions {
  /** Target image size (square); the window is imgSize / patchSize. */
  imgSize?: number;
  /** Target window (patch grid) [H, W]; alternative to imgSize. */
  window?: [number, number];
  /** Patch size used with imgSize (BEiT: 16). */
  patchSize?: number;
  /** Overwrite an existing destination. */
  force?: boolean;
  /** Output format; by default .pth/.pt/.bin destinations get torch.save's format, others safetensors. */
  outputFormat?: 'safetensors' | 'pth';
  /** Extra entries for a .pth's 'meta' dict (e.g. dataset_meta {classes, palette}, read by mmseg's init_model). */
  meta?: { [key: string]: PickleValue };
}

export interface ConvertFileSummary {
  src: string;
  dst: string;
  source: CheckpointDescription;
  /** 'backbone': keys as mmseg's BEiT backbone (no prefix); 'segmentor': full mmseg segmentor keys. */
  level: 'backbone' | 'segmentor';
  report: ConversionReport;
  window: [number, number] | null;
  resized: ResizeTablesResult['resized'];
  droppedIndex: string[];
  stats: StateDictStats;
  format: 'safetensors' | 'pth';
  /** Hugging Face input: how config.json was carried over, and the mmseg model section it makes. */
  hf?: Pick<HfBeitConversion, 'notes' | 'mmsegModel'>;
}

/** The output format for `dst`: torch.save's for .pth/.pt/.bin, safetensors otherwise. */
export function outputFormatOf(dst: string, given?: 'safetensors' | 'pth'): 'safetensors' | 'pth' {
  return given ?? (/\.(pth|pt|bin)$/i.test(dst) ? 'pth' : 'safetensors');
}

/** Resolves --img-size / --window into a window, validating them. */
export function targetWindow(
  opts: Pick<ConvertFileOptions, 'imgSize' | 'window' | 'patchSize'>,
): [number, number] | null {
  if (opts.imgSize !== undefined && opts.window !== undefined)
    throw new Error('give either an image size or a window, not both');
  if (opts.window !== undefined) {
    if (opts.window.length !== 2 || !opts.window.every((w) => Number.isInteger(w) && w >= 1)) {
      throw new Error(`window must be two positive integers, got ${opts.window.join(' ')}`);
    }
    return [opts.window[0], opts.window[1]];
  }
  if (opts.imgSize !== undefined) {
    const p = opts.patchSize ?? 16;
    if (!Number.isInteger(opts.imgSize) || opts.imgSize < p || opts.imgSize % p !== 0) {
      throw new Error(`image size must be a positive multiple of the patch size ${p}, got ${opts.imgSize}`);
    }
    return [opts.imgSize / p, opts.imgSize / p];
  }
  return null;
}

/** Converts `src` to mmseg-keyed safetensors at `dst`; returns what was done. */
export async function convertFile(
  src: string,
  dst: string,
  opts: ConvertFileOptions = {},
): Promise<ConvertFileSummary> {
  const window = targetWindow(opts);
  if (fs.existsSync(dst) && !opts.force) throw new Error(`${dst} already exists (use --force to overwrite)`);
  const { stateDict: input, description } = await readCheckpoint(src, opts);

  const hf = description.hfConfig ? convertHfBeit(input, description.hfConfig, description.file) : null;
  const layout = hf ? 'hf-transformers' : detectLayout(input);
  const level = layout === 'unilm-ade' || layout === 'mmseg-segmentor' || hf ? 'segmentor' : 'backbone';
  const converted = hf ?? (level === 'segmentor' ? convertCheckpoint(input) : toMmsegBackbone(input));

  let out: Map<string, HostTensor> = converted.stateDict;
  let resized: ResizeTablesResult['resized'] = [];
  let droppedIndex: string[] = [];
  if (window !== null) {
    const r = resizeRelPosTables(out, window);
    out = r.stateDict;
    resized = r.resized;
    droppedIndex = r.droppedIndex;
  }
  const metadata: Record<string, string> = {
    format: 'pt',
    source: path.basename(src),
    layout,
    level,
    converter: 'beitseg convert',
  };
  if (window !== null) metadata.window = `${window[0]}x${window[1]}`;
  if (hf?.mmsegModel) metadata.mmseg_model = JSON.stringify(hf.mmsegModel);
  const format = outputFormatOf(dst, opts.outputFormat);
  if (format === 'pth') writeTorchCheckpoint(dst, out, pthMeta(metadata, description, opts.meta));
  else writeSafetensors(dst, out, metadata);
  return {
    src,
    dst,
    source: description,
    level,
    report: converted.report,
    window,
    resized,
    droppedIndex,
    stats: stateDictStats(out),
    format,
    ...(hf ? { hf: { notes: hf.notes, mmsegModel: hf.mmsegModel } } : {}),
  };
}

/** The 'meta' dict of a .pth: where it came from, the source's iteration, and what the caller adds. */
function pthMeta(
  metadata: Record<string, string>,
  source: CheckpointDescription,
  extra: { [key: string]: PickleValue } = {},
): { [key: string]: PickleValue } {
  const meta: { [key: string]: PickleValue } = {
    converter: 'beitseg convert',
    source: metadata.source!,
    layout: metadata.layout!,
  };
  const iteration = Number(source.metadata.iteration);
  if (Number.isInteger(iteration)) meta.iter = iteration;
  if (metadata.window) meta.window = metadata.window;
  return { ...meta, ...extra };
}
