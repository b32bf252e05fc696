/**
 * The `beitseg` command line. Each command lives in its own file and only parses options;
 * the work is done by the library layers. Errors print one clear line (no stack) and exit 1.
 */
import { Command } from 'commander';
import { register as convert } from './convert.js';
import { register as inspect } from './inspect.js';
import { register as predict } from './predict.js';
import { register as evaluate } from './eval.js';
import { register as train } from './train.js';
import { register as makeSyntheticDataset } from './make_synthetic_dataset.js';
import { register as plotLog } from './plot_log.js';
import { register as serve } from './serve.js';
import { register as printConfig } from './print_config.js';
import { register as exportModel } from './export.js';

const program = new Command();
program
  .name('beitseg')
  .description('BEiT + UperNet semantic segmentation (mmsegmentation-compatible) on libtorch')
  .version('0.1.0')
  .showHelpAfterError();

const commands = [
  predict,
  evaluate,
  train,
  convert,
  inspect,
  makeSyntheticDataset,
  plotLog,
  printConfig,
  serve,
  exportModel,
];
for (const register of commands) register(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`beitseg: error: ${msg}\n`);
  if (process.env.BEITSEG_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
