/**
 * The size of a segmentor from its checked config, before any tensor exists: parameters and the
 * bytes they and the large buffers take (float32 parameters; each attention layer's int64
 * relative position index, which grows with the fourth power of img_size / patch_size). A
 * config that would not fit in memory is refused here with one line naming the part and its
 * fields, instead of aborting in the allocator minutes later (issue 25.5).
 */
import os from 'node:os';
import type { BEiTConfig } from './backbones/beit.js';
import { numRelativeDistance } from './backbones/rel_pos.js';
import { ConfigError } from '../config/schema.js';
import type { DecodeHeadConfig } from './decode_heads/decode_head.js';
import type { FCNHeadConfig } from './decode_heads/fcn_head.js';
import type { UPerHeadConfig } from './decode_heads/uper_head.js';
import type { Feature2PyramidConfig } from './necks/feature2pyramid.js';

export interface PartSize {
  /** The config path of the part: model.backbone, model.neck, model.decode_head, model.auxiliary_head. */
  path: string;
  params: number;
  bytes: number;
  /** The fields that set the size, for the error message. */
  fields: string;
}

export type HeadSpec = { type: 'UPerHead'; cfg: UPerHeadConfig } | { type: 'FCNHead'; cfg: FCNHeadConfig };

const FLOAT = 4;
const INT64 = 8;

const linear = (i: number, o: number, bias = true): number => i * o + (bias ? o : 0);
/** Conv without bias + BatchNorm (weight, bias; running mean and var are buffers). */
const convModule = (i: number, o: number, k: number): number => i * o * k * k + 2 * o;

export function backboneSize(c: BEiTConfig): PartSize {
  const d = c.embed_dims;
  const img = typeof c.img_size === 'number' ? [c.img_size, c.img_size] : c.img_size;
  const wh = Math.floor(img[0] / c.patch_size);
  const ww = Math.floor(img[1] / c.patch_size);
  const hidden = Math.floor(d * c.mlp_ratio);
  const perLayer =
    4 * d + // ln1, ln2
    linear(d, 3 * d, false) +
    (c.qv_bias ? 2 * d : 0) +
    numRelativeDistance(wh, ww) * c.num_heads +
    linear(d, d) +
    linear(d, hidden) +
    linear(hidden, d) +
    2 * d; // gamma_1, gamma_2
  const params =
    c.in_channels * d * c.patch_size * c.patch_size + d + d + c.num_layers * perLayer + (c.final_norm ? 2 * d : 0);
  const tokens = wh * ww + 1;
  const indexBytes = c.num_layers * tokens * tokens * INT64;
  return {
    path: 'model.backbone',
    params,
    bytes: params * FLOAT + indexBytes,
    fields:
      `num_layers ${c.num_layers}, embed_dims ${d}, mlp_ratio ${c.mlp_ratio}, ` +
      `img_size ${JSON.stringify(c.img_size)}, patch_size ${c.patch_size}`,
  };
}

export function neckSize(n: Feature2PyramidConfig): PartSize {
  const c = n.embed_dim;
  const convT = c * c * 4 + c;
  let params = 0;
  for (const r of n.rescales) {
    if (r === 4) params += 2 * convT + 2 * c;
    else if (r === 2) params += convT;
  }
  return { path: 'model.neck', params, bytes: params * FLOAT, fields: `embed_dim ${c}` };
}

export function headSize(spec: HeadSpec, path: string): PartSize {
  const h: DecodeHeadConfig = spec.cfg;
  const ins = Array.isArray(h.in_channels) ? h.in_channels : [h.in_channels];
  const ch = h.channels;
  let params = linear(ch, h.num_classes); // conv_seg
  if (spec.type === 'UPerHead') {
    const last = ins[ins.length - 1];
    const scales = spec.cfg.pool_scales.length;
    params += scales * convModule(last, ch, 1) + convModule(last + scales * ch, ch, 3);
    for (const c of ins.slice(0, -1)) params += convModule(c, ch, 1) + convModule(ch, ch, 3);
    params += convModule(ins.length * ch, ch, 3);
  } else {
    const f = spec.cfg;
    for (let i = 0; i < f.num_convs; i++) params += convModule(i === 0 ? ins[0] : ch, ch, f.kernel_size);
    if (f.concat_input) params += convModule(ins[0] + ch, ch, f.kernel_size);
  }
  return {
    path,
    params,
    bytes: params * FLOAT,
    fields: `channels ${ch}, num_classes ${h.num_classes}, in_channels ${JSON.stringify(h.in_channels)}`,
  };
}

export const MAX_MODEL_BYTES_ENV = 'BEITSEG_MAX_MODEL_BYTES';

/**
 * The memory a model may take: BEITSEG_MAX_MODEL_BYTES, else this machine's memory (its cgroup
 * limit where lower).
 */
export function modelMemoryLimit(): { bytes: number; source: string } {
  const raw = process.env[MAX_MODEL_BYTES_ENV];
  if (raw !== undefined && raw !== '') {
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n <= 0) {
      throw new Error(`${MAX_MODEL_BYTES_ENV}=${raw}: must be a positive integer (bytes)`);
    }
    return { bytes: n, source: MAX_MODEL_BYTES_ENV };
  }
  const total = os.totalmem();
  const constrained = process.constrainedMemory?.() ?? 0;
  return constrained > 0 && constrained < total
    ? { bytes: constrained, source: "this process's memory limit (cgroup)" }
    : { bytes: total, source: "this machine's memory" };
}

const gb = (b: number): string => `${(b / 2 ** 30).toFixed(b < 2 ** 30 ? 3 : 1)} GiB`;

/** Refuses parts whose sum is over the memory limit, naming the largest part and its fields. */
export function checkModelSize(parts: PartSize[], limit = modelMemoryLimit()): void {
  const bytes = parts.reduce((s, p) => s + p.bytes, 0);
  if (bytes <= limit.bytes) return;
  const params = parts.reduce((s, p) => s + p.params, 0);
  const largest = parts.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  throw new ConfigError(
    `model: about ${params.toExponential(2)} parameters and ${gb(bytes)} before any activation, more than ` +
      `${limit.source} (${gb(limit.bytes)}); the largest part is ${largest.path} (${largest.fields}: ` +
      `${gb(largest.bytes)})`,
  );
}
