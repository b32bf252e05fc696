/**
 * `beitseg print-config CONFIG [--cfg-options ...] [--out merged.json]`: the fully merged
 * config (bases, _delete_, --cfg-options applied) as JSON, what mmengine's Config.dump writes,
 * so a user sees exactly what train/eval/predict will run. --out is written atomically.
 */
import type { Command } from 'commander';
import { CONFIG_HELP } from './config_help.js';
import { defineCommand } from './commands.js';
import { addOptions } from './options.js';
import { checkOutFile } from './outputs.js';

interface PrintConfigOptions {
  cfgOptions?: string[];
  out?: string;
}

export function register(program: Command): void {
  const cmd = defineCommand(program, 'print-config')
    .argument('<config>', CONFIG_HELP)
    .option('--out <file>', 'write the JSON to this file (atomically) instead of stdout');
  addOptions(cmd, ['cfgOptions', 'mmsegConfigs']).action(async (config: string, opts: PrintConfigOptions) => {
    if (opts.out) checkOutFile(opts.out);
    const { loadCliConfig } = await import('./config_arg.js');
    const cfg = loadCliConfig(config, opts.cfgOptions);
    const text = `${JSON.stringify(cfg, null, 2)}\n`;
    if (!opts.out) {
      process.stdout.write(text);
      return;
    }
    // image_io (and sharp with it) only when there is a file to write
    const { writeFileAtomic } = await import('../data/image_io.js');
    await writeFileAtomic(opts.out, new TextEncoder().encode(text));
    process.stderr.write(`wrote ${opts.out}\n`);
  });
}
