/**
 * Which top-level config keys beitseg reads, and which keys of mmseg's configs it knowingly
 * ignores. Any other key gets a warning naming it: a typo (`trian_cfg`) or a setting beitseg
 * does not implement would otherwise be dropped without a word.
 *
 * Policy for unknown fields below the top level (see the README, "mmseg configs"):
 *  - errors: sections whose dict mmengine passes to a constructor, where an unknown field is a
 *    TypeError in Python or changes what runs: model.* (backbone, neck, heads, losses,
 *    data_preprocessor, test_cfg), test/train pipeline transforms, optim_wrapper and its
 *    optimizer, param_scheduler, train_cfg;
 *  - warnings: dataloader options, hooks, runtime sections and the top level, which tune
 *    speed, logging or bookkeeping rather than results.
 */
import { isDict, type Dict } from './merge.js';

/** Top-level keys the loader reads, with what they are used for. */
export const USED_TOP_LEVEL_KEYS: Readonly<Record<string, string>> = {
  model: 'the segmentor, its data_preprocessor and test_cfg',
  train_dataloader: 'train: batch size, workers, sampler, dataset',
  val_dataloader: 'train: validation dataset; eval: dataset when there is no test_dataloader',
  test_dataloader: 'eval: dataset',
  optim_wrapper: 'train: optimizer, layer decay, AMP, accumulation',
  param_scheduler: 'train: learning-rate schedule',
  train_cfg: 'train: max_iters, val_interval',
  default_hooks: 'train: logger.interval, checkpoint.interval/max_keep_ckpts/save_best',
  randomness: 'train: seed',
  load_from: 'train: initial weights',
  work_dir: 'train: output folder',
  env_cfg: 'cudnn_benchmark',
  metainfo: 'class names and palette',
  test_pipeline: 'the test Resize scale',
  tta_pipeline: '--tta scales and flips',
  data_preprocessor: 'mean/std when model.data_preprocessor is absent',
  img_norm_cfg: 'mean/std of mmseg 0.x configs',
};

/** Keys of mmseg's (dumped) configs that change nothing here, so they stay quiet. */
export const HARMLESS_TOP_LEVEL_KEYS: Readonly<Record<string, string>> = {
  data_root: 'copied into the dataloaders by the .py config',
  dataset_type: 'copied into the dataloaders by the .py config',
  crop_size: 'copied into the pipeline and data_preprocessor by the .py config',
  norm_cfg: 'copied into the heads by the .py config',
  img_ratios: 'copied into tta_pipeline by the .py config',
  train_pipeline: 'copied into train_dataloader by the .py config',
  optimizer: 'copied into optim_wrapper by the .py config',
  tta_model: 'SegTTAModel: --tta implements it',
  val_evaluator: 'IoUMetric: eval computes mIoU/mAcc/aAcc',
  test_evaluator: 'IoUMetric: eval computes mIoU/mAcc/aAcc',
  val_cfg: 'ValLoop: the only validation loop',
  test_cfg: 'TestLoop: the only test loop',
  default_scope: 'mmengine registry scope',
  custom_imports: 'Python modules to import: nothing to import here',
  log_processor: 'log smoothing of the console output',
  log_level: 'console verbosity',
  vis_backends: 'visualisation backends',
  visualizer: 'visualisation',
  launcher: 'set by the launcher (see train --launcher)',
  resume: 'train --resume',
  auto_scale_lr: 'only applied with mmengine --auto-scale-lr',
  checkpoint_file: 'a variable of some configs, copied into init_cfg',
  dist_params: 'distributed backend (0.x)',
  cudnn_benchmark: 'cuDNN autotuning (0.x)',
  workflow: 'mmseg 0.x runner workflow',
  log_config: 'mmseg 0.x logging',
  gpu_ids: 'mmseg 0.x GPU list',
  runner: 'mmseg 0.x runner (use train_cfg)',
  checkpoint_config: 'mmseg 0.x checkpoint hook (use default_hooks.checkpoint)',
  evaluation: 'mmseg 0.x evaluation hook',
  lr_config: 'mmseg 0.x lr schedule (use param_scheduler)',
  optimizer_config: 'mmseg 0.x optimizer hook (use optim_wrapper)',
  data: 'mmseg 0.x data settings (use *_dataloader)',
  fp16: 'mmseg 0.x fp16 (use optim_wrapper AmpOptimWrapper or --amp)',
};

/** Warnings for the keys of `d` (at `path`) that are neither used nor known to be harmless. */
export function unknownKeyWarnings(
  d: Dict,
  used: readonly string[],
  harmless: readonly string[],
  path: string,
): string[] {
  return Object.keys(d)
    .filter((k) => !used.includes(k) && !harmless.includes(k))
    .map((k) => `${path ? `${path}.` : ''}${k} is not used by beitseg (ignored)`);
}

/** Warnings for unknown top-level keys. */
export function topLevelWarnings(cfg: Dict): string[] {
  return unknownKeyWarnings(cfg, Object.keys(USED_TOP_LEVEL_KEYS), Object.keys(HARMLESS_TOP_LEVEL_KEYS), '');
}

/** `d[key]` when it is a dict, else null. */
export function dictAt(d: Dict, key: string): Dict | null {
  const v = d[key];
  return isDict(v) ? v : null;
}
