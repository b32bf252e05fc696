/**
 * mmengine's ParamSchedulerHook for iteration-based schedules: before each iteration every
 * param group gets the lr of that iteration. The schedules are closed forms of the iteration
 * (schedule.ts), so setting them before the step equals mmengine's stepping after it, and a
 * resumed run needs no scheduler state.
 */
import type { Batch } from '../../data/loader.js';
import { PRIORITY, type Hook } from '../hook.js';
import type { RunnerContext } from '../runner_context.js';

export class ParamSchedulerHook implements Hook {
  readonly name = 'ParamSchedulerHook';
  readonly priority = PRIORITY.LOW;

  beforeTrainIter(runner: RunnerContext, t: number, _batch: Batch): void {
    runner.schedule.apply(runner.groups, t);
  }
}
