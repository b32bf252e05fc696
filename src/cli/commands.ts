/**
 * The commands `beitseg` has: name, arguments and one-line description, and the module that
 * defines the command's options and runs it. main.ts loads only the module of the command
 * that was asked for, so `beitseg --help`, `--version` and usage errors of other commands load
 * nothing else.
 */
import type { Command } from 'commander';

export interface CommandModule {
  register(program: Command): void;
}

export interface CommandEntry {
  name: string;
  /** Positional arguments as commander writes them, e.g. '<images...>'. */
  args: string;
  description: string;
  load: () => Promise<CommandModule>;
}

export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'predict',
    args: '<images...>',
    description: 'segment images (files, directories or globs) with a BEiT-UperNet model',
    load: () => import('./predict.js'),
  },
  {
    name: 'eval',
    args: '',
    description: 'evaluate mIoU / mAcc / aAcc on a dataset (resumable)',
    load: () => import('./eval.js'),
  },
  {
    name: 'train',
    args: '',
    description:
      'train a segmentor from an mmseg-structured config (iteration-based, AdamW + layer decay, checkpoints and ' +
      'validation)',
    load: () => import('./train.js'),
  },
  {
    name: 'convert',
    args: '<src> <dst>',
    description:
      'convert a BEiT checkpoint (.pth/.safetensors: official unilm/timm, pretraining, unilm ADE20K, mmseg, ' +
      'or a Hugging Face BEiT folder / weight file with config.json) to mmseg keys: safetensors, ' +
      'or torch.save for .pth/.pt',
    load: () => import('./convert.js'),
  },
  {
    name: 'inspect',
    args: '<file>',
    description: 'list the tensors of a checkpoint (.pth or .safetensors): keys, shapes, dtypes, parameter totals',
    load: () => import('./inspect.js'),
  },
  {
    name: 'make-synthetic-dataset',
    args: '<out>',
    description:
      'write a small deterministic ADE20K-layout dataset (textured shapes, JPEG images, 8-bit PNG labels with ' +
      '0 = other) for tests and smoke training',
    load: () => import('./make_synthetic_dataset.js'),
  },
  {
    name: 'plot-log',
    args: '<log>',
    description: 'draw loss, learning rate and validation mIoU curves from a JSONL training log into a PNG',
    load: () => import('./plot_log.js'),
  },
  {
    name: 'print-config',
    args: '<config>',
    description: 'print the fully merged config (_base_ files, _delete_, --cfg-options) as JSON',
    load: () => import('./print_config.js'),
  },
  {
    name: 'serve',
    args: '',
    description: 'serve the model over HTTP: API v1 (/v1/segment, /v1/model), /health, /metrics and a web page at /',
    load: () => import('./serve.js'),
  },
];

/** The command `name` with its entry's description, for the command's module to add options to. */
export function defineCommand(program: Command, name: string): Command {
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) throw new Error(`no command ${name} in src/cli/commands.ts`);
  return program.command(name).description(entry.description);
}
