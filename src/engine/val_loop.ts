/**
 * mmengine's ValLoop during training: beforeVal hooks → the model in eval mode → the val split
 * evaluated (runner.validateFn, by default validation.ts) → afterValEpoch hooks with the
 * metrics (logging, best-checkpoint bookkeeping) → the model back in train mode → afterVal
 * hooks. A run without a val split validates nothing.
 */
import type { HookList } from './hook.js';
import type { RunnerContext } from './runner_context.js';
import type { SegMetrics } from './validation.js';

export async function runValLoop(runner: RunnerContext, hooks: HookList): Promise<SegMetrics | null> {
  const s = runner.settings;
  if (!s.val) return null;
  await hooks.call('beforeVal', runner);
  runner.model.eval();
  let metrics: SegMetrics;
  try {
    const t0 = performance.now();
    metrics = await runner.validateFn(runner.model, {
      config: runner.config,
      dataset: s.val.dataset,
      pipeline: s.val.pipeline,
      device: runner.device,
      amp: runner.optimWrapper.autocastDType,
      limit: runner.valLimit,
    });
    const seconds = (performance.now() - t0) / 1000;
    runner.lastValidation = metrics;
    runner.pendingValidation = false;
    await hooks.call('afterValEpoch', runner, { metrics, seconds });
  } finally {
    runner.model.train();
  }
  await hooks.call('afterVal', runner);
  return metrics;
}
