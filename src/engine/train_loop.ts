/**
 * mmengine's IterBasedTrainLoop: the loop only; everything else is a hook (hook.ts) or the
 * optimizer wrapper (optim_wrapper.ts). Hook points and their order in a run (trainer.ts
 * calls beforeRun/afterRun around this loop):
 *
 *   beforeRun                         work dir exists; SignalHook installs the SIGINT handler; on resume
 *                                     LoggerHook cuts log.jsonl back to the resumed iteration
 *   beforeTrain                       loader built, model in train mode; LoggerHook prints the header
 *   (resumed before the validation due at its iteration: the val loop first)
 *   per iteration t = iteration .. max_iters−1:
 *     (one event-loop turn; stop if requested)
 *     batch = loader.next()
 *     beforeTrainIter(t, batch)       ParamSchedulerHook sets lr(t) on every group
 *     optimWrapper.iteration(t):      gradient-sync context (DDP no_sync on accumulation iterations)
 *       optimContext: loss = model.loss(batch)       (AMP: under autocast)
 *       backward: (loss / K) · loss_scale → backward
 *     optimWrapper.stepIfDue(t)       window end: grad sync, [fp16 unscale + inf check], AdamW step, zero grad
 *     iteration = t + 1 (pendingValidation = a validation is due at it)
 *     afterTrainIter(t, batch, out)   LoggerHook (train line), onIteration callback, CheckpointHook (iter_N)
 *     (stop if requested: no validation)
 *     every val_interval and at max_iters: val loop (val_loop.ts):
 *       beforeVal → validate → afterValEpoch(metrics) (LoggerHook val line, CheckpointHook best) → afterVal
 *   afterTrain                        CheckpointHook saves where a stop request ended the loop
 *   afterRun                          always, also after an error: SignalHook removes its handler
 *
 * Within one point, hooks run by priority (SignalHook VERY_HIGH, LoggerHook BELOW_NORMAL,
 * ParamSchedulerHook and the onIteration callback LOW, CheckpointHook VERY_LOW); new hooks and
 * the distributed pieces (a GradientSync on the optimizer wrapper, rank-aware hooks through
 * runner.isMainProcess, a sharded runner.validateFn) slot in without editing this loop.
 */
import type { Batch } from '../data/loader.js';
import { tidy } from '../tensor/scope.js';
import { batchTensors, lossTerms, type LossValues } from './graphed_train_step.js';
import type { HookList } from './hook.js';
import type { RunnerContext } from './runner_context.js';
import { runValLoop } from './val_loop.js';

/**
 * Forward, backward and (on window ends) the optimizer step of iteration t; returns the loss
 * terms as numbers. With --cuda-graphs the runner's graphed step runs it from a captured graph.
 */
export function runTrainIter(runner: RunnerContext, t: number, batch: Batch): LossValues {
  const eager = () => eagerTrainIter(runner, t, batch);
  return runner.graphedStep ? runner.graphedStep.run(batch, eager) : eager();
}

/** The eager iteration t with a model, its optimizer wrapper and device (also the benchmarks'). */
export function eagerTrainIter(
  runner: Pick<RunnerContext, 'model' | 'optimWrapper' | 'device'>,
  t: number,
  batch: Batch,
): LossValues {
  const ow = runner.optimWrapper;
  const values = tidy(() =>
    ow.iteration(t, () => {
      const { img, label } = batchTensors(batch, runner.device);
      const out = ow.optimContext(() => runner.model.loss(img, label));
      ow.backward(out.loss, t);
      return Object.fromEntries(lossTerms(out).map(([name, t]) => [name, t.item()])) as LossValues;
    }),
  );
  ow.stepIfDue(t);
  return values;
}

function shouldValidate(runner: RunnerContext, it: number): boolean {
  return runner.settings.val !== null && (it % runner.settings.valInterval === 0 || it === runner.settings.maxIters);
}

/** Runs iterations until max_iters or a stop request (beforeTrain ... afterTrain). */
export async function runTrainLoop(runner: RunnerContext, hooks: HookList): Promise<void> {
  const s = runner.settings,
    loader = runner.loader;
  if (!loader) throw new Error('runTrainLoop: the runner has no training loader');
  runner.model.train();
  await hooks.call('beforeTrain', runner);
  if (runner.pendingValidation && !runner.stopRequested) await runValLoop(runner, hooks);
  while (runner.iteration < s.maxIters) {
    // one turn of the event loop per iteration: delivers SIGINT and the loader workers'
    // finished samples even when the next batch is already there
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (runner.stopRequested) break;
    const t = runner.iteration;
    const startMs = performance.now();
    const batch = await loader.next();
    const dataMs = performance.now();
    await hooks.call('beforeTrainIter', runner, t, batch);
    const values = runTrainIter(runner, t, batch);
    runner.iteration = t + 1;
    // checkpoints written before this iteration's validation has run record that it is due
    runner.pendingValidation = shouldValidate(runner, runner.iteration);
    const endMs = performance.now();
    await hooks.call('afterTrainIter', runner, t, batch, { values, startMs, dataMs, endMs });
    if (runner.stopRequested) break;
    if (runner.pendingValidation) await runValLoop(runner, hooks);
  }
  await hooks.call('afterTrain', runner);
}
