/**
 * The training-relevant parts of an mmseg 1.x config (JSON dump of the Python config), read
 * into one typed object with command-line overrides applied:
 *
 *   train_dataloader / val_dataloader   {batch_size, num_workers, sampler, dataset{..., pipeline}}
 *   model.data_preprocessor             {mean, std, size, pad_val, seg_pad_val}
 *   optim_wrapper                       {type: OptimWrapper|AmpOptimWrapper, optimizer: AdamW{lr,
 *                                       betas, eps, weight_decay}, constructor, paramwise_cfg,
 *                                       accumulative_counts}
 *   param_scheduler                     LinearLR / PolyLR / ConstantLR by iteration
 *   train_cfg                           {type: IterBasedTrainLoop, max_iters, val_interval}
 *   default_hooks                       {logger.interval, checkpoint.{interval, max_keep_ckpts, save_best}}
 *   randomness.seed, load_from, model.pretrained / model.backbone.init_cfg
 *
 * Defaults are mmengine's (val_interval 1000, logger interval 10, checkpoint only at the end,
 * max_keep_ckpts −1 = keep all) except: seed 0 when randomness.seed is absent (mmengine draws
 * one), and the best checkpoint by mIoU is kept unless default_hooks.checkpoint.save_best is
 * set to something else (null: off).
 *
 * Anything that would silently change the training (a gradient clip, another optimizer, an
 * epoch-based loop) is an error naming the field.
 */
import path from 'node:path';
import { checkFields, checkList, checkNumber, ConfigError, isDict, type Dict } from '../config/schema.js';
import { normalization, preprocessFromConfig } from '../inference/preprocess.js';
import { parseParamScheduler, type SchedulerSpec } from './schedule.js';

export type AmpMode = 'fp16' | 'bf16' | null;

export interface TrainOverrides {
  workDir?: string;
  device?: string;
  /** 'fp32' turns mixed precision off even where the config asks for it. */
  amp?: 'fp16' | 'bf16' | 'fp32';
  maxIters?: number;
  batchSize?: number;
  accum?: number;
  loadFrom?: string;
  seed?: number;
  numWorkers?: number;
  valInterval?: number;
  checkpointInterval?: number;
  logInterval?: number;
  maxKeepCkpts?: number;
}

export interface DataSettings {
  batchSize: number;
  numWorkers: number;
  shuffle: boolean;
  dataset: Dict;
  pipeline: Dict[];
}

export interface TrainSettings {
  configName: string;
  workDir: string;
  seed: number;
  maxIters: number;
  valInterval: number;
  logInterval: number;
  checkpointInterval: number;
  maxKeepCkpts: number;
  saveBest: string | null;
  train: DataSettings;
  val: DataSettings | null;
  mean: [number, number, number];
  std: [number, number, number];
  /** data_preprocessor size (h, w): every training sample is padded to at least this. */
  padTo: [number, number] | null;
  padVal: number;
  segPadVal: number;
  optimizer: { lr: number; betas: [number, number]; eps: number; weightDecay: number };
  layerDecay: { numLayers: number; decayRate: number; correctedNoDecay: boolean } | null;
  accum: number;
  amp: AmpMode;
  schedulers: SchedulerSpec[];
  loadFrom: string | null;
  pretrained: string | null;
}

function posInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
    throw new ConfigError(`${what} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function dataSettings(cfg: Dict, key: string, batchOverride?: number, workersOverride?: number): DataSettings {
  const d = cfg[key];
  if (!isDict(d)) throw new ConfigError(`${key} must be an object`);
  if (d.num_workers !== undefined) checkNumber(d.num_workers as number, `${key}.num_workers`, { integer: true, ge: 0 });
  const ds = d.dataset;
  if (!isDict(ds)) throw new ConfigError(`${key}.dataset must be an object`);
  const pipeline = ds.pipeline;
  if (!Array.isArray(pipeline) || !pipeline.every(isDict))
    throw new ConfigError(`${key}.dataset.pipeline must be a list of transforms`);
  const sampler = isDict(d.sampler) ? d.sampler : {};
  const samplerType = sampler.type ?? (key === 'train_dataloader' ? 'InfiniteSampler' : 'DefaultSampler');
  if (samplerType !== 'InfiniteSampler' && samplerType !== 'DefaultSampler') {
    throw new ConfigError(
      `${key}.sampler.type ${JSON.stringify(samplerType)} is not supported (InfiniteSampler, DefaultSampler)`,
    );
  }
  return {
    batchSize: batchOverride ?? posInt(d.batch_size ?? 1, `${key}.batch_size`),
    numWorkers: workersOverride ?? (typeof d.num_workers === 'number' ? d.num_workers : 2),
    shuffle: sampler.shuffle !== false,
    dataset: ds,
    pipeline: pipeline as Dict[],
  };
}

function pretrainedOf(model: Dict): string | null {
  if (typeof model.pretrained === 'string' && model.pretrained) return model.pretrained;
  const bb = isDict(model.backbone) ? model.backbone : {};
  const init = bb.init_cfg;
  if (isDict(init)) {
    if (init.type !== 'Pretrained')
      throw new ConfigError(`model.backbone.init_cfg.type ${JSON.stringify(init.type)} is not supported (Pretrained)`);
    if (typeof init.checkpoint !== 'string') throw new ConfigError('model.backbone.init_cfg.checkpoint must be a path');
    return init.checkpoint;
  }
  if (typeof bb.pretrained === 'string' && bb.pretrained) return bb.pretrained;
  return null;
}

/** default_hooks.checkpoint.save_best: a metric name ('auto' = mIoU), null/false = off, absent = mIoU. */
function saveBestOf(v: unknown): string | null {
  if (v === undefined || v === 'auto') return 'mIoU';
  if (v === null || v === false) return null;
  if (v === 'mIoU' || v === 'mAcc' || v === 'aAcc') return v;
  throw new ConfigError(
    `default_hooks.checkpoint.save_best ${JSON.stringify(v)} is not supported (mIoU, mAcc, aAcc, auto or null)`,
  );
}

/** max_keep_ckpts: -1 (keep all) or a positive count. */
function maxKeepOf(v: unknown): number {
  if (v === undefined || v === null) return -1;
  const n = checkNumber(v as number, 'default_hooks.checkpoint.max_keep_ckpts', { integer: true, ge: -1 });
  if (n === 0) throw new ConfigError('default_hooks.checkpoint.max_keep_ckpts must be -1 (keep all) or >= 1, got 0');
  return n;
}

/**
 * IterBasedTrainLoop's arguments: an unknown field is a TypeError in mmengine; val_begin and
 * dynamic_intervals would change when validation runs, so they are refused unless at their
 * defaults.
 */
function checkTrainCfg(tc: Dict): void {
  checkFields(tc, ['type', 'max_iters', 'val_interval', 'val_begin', 'dynamic_intervals'], 'train_cfg');
  if (tc.val_begin !== undefined && tc.val_begin !== 1) {
    throw new ConfigError(`train_cfg.val_begin=${JSON.stringify(tc.val_begin)} is not supported (1)`);
  }
  if (tc.dynamic_intervals != null) throw new ConfigError('train_cfg.dynamic_intervals is not supported');
}

const OPTIM_WRAPPER_FIELDS = [
  'type',
  'optimizer',
  'constructor',
  'paramwise_cfg',
  'clip_grad',
  'accumulative_counts',
  'dtype',
  'loss_scale',
];

/** optim_wrapper: its own fields, paramwise_cfg's, AMP's loss_scale and dtype. */
function checkOptimWrapper(ow: Dict): void {
  checkFields(ow, OPTIM_WRAPPER_FIELDS, 'optim_wrapper');
  if (ow.loss_scale !== undefined && ow.loss_scale !== 'dynamic') {
    throw new ConfigError(`optim_wrapper.loss_scale ${JSON.stringify(ow.loss_scale)} is not supported ('dynamic')`);
  }
  if (ow.dtype != null && ow.dtype !== 'float16' && ow.dtype !== 'bfloat16') {
    throw new ConfigError(`optim_wrapper.dtype ${JSON.stringify(ow.dtype)} is not supported (float16, bfloat16)`);
  }
  if (ow.dtype != null && ow.type !== 'AmpOptimWrapper') {
    throw new ConfigError('optim_wrapper.dtype needs type AmpOptimWrapper');
  }
  if (isDict(ow.paramwise_cfg)) {
    const pw = ow.paramwise_cfg;
    const p = 'optim_wrapper.paramwise_cfg';
    checkFields(pw, ['num_layers', 'layer_decay_rate', 'decay_rate', 'decay_type', 'corrected_no_decay'], p);
    const rate = pw.layer_decay_rate ?? pw.decay_rate;
    if (rate !== undefined) {
      const key = pw.layer_decay_rate !== undefined ? 'layer_decay_rate' : 'decay_rate';
      checkNumber(rate as number, `${p}.${key}`, { gt: 0 });
    }
  }
}

/**
 * AdamW's arguments (torch.optim.AdamW): lr > 0, betas in [0, 1), eps > 0, weight_decay >= 0;
 * amsgrad and maximize change the update and are refused; foreach/fused/capturable/
 * differentiable only select torch kernels and are accepted.
 */
function checkOptimizer(opt: Dict, p: string): void {
  checkFields(
    opt,
    [
      'type',
      'lr',
      'betas',
      'eps',
      'weight_decay',
      'amsgrad',
      'maximize',
      'foreach',
      'fused',
      'capturable',
      'differentiable',
    ],
    p,
  );
  if (opt.maximize === true) throw new ConfigError(`${p}.maximize is not supported`);
  checkNumber(opt.lr as number, `${p}.lr`, { gt: 0 });
  if (Array.isArray(opt.betas)) checkList(opt.betas as number[], `${p}.betas`, { ge: 0, lt: 1 });
  if (opt.eps !== undefined) checkNumber(opt.eps as number, `${p}.eps`, { gt: 0 });
  if (opt.weight_decay !== undefined) checkNumber(opt.weight_decay as number, `${p}.weight_decay`, { ge: 0 });
}

/**
 * Class names in the config (top-level metainfo, each dataloader's dataset.metainfo) against
 * what the heads predict, before anything is built: a mismatch would otherwise surface only
 * at the first validation, after training has run.
 */
export function checkClassCounts(cfg: Dict): void {
  const model = isDict(cfg.model) ? cfg.model : {};
  const head = isDict(model.decode_head) ? model.decode_head : {};
  const n = head.num_classes;
  if (typeof n !== 'number') return;
  const places: [string, unknown][] = [['metainfo', cfg.metainfo]];
  for (const key of ['train_dataloader', 'val_dataloader', 'test_dataloader']) {
    const dl = cfg[key];
    if (isDict(dl) && isDict(dl.dataset)) places.push([`${key}.dataset.metainfo`, dl.dataset.metainfo]);
  }
  for (const [where, mi] of places) {
    if (!isDict(mi) || !Array.isArray(mi.classes)) continue;
    if (mi.classes.length !== n) {
      const count = mi.classes.length;
      throw new ConfigError(`${where}.classes lists ${count} classes but model.decode_head.num_classes is ${n}`);
    }
  }
}

/** Reads the training settings of `cfg` (loaded from `configPath`) with `o` applied on top. */
export function trainSettings(cfg: Dict, configPath: string, o: TrainOverrides = {}): TrainSettings {
  const configName = path.basename(configPath).replace(/\.(json|py)$/, '');
  const model = isDict(cfg.model) ? cfg.model : null;
  if (!model) throw new ConfigError(`${configPath}: no "model" section`);

  const tc = isDict(cfg.train_cfg) ? cfg.train_cfg : {};
  if (tc.type !== undefined && tc.type !== 'IterBasedTrainLoop') {
    throw new ConfigError(`train_cfg.type ${JSON.stringify(tc.type)} is not supported (IterBasedTrainLoop)`);
  }
  checkTrainCfg(tc);
  checkClassCounts(cfg);
  const maxIters = o.maxIters ?? posInt(tc.max_iters, 'train_cfg.max_iters');
  const hooks = isDict(cfg.default_hooks) ? cfg.default_hooks : {};
  const ckpt = isDict(hooks.checkpoint) ? hooks.checkpoint : {};
  const logger = isDict(hooks.logger) ? hooks.logger : {};
  if (ckpt.by_epoch === true) throw new ConfigError('default_hooks.checkpoint.by_epoch=true is not supported');

  const ow = isDict(cfg.optim_wrapper) ? cfg.optim_wrapper : null;
  if (!ow) throw new ConfigError('optim_wrapper must be an object');
  const owType = ow.type ?? 'OptimWrapper';
  if (owType !== 'OptimWrapper' && owType !== 'AmpOptimWrapper') {
    throw new ConfigError(
      `optim_wrapper.type ${JSON.stringify(owType)} is not supported (OptimWrapper, AmpOptimWrapper)`,
    );
  }
  if (ow.clip_grad != null)
    throw new ConfigError('optim_wrapper.clip_grad is not supported (mmseg BEiT configs use none)');
  checkOptimWrapper(ow);
  const opt = isDict(ow.optimizer) ? ow.optimizer : null;
  if (opt?.type !== 'AdamW')
    throw new ConfigError(`optim_wrapper.optimizer.type must be AdamW, got ${JSON.stringify(opt?.type)}`);
  checkOptimizer(opt, 'optim_wrapper.optimizer');
  const betas = opt.betas ?? [0.9, 0.999];
  if (!Array.isArray(betas) || betas.length !== 2 || !betas.every((b) => typeof b === 'number'))
    throw new ConfigError('optim_wrapper.optimizer.betas must be 2 numbers');
  if (opt.amsgrad) throw new ConfigError('optim_wrapper.optimizer.amsgrad is not supported');
  const num = (v: unknown, what: string, fallback: number): number => {
    const x = v ?? fallback;
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new ConfigError(`${what} must be a number`);
    return x;
  };
  let layerDecay: TrainSettings['layerDecay'] = null;
  // an own field only: every plain object inherits a `constructor` property
  const ctor = Object.hasOwn(ow, 'constructor') ? ow.constructor : undefined;
  if (typeof ctor === 'string') {
    if (ctor !== 'LayerDecayOptimizerConstructor' && ctor !== 'LearningRateDecayOptimizerConstructor') {
      throw new ConfigError(
        `optim_wrapper.constructor ${JSON.stringify(ctor)} is not supported (LayerDecayOptimizerConstructor)`,
      );
    }
    const pw = isDict(ow.paramwise_cfg) ? ow.paramwise_cfg : {};
    if (pw.decay_type !== undefined && pw.decay_type !== 'layer_wise_vit') {
      throw new ConfigError(
        `optim_wrapper.paramwise_cfg.decay_type ${JSON.stringify(pw.decay_type)} is not supported (layer_wise_vit)`,
      );
    }
    layerDecay = {
      numLayers: posInt(pw.num_layers, 'optim_wrapper.paramwise_cfg.num_layers'),
      decayRate: num(pw.layer_decay_rate ?? pw.decay_rate, 'optim_wrapper.paramwise_cfg.layer_decay_rate', NaN),
      correctedNoDecay: pw.corrected_no_decay === true,
    };
  } else if (ow.paramwise_cfg != null) {
    throw new ConfigError('optim_wrapper.paramwise_cfg without a constructor is not supported');
  }

  const accum =
    o.accum ??
    (ow.accumulative_counts === undefined ? 1 : posInt(ow.accumulative_counts, 'optim_wrapper.accumulative_counts'));
  let amp: AmpMode = owType === 'AmpOptimWrapper' ? (ow.dtype === 'bfloat16' ? 'bf16' : 'fp16') : null;
  if (o.amp) amp = o.amp === 'fp32' ? null : o.amp;

  const dp = isDict(model.data_preprocessor)
    ? model.data_preprocessor
    : isDict(cfg.data_preprocessor)
      ? cfg.data_preprocessor
      : {};
  if (dp.bgr_to_rgb === false)
    throw new ConfigError('model.data_preprocessor.bgr_to_rgb=false is not supported (images are RGB)');
  const size = dp.size;
  let padTo: [number, number] | null = null;
  if (size != null) {
    if (!Array.isArray(size) || size.length !== 2 || !size.every((x) => Number.isInteger(x)))
      throw new ConfigError('model.data_preprocessor.size must be [h, w]');
    padTo = [size[0], size[1]];
  }

  const hasVal = isDict(cfg.val_dataloader);
  const val = hasVal ? dataSettings(cfg, 'val_dataloader', undefined, o.numWorkers) : null;
  // the validation pipeline is read at the first validation: check it now, before training
  if (val) preprocessFromConfig(cfg, val.pipeline, 'val_dataloader.dataset.pipeline');
  return {
    configName,
    workDir: o.workDir ?? (typeof cfg.work_dir === 'string' ? cfg.work_dir : path.join('work_dirs', configName)),
    seed: o.seed ?? (isDict(cfg.randomness) && typeof cfg.randomness.seed === 'number' ? cfg.randomness.seed : 0),
    maxIters,
    valInterval:
      o.valInterval ?? (tc.val_interval === undefined ? 1000 : posInt(tc.val_interval, 'train_cfg.val_interval')),
    logInterval:
      o.logInterval ?? (logger.interval === undefined ? 10 : posInt(logger.interval, 'default_hooks.logger.interval')),
    checkpointInterval:
      o.checkpointInterval ??
      (ckpt.interval === undefined ? maxIters : posInt(ckpt.interval, 'default_hooks.checkpoint.interval')),
    maxKeepCkpts: o.maxKeepCkpts ?? maxKeepOf(ckpt.max_keep_ckpts),
    saveBest: saveBestOf(ckpt.save_best),
    train: dataSettings(cfg, 'train_dataloader', o.batchSize, o.numWorkers),
    val,
    ...normalization(cfg),
    padTo,
    padVal: num(dp.pad_val, 'model.data_preprocessor.pad_val', 0),
    segPadVal: num(dp.seg_pad_val, 'model.data_preprocessor.seg_pad_val', 255),
    optimizer: {
      lr: num(opt.lr, 'optim_wrapper.optimizer.lr', NaN),
      betas: [betas[0] as number, betas[1] as number],
      eps: num(opt.eps, 'optim_wrapper.optimizer.eps', 1e-8),
      weightDecay: num(opt.weight_decay, 'optim_wrapper.optimizer.weight_decay', 0.01),
    },
    layerDecay,
    accum,
    amp,
    schedulers: parseParamScheduler(cfg.param_scheduler),
    loadFrom: o.loadFrom ?? (typeof cfg.load_from === 'string' && cfg.load_from ? cfg.load_from : null),
    pretrained: pretrainedOf(model),
  };
}
