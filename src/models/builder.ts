/**
 * Builds an EncoderDecoder from an mmseg-structured model config (`cfg.model`).
 */
import { BEiT, BEIT_DEFAULTS, type BEiTConfig } from './backbones/beit.js';
import { Feature2Pyramid, type Feature2PyramidConfig } from './necks/feature2pyramid.js';
import type { BaseDecodeHead, DecodeHeadConfig } from './decode_heads/decode_head.js';
import { FCNHead } from './decode_heads/fcn_head.js';
import { UPerHead } from './decode_heads/uper_head.js';
import { EncoderDecoder, type TestConfig } from './segmentors/encoder_decoder.js';
import {
  bool,
  checkFields,
  checkList,
  checkNumber,
  checkType,
  ConfigError,
  getDict,
  isDict,
  num,
  numIn,
  numList,
  pairIn,
  POSITIVE_INT,
  positiveIntUpTo,
  type Dict,
} from '../config/schema.js';
import { backboneSize, checkModelSize, headSize, type HeadSpec, neckSize, type PartSize } from './size.js';

/**
 * Upper bounds on the sizes a config sets, far above any published model (BEiT-L: 24 layers,
 * 1024 wide, 16 heads) and far below what would exhaust memory on one dimension alone; the
 * product of them is checked against memory in buildSegmentor.
 */
const MAX = {
  layers: 1000,
  dims: 65536,
  heads: 4096,
  patch: 4096,
  inChannels: 1024,
  imgSize: 65536,
  mlpRatio: 256,
  classes: 65536,
  poolScale: 1024,
  convs: 1000,
  kernel: 63,
} as const;

const NORM_FIELDS = ['type', 'requires_grad', 'eps', 'momentum'];

/**
 * mmseg's norm_cfg type: SyncBN (or none given: the BEiT configs' SyncBN) synchronises in a
 * distributed run; BN keeps per-rank statistics.
 */
function bnSync(d: Dict, key: string): boolean {
  const n = d[key];
  return !isDict(n) || n.type === undefined || n.type === 'SyncBN';
}

function normEps(d: Dict, key: string, path: string, types: string[], fallback: number): number {
  const n = d[key];
  if (n === undefined) return fallback;
  if (!isDict(n)) throw new ConfigError(`${path}.${key} must be an object`);
  checkFields(n, NORM_FIELDS, `${path}.${key}`);
  checkType(n, types, `${path}.${key}`);
  return numIn(n, 'eps', `${path}.${key}`, { gt: 0 }, fallback);
}

const BEIT_FIELDS = [
  'type',
  'img_size',
  'patch_size',
  'in_channels',
  'embed_dims',
  'num_layers',
  'num_heads',
  'mlp_ratio',
  'out_indices',
  'qv_bias',
  'attn_drop_rate',
  'drop_path_rate',
  'drop_rate',
  'norm_cfg',
  'act_cfg',
  'norm_eval',
  'init_values',
  'final_norm',
  'patch_norm',
  'num_fcs',
  'with_cls_token',
  'output_cls_token',
  'interpolate_mode',
  'pretrained',
  'init_cfg',
];

export function buildBEiT(d: Dict, path = 'model.backbone'): BEiT {
  return new BEiT(beitConfig(d, path));
}

/** The backbone's settings, every number checked (nothing is built). */
export function beitConfig(d: Dict, path = 'model.backbone'): BEiTConfig {
  checkType(d, ['BEiT'], path);
  checkFields(d, BEIT_FIELDS, path);
  const unsupported: [string, unknown][] = [
    ['patch_norm', false],
    ['num_fcs', 2],
    ['with_cls_token', true],
    ['output_cls_token', false],
    ['norm_eval', false],
    ['attn_drop_rate', 0],
    ['drop_rate', 0],
  ];
  for (const [k, ok] of unsupported) {
    if (d[k] !== undefined && d[k] !== ok)
      throw new ConfigError(`${path}.${k}=${JSON.stringify(d[k])} is not supported (only ${JSON.stringify(ok)})`);
  }
  if (isDict(d.act_cfg) && d.act_cfg.type !== 'GELU') throw new ConfigError(`${path}.act_cfg.type must be GELU`);
  const numLayers = numIn(d, 'num_layers', path, positiveIntUpTo(MAX.layers), BEIT_DEFAULTS.num_layers);
  const cfg: BEiTConfig = {
    img_size: pairIn(d, 'img_size', path, positiveIntUpTo(MAX.imgSize), BEIT_DEFAULTS.img_size as number),
    patch_size: numIn(d, 'patch_size', path, positiveIntUpTo(MAX.patch), BEIT_DEFAULTS.patch_size),
    in_channels: numIn(d, 'in_channels', path, positiveIntUpTo(MAX.inChannels), BEIT_DEFAULTS.in_channels),
    embed_dims: numIn(d, 'embed_dims', path, positiveIntUpTo(MAX.dims), BEIT_DEFAULTS.embed_dims),
    num_layers: numLayers,
    num_heads: numIn(d, 'num_heads', path, positiveIntUpTo(MAX.heads), BEIT_DEFAULTS.num_heads),
    mlp_ratio: numIn(d, 'mlp_ratio', path, { gt: 0, le: MAX.mlpRatio }, BEIT_DEFAULTS.mlp_ratio),
    out_indices: outIndices(d, path, numLayers),
    qv_bias: bool(d, 'qv_bias', path, BEIT_DEFAULTS.qv_bias),
    attn_drop_rate: 0,
    drop_path_rate: numIn(d, 'drop_path_rate', path, { ge: 0, lt: 1 }, BEIT_DEFAULTS.drop_path_rate),
    init_values: numIn(d, 'init_values', path, { ge: 0 }, BEIT_DEFAULTS.init_values),
    final_norm: bool(d, 'final_norm', path, BEIT_DEFAULTS.final_norm),
    norm_eps: normEps(d, 'norm_cfg', path, ['LN'], BEIT_DEFAULTS.norm_eps),
  };
  if (cfg.embed_dims % cfg.num_heads !== 0)
    throw new ConfigError(`${path}: embed_dims ${cfg.embed_dims} is not divisible by num_heads ${cfg.num_heads}`);
  const img = cfg.img_size as [number, number];
  if (cfg.patch_size > Math.min(img[0], img[1])) {
    throw new ConfigError(`${path}.patch_size ${cfg.patch_size} is larger than img_size ${JSON.stringify(img)}`);
  }
  return cfg;
}

/** out_indices: an int (-1 = the last layer, as mmseg) or a list of distinct layers in [0, num_layers). */
function outIndices(d: Dict, path: string, numLayers: number): number[] {
  const v = d.out_indices;
  const list =
    typeof v === 'number' ? [v === -1 ? numLayers - 1 : v] : numList(d, 'out_indices', path, BEIT_DEFAULTS.out_indices);
  if (!list.length) throw new ConfigError(`${path}.out_indices must not be empty`);
  checkList(list, `${path}.out_indices`, { integer: true, ge: 0, lt: numLayers });
  if (new Set(list).size !== list.length) {
    throw new ConfigError(`${path}.out_indices has repeated layers ${JSON.stringify(list)}`);
  }
  return list;
}

function neckConfig(d: Dict, path = 'model.neck'): Feature2PyramidConfig {
  checkType(d, ['Feature2Pyramid'], path);
  checkFields(d, ['type', 'embed_dim', 'rescales', 'norm_cfg'], path);
  const rescales = numList(d, 'rescales', path, [4, 2, 1, 0.5]);
  rescales.forEach((r, i) => {
    if (![4, 2, 1, 0.5, 0.25].includes(r)) {
      throw new ConfigError(`${path}.rescales[${i}] must be one of 4, 2, 1, 0.5, 0.25, got ${r}`);
    }
  });
  return {
    embed_dim: numIn(d, 'embed_dim', path, positiveIntUpTo(MAX.dims)),
    rescales,
    bn_eps: normEps(d, 'norm_cfg', path, ['SyncBN', 'BN', 'BN2d'], 1e-5),
    bn_sync: bnSync(d, 'norm_cfg'),
  };
}

const HEAD_FIELDS = [
  'type',
  'in_channels',
  'in_index',
  'channels',
  'dropout_ratio',
  'num_classes',
  'norm_cfg',
  'act_cfg',
  'align_corners',
  'loss_decode',
  'ignore_index',
  'conv_cfg',
  'init_cfg',
  'input_transform',
  'sampler',
  'out_channels',
  'threshold',
];

function loss(d: Dict, path: string): number {
  const l = d.loss_decode;
  if (l === undefined) return 1.0;
  if (!isDict(l))
    throw new ConfigError(`${path}.loss_decode must be one loss dict (lists of losses are not supported)`);
  const p = `${path}.loss_decode`;
  checkType(l, ['CrossEntropyLoss'], p);
  checkFields(
    l,
    ['type', 'use_sigmoid', 'loss_weight', 'avg_non_ignore', 'class_weight', 'reduction', 'loss_name', 'use_mask'],
    p,
  );
  if (l.use_sigmoid) throw new ConfigError(`${p}.use_sigmoid=true is not supported`);
  if (l.avg_non_ignore)
    throw new ConfigError(`${p}.avg_non_ignore=true is not supported (mmseg's BEiT configs use false)`);
  if (l.class_weight != null) throw new ConfigError(`${p}.class_weight is not supported`);
  if (l.reduction !== undefined && l.reduction !== 'mean') throw new ConfigError(`${p}.reduction must be 'mean'`);
  return numIn(l, 'loss_weight', p, { ge: 0 }, 1.0);
}

function headConfig(d: Dict, path: string): DecodeHeadConfig {
  if (isDict(d.act_cfg) && d.act_cfg.type !== 'ReLU') throw new ConfigError(`${path}.act_cfg.type must be ReLU`);
  if (d.sampler != null) throw new ConfigError(`${path}.sampler is not supported`);
  const inChannels =
    typeof d.in_channels === 'number'
      ? checkNumber(d.in_channels, `${path}.in_channels`, positiveIntUpTo(MAX.dims))
      : checkList(numList(d, 'in_channels', path), `${path}.in_channels`, positiveIntUpTo(MAX.dims));
  const inIndex =
    typeof d.in_index === 'number'
      ? checkNumber(d.in_index, `${path}.in_index`, { integer: true, ge: 0 })
      : checkList(numList(d, 'in_index', path, [0]), `${path}.in_index`, { integer: true, ge: 0 });
  const sameShape = Array.isArray(inChannels)
    ? Array.isArray(inIndex) && inChannels.length === inIndex.length
    : !Array.isArray(inIndex);
  if (!sameShape) {
    const shown = `in_channels ${JSON.stringify(inChannels)} and in_index ${JSON.stringify(inIndex)}`;
    throw new ConfigError(`${path}: ${shown} must have the same length`);
  }
  if (Array.isArray(inChannels) && !inChannels.length) throw new ConfigError(`${path}.in_channels must not be empty`);
  return {
    in_channels: inChannels,
    in_index: inIndex,
    channels: numIn(d, 'channels', path, positiveIntUpTo(MAX.dims)),
    num_classes: numIn(d, 'num_classes', path, positiveIntUpTo(MAX.classes)),
    dropout_ratio: numIn(d, 'dropout_ratio', path, { ge: 0, lt: 1 }, 0.1),
    align_corners: bool(d, 'align_corners', path, false),
    loss_weight: loss(d, path),
    ignore_index: numIn(d, 'ignore_index', path, { integer: true }, 255),
    bn_eps: normEps(d, 'norm_cfg', path, ['SyncBN', 'BN', 'BN2d'], 1e-5),
    bn_sync: bnSync(d, 'norm_cfg'),
  };
}

export function buildHead(d: Dict, path: string): BaseDecodeHead {
  const spec = headSpec(d, path);
  return spec.type === 'UPerHead' ? new UPerHead(spec.cfg) : new FCNHead(spec.cfg);
}

/** A decode head's type and settings, every number checked (nothing is built). */
function headSpec(d: Dict, path: string): HeadSpec {
  const type = checkType(d, ['UPerHead', 'FCNHead'], path);
  if (type === 'UPerHead') {
    checkFields(d, [...HEAD_FIELDS, 'pool_scales'], path);
    const poolScales = checkList(
      numList(d, 'pool_scales', path, [1, 2, 3, 6]),
      `${path}.pool_scales`,
      positiveIntUpTo(MAX.poolScale),
    );
    return { type, cfg: { ...headConfig(d, path), pool_scales: poolScales } };
  }
  checkFields(d, [...HEAD_FIELDS, 'num_convs', 'kernel_size', 'concat_input', 'dilation'], path);
  const head = headConfig(d, path);
  if (Array.isArray(head.in_index) || Array.isArray(head.in_channels)) {
    throw new ConfigError(`${path}: FCNHead takes one input (in_index and in_channels must be single numbers)`);
  }
  const numConvs = numIn(d, 'num_convs', path, { integer: true, ge: 0, le: MAX.convs }, 2);
  const kernelSize = numIn(d, 'kernel_size', path, positiveIntUpTo(MAX.kernel), 3);
  if (kernelSize % 2 === 0) throw new ConfigError(`${path}.kernel_size must be odd, got ${kernelSize}`);
  const concatInput = bool(d, 'concat_input', path, true);
  if (numConvs === 0 && head.in_channels !== head.channels) {
    throw new ConfigError(
      `${path}: num_convs=0 needs in_channels (${head.in_channels}) == ` +
        `channels (${head.channels}), as mmseg asserts`,
    );
  }
  const dilation = numIn(d, 'dilation', path, POSITIVE_INT, 1);
  if (dilation !== 1) throw new ConfigError(`${path}.dilation must be 1, got ${dilation}`);
  const fcn = { ...head, num_convs: numConvs, kernel_size: kernelSize, concat_input: concatInput, dilation };
  return { type: 'FCNHead', cfg: fcn };
}

export function parseTestCfg(d: unknown, path = 'model.test_cfg'): TestConfig {
  if (d === undefined) return { mode: 'whole' };
  if (!isDict(d)) throw new ConfigError(`${path} must be an object`);
  checkFields(d, ['mode', 'crop_size', 'stride'], path);
  const mode = d.mode ?? 'whole';
  if (mode !== 'whole' && mode !== 'slide')
    throw new ConfigError(`${path}.mode must be 'whole' or 'slide', got ${JSON.stringify(mode)}`);
  if (mode === 'slide') {
    const cropSize = pairIn(d, 'crop_size', path, POSITIVE_INT);
    return { mode, crop_size: cropSize, stride: pairIn(d, 'stride', path, POSITIVE_INT) };
  }
  return { mode };
}

const MODEL_FIELDS = [
  'type',
  'data_preprocessor',
  'pretrained',
  'backbone',
  'neck',
  'decode_head',
  'auxiliary_head',
  'train_cfg',
  'test_cfg',
  'init_cfg',
];

interface SegmentorSpec {
  backbone: BEiTConfig;
  neck: Feature2PyramidConfig | null;
  decode: HeadSpec;
  aux: HeadSpec | null;
  testCfg: TestConfig;
}

/** Every part of `model` checked, alone and together (nothing is built). */
function segmentorSpec(model: Dict): SegmentorSpec {
  const path = 'model';
  checkType(model, ['EncoderDecoder'], path);
  checkFields(model, MODEL_FIELDS, path);
  if (model.data_preprocessor !== undefined) checkDataPreprocessor(model.data_preprocessor, 'model.data_preprocessor');
  const backbone = beitConfig(getDict(model, 'backbone', path));
  const neck = model.neck == null ? null : neckConfig(getDict(model, 'neck', path));
  const decode = headSpec(getDict(model, 'decode_head', path), 'model.decode_head');
  const aux =
    model.auxiliary_head == null ? null : headSpec(getDict(model, 'auxiliary_head', path), 'model.auxiliary_head');
  const testCfg = parseTestCfg(model.test_cfg);
  checkWiring(backbone, neck, decode.cfg, aux?.cfg ?? null);
  return { backbone, neck, decode, aux, testCfg };
}

/** The parameters and bytes of each part `model` describes, from the checked config alone. */
export function estimateModelSize(model: Dict): PartSize[] {
  const { backbone, neck, decode, aux } = segmentorSpec(model);
  return [
    backboneSize(backbone),
    ...(neck ? [neckSize(neck)] : []),
    headSize(decode, 'model.decode_head'),
    ...(aux ? [headSize(aux, 'model.auxiliary_head')] : []),
  ];
}

/**
 * The segmentor described by `model` (random weights; load a checkpoint after). Refused, before
 * any tensor is made, when its parameters would not fit in memory (size.ts).
 */
export function buildSegmentor(model: Dict): EncoderDecoder {
  checkModelSize(estimateModelSize(model));
  const { backbone, neck, decode, aux, testCfg } = segmentorSpec(model);
  const head = (s: HeadSpec) => (s.type === 'UPerHead' ? new UPerHead(s.cfg) : new FCNHead(s.cfg));
  // Modules draw their initial weights when constructed: mmseg's order (backbone, neck, decode
  // head, aux head) keeps a seed's initial weights the same.
  const backboneModule = new BEiT(backbone);
  const neckModule = neck && new Feature2Pyramid(neck);
  return new EncoderDecoder(backboneModule, neckModule, head(decode), aux && head(aux), testCfg);
}

/**
 * What each stage hands the next must fit before any tensor is made: the neck takes the
 * backbone's outputs, each head's in_index points at a feature map that exists and its
 * in_channels match that map, and both heads predict the same classes.
 */
function checkWiring(
  bb: BEiTConfig,
  neck: Feature2PyramidConfig | null,
  decode: DecodeHeadConfig,
  aux: DecodeHeadConfig | null,
): void {
  const outputs = bb.out_indices.length;
  if (neck) {
    if (neck.rescales.length !== outputs) {
      throw new ConfigError(
        `model.neck.rescales has ${neck.rescales.length} entries ` +
          `but model.backbone.out_indices gives ${outputs} feature maps`,
      );
    }
    if (neck.embed_dim !== bb.embed_dims) {
      throw new ConfigError(
        `model.neck.embed_dim (${neck.embed_dim}) differs from ` + `model.backbone.embed_dims (${bb.embed_dims})`,
      );
    }
  }
  for (const [head, path] of [
    [decode, 'model.decode_head'],
    [aux, 'model.auxiliary_head'],
  ] as const) {
    if (!head) continue;
    const idx = Array.isArray(head.in_index) ? head.in_index : [head.in_index];
    const ch = Array.isArray(head.in_channels) ? head.in_channels : [head.in_channels];
    idx.forEach((x, i) => {
      const where = Array.isArray(head.in_index) ? `${path}.in_index[${i}]` : `${path}.in_index`;
      if (x >= outputs) {
        const source = neck ? 'neck' : 'backbone';
        throw new ConfigError(`${where} is ${x} but the ${source} gives ${outputs} feature maps (0..${outputs - 1})`);
      }
    });
    ch.forEach((c, i) => {
      const where = Array.isArray(head.in_channels) ? `${path}.in_channels[${i}]` : `${path}.in_channels`;
      if (c !== bb.embed_dims) {
        throw new ConfigError(
          `${where} is ${c} but the feature maps have ${bb.embed_dims} channels (model.backbone.embed_dims)`,
        );
      }
    });
  }
  if (aux && aux.num_classes !== decode.num_classes) {
    throw new ConfigError(
      `model.auxiliary_head.num_classes (${aux.num_classes}) differs from ` +
        `model.decode_head.num_classes (${decode.num_classes})`,
    );
  }
}

const DATA_PREPROCESSOR_FIELDS = [
  'type',
  'mean',
  'std',
  'size',
  'size_divisor',
  'pad_val',
  'seg_pad_val',
  'bgr_to_rgb',
  'rgb_to_bgr',
  'batch_augments',
  'test_cfg',
  'non_blocking',
];

/**
 * SegDataPreProcessor: mean/std of 3 channels with std != 0 (a zero std gives NaN logits),
 * size a positive (h, w), pad values numbers; padding rules beitseg does not implement
 * (size_divisor, batch_augments, test_cfg) are errors rather than silently dropped.
 */
export function checkDataPreprocessor(d: unknown, path: string): void {
  if (!isDict(d)) throw new ConfigError(`${path} must be an object`);
  checkFields(d, DATA_PREPROCESSOR_FIELDS, path);
  if (d.type !== undefined) checkType(d, ['SegDataPreProcessor'], path);
  for (const key of ['mean', 'std']) {
    if (d[key] === undefined || d[key] === null) continue;
    const v = numList(d, key, path);
    if (v.length !== 3) throw new ConfigError(`${path}.${key} must have 3 values (R, G, B), got ${v.length}`);
    checkList(v, `${path}.${key}`, key === 'std' ? { nonZero: true } : {});
  }
  if (d.size != null) {
    const size = numList(d, 'size', path);
    if (size.length !== 2) throw new ConfigError(`${path}.size must be [h, w], got ${JSON.stringify(d.size)}`);
    checkList(size, `${path}.size`, POSITIVE_INT);
  }
  for (const key of ['pad_val', 'seg_pad_val']) if (d[key] !== undefined) num(d, key, path);
  for (const key of ['bgr_to_rgb', 'rgb_to_bgr', 'non_blocking']) if (d[key] !== undefined) bool(d, key, path);
  if (d.rgb_to_bgr === true) throw new ConfigError(`${path}.rgb_to_bgr=true is not supported (images are fed as RGB)`);
  if (d.size_divisor != null) throw new ConfigError(`${path}.size_divisor is not supported (use size)`);
  if (d.batch_augments != null) throw new ConfigError(`${path}.batch_augments is not supported`);
  if (d.test_cfg != null && !(isDict(d.test_cfg) && Object.keys(d.test_cfg).length === 0)) {
    throw new ConfigError(`${path}.test_cfg is not supported (test-time padding)`);
  }
}
