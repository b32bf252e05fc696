/**
 * The --config argument of train/eval/predict/print-config: a .json or mmseg .py config with
 * `--cfg-options key=value ...` merged in (mmengine's syntax), its unused keys reported on
 * stderr as warnings.
 */
import { applyCfgOptions, parseCfgOptions } from '../config/cfg_options.js';
import { plainConfig, readConfigFile } from '../config/load.js';
import { configWarnings } from '../config/warnings.js';
import type { Dict } from '../config/schema.js';

export interface CliConfigOptions {
  /** Where warnings for unused keys go (default: stderr). */
  warn?: (line: string) => void;
  /** Return the config with Python's floats and tuples and mmengine's `_delete_` keys (print-config --format py). */
  pyTypes?: boolean;
}

/** The merged config with the options applied (the options merged as mmengine merges them, before `_delete_` goes). */
export function loadCliConfig(file: string, cfgOptions: readonly string[] = [], options: CliConfigOptions = {}): Dict {
  const warn = options.warn ?? ((l: string) => process.stderr.write(`${l}\n`));
  const rich = applyCfgOptions(readConfigFile(file, { pyTypes: true }), parseCfgOptions(cfgOptions, true));
  const cfg = plainConfig(rich);
  for (const w of configWarnings(cfg)) warn(`warning: ${file}: ${w}`);
  return options.pyTypes ? rich : cfg;
}
