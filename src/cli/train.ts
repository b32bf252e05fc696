/**
 * `train --config C`: mmseg's training recipe (AdamW + layer-wise lr decay, LinearLR warm-up
 * + PolyLR, decode + aux losses, periodic validation and checkpoints). Parsing only; the work
 * is src/engine/trainer.ts.
 */
import os from 'node:os';
import type { Command } from 'commander';
import type { TrainOptions } from '../engine/trainer.js';
import type { TrainOverrides } from '../engine/train_config.js';
import { defineCommand } from './commands.js';
import { addDistributedOptions, launchIfRequested, type DistributedCliOptions } from './distributed_options.js';
import { addOptions, parseNonNegativeInt, parsePositiveInt, sharedOption, UsageError } from './options.js';

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
  const cmd = defineCommand(program, 'train');
  addOptions(cmd, ['config', 'cfgOptions', 'mmsegConfigs', 'device', 'amp', 'seed'])
    .option('--work-dir <dir>', 'where checkpoints and logs go (default: work_dirs/<config name>)')
    .option(
      '--resume [checkpoint]',
      'continue from the latest complete checkpoint in the work dir (also `--resume auto`: starts fresh when ' +
        'there is none, for requeued jobs), or from the given one',
    )
    .option('--max-iters <n>', 'override train_cfg.max_iters', parsePositiveInt)
    .option('--batch-size <n>', 'override train_dataloader.batch_size', parsePositiveInt)
    .option('--accum <k>', 'gradient accumulation: loss / k, one optimizer step every k iterations', parsePositiveInt)
    .option(
      '--load-from <weights>',
      'initialise from a full segmentor checkpoint (.safetensors or .pth, mmseg or unilm layout)',
    )
    .option(
      '--allow-batch-change',
      'resume although the global batch (world size x --batch-size x --accum) differs from the checkpoint',
    )
    .option('--workers <n>', 'data loader worker threads (0 = in the main thread)', parseNonNegativeInt)
    .option(
      '--threads <n>',
      'libtorch CPU threads (default: all cores, shared out among the workers of a machine)',
      parsePositiveInt,
    )
    .addOption(
      sharedOption('cudaGraphs', {
        help:
          'replay the whole training step from a CUDA graph after 2 eager iterations (one process, no --accum; ' +
          'CUDA builds and devices)',
      }),
    );
  addDistributedOptions(cmd).action(async (o: TrainCliOptions) => {
    const [{ joinFromEnv }, { distributedTrainOptions }, { train }, { loadCliConfig }, { workerThreads }, stop] =
      await Promise.all([
        import('../distributed/init.js'),
        import('../engine/distributed.js'),
        import('../engine/trainer.js'),
        import('./config_arg.js'),
        import('../distributed/slurm.js'),
        import('../engine/stop_signals.js'),
      ]);
    if ((o.amp as string | undefined) === 'auto')
      throw new UsageError('--amp auto is for inference; train takes bf16, fp16 or fp32');
    if (await launchIfRequested(o)) return;
    stop.exitOnStopSignals();
    const joined = await joinFromEnv({ device: o.device, timeoutMs: o.distTimeout * 1000, backend: o.distBackend });
    // each worker's share of the machine (or of the CPUs Slurm gave its task)
    const threads = o.threads ?? (joined ? workerThreads(process.env, os.availableParallelism()) : undefined);
    const main = !joined || joined.pg.rank === 0;
    let options: TrainOptions = {
      config: loadCliConfig(o.config, o.cfgOptions, { warn: main ? undefined : () => undefined }),
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
    if (result.interrupted) process.exitCode = stop.stopExitCode();
  });
}
