/**
 * The signals that stop training with a checkpoint: SIGINT (Ctrl-C), SIGTERM (Slurm preemption,
 * Kubernetes eviction, `scancel`) and SIGUSR1 (Slurm's `--signal=USR1@T` warning). The running
 * iteration finishes (on every rank: the stop is agreed after each iteration), the checkpoint
 * hook saves, and the process exits with 128 + the signal number. A second SIGINT exits at once;
 * a repeated SIGTERM/SIGUSR1 is ignored (a scheduler may signal both the launcher, which forwards,
 * and every task), the scheduler's SIGKILL remains the hard stop.
 */
import os from 'node:os';

export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGUSR1'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

let received: StopSignal | null = null;

/** Records a stop signal; returns true when it should abort at once (a second SIGINT). */
export function noteStopSignal(signal: StopSignal): boolean {
  const again = received !== null;
  received ??= signal;
  return again && signal === 'SIGINT';
}

/** The exit code of a run stopped by a signal: 128 + its number (130 when stopped otherwise). */
export function stopExitCode(): number {
  return 128 + (os.constants.signals[received ?? 'SIGINT'] ?? 2);
}

let early: (() => void) | null = null;

/**
 * Before training starts (rendezvous, model build) there is nothing to save: a stop signal
 * exits at once with 128 + its number (Node would otherwise start its inspector on SIGUSR1 and
 * carry on). The training hooks replace this handler.
 */
export function exitOnStopSignals(): void {
  early ??= onStopSignals((signal) => process.exit(128 + (os.constants.signals[signal] ?? 2)));
}

/** Installs `handler` for every stop signal; returns the function that removes it. */
export function onStopSignals(handler: (signal: StopSignal) => void): () => void {
  if (early) {
    const remove = early;
    early = null;
    remove();
  }
  const bound = STOP_SIGNALS.map((s) => [s, () => handler(s)] as const);
  for (const [s, h] of bound) process.on(s, h);
  return () => {
    for (const [s, h] of bound) process.removeListener(s, h);
  };
}
