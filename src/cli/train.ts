/**
 * `train --config C`: mmseg's training recipe (AdamW + layer-wise lr decay, LinearLR warm-up
 * + PolyLR, decode + aux losses, periodic validation and checkpoints). Parsing only; the work
 * is src/engine/trainer.ts.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { train } from '../engine/trainer.js';
import type { TrainOverrides } from '../engine/train_config.js';
import { addCfgOptions, CONFIG_HELP, loadCliConfig } from './config_arg.js';

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got '${v}'`);
  return n;
}

function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`expected a non-negative integer, got '${v}'`);
  return n;
}

function ampMode(v: string): 'fp16' | 'bf16' | 'fp32' {
  if (v === 'fp16' || v === 'bf16' || v === 'fp32') return v;
  throw new InvalidArgumentError(`expected fp16, bf16 or fp32, got '${v}'`);
}

function device(v: string): string {
  if (v === 'cpu' || v === 'cuda' || /^cuda:\d+$/.test(v)) return v;
  throw new InvalidArgumentError(`expected cpu, cuda or cuda:N, got '${v}'`);
}

/** The options commander parses: the engine's overrides plus what only the CLI names differently. */
type TrainCliOptions = Pick<TrainOverrides, 'workDir' | 'device' | 'amp' | 'maxIters' | 'batchSize' | 'accum' | 'loadFrom' | 'seed'> & {
  config: string;
  resume?: boolean | string;
  workers?: number;
  threads?: number;
  cfgOptions?: string[];
};

export function register(program: Command): void {
  const cmd = program
    .command('train')
    .description('train a segmentor from an mmseg-structured config (iteration-based, AdamW + layer decay, checkpoints and validation)')
    .requiredOption('--config <file>', CONFIG_HELP)
    .option('--work-dir <dir>', 'where checkpoints and logs go (default: work_dirs/<config name>)')
    .option('--resume [checkpoint]', 'continue from the latest complete checkpoint in the work dir, or from the given one')
    .option('--device <device>', 'cpu, cuda or cuda:N (default: cuda when available)', device)
    .option('--amp <mode>', 'mixed precision: bf16 (autocast, cpu or cuda), fp16 (cuda: autocast + dynamic loss scaling), fp32 (off)', ampMode)
    .option('--max-iters <n>', 'override train_cfg.max_iters', positiveInt)
    .option('--batch-size <n>', 'override train_dataloader.batch_size', positiveInt)
    .option('--accum <k>', 'gradient accumulation: loss / k, one optimizer step every k iterations', positiveInt)
    .option('--load-from <weights>', 'initialise from a full segmentor checkpoint (.safetensors or .pth, mmseg or unilm layout)')
    .option('--seed <n>', 'override randomness.seed', nonNegativeInt)
    .option('--workers <n>', 'data loader worker threads (0 = in the main thread)', nonNegativeInt)
    .option('--threads <n>', 'libtorch CPU threads', positiveInt);
  addCfgOptions(cmd)
    .action(async (o: TrainCliOptions) => {
      const result = await train({
        config: loadCliConfig(o.config, o.cfgOptions), configPath: o.config,
        workDir: o.workDir, resume: o.resume, device: o.device, amp: o.amp, maxIters: o.maxIters,
        batchSize: o.batchSize, accum: o.accum, loadFrom: o.loadFrom, seed: o.seed, numWorkers: o.workers, threads: o.threads,
      });
      result.model.dispose();
      if (result.interrupted) process.exitCode = 130;
    });
}
