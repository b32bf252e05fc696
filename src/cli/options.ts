/**
 * Every option that more than one command takes, defined once here (flags, help, parser or
 * choices, default), and the value parsers all options use. A command lists the shared options
 * it takes (`addOptions(cmd, ['config', 'weights', ...])`) and defines only its own beside them.
 * Enumerated values are commander choices, so a wrong value is a usage error on every command.
 * This file imports nothing heavy: `--help` and usage errors must not load the model code.
 */
import path from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV } from '../data/limits.js';
import { MMSEG_CONFIGS_ENV } from '../config/mmseg_configs_env.js';
import { autocastDTypeOf } from '../common/amp.js';
import type { AutocastDType } from '../tensor/runtime.js';
import { CFG_OPTIONS_HELP, CONFIG_HELP } from './config_help.js';

function integer(v: string, min: number, what: string): number {
  const n = /^\s*[+-]?\d+\s*$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`expected ${what}, got '${v}'`);
  return n;
}

export function parsePositiveInt(v: string): number {
  return integer(v, 1, 'a positive integer');
}

export function parseNonNegativeInt(v: string): number {
  return integer(v, 0, 'a non-negative integer');
}

export function parsePositiveNumber(v: string): number {
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a positive number, got '${v}'`);
  return n;
}

export function parseUnit(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !(n >= 0 && n <= 1)) throw new InvalidArgumentError(`expected a number in [0, 1], got '${v}'`);
  return n;
}

export function parseNumberList(v: string): number[] {
  const list = v.split(',').map((s) => Number(s.trim()));
  if (!list.length || list.some((n) => !(n > 0) || !Number.isFinite(n)))
    throw new InvalidArgumentError(`expected positive numbers separated by commas, got '${v}'`);
  return list;
}

export function parsePort(v: string): number {
  const n = /^\d+$/.test(v) ? Number(v) : Number.NaN;
  if (!(n >= 1 && n <= 65535)) throw new InvalidArgumentError(`expected a port (1..65535), got '${v}'`);
  return n;
}

export function parseDevice(v: string): string {
  if (v === 'cpu' || v === 'cuda' || /^cuda:\d+$/.test(v)) return v;
  throw new InvalidArgumentError(`expected cpu, cuda or cuda:N, got '${v}'`);
}

/** "256x320" -> [256, 320] (height x width). */
export function parseSize(v: string): [number, number] {
  const m = /^(\d+)x(\d+)$/i.exec(v.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1)
    throw new InvalidArgumentError(`expected HEIGHTxWIDTH (e.g. 256x320), got '${v}'`);
  return [Number(m[1]), Number(m[2])];
}

export const AMP_CHOICES = ['bf16', 'fp16', 'fp32', 'auto'] as const;
export type AmpChoice = (typeof AMP_CHOICES)[number];

/**
 * --amp's value as autocast's dtype: bf16 or fp16; null when not given or fp32 (autocast off);
 * 'auto' for the caller to resolve on the model's device (autoAmp, src/inference/precision.ts).
 */
export function ampDType(value: AmpChoice | undefined): AutocastDType | 'auto' | null {
  return value === 'auto' ? 'auto' : autocastDTypeOf(value);
}

/** --weights on predict and eval, which also run an exported .onnx. */
export const ONNX_WEIGHTS_HELP =
  'weights: .safetensors or .pth (mmseg, or official unilm BEiT converted on the fly), ' +
  'a Hugging Face BEiT folder with config.json (its architecture is used), ' +
  'or an .onnx from beitseg export (runs on ONNX Runtime, no libtorch)';

const DEFINITIONS = {
  config: () => new Option('--config <file>', CONFIG_HELP).makeOptionMandatory(),
  weights: () =>
    new Option(
      '--weights <file>',
      'weights: .safetensors or .pth (mmseg, or official unilm BEiT converted on the fly), ' +
        'or a Hugging Face BEiT folder with config.json (its architecture is used)',
    ),
  randomWeights: () =>
    new Option('--random-weights', 'run without --weights, on random weights (smoke tests only)').conflicts('weights'),
  device: () =>
    new Option('--device <device>', 'cpu, cuda or cuda:N (default: cuda when available)').argParser(parseDevice),
  mode: () =>
    new Option('--mode <mode>', "test mode (default: the config's model.test_cfg.mode)").choices(['whole', 'slide']),
  amp: () =>
    new Option(
      '--amp <dtype>',
      'mixed precision: bf16 (autocast, cpu or cuda), fp16 (cuda; in training with dynamic loss scaling), ' +
        'fp32 (off, the default), auto (inference: bf16 where the CPU has bf16 instructions, else fp32)',
    ).choices(AMP_CHOICES),
  tta: () =>
    new Option(
      '--tta',
      'multi-scale + flip test-time augmentation, probabilities averaged ' +
        "(scales and flips: the config's tta_pipeline, else 0.5,0.75,1,1.25,1.5,1.75 + flip)",
    ),
  ttaScales: () =>
    new Option('--tta-scales <list>', 'scale ratios of the test scale for --tta, e.g. 0.5,1,1.5').argParser(
      parseNumberList,
    ),
  ttaMinSize: () =>
    new Option(
      '--tta-min-size <n>',
      "mmseg 0.x min_size for --tta scales (640 reproduces BEiT's ms+flip configs)",
    ).argParser(parsePositiveInt),
  windowBatch: () =>
    new Option('--window-batch <n>', 'slide windows per forward pass').argParser(parsePositiveInt).default(1),
  maxPixels: () =>
    new Option(
      '--max-pixels <n>',
      `refuse images (and labels) with more pixels (default ${DEFAULT_MAX_PIXELS}, or ${MAX_PIXELS_ENV})`,
    ).argParser(parsePositiveInt),
  quantize: () =>
    new Option('--quantize <mode>', "int8: the backbone's linear layers in int8 (CPU; dynamic activations)").choices([
      'int8',
    ]),
  cudaGraphs: () =>
    new Option(
      '--cuda-graphs',
      'replay each slide-window batch shape from a CUDA graph (CUDA builds and devices; off by default)',
    ),
  cfgOptions: () => new Option('--cfg-options <key=value...>', CFG_OPTIONS_HELP),
  mmsegConfigs: () =>
    new Option(
      '--mmseg-configs <dir>',
      `mmsegmentation's configs folder, where _base_ = 'mmseg::...' files are read (default: $${MMSEG_CONFIGS_ENV})`,
    ),
  seed: () => new Option('--seed <n>', 'override randomness.seed').argParser(parseNonNegativeInt),
  verifyCrc: () =>
    new Option('--verify-crc', 'check every tensor storage of a .pth against its zip CRC-32 (slower)').default(false),
  allowUnknownGlobals: () =>
    new Option(
      '--allow-unknown-globals',
      'read Python objects outside the torch allow-list (e.g. numpy values in metadata) as inert placeholders ' +
        'instead of refusing the file',
    ).default(false),
  json: () => new Option('--json', 'print the result as JSON on stdout (docs/json-schema.md)'),
} satisfies Record<string, () => Option>;

export type SharedOption = keyof typeof DEFINITIONS;

/** One shared option; `help` or `default` adapt its wording or default to a command, not its parsing. */
export function sharedOption(name: SharedOption, adapt: { help?: string; default?: unknown } = {}): Option {
  const opt = DEFINITIONS[name]();
  if (adapt.help !== undefined) opt.description = adapt.help;
  if ('default' in adapt) opt.default(adapt.default);
  return opt;
}

/** Adds the shared options `names` to `cmd`, in that order. */
export function addOptions(cmd: Command, names: readonly SharedOption[]): Command {
  for (const n of names) cmd.addOption(sharedOption(n));
  if (names.includes('mmsegConfigs')) {
    cmd.hook('preAction', (_cmd, action) => {
      // the config loader reads the folder from the environment, as for every other caller
      const dir = action.opts().mmsegConfigs as string | undefined;
      if (dir) process.env[MMSEG_CONFIGS_ENV] = path.resolve(dir);
    });
  }
  return cmd;
}

/** The options predict, eval and serve share to run a model. */
export const INFERENCE_OPTIONS: readonly SharedOption[] = [
  'config',
  'weights',
  'randomWeights',
  'device',
  'mode',
  'amp',
  'windowBatch',
  'quantize',
  'cudaGraphs',
  'cfgOptions',
  'mmsegConfigs',
];

/** The checkpoint-reading options convert and inspect share. */
export function addCheckpointReadOptions(cmd: Command): Command {
  return addOptions(cmd, ['verifyCrc', 'allowUnknownGlobals']);
}

/** A wrong command line found after parsing (a value combination, a missing input): exit 2, like commander's. */
export class UsageError extends Error {}

/** predict/eval/serve: --weights, or --random-weights said out loud. */
export function requireWeights(o: { weights?: string; randomWeights?: boolean }): void {
  if (!o.weights && !o.randomWeights)
    throw new UsageError('no --weights given: pass --weights FILE, or --random-weights to run on random weights');
}
