/**
 * mmengine's CheckpointHook: a training checkpoint (training_checkpoint.ts) every
 * `checkpointInterval` iterations and at the last one; the best-metric bookkeeping after each
 * validation (save_best: best_<metric>_iter_N when the metric improves); a checkpoint at the
 * iteration where a stop request ended the loop; retention (max_keep_ckpts) after each save.
 * The best record is kept on every rank; only the main process writes.
 */
import type { Batch } from '../../data/loader.js';
import { PRIORITY, type Hook, type TrainIterOutputs, type ValResult } from '../hook.js';
import type { RunnerContext } from '../runner_context.js';
import { pruneCheckpoints } from '../training_checkpoint.js';

export class CheckpointHook implements Hook {
  readonly name = 'CheckpointHook';
  readonly priority = PRIORITY.VERY_LOW;

  private save(runner: RunnerContext, kind: 'iter' | 'best'): string | null {
    if (!runner.isMainProcess) return null;
    const dir = runner.saveCheckpoint(kind);
    pruneCheckpoints(runner.settings.workDir, runner.settings.maxKeepCkpts);
    return dir;
  }

  afterTrainIter(runner: RunnerContext, _t: number, _batch: Batch, _out: TrainIterOutputs): void {
    const s = runner.settings, it = runner.iteration;
    if (it % s.checkpointInterval !== 0 && it !== s.maxIters) return;
    const dir = this.save(runner, 'iter');
    if (dir === null) return;
    runner.lastSaved = { iteration: it, dir };
    runner.print(`saved checkpoint ${dir}`);
  }

  afterValEpoch(runner: RunnerContext, { metrics }: ValResult): void {
    const key = runner.settings.saveBest;
    if (!key) return;
    const value = (metrics as unknown as Record<string, number>)[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || (runner.best && value <= runner.best.value)) return;
    runner.best = { metric: key, value, iteration: runner.iteration };
    const dir = this.save(runner, 'best');
    if (dir !== null) runner.print(`best ${key} ${value.toFixed(2)} at iteration ${runner.iteration}: ${dir}`);
  }

  afterTrain(runner: RunnerContext): void {
    const interrupted = runner.iteration < runner.settings.maxIters;
    if (!interrupted || runner.lastSaved?.iteration === runner.iteration) return;
    const dir = this.save(runner, 'iter');
    if (dir === null) return;
    runner.lastSaved = { iteration: runner.iteration, dir };
    runner.print(`interrupted at iteration ${runner.iteration}: saved ${dir} (continue with --resume)`);
  }
}
