/**
 * SIGINT during training: the first interrupt asks the loop to stop after the running
 * iteration (the checkpoint hook then saves the state), a second one exits at once without a
 * checkpoint. The handler lives from beforeRun to afterRun (which also runs after an error).
 */
import { PRIORITY, type Hook } from '../hook.js';
import type { RunnerContext } from '../runner_context.js';

export class SignalHook implements Hook {
  readonly name = 'SignalHook';
  readonly priority = PRIORITY.VERY_HIGH;
  private handler: (() => void) | null = null;

  beforeRun(runner: RunnerContext): void {
    this.handler = () => {
      if (runner.stopRequested) {
        runner.print('second interrupt: exiting without a checkpoint');
        process.exit(130);
      }
      runner.print('interrupt: the running iteration finishes, then a checkpoint is saved (Ctrl-C again to abort)');
      runner.requestStop();
    };
    process.on('SIGINT', this.handler);
  }

  afterRun(): void {
    if (this.handler) process.removeListener('SIGINT', this.handler);
    this.handler = null;
  }
}
