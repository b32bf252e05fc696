/** Parsers for commander options that fail with a clear message, and options shared by commands. */
import { InvalidArgumentError, type Command } from 'commander';
import { parseQuantize } from '../inference/precision.js';
import type { AutocastDType } from '../tensor/runtime.js';

export function parsePositiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got '${v}'`);
  return n;
}

export function parseNonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a non-negative integer, got '${v}'`);
  return n;
}

export function parseUnit(v: string): number {
  const n = Number(v);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError(`expected a number in [0, 1], got '${v}'`);
  return n;
}

export function parseNumberList(v: string): number[] {
  const list = v.split(',').map((s) => Number(s.trim()));
  if (!list.length || list.some((n) => !(n > 0)))
    throw new InvalidArgumentError(`expected positive numbers separated by commas, got '${v}'`);
  return list;
}

/** The inference options predict, eval and serve share: --quantize and --cuda-graphs. */
export function addInferenceKernelOptions(cmd: Command): Command {
  return cmd
    .option('--quantize <mode>', "int8: the backbone's linear layers in int8 (CPU; dynamic activations)", parseQuantize)
    .option(
      '--cuda-graphs',
      'replay each slide-window batch shape from a CUDA graph (CUDA builds and devices; off by default)',
    );
}

/**
 * --amp's value as autocast's dtype: bf16 or fp16, null when the option was not given, 'auto'
 * for the caller to resolve on the model's device (autoAmp, src/inference/precision.ts).
 */
export function ampDType(value: string | undefined): AutocastDType | 'auto' | null {
  if (value === undefined) return null;
  if (value === 'bf16') return 'bfloat16';
  if (value === 'fp16') return 'float16';
  if (value === 'auto') return 'auto';
  throw new Error(`--amp must be bf16, fp16 or auto, got ${value}`);
}

/** The checkpoint-reading options convert and inspect share. */
export function addCheckpointReadOptions(cmd: Command): Command {
  return cmd
    .option('--verify-crc', 'check every tensor storage of a .pth against its zip CRC-32 (slower)', false)
    .option(
      '--allow-unknown-globals',
      'read Python objects outside the torch allow-list (e.g. numpy values in metadata) as inert placeholders ' +
        'instead of refusing the file',
      false,
    );
}
