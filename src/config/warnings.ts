/**
 * Warnings for config keys beitseg does not use, with their full dotted paths: the top level
 * (src/config/known_keys.ts has the table), the dataloaders, default_hooks, randomness and
 * env_cfg. Sections where an unknown field would change the results (model, pipelines,
 * optimizer, train_cfg) are errors in their validators instead (see known_keys.ts).
 */
import { dictAt, topLevelWarnings, unknownKeyWarnings } from './known_keys.js';
import type { Dict } from './merge.js';

const DATALOADERS = ['train_dataloader', 'val_dataloader', 'test_dataloader'];
const DATALOADER_USED = ['batch_size', 'num_workers', 'sampler', 'dataset'];
/** torch DataLoader options that only tune loading speed. */
const DATALOADER_HARMLESS = ['persistent_workers', 'pin_memory', 'prefetch_factor'];

const HOOK_FIELDS: Readonly<Record<string, { used: string[]; harmless: string[] }>> = {
  logger: { used: ['interval'], harmless: ['type', 'log_metric_by_epoch', 'interval_exp_name', 'ignore_last'] },
  checkpoint: { used: ['interval', 'max_keep_ckpts', 'save_best', 'by_epoch'], harmless: ['type'] },
  timer: { used: [], harmless: ['type'] },
  param_scheduler: { used: [], harmless: ['type'] },
  sampler_seed: { used: [], harmless: ['type'] },
  visualization: { used: [], harmless: ['type', 'draw', 'interval', 'show'] },
};

function dataloaderWarnings(cfg: Dict): string[] {
  const out: string[] = [];
  for (const key of DATALOADERS) {
    const dl = dictAt(cfg, key);
    if (!dl) continue;
    out.push(...unknownKeyWarnings(dl, DATALOADER_USED, DATALOADER_HARMLESS, key));
    const sampler = dictAt(dl, 'sampler');
    if (sampler) out.push(...unknownKeyWarnings(sampler, ['type', 'shuffle'], [], `${key}.sampler`));
  }
  return out;
}

function hookWarnings(cfg: Dict): string[] {
  const hooks = dictAt(cfg, 'default_hooks');
  if (!hooks) return [];
  const out = unknownKeyWarnings(hooks, Object.keys(HOOK_FIELDS), [], 'default_hooks');
  for (const [name, fields] of Object.entries(HOOK_FIELDS)) {
    const h = dictAt(hooks, name);
    if (h) out.push(...unknownKeyWarnings(h, fields.used, fields.harmless, `default_hooks.${name}`));
  }
  return out;
}

/** Every unused key of `cfg` as a warning line (empty when all keys are used or harmless). */
export function configWarnings(cfg: Dict): string[] {
  const out = [...topLevelWarnings(cfg), ...dataloaderWarnings(cfg), ...hookWarnings(cfg)];
  const randomness = dictAt(cfg, 'randomness');
  if (randomness) out.push(...unknownKeyWarnings(randomness, ['seed'], [], 'randomness'));
  const ow = dictAt(cfg, 'optim_wrapper');
  const opt = dictAt(cfg, 'optimizer');
  if (opt && ow && JSON.stringify(opt) !== JSON.stringify(ow.optimizer)) {
    out.push(
      'optimizer differs from optim_wrapper.optimizer: beitseg trains with optim_wrapper.optimizer ' +
        '(the top-level copy is ignored)',
    );
  }
  const env = dictAt(cfg, 'env_cfg');
  if (env) out.push(...unknownKeyWarnings(env, ['cudnn_benchmark'], ['mp_cfg', 'dist_cfg'], 'env_cfg'));
  return out;
}
