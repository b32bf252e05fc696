/**
 * Hugging Face transformers BEiT state dicts <-> mmseg segmentor state dicts.
 *
 * The HF names, read from transformers' modeling_beit.py (BeitForSemanticSegmentation):
 *   beit.embeddings.{cls_token, mask_token, position_embeddings, patch_embeddings.projection.*}
 *   beit.encoder.layer.{i}.{layernorm_before, layernorm_after, lambda_1, lambda_2,
 *     attention.attention.{query.*, key.weight, value.*, relative_position_bias.relative_position_bias_table},
 *     attention.output.dense.*, intermediate.dense.*, output.dense.*}
 *   beit.encoder.relative_position_bias.relative_position_bias_table   (shared table)
 *   fpn1.{0,1,3}.* / fpn2.0.*                                           (FPN inside the model)
 *   decode_head.{classifier, psp_modules.{j}.1, bottleneck, lateral_convs.{j}, fpn_convs.{j}, fpn_bottleneck}.*
 *   auxiliary_head.{convs.{j}, conv_cat, classifier}.*
 * HF's ConvModule (conv without bias, bn, relu) keeps mmseg's `conv`/`bn` names, so the heads
 * differ only in classifier <-> conv_seg. The backbone differs in layout: HF splits the fused
 * qkv projection into query/key/value (key without bias, so mmseg's q_bias/v_bias are the query
 * and value biases), and calls layer scale lambda_1/lambda_2 (mmseg: gamma_1/gamma_2).
 *
 * Everything here is renaming and byte concatenation: no value is recomputed, except where a
 * table or a layer-scale vector has to be made (reported in `added`).
 */
import { fromFloat64, toFloat64 } from '../formats/float_convert.js';
import { byteLength, type HostTensor } from '../../common/host_tensor.js';
import type { ConversionReport } from './beit2mmseg.js';

/** True when the keys are HF transformers BEiT names (beit.embeddings / beit.encoder). */
export function isHfBeitStateDict(sd: Map<string, unknown>): boolean {
  for (const k of sd.keys()) if (/^beit\.(embeddings|encoder)\./.test(k)) return true;
  return false;
}

/** What the HF checkpoint must look like for the map (from its config.json). */
export interface HfKeyMapOptions {
  numLayers: number;
  /** HF `use_auxiliary_head`. */
  auxiliaryHead: boolean;
}

export interface HfConversionResult {
  stateDict: Map<string, HostTensor>;
  report: ConversionReport;
}

const HEAD_RENAMES: [RegExp, string][] = [
  [/^fpn1\.([013])\.(.+)$/, 'neck.upsample_4x.$1.$2'],
  [/^fpn2\.0\.(.+)$/, 'neck.upsample_2x.0.$1'],
  [/^(decode_head|auxiliary_head)\.classifier\.(weight|bias)$/, '$1.conv_seg.$2'],
  [
    /^decode_head\.((psp_modules\.\d+\.1|bottleneck|lateral_convs\.\d+|fpn_convs\.\d+|fpn_bottleneck)\.(conv|bn)\..+)$/,
    'decode_head.$1',
  ],
  [/^auxiliary_head\.((convs\.\d+|conv_cat)\.(conv|bn)\..+)$/, 'auxiliary_head.$1'],
];

/** Per-layer HF suffix -> mmseg suffix, for the tensors that map one to one. */
const LAYER_RENAMES: Record<string, string> = {
  'layernorm_before.weight': 'ln1.weight',
  'layernorm_before.bias': 'ln1.bias',
  'layernorm_after.weight': 'ln2.weight',
  'layernorm_after.bias': 'ln2.bias',
  lambda_1: 'gamma_1',
  lambda_2: 'gamma_2',
  'attention.attention.query.bias': 'attn.q_bias',
  'attention.attention.value.bias': 'attn.v_bias',
  'attention.attention.relative_position_bias.relative_position_bias_table': 'attn.relative_position_bias_table',
  'attention.output.dense.weight': 'attn.proj.weight',
  'attention.output.dense.bias': 'attn.proj.bias',
  'intermediate.dense.weight': 'ffn.layers.0.0.weight',
  'intermediate.dense.bias': 'ffn.layers.0.0.bias',
  'output.dense.weight': 'ffn.layers.1.weight',
  'output.dense.bias': 'ffn.layers.1.bias',
};
const QKV = ['query', 'key', 'value'] as const;
const SHARED_TABLE = 'beit.encoder.relative_position_bias.relative_position_bias_table';

/** Keys HF checkpoints may hold that the segmentation forward never reads, with the reason. */
function unusedHfKeyReason(k: string): string | null {
  if (/relative_position_index$/.test(k)) return 'relative position index buffer (recomputed from the window)';
  if (k === 'beit.embeddings.mask_token') return 'mask token of masked-image-modeling pretraining';
  if (/^beit\.layernorm\./.test(k))
    return 'final LayerNorm: BeitForSemanticSegmentation reads the hidden states before it';
  if (/^beit\.pooler\./.test(k)) return 'pooler of the classification model';
  if (/^(classifier|lm_head|layernorm)\./.test(k)) return 'classification / masked-image-modeling head';
  return null;
}

/** Concatenates tensors along dim 0 (contiguous row-major: their bytes in sequence). */
function cat0(parts: HostTensor[], what: string): HostTensor {
  const first = parts[0]!;
  for (const p of parts) {
    if (
      p.dtype !== first.dtype ||
      p.shape.length !== first.shape.length ||
      p.shape.slice(1).join() !== first.shape.slice(1).join()
    ) {
      throw new Error(
        `${what}: query/key/value shapes or dtypes differ (${parts.map((q) => `${q.dtype}[${q.shape}]`).join(', ')})`,
      );
    }
  }
  const data = new Uint8Array(parts.reduce((n, p) => n + p.data.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    data.set(p.data, at);
    at += p.data.byteLength;
  }
  return { dtype: first.dtype, shape: [parts.reduce((n, p) => n + p.shape[0]!, 0), ...first.shape.slice(1)], data };
}

/** Rows [start, start + rows) of a tensor along dim 0, sharing its bytes. */
function rows0(t: HostTensor, start: number, rows: number): HostTensor {
  const rowBytes = byteLength({ dtype: t.dtype, shape: [1, ...t.shape.slice(1)] });
  return {
    dtype: t.dtype,
    shape: [rows, ...t.shape.slice(1)],
    data: t.data.subarray(start * rowBytes, (start + rows) * rowBytes),
  };
}

function filled(like: HostTensor, value: number): HostTensor {
  return fromFloat64(
    new Float64Array(like.shape.reduce((a, b) => a * b, 1)).fill(value),
    like.shape.slice(),
    like.dtype,
  );
}

function sum(a: HostTensor, b: HostTensor, what: string): HostTensor {
  if (a.shape.join() !== b.shape.join()) throw new Error(`${what}: shapes [${a.shape}] and [${b.shape}] differ`);
  const x = toFloat64(a),
    y = toFloat64(b);
  return fromFloat64(
    x.map((v, i) => v + y[i]!),
    a.shape.slice(),
    a.dtype,
  );
}

function layerIndexOf(k: string): number | null {
  const m = /^beit\.encoder\.layer\.(\d+)\./.exec(k);
  return m ? Number(m[1]) : null;
}

/**
 * HF BeitForSemanticSegmentation state dict -> mmseg segmentor state dict (backbone./neck./
 * decode_head./auxiliary_head.). Throws, naming the keys, on anything that would make the two
 * models compute different things (absolute position embeddings, a key bias, unknown keys).
 */
export function hfBeitToMmseg(
  sd: Map<string, HostTensor>,
  opts: HfKeyMapOptions,
  label = 'checkpoint',
): HfConversionResult {
  const report: ConversionReport = { layout: 'hf-transformers', renamed: [], dropped: [], added: [], unused: [] };
  const out = new Map<string, HostTensor>();
  const unknown: string[] = [];
  const perLayer = new Map<number, Map<string, HostTensor>>();
  const take = (k: string, v: HostTensor, nk: string) => {
    out.set(nk, v);
    report.renamed.push([k, nk]);
  };

  if (sd.has('beit.embeddings.position_embeddings')) {
    throw new Error(
      `${label}: beit.embeddings.position_embeddings: absolute position embeddings ` +
        "(use_absolute_position_embeddings=true) have no counterpart in mmseg's BEiT, " +
        'which uses relative position bias only',
    );
  }
  for (const [k, v] of sd) {
    const reason = unusedHfKeyReason(k);
    if (reason !== null) {
      report.dropped.push({ key: k, reason });
      continue;
    }
    if (k === 'beit.embeddings.cls_token') {
      take(k, v, 'backbone.cls_token');
      continue;
    }
    const pe = /^beit\.embeddings\.patch_embeddings\.projection\.(weight|bias)$/.exec(k);
    if (pe) {
      take(k, v, `backbone.patch_embed.projection.${pe[1]}`);
      continue;
    }
    if (k === SHARED_TABLE) continue; // expanded below
    const i = layerIndexOf(k);
    if (i !== null) {
      if (i >= opts.numLayers) {
        unknown.push(k);
        continue;
      }
      const suffix = k.slice(`beit.encoder.layer.${i}.`.length);
      if (!perLayer.has(i)) perLayer.set(i, new Map());
      perLayer.get(i)!.set(suffix, v);
      continue;
    }
    const head = HEAD_RENAMES.find(([re]) => re.test(k));
    if (head) {
      if (!opts.auxiliaryHead && k.startsWith('auxiliary_head.')) {
        unknown.push(k);
        continue;
      }
      take(k, v, k.replace(head[0], head[1]));
      continue;
    }
    unknown.push(k);
  }
  if (unknown.length) {
    throw new Error(
      `${label}: ${unknown.length} key(s) the HF BeitForSemanticSegmentation layout does not have ` +
        `(config.json and weights disagree?): ${unknown.slice(0, 8).join(', ')}${unknown.length > 8 ? ', ...' : ''}`,
    );
  }
  const shared = sd.get(SHARED_TABLE);
  if (shared)
    report.dropped.push({ key: SHARED_TABLE, reason: "shared relative position bias, added to every layer's table" });
  for (let i = 0; i < opts.numLayers; i++) convertLayer(i, perLayer.get(i) ?? new Map(), shared, out, report, label);
  return { stateDict: out, report };
}

function convertLayer(
  i: number,
  layer: Map<string, HostTensor>,
  shared: HostTensor | undefined,
  out: Map<string, HostTensor>,
  report: ConversionReport,
  label: string,
): void {
  const hf = (s: string) => `beit.encoder.layer.${i}.${s}`;
  const mm = (s: string) => `backbone.layers.${i}.${s}`;
  const attn = 'attention.attention.';
  if (layer.has(`${attn}key.bias`)) {
    throw new Error(
      `${label}: ${hf(`${attn}key.bias`)}: HF BEiT's key projection has no bias and mmseg's has none either; ` +
        'a checkpoint with one is not a BEiT',
    );
  }
  const qkv = QKV.map((n) => layer.get(`${attn}${n}.weight`));
  if (qkv.some((t) => t === undefined))
    throw new Error(`${label}: layer ${i}: query/key/value weights missing (${hf(`${attn}query.weight`)} ...)`);
  out.set(mm('attn.qkv.weight'), cat0(qkv as HostTensor[], hf(attn)));
  for (const n of QKV) report.renamed.push([hf(`${attn}${n}.weight`), mm('attn.qkv.weight')]);
  for (const [suffix, target] of Object.entries(LAYER_RENAMES)) {
    const v = layer.get(suffix);
    if (v === undefined) continue;
    out.set(mm(target), v);
    report.renamed.push([hf(suffix), mm(target)]);
  }
  const unexpected = [...layer.keys()].filter(
    (s) => !(s in LAYER_RENAMES) && !QKV.some((n) => s === `${attn}${n}.weight`),
  );
  if (unexpected.length) throw new Error(`${label}: unknown key(s) in layer ${i}: ${unexpected.map(hf).join(', ')}`);
  const missing = Object.entries(LAYER_RENAMES)
    .filter(([s]) => !layer.has(s) && !/^lambda_|relative_position_bias_table$/.test(s))
    .map(([s]) => hf(s));
  if (missing.length) throw new Error(`${label}: missing key(s): ${missing.join(', ')}`);
  const weight = out.get(mm('ln1.weight'))!;
  for (const g of ['gamma_1', 'gamma_2']) {
    if (out.has(mm(g))) continue;
    out.set(mm(g), filled(weight, 1));
    report.added.push({ key: mm(g), reason: 'ones: no lambda (layer_scale_init_value=0), so no layer scale' });
  }
  const tableKey = mm('attn.relative_position_bias_table');
  const own = out.get(tableKey);
  if (own && shared) {
    out.set(tableKey, sum(own, shared, tableKey));
    report.added.push({ key: tableKey, reason: 'layer table + shared table (HF adds both biases)' });
  } else if (shared) {
    out.set(tableKey, shared);
    report.added.push({ key: tableKey, reason: `copy of ${SHARED_TABLE}` });
  }
  // Neither table: HF adds no bias; mmseg's table of zeros adds zero. Made by the caller,
  // which knows the window (addZeroRelPosTables), because the table size depends on it.
}

/** Zero tables for models without any relative position bias (HF use_relative_position_bias=false, not shared). */
export function addZeroRelPosTables(
  out: Map<string, HostTensor>,
  report: ConversionReport,
  numLayers: number,
  rows: number,
  heads: number,
): void {
  for (let i = 0; i < numLayers; i++) {
    const key = `backbone.layers.${i}.attn.relative_position_bias_table`;
    if (out.has(key)) continue;
    out.set(key, fromFloat64(new Float64Array(rows * heads), [rows, heads], 'float32'));
    report.added.push({ key, reason: 'zeros: the HF model has no relative position bias' });
  }
}

/**
 * mmseg segmentor state dict -> HF BeitForSemanticSegmentation names (the inverse map; the
 * qkv weight is split into query/key/value views of the same bytes). mmseg-only buffers
 * (relative_position_index) are left out, as HF recomputes them.
 */
export function mmsegToHfBeit(sd: Map<string, HostTensor>): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  const inverseLayer = new Map(Object.entries(LAYER_RENAMES).map(([hf, mm]) => [mm, hf]));
  for (const [k, v] of sd) {
    if (/relative_position_index$/.test(k)) continue;
    if (k === 'backbone.cls_token') {
      out.set('beit.embeddings.cls_token', v);
      continue;
    }
    const pe = /^backbone\.patch_embed\.projection\.(weight|bias)$/.exec(k);
    if (pe) {
      out.set(`beit.embeddings.patch_embeddings.projection.${pe[1]}`, v);
      continue;
    }
    const layer = /^backbone\.layers\.(\d+)\.(.+)$/.exec(k);
    if (layer) {
      const [, i, suffix] = layer;
      const prefix = `beit.encoder.layer.${i}.`;
      if (suffix === 'attn.qkv.weight') {
        const c = v.shape[0]! / 3;
        QKV.forEach((n, j) => out.set(`${prefix}attention.attention.${n}.weight`, rows0(v, j * c, c)));
        continue;
      }
      const hf = inverseLayer.get(suffix!);
      if (hf === undefined) throw new Error(`mmsegToHfBeit: ${k} has no HF counterpart`);
      out.set(prefix + hf, v);
      continue;
    }
    let m = /^neck\.upsample_4x\.([013])\.(.+)$/.exec(k);
    if (m) {
      out.set(`fpn1.${m[1]}.${m[2]}`, v);
      continue;
    }
    m = /^neck\.upsample_2x\.0\.(.+)$/.exec(k);
    if (m) {
      out.set(`fpn2.0.${m[1]}`, v);
      continue;
    }
    m = /^(decode_head|auxiliary_head)\.conv_seg\.(weight|bias)$/.exec(k);
    if (m) {
      out.set(`${m[1]}.classifier.${m[2]}`, v);
      continue;
    }
    if (/^(decode_head|auxiliary_head)\./.test(k)) {
      out.set(k, v);
      continue;
    }
    throw new Error(`mmsegToHfBeit: ${k} has no HF counterpart`);
  }
  return out;
}
