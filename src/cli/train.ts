/**
 * `train --config C`: mmseg's training recipe (AdamW + layer-wise lr decay, LinearLR warm-up
 * + PolyLR, decode + aux losses, periodic validation and checkpoints). Parsing only; the work
 * is src/engine/trainer.ts.
 */
import os from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import { joinFromEnv } from '../distributed/init.js';
import { workerThreads } from '../distributed/slurm.js';
import { distributedTrainOptions } from '../engine/distributed.js';
import { exitOnStopSignals, stopExitCode } from '../engine/stop_signals.js';
import { train, type TrainOptions } from '../engine/trainer.js';
import { addDistributedOptions, launchIfRequested, type DistributedCliOptions } from './distributed_options.js';
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
type TrainCliOptions = Pick<
  TrainOverrides,
  'workDir' | 'device' | 'amp' | 'maxIters' | 'batchSize' | 'accum' | 'loadFrom' | 'seed'
> & {
  config: string;
  resume?: boolean | string;
  workers?: number;
  threads?: number;
  cfgOptions?: string[];
  cudaGraphs?: boolean;
  allowBatchChange?: boolean;
} & DistributedCliOptions;

export function register(program: Command): void {
  const cmd = program
    .command('train')
    .description(
      'train a segmentor from an mmseg-structured config (iteration-based, AdamW + layer decay, checkpoints and ' +
        'validation)',
    )
    .requiredOption('--config <file>', CONFIG_HELP)
    .option('--work-dir <dir>', 'where checkpoints and logs go (default: work_dirs/<config name>)')
    .option(
      '--resume [checkpoint]',
      'continue from the latest complete checkpoint in the work dir (also `--resume auto`: starts fresh when ' +
        'there is none, for requeued jobs), or from the given one',
    )
    .option('--device <device>', 'cpu, cuda or cuda:N (default: cuda when available)', device)
    .option(
      '--amp <mode>',
      'mixed precision: bf16 (autocast, cpu or cuda), fp16 (cuda: autocast + dynamic loss scaling), fp32 (off)',
      ampMode,
    )
    .option('--max-iters <n>', 'override train_cfg.max_iters', positiveInt)
    .option('--batch-size <n>', 'override train_dataloader.batch_size', positiveInt)
    .option('--accum <k>', 'gradient accumulation: loss / k, one optimizer step every k iterations', positiveInt)
    .option(
      '--load-from <weights>',
      'initialise from a full segmentor checkpoint (.safetensors or .pth, mmseg or unilm layout)',
    )
    .option(
      '--allow-batch-change',
      'resume although the global batch (world size x --batch-size x --accum) differs from the checkpoint',
    )
    .option('--seed <n>', 'override randomness.seed', nonNegativeInt)
    .option('--workers <n>', 'data loader worker threads (0 = in the main thread)', nonNegativeInt)
    .option(
      '--threads <n>',
      'libtorch CPU threads (default: all cores, shared out among the workers of a machine)',
      positiveInt,
    )
    .option(
      '--cuda-graphs',
      'replay the whole training step from a CUDA graph after 2 eager iterations (one process, no --accum; ' +
        'CUDA builds and devices)',
    );
  addDistributedOptions(addCfgOptions(cmd)).action(async (o: TrainCliOptions) => {
    if (await launchIfRequested(o)) return;
    exitOnStopSignals();
    const joined = await joinFromEnv({ device: o.device, timeoutMs: o.distTimeout * 1000, backend: o.distBackend });
    // each worker's share of the machine (or of the CPUs Slurm gave its task)
    const threads = o.threads ?? (joined ? workerThreads(process.env, os.availableParallelism()) : undefined);
    const main = !joined || joined.pg.rank === 0;
    let options: TrainOptions = {
      config: loadCliConfig(o.config, o.cfgOptions, main ? undefined : () => undefined),
      configPath: o.config,
      workDir: o.workDir,
      // `--resume auto`: the newest complete checkpoint in the work dir, else a fresh start
      resume: o.resume === 'auto' ? true : o.resume,
      device: joined?.device ?? o.device,
      amp: o.amp,
      maxIters: o.maxIters,
      batchSize: o.batchSize,
      accum: o.accum,
      loadFrom: o.loadFrom,
      seed: o.seed,
      numWorkers: o.workers,
      threads,
      cudaGraphs: o.cudaGraphs,
      allowBatchChange: o.allowBatchChange,
    };
    // every rank trains; only rank 0 prints and writes files
    if (joined) options = distributedTrainOptions(joined.pg, { ...options, log: main ? undefined : () => undefined });
    const result = await train(options);
    result.model.dispose();
    if (result.interrupted) process.exitCode = stopExitCode();
  });
}
