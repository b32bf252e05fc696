/**
 * The `beitseg` command line. Each command lives in its own file and only parses options; the
 * work is done by the library layers, loaded when the command runs. Conventions (docs/cli.md):
 * every error is one line `beitseg: error: ...`; usage errors (unknown command or option, a
 * missing or invalid value) exit 2 with one line pointing to --help; other failures exit 1.
 */
import { Command, type CommanderError, Option } from 'commander';
import { safeLine } from '../common/safe_text.js';
import { COMMANDS } from './commands.js';
import { UsageError } from './options.js';
import { VERSION } from './version.js';

const PREFIX = 'beitseg: error: ';

interface CommandModule {
  register(program: Command): void;
}

/** Each command's module, imported only when that command runs (or shows its help). */
const MODULES: Record<string, () => Promise<CommandModule>> = {
  predict: () => import('./predict.js'),
  eval: () => import('./eval.js'),
  train: () => import('./train.js'),
  convert: () => import('./convert.js'),
  inspect: () => import('./inspect.js'),
  'make-synthetic-dataset': () => import('./make_synthetic_dataset.js'),
  'plot-log': () => import('./plot_log.js'),
  export: () => import('./export.js'),
  'print-config': () => import('./print_config.js'),
  serve: () => import('./serve.js'),
};

function helpHint(command: string | undefined): string {
  return `Run 'beitseg${command ? ` ${command}` : ''} --help' for usage.`;
}

/** The command the arguments ask for (`beitseg help X` asks for X), if it is one. */
function requested(args: string[]): string | undefined {
  const first = args.findIndex((a) => !a.startsWith('-'));
  if (first < 0) return undefined;
  const name = args[first] === 'help' ? args[first + 1] : args[first];
  return COMMANDS.some((c) => c.name === name) ? name : undefined;
}

async function main(args: string[]): Promise<void> {
  const program = new Command('beitseg')
    .description('BEiT + UperNet semantic segmentation (mmsegmentation-compatible) on libtorch')
    .version(VERSION)
    .showSuggestionAfterError(true)
    .configureOutput({ outputError: (str, write) => write(str.replace(/^error: /, PREFIX)) })
    .exitOverride((err: CommanderError) => {
      const shown = err.code === 'commander.helpDisplayed' || err.code === 'commander.version';
      process.exit(shown ? 0 : 2);
    });
  program.showHelpAfterError(helpHint(undefined));
  const wanted = requested(args);
  for (const entry of COMMANDS) {
    if (entry.name === wanted) {
      const load = MODULES[entry.name];
      if (!load) throw new Error(`no module for command ${entry.name} in src/cli/main.ts`);
      (await load()).register(program);
    } else {
      // listed for the overview and for "did you mean"; its module loads only when asked for
      const stub = program.command(entry.name).description(entry.description);
      if (entry.args) stub.arguments(entry.args);
      // a hidden option makes the overview read "name [options] <args>" as for a loaded command
      stub.addOption(new Option('--options').hideHelp());
    }
  }
  for (const cmd of program.commands) cmd.showHelpAfterError(helpHint(cmd.name()));
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    // file text (keys, names, globals) reaches messages: escape what a terminal would act on
    process.stderr.write(`${PREFIX}${safeLine(msg.replace(/^beitseg: (error: )?/, ''))}\n`);
    if (process.env.BEITSEG_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    if (err instanceof UsageError) {
      process.stderr.write(`${helpHint(wanted)}\n`);
      process.exit(2);
    }
    process.exit(1);
  }
}

await main(process.argv.slice(2));
