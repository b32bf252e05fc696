/**
 * `beitseg print-config CONFIG [--cfg-options ...] [--out merged.json]`: the fully merged
 * config (bases, _delete_, --cfg-options applied) as JSON, what mmengine's Config.dump writes,
 * so a user sees exactly what train/eval/predict will run. --out is written atomically.
 */
import type { Command } from 'commander';
import { writeFileAtomic } from '../data/image_io.js';
import { addCfgOptions, CONFIG_HELP, loadCliConfig } from './config_arg.js';

interface PrintConfigOptions {
  cfgOptions?: string[];
  out?: string;
}

export function register(program: Command): void {
  const cmd = program
    .command('print-config')
    .description('print the fully merged config (_base_ files, _delete_, --cfg-options) as JSON')
    .argument('<config>', CONFIG_HELP)
    .option('--out <file>', 'write the JSON to this file (atomically) instead of stdout');
  addCfgOptions(cmd).action(async (config: string, opts: PrintConfigOptions) => {
    const cfg = loadCliConfig(config, opts.cfgOptions);
    const text = `${JSON.stringify(cfg, null, 2)}\n`;
    if (!opts.out) {
      process.stdout.write(text);
      return;
    }
    await writeFileAtomic(opts.out, new TextEncoder().encode(text));
    process.stderr.write(`wrote ${opts.out}\n`);
  });
}
