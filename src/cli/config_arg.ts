/**
 * The --config argument of train/eval/predict/print-config: a .json or mmseg .py config with
 * `--cfg-options key=value ...` merged in (mmengine's syntax), its unused keys reported on
 * stderr as warnings.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { MMSEG_CONFIGS_ENV } from '../config/load.js';
import { applyCfgOptions, parseCfgOptions } from '../config/cfg_options.js';
import { configWarnings } from '../engine/config_warnings.js';
import { loadConfig, type Dict } from '../models/config.js';

export const CFG_OPTIONS_HELP =
  'override config values, mmengine style: key=value ... ' +
  '(e.g. model.decode_head.num_classes=19 train_dataloader.dataset.pipeline.3.crop_size=[512,512]; ' +
  'numbers, strings, true/false, None, [a,b], (a,b)); end the list with -- before positional arguments';

export const CONFIG_HELP =
  'config: an mmseg 1.x .py config (with _base_ files) or its JSON dump, ' + 'e.g. configs/tiny_synthetic.json';

export function addCfgOptions(cmd: Command): Command {
  return cmd
    .option('--cfg-options <key=value...>', CFG_OPTIONS_HELP)
    .option(
      '--mmseg-configs <dir>',
      `mmsegmentation's configs folder, where _base_ = 'mmseg::...' files are read (default: $${MMSEG_CONFIGS_ENV})`,
    )
    .hook('preAction', (_cmd, action) => {
      // the config loader reads the folder from the environment, as for every other caller
      const dir = action.opts().mmsegConfigs as string | undefined;
      if (dir) process.env[MMSEG_CONFIGS_ENV] = path.resolve(dir);
    });
}

/** The merged config with the options applied; warnings for unused keys go to `warn` (default stderr). */
export function loadCliConfig(
  file: string,
  cfgOptions: readonly string[] = [],
  warn: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Dict {
  const cfg = applyCfgOptions(loadConfig(file), parseCfgOptions(cfgOptions));
  for (const w of configWarnings(cfg)) warn(`warning: ${file}: ${w}`);
  return cfg;
}
