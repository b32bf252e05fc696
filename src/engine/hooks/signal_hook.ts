/**
 * SIGINT, SIGTERM or SIGUSR1 during training (stop_signals.ts): the loop stops after the
 * running iteration (the checkpoint hook then saves the state); a second SIGINT exits at once
 * without a checkpoint. The handler lives from beforeRun to afterRun (which also runs after an error).
 */
import { PRIORITY, type Hook } from '../hook.js';
import type { RunnerContext } from '../runner_context.js';
import { noteStopSignal, onStopSignals } from '../stop_signals.js';

export class SignalHook implements Hook {
  readonly name = 'SignalHook';
  readonly priority = PRIORITY.VERY_HIGH;
  private remove: (() => void) | null = null;

  beforeRun(runner: RunnerContext): void {
    this.remove = onStopSignals((signal) => {
      const repeated = runner.stopRequested;
      if (noteStopSignal(signal)) {
        runner.print('second interrupt: exiting without a checkpoint');
        process.exit(130);
      }
      if (repeated) return;
      runner.print(
        `${signal}: the running iteration finishes, then a checkpoint is saved` +
          `${signal === 'SIGINT' ? ' (Ctrl-C again to abort)' : ''}`,
      );
      runner.requestStop();
    });
  }

  afterRun(): void {
    this.remove?.();
    this.remove = null;
  }
}
