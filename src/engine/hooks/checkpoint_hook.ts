/**
 * mmengine's CheckpointHook: a training checkpoint (training_checkpoint.ts) every
 * `checkpointInterval` iterations and at the last one; the best-metric bookkeeping after each
 * validation (save_best: best_<metric>_iter_N when the metric improves); a checkpoint at the
 * iteration where a stop request ended the loop; retention (max_keep_ckpts) after each save.
 * The best record is kept on every rank; only the main process writes.
 *
 * An iter_N saved before the validation due at N records that validation as pending (and the
 * best record before it). Once the validation has its metrics and a new best checkpoint is
 * written, iter_N's state.json is updated to the new best with nothing pending. A run killed
 * in between resumes from iter_N, validates at N again and takes the best from the best
 * checkpoint's own state (training_state.ts reconcileBest), so the real best is never pruned
 * for a worse one.
 */
import path from 'node:path';
import type { Batch } from '../../data/loader.js';
import { PRIORITY, type Hook, type TrainIterOutputs, type ValResult } from '../hook.js';
import type { RunnerContext } from '../runner_context.js';
import { pruneCheckpoints, updateCheckpointState } from '../training_checkpoint.js';

export class CheckpointHook implements Hook {
  readonly name = 'CheckpointHook';
  readonly priority = PRIORITY.VERY_LOW;
  /** The iter_ checkpoint whose state waits for the result of the validation due at its iteration. */
  private awaitingValidation: { iteration: number; dir: string } | null = null;

  private save(runner: RunnerContext, kind: 'iter' | 'best'): string | null {
    if (!runner.isMainProcess) return null;
    const dir = runner.saveCheckpoint(kind);
    pruneCheckpoints(runner.settings.workDir, runner.settings.maxKeepCkpts);
    return dir;
  }

  beforeRun(runner: RunnerContext): void {
    const from = runner.resumedFrom;
    // only a checkpoint of this work dir is updated; one given from elsewhere stays as it is
    const inWorkDir = from !== null && path.resolve(path.dirname(from)) === path.resolve(runner.settings.workDir);
    if (runner.pendingValidation && inWorkDir) {
      this.awaitingValidation = { iteration: runner.iteration, dir: from };
    }
  }

  afterTrainIter(runner: RunnerContext, _t: number, _batch: Batch, _out: TrainIterOutputs): void {
    const s = runner.settings,
      it = runner.iteration;
    if (it % s.checkpointInterval !== 0 && it !== s.maxIters) return;
    const dir = this.save(runner, 'iter');
    if (dir === null) return;
    runner.lastSaved = { iteration: it, dir };
    if (runner.pendingValidation) this.awaitingValidation = { iteration: it, dir };
    runner.print(`saved checkpoint ${dir}`);
  }

  afterValEpoch(runner: RunnerContext, { metrics }: ValResult): void {
    this.updateBest(runner, metrics as unknown as Record<string, number>);
    const awaiting = this.awaitingValidation;
    this.awaitingValidation = null;
    if (awaiting?.iteration === runner.iteration && runner.isMainProcess) {
      updateCheckpointState(awaiting.dir, { best: runner.best, pendingValidation: false });
    }
  }

  private updateBest(runner: RunnerContext, metrics: Record<string, number>): void {
    const key = runner.settings.saveBest;
    if (!key) return;
    const value = metrics[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || (runner.best && value <= runner.best.value)) return;
    runner.best = { metric: key, value, iteration: runner.iteration };
    const dir = this.save(runner, 'best');
    if (dir !== null) runner.print(`best ${key} ${value.toFixed(2)} at iteration ${runner.iteration}: ${dir}`);
  }

  afterTrain(runner: RunnerContext): void {
    // a validation still due (a stop request came before it) is unfinished work as well
    const interrupted = runner.iteration < runner.settings.maxIters || runner.pendingValidation;
    if (!interrupted || runner.lastSaved?.iteration === runner.iteration) return;
    const dir = this.save(runner, 'iter');
    if (dir === null) return;
    runner.lastSaved = { iteration: runner.iteration, dir };
    runner.print(`interrupted at iteration ${runner.iteration}: saved ${dir} (continue with --resume)`);
  }
}
