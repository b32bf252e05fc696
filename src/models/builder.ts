/**
 * Builds an EncoderDecoder from an mmseg-structured model config (`cfg.model`).
 */
import { BEiT, BEIT_DEFAULTS, type BEiTConfig } from './backbones/beit.js';
import { Feature2Pyramid } from './necks/feature2pyramid.js';
import type { BaseDecodeHead, DecodeHeadConfig } from './decode_heads/decode_head.js';
import { FCNHead } from './decode_heads/fcn_head.js';
import { UPerHead } from './decode_heads/uper_head.js';
import { EncoderDecoder, type TestConfig } from './segmentors/encoder_decoder.js';
import {
  bool, checkFields, checkType, ConfigError, getDict, isDict, num, numList, pairOf, type Dict,
} from './config.js';

const NORM_FIELDS = ['type', 'requires_grad', 'eps', 'momentum'];

function normEps(d: Dict, key: string, path: string, types: string[], fallback: number): number {
  const n = d[key];
  if (n === undefined) return fallback;
  if (!isDict(n)) throw new ConfigError(`${path}.${key} must be an object`);
  checkFields(n, NORM_FIELDS, `${path}.${key}`);
  checkType(n, types, `${path}.${key}`);
  return num(n, 'eps', `${path}.${key}`, fallback);
}

const BEIT_FIELDS = ['type', 'img_size', 'patch_size', 'in_channels', 'embed_dims', 'num_layers', 'num_heads', 'mlp_ratio',
  'out_indices', 'qv_bias', 'attn_drop_rate', 'drop_path_rate', 'drop_rate', 'norm_cfg', 'act_cfg', 'norm_eval', 'init_values',
  'final_norm', 'patch_norm', 'num_fcs', 'with_cls_token', 'output_cls_token', 'interpolate_mode', 'pretrained', 'init_cfg'];

export function buildBEiT(d: Dict, path = 'model.backbone'): BEiT {
  checkType(d, ['BEiT'], path);
  checkFields(d, BEIT_FIELDS, path);
  const unsupported: [string, unknown][] = [['patch_norm', false], ['num_fcs', 2], ['with_cls_token', true],
    ['output_cls_token', false], ['norm_eval', false], ['attn_drop_rate', 0], ['drop_rate', 0]];
  for (const [k, ok] of unsupported) {
    if (d[k] !== undefined && d[k] !== ok) throw new ConfigError(`${path}.${k}=${JSON.stringify(d[k])} is not supported (only ${JSON.stringify(ok)})`);
  }
  if (isDict(d.act_cfg) && d.act_cfg.type !== 'GELU') throw new ConfigError(`${path}.act_cfg.type must be GELU`);
  const cfg: BEiTConfig = {
    img_size: pairOf(d, 'img_size', path, BEIT_DEFAULTS.img_size as number),
    patch_size: num(d, 'patch_size', path, BEIT_DEFAULTS.patch_size),
    in_channels: num(d, 'in_channels', path, BEIT_DEFAULTS.in_channels),
    embed_dims: num(d, 'embed_dims', path, BEIT_DEFAULTS.embed_dims),
    num_layers: num(d, 'num_layers', path, BEIT_DEFAULTS.num_layers),
    num_heads: num(d, 'num_heads', path, BEIT_DEFAULTS.num_heads),
    mlp_ratio: num(d, 'mlp_ratio', path, BEIT_DEFAULTS.mlp_ratio),
    out_indices: typeof d.out_indices === 'number' ? [d.out_indices] : numList(d, 'out_indices', path, BEIT_DEFAULTS.out_indices),
    qv_bias: bool(d, 'qv_bias', path, BEIT_DEFAULTS.qv_bias),
    attn_drop_rate: 0,
    drop_path_rate: num(d, 'drop_path_rate', path, BEIT_DEFAULTS.drop_path_rate),
    init_values: num(d, 'init_values', path, BEIT_DEFAULTS.init_values),
    final_norm: bool(d, 'final_norm', path, BEIT_DEFAULTS.final_norm),
    norm_eps: normEps(d, 'norm_cfg', path, ['LN'], BEIT_DEFAULTS.norm_eps),
  };
  if (cfg.embed_dims % cfg.num_heads !== 0) throw new ConfigError(`${path}: embed_dims ${cfg.embed_dims} is not divisible by num_heads ${cfg.num_heads}`);
  return new BEiT(cfg);
}

function buildNeck(d: Dict, path = 'model.neck'): Feature2Pyramid {
  checkType(d, ['Feature2Pyramid'], path);
  checkFields(d, ['type', 'embed_dim', 'rescales', 'norm_cfg'], path);
  return new Feature2Pyramid({
    embed_dim: num(d, 'embed_dim', path),
    rescales: numList(d, 'rescales', path, [4, 2, 1, 0.5]),
    bn_eps: normEps(d, 'norm_cfg', path, ['SyncBN', 'BN', 'BN2d'], 1e-5),
  });
}

const HEAD_FIELDS = ['type', 'in_channels', 'in_index', 'channels', 'dropout_ratio', 'num_classes', 'norm_cfg', 'act_cfg',
  'align_corners', 'loss_decode', 'ignore_index', 'conv_cfg', 'init_cfg', 'input_transform', 'sampler', 'out_channels', 'threshold'];

function loss(d: Dict, path: string): number {
  const l = d.loss_decode;
  if (l === undefined) return 1.0;
  if (!isDict(l)) throw new ConfigError(`${path}.loss_decode must be one loss dict (lists of losses are not supported)`);
  const p = `${path}.loss_decode`;
  checkType(l, ['CrossEntropyLoss'], p);
  checkFields(l, ['type', 'use_sigmoid', 'loss_weight', 'avg_non_ignore', 'class_weight', 'reduction', 'loss_name', 'use_mask'], p);
  if (l.use_sigmoid) throw new ConfigError(`${p}.use_sigmoid=true is not supported`);
  if (l.avg_non_ignore) throw new ConfigError(`${p}.avg_non_ignore=true is not supported (mmseg's BEiT configs use false)`);
  if (l.class_weight != null) throw new ConfigError(`${p}.class_weight is not supported`);
  if (l.reduction !== undefined && l.reduction !== 'mean') throw new ConfigError(`${p}.reduction must be 'mean'`);
  return num(l, 'loss_weight', p, 1.0);
}

function headConfig(d: Dict, path: string): DecodeHeadConfig {
  if (isDict(d.act_cfg) && d.act_cfg.type !== 'ReLU') throw new ConfigError(`${path}.act_cfg.type must be ReLU`);
  if (d.sampler != null) throw new ConfigError(`${path}.sampler is not supported`);
  return {
    in_channels: typeof d.in_channels === 'number' ? d.in_channels : numList(d, 'in_channels', path),
    in_index: typeof d.in_index === 'number' ? d.in_index : numList(d, 'in_index', path, [0]),
    channels: num(d, 'channels', path),
    num_classes: num(d, 'num_classes', path),
    dropout_ratio: num(d, 'dropout_ratio', path, 0.1),
    align_corners: bool(d, 'align_corners', path, false),
    loss_weight: loss(d, path),
    ignore_index: num(d, 'ignore_index', path, 255),
    bn_eps: normEps(d, 'norm_cfg', path, ['SyncBN', 'BN', 'BN2d'], 1e-5),
  };
}

export function buildHead(d: Dict, path: string): BaseDecodeHead {
  const type = checkType(d, ['UPerHead', 'FCNHead'], path);
  if (type === 'UPerHead') {
    checkFields(d, [...HEAD_FIELDS, 'pool_scales'], path);
    return new UPerHead({ ...headConfig(d, path), pool_scales: numList(d, 'pool_scales', path, [1, 2, 3, 6]) });
  }
  checkFields(d, [...HEAD_FIELDS, 'num_convs', 'kernel_size', 'concat_input', 'dilation'], path);
  return new FCNHead({
    ...headConfig(d, path),
    num_convs: num(d, 'num_convs', path, 2),
    kernel_size: num(d, 'kernel_size', path, 3),
    concat_input: bool(d, 'concat_input', path, true),
    dilation: num(d, 'dilation', path, 1),
  });
}

export function parseTestCfg(d: unknown, path = 'model.test_cfg'): TestConfig {
  if (d === undefined) return { mode: 'whole' };
  if (!isDict(d)) throw new ConfigError(`${path} must be an object`);
  checkFields(d, ['mode', 'crop_size', 'stride'], path);
  const mode = d.mode ?? 'whole';
  if (mode !== 'whole' && mode !== 'slide') throw new ConfigError(`${path}.mode must be 'whole' or 'slide', got ${JSON.stringify(mode)}`);
  if (mode === 'slide') return { mode, crop_size: pairOf(d, 'crop_size', path), stride: pairOf(d, 'stride', path) };
  return { mode };
}

const MODEL_FIELDS = ['type', 'data_preprocessor', 'pretrained', 'backbone', 'neck', 'decode_head', 'auxiliary_head',
  'train_cfg', 'test_cfg', 'init_cfg'];

/** The segmentor described by `model` (random weights; load a checkpoint after). */
export function buildSegmentor(model: Dict): EncoderDecoder {
  const path = 'model';
  checkType(model, ['EncoderDecoder'], path);
  checkFields(model, MODEL_FIELDS, path);
  const backbone = buildBEiT(getDict(model, 'backbone', path));
  const neck = model.neck == null ? null : buildNeck(getDict(model, 'neck', path));
  const decode = buildHead(getDict(model, 'decode_head', path), 'model.decode_head');
  const aux = model.auxiliary_head == null ? null : buildHead(getDict(model, 'auxiliary_head', path), 'model.auxiliary_head');
  return new EncoderDecoder(backbone, neck, decode, aux, parseTestCfg(model.test_cfg));
}
