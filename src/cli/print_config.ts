/**
 * `beitseg print-config CONFIG [--cfg-options ...] [--format json|py] [--out FILE]`: the fully
 * merged config (bases, _delete_, --cfg-options applied), so a user sees exactly what
 * train/eval/predict will run. JSON (the default) is the config beitseg uses; `--format py`
 * (the default for an --out ending in .py) is mmengine's Config.dump('x.py') form, with floats,
 * tuples and the `_delete_` keys mmengine keeps. --out is written atomically.
 */
import path from 'node:path';
import { Option, type Command } from 'commander';
import { CONFIG_HELP } from './config_help.js';
import { defineCommand } from './commands.js';
import { addOptions } from './options.js';
import { checkOutFile } from './outputs.js';

interface PrintConfigOptions {
  cfgOptions?: string[];
  out?: string;
  format?: 'json' | 'py';
}

export function register(program: Command): void {
  const cmd = defineCommand(program, 'print-config')
    .argument('<config>', CONFIG_HELP)
    .addOption(
      new Option(
        '--format <format>',
        "json: the config beitseg runs; py: mmengine's Config.dump form " +
          '(default: py for an --out ending in .py, else json)',
      ).choices(['json', 'py']),
    )
    .option('--out <file>', 'write the config to this file (atomically) instead of stdout');
  addOptions(cmd, ['cfgOptions', 'mmsegConfigs']).action(async (config: string, opts: PrintConfigOptions) => {
    if (opts.out) checkOutFile(opts.out);
    const format = opts.format ?? (opts.out && path.extname(opts.out).toLowerCase() === '.py' ? 'py' : 'json');
    const { loadCliConfig } = await import('./config_arg.js');
    let text: string;
    if (format === 'py') {
      const { dumpPython } = await import('../config/py_dump.js');
      text = dumpPython(loadCliConfig(config, opts.cfgOptions, { pyTypes: true }));
    } else {
      text = `${JSON.stringify(loadCliConfig(config, opts.cfgOptions), null, 2)}\n`;
    }
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
