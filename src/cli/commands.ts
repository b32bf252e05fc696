/**
 * The commands `beitseg` has: name, arguments and one-line description (main.ts maps each to
 * the module that defines its options and runs it, and loads only the one asked for, so
 * `beitseg --help`, `--version` and usage errors load no other command's code).
 */
import type { Command } from 'commander';

export interface CommandEntry {
  name: string;
  /** Positional arguments as commander writes them, e.g. '<images...>'. */
  args: string;
  description: string;
}

export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'predict',
    args: '<images...>',
    description: 'segment images (files, directories or globs) with a BEiT-UperNet model',
  },
  {
    name: 'eval',
    args: '',
    description: 'evaluate mIoU / mAcc / aAcc on a dataset (resumable)',
  },
  {
    name: 'train',
    args: '',
    description:
      'train a segmentor from an mmseg-structured config (iteration-based, AdamW + layer decay, checkpoints and ' +
      'validation)',
  },
  {
    name: 'convert',
    args: '<src> <dst>',
    description:
      'convert a BEiT checkpoint (.pth/.safetensors: official unilm/timm, pretraining, unilm ADE20K, mmseg, ' +
      'or a Hugging Face BEiT folder / weight file with config.json) to mmseg keys: safetensors, ' +
      'or torch.save for .pth/.pt',
  },
  {
    name: 'inspect',
    args: '<file>',
    description: 'list the tensors of a checkpoint (.pth or .safetensors): keys, shapes, dtypes, parameter totals',
  },
  {
    name: 'make-synthetic-dataset',
    args: '<out>',
    description:
      'write a small deterministic ADE20K-layout dataset (textured shapes, JPEG images, 8-bit PNG labels with ' +
      '0 = other) for tests and smoke training',
  },
  {
    name: 'plot-log',
    args: '<log>',
    description: 'draw loss, learning rate and validation mIoU curves from a JSONL training log into a PNG',
  },
  {
    name: 'export',
    args: '',
    description: 'export the segmentor (backbone, neck, decode head; no auxiliary head) as an ONNX model',
  },
  {
    name: 'print-config',
    args: '<config>',
    description: 'print the fully merged config (_base_ files, _delete_, --cfg-options) as JSON',
  },
  {
    name: 'serve',
    args: '',
    description: 'serve the model over HTTP: API v1 (/v1/segment, /v1/model), /health, /metrics and a web page at /',
  },
];

/** The command `name` with its entry's description, for the command's module to add options to. */
export function defineCommand(program: Command, name: string): Command {
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) throw new Error(`no command ${name} in src/cli/commands.ts`);
  return program.command(name).description(entry.description);
}
