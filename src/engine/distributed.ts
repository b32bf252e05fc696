/**
 * Data-parallel training on a c10d process group, plugged into the runner's seams
 * (TrainOptions.dist / gradSync / validateFn / hooks):
 *
 *   DdpGradientSync   DDP through c10d's Reducer (src/distributed/ddp.ts): parameters and
 *                     buffers broadcast from rank 0 before training, gradients averaged in
 *                     buckets during backward, no all-reduce on accumulation iterations
 *                     (no_sync), AMP skip/step decided by all ranks together
 *   DistributedHook   the header line (world size, global batch, bytes all-reduced per step);
 *                     SIGINT/SIGTERM/SIGUSR1: the stop request is all-reduced after every
 *                     iteration, so all ranks stop after the same iteration and rank 0 saves
 *                     the checkpoint
 *   GlobalLossHook    the logged loss terms and accuracies become their mean over ranks (one
 *                     small all-reduce per iteration, as mmcv's log_vars reduction), so curves
 *                     compare across world sizes
 *   validateFn        every rank evaluates its shard, per-class areas summed over ranks
 *
 * Files: only rank 0 writes (the logger and checkpoint hooks check runner.isMainProcess). The
 * loader splits the shared sample stream by rank (src/data/loader.ts), and checkpoints are the
 * single-process format (the loader position counts samples of the shared stream).
 */
import type { DistributedDataParallel } from '../distributed/ddp.js';
import { DistributedDataParallel as Ddp } from '../distributed/ddp.js';
import type { ProcessGroup } from '../distributed/process_group.js';
import { evaluationShard } from '../evaluation/distributed.js';
import { tensor, type Tensor } from '../tensor/tensor.js';
import { PRIORITY, type Hook, type TrainIterOutputs } from './hook.js';
import type { GradientSync } from './optim_wrapper.js';
import type { RunnerContext } from './runner_context.js';
import { noteStopSignal, onStopSignals } from './stop_signals.js';
import type { TrainOptions } from './trainer.js';
import { validate } from './validation.js';

function named(rank: number, what: string, e: unknown): Error {
  const msg = e instanceof Error ? e.message : String(e);
  return new Error(msg.startsWith('rank ') ? msg : `rank ${rank}: ${what}: ${msg.split('\n')[0]}`);
}

export class DdpGradientSync implements GradientSync {
  ddp: DistributedDataParallel | null = null;

  constructor(readonly pg: ProcessGroup) {}

  /** Wraps the model (broadcast from rank 0, Reducer over the parameters that need gradients). */
  attach(runner: RunnerContext): void {
    if (this.ddp) return;
    const params = runner.model
      .namedParameters()
      .map(([, p]) => p)
      .filter((p) => p.requiresGrad);
    const buffers = runner.model.namedBuffers().map(([, b]) => b);
    try {
      this.ddp = new Ddp(this.pg, params, buffers);
    } catch (e) {
      throw named(this.pg.rank, 'wrapping the model for data-parallel training failed', e);
    }
  }

  iteration<T>(sync: boolean, run: () => T): T {
    if (!this.ddp) throw new Error(`rank ${this.pg.rank}: DdpGradientSync used before attach()`);
    if (sync) this.ddp.prepareBackward();
    try {
      return run();
    } catch (e) {
      throw named(this.pg.rank, 'forward/backward with gradient all-reduce failed', e);
    }
  }

  beforeStep(_params: Tensor[]): void {
    // Reducer mode: backward has already left the averaged gradients in .grad; flat mode
    // averages the window's gradients here
    try {
      this.ddp?.finish();
    } catch (e) {
      throw named(this.pg.rank, 'gradient all-reduce failed', e);
    }
  }

  allAgree(ok: boolean): boolean {
    return this.ddp!.allAgree(ok);
  }

  dispose(): void {
    this.ddp?.dispose();
    this.ddp = null;
  }
}

export class DistributedHook implements Hook {
  readonly name = 'DistributedHook';
  // last in every hook point: afterTrainIter sees every stop request of this iteration
  readonly priority = PRIORITY.LOWEST;
  private interrupted = false;
  private remove: (() => void) | null = null;

  constructor(
    readonly pg: ProcessGroup,
    readonly sync: DdpGradientSync,
  ) {}

  beforeRun(runner: RunnerContext): void {
    this.sync.attach(runner);
    this.remove = onStopSignals((signal) => {
      if (noteStopSignal(signal)) {
        runner.print(`rank ${this.pg.rank}: second interrupt: exiting without a checkpoint`);
        process.exit(130);
      }
      if (this.interrupted) return;
      this.interrupted = true;
      if (runner.isMainProcess) {
        runner.print(
          `${signal}: every rank finishes the running iteration, then a checkpoint is saved` +
            `${signal === 'SIGINT' ? ' (Ctrl-C again to abort)' : ''}`,
        );
      }
    });
  }

  beforeTrain(runner: RunnerContext): void {
    if (!runner.isMainProcess) return;
    const s = runner.settings,
      W = this.pg.worldSize,
      b = s.train.batchSize;
    const ddp = this.sync.ddp!;
    runner.print(
      `distributed: world size ${W} (${this.pg.backend}), global batch ${W} x ${b} = ${W * b}` +
        `${s.accum > 1 ? ` (x ${s.accum} accumulated = ${W * b * s.accum} per optimizer step)` : ''}, ` +
        `${(ddp.bytesPerStep / 1e6).toFixed(2)} MB of gradients all-reduced per step in ${ddp.buckets} buckets` +
        `${ddp.mode === 'flat' ? ' (after backward)' : ''}`,
    );
  }

  /** Agrees on stopping: any rank interrupted (or asked to stop) stops every rank after this iteration. */
  afterTrainIter(runner: RunnerContext): void {
    const flag = tensor([this.interrupted || runner.stopRequested ? 1 : 0]);
    try {
      this.pg.allReduce(flag, 'max');
      if (flag.item() > 0) runner.requestStop();
    } finally {
      flag.dispose();
    }
  }

  afterRun(): void {
    this.remove?.();
    this.remove = null;
    this.sync.dispose();
  }
}

/** Replaces this iteration's logged values by their mean over ranks before the LoggerHook reads them. */
export class GlobalLossHook implements Hook {
  readonly name = 'GlobalLossHook';
  readonly priority = PRIORITY.NORMAL;

  constructor(readonly pg: ProcessGroup) {}

  afterTrainIter(_runner: RunnerContext, _t: number, _batch: unknown, out: TrainIterOutputs): void {
    const values = out.values as Record<string, number>;
    const names = Object.keys(values).sort();
    const t = tensor(
      names.map((n) => values[n]!),
      [names.length],
    );
    try {
      this.pg.allReduceMean(t);
      const mean = t.toFloat32Array();
      names.forEach((n, i) => {
        values[n] = mean[i]!;
      });
    } finally {
      t.dispose();
    }
  }
}

/**
 * A checkpoint saved inside an accumulation window holds the pending (not yet all-reduced)
 * gradients, which differ per rank while rank 0 alone writes. Just before such a save, every
 * rank replaces its pending gradients by their mean over ranks: the window's final all-reduce
 * then still yields mean(pending + rest), and the checkpoint holds what every rank needs to
 * resume exactly (up to float rounding). Runs before the CheckpointHook (VERY_LOW).
 */
export class PendingGradientsHook implements Hook {
  readonly name = 'PendingGradientsHook';
  readonly priority = PRIORITY.LOW + 1;

  constructor(readonly pg: ProcessGroup) {}

  private average(runner: RunnerContext): void {
    for (const [, p] of runner.model.namedParameters()) {
      const g = p.grad;
      if (!g) continue;
      try {
        this.pg.allReduceMean(g);
      } finally {
        g.dispose();
      }
    }
  }

  afterTrainIter(runner: RunnerContext, t: number): void {
    const s = runner.settings,
      it = runner.iteration;
    const saveDue = it % s.checkpointInterval === 0 || it === s.maxIters;
    if (saveDue && !runner.optimWrapper.shouldUpdate(t)) this.average(runner);
  }

  afterTrain(runner: RunnerContext): void {
    const t = runner.iteration - 1;
    if (runner.iteration < runner.settings.maxIters && t >= 0 && !runner.optimWrapper.shouldUpdate(t))
      this.average(runner);
  }
}

/** The TrainOptions that make a Trainer data-parallel over `pg` (merge them into the caller's). */
export function distributedTrainOptions(pg: ProcessGroup, base: TrainOptions): TrainOptions {
  const sync = new DdpGradientSync(pg);
  return {
    ...base,
    dist: { rank: pg.rank, worldSize: pg.worldSize },
    gradSync: sync,
    // stop signals are handled by DistributedHook (the stop must be agreed by all ranks)
    handleSignals: false,
    hooks: [...(base.hooks ?? []), new DistributedHook(pg, sync), new PendingGradientsHook(pg), new GlobalLossHook(pg)],
    validateFn: (model, o) => validate(model, { ...o, shard: evaluationShard(pg) }),
  };
}
