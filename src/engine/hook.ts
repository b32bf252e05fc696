/**
 * Hooks: mmengine's Hook with its training hook points and priorities. A hook implements only
 * the points it needs; the runner calls every hook's point in priority order (lower first;
 * equal priorities in registration order). The order of the points is described in
 * src/engine/train_loop.ts.
 */
import type { Batch } from '../data/loader.js';
import type { RunnerContext } from './runner_context.js';
import type { SegMetrics } from './validation.js';

/** mmengine's priority names (lower runs first). */
export const PRIORITY = {
  HIGHEST: 0,
  VERY_HIGH: 10,
  HIGH: 30,
  ABOVE_NORMAL: 40,
  NORMAL: 50,
  BELOW_NORMAL: 60,
  LOW: 70,
  VERY_LOW: 90,
  LOWEST: 100,
} as const;

/** What one training iteration produced (mmengine's `outputs` of after_train_iter). */
export interface TrainIterOutputs {
  /** Loss terms and accuracies as plain numbers (loss, decode.loss_ce, decode.acc_seg, aux.*). */
  values: Record<string, number>;
  /** Wall-clock ms (performance.now()) when the iteration started, its batch arrived and it ended. */
  startMs: number;
  dataMs: number;
  endMs: number;
}

/** One validation's result as the hooks see it. */
export interface ValResult {
  metrics: SegMetrics;
  seconds: number;
}

export interface Hook {
  /** Name used in error messages and for lookups (e.g. 'CheckpointHook'). */
  readonly name: string;
  /** Default PRIORITY.NORMAL. */
  readonly priority?: number;
  /** Once, before anything of the run (work dir exists, the loader does not yet). */
  beforeRun?(runner: RunnerContext): void | Promise<void>;
  /** The loader exists and the model is in train mode; before the first iteration. */
  beforeTrain?(runner: RunnerContext): void | Promise<void>;
  /** Iteration `t` (0-based) with its batch, before the forward pass. */
  beforeTrainIter?(runner: RunnerContext, t: number, batch: Batch): void | Promise<void>;
  /** After the optimizer step of iteration `t`; runner.iteration is already t + 1. */
  afterTrainIter?(runner: RunnerContext, t: number, batch: Batch, outputs: TrainIterOutputs): void | Promise<void>;
  /** Before a validation (model about to switch to eval mode). */
  beforeVal?(runner: RunnerContext): void | Promise<void>;
  /** With the metrics of the validation that just ran (mmengine's after_val_epoch). */
  afterValEpoch?(runner: RunnerContext, result: ValResult): void | Promise<void>;
  /** After a validation (model back in train mode). */
  afterVal?(runner: RunnerContext): void | Promise<void>;
  /** The loop ended normally (max_iters or a stop request); the loader still exists. */
  afterTrain?(runner: RunnerContext): void | Promise<void>;
  /** Always, last, also after an error: release what beforeRun took (signal handlers, ...). */
  afterRun?(runner: RunnerContext): void | Promise<void>;
}

export type HookPoint = Exclude<keyof Hook, 'name' | 'priority'>;

/** Hooks sorted by priority (stable: equal priorities keep their registration order). */
export class HookList {
  private readonly hooks: Hook[] = [];

  register(hook: Hook): void {
    const p = hook.priority ?? PRIORITY.NORMAL;
    const at = this.hooks.findIndex((h) => (h.priority ?? PRIORITY.NORMAL) > p);
    if (at < 0) this.hooks.push(hook);
    else this.hooks.splice(at, 0, hook);
  }

  get all(): readonly Hook[] {
    return this.hooks;
  }

  find<H extends Hook>(name: string): H | undefined {
    return this.hooks.find((h) => h.name === name) as H | undefined;
  }

  /** Calls `point` on every hook that has it, in order, awaiting each. */
  async call<P extends HookPoint>(point: P, ...args: Parameters<NonNullable<Hook[P]>>): Promise<void> {
    for (const h of this.hooks) {
      const fn = h[point] as ((...a: unknown[]) => void | Promise<void>) | undefined;
      if (fn) await fn.apply(h, args);
    }
  }
}
