/**
 * The --config argument of train/eval/predict/print-config: a .json or mmseg .py config with
 * `--cfg-options key=value ...` merged in (mmengine's syntax), its unused keys reported on
 * stderr as warnings.
 */
import { applyCfgOptions, parseCfgOptions } from '../config/cfg_options.js';
import { configWarnings } from '../config/warnings.js';
import { loadConfig, type Dict } from '../config/schema.js';

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
