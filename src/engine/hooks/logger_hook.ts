/**
 * mmengine's LoggerHook: console lines and the JSONL log (<work_dir>/log.jsonl, mmengine 1.x
 * scalars.json-style lines):
 *
 *   training   every `logInterval` iterations and at the last one: {iter, lr, base_lr, time,
 *              data_time, eta_s, loss, decode.loss_ce, decode.acc_seg, aux.*, [loss_scale,
 *              skipped_steps], [memory_mb]}, the loss terms and times averaged over the window
 *   validation {iter, aAcc, mIoU, mAcc (percent), images, time}
 *
 * A resumed run first cuts the log back to the resumed iteration (lines of iterations after it,
 * a validation line of a validation that is due again, and a line cut by a kill go), so every
 * iteration is logged once. Only the main process prints and writes (mmengine's master_only).
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../checkpoint/file_io.js';
import type { Batch } from '../../data/loader.js';
import { cuda } from '../../tensor/runtime.js';
import { PRIORITY, type Hook, type TrainIterOutputs, type ValResult } from '../hook.js';
import type { RunnerContext } from '../runner_context.js';

const LOSS_KEYS = ['loss', 'decode.loss_ce', 'decode.acc_seg', 'aux.loss_ce', 'aux.acc_seg'] as const;

/** "1 day, 2:03:04" like mmengine's ETA. */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const days = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600),
    m = Math.floor((s % 3600) / 60),
    sec = s % 60;
  const hms = `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`;
  return days ? `${days} day${days > 1 ? 's' : ''}, ${hms}` : hms;
}

export function logFileOf(workDir: string): string {
  return path.join(workDir, 'log.jsonl');
}

/**
 * The log lines a run resumed at `iteration` keeps: training lines up to it, validation lines
 * before it (and at it unless that validation is still due); unparsable lines (a write cut by a
 * kill) are dropped.
 */
export function logLinesToKeep(lines: readonly string[], iteration: number, validationDue: boolean): string[] {
  return lines.filter((line) => {
    let entry: unknown;
    try {
      entry = JSON.parse(line);
    } catch {
      return false;
    }
    if (typeof entry !== 'object' || entry === null) return false;
    const it = (entry as { iter?: unknown }).iter;
    if (typeof it !== 'number') return false;
    const isValidation = 'mIoU' in entry || 'aAcc' in entry;
    return it < iteration || (it === iteration && !(isValidation && validationDue));
  });
}

export class LoggerHook implements Hook {
  readonly name = 'LoggerHook';
  readonly priority = PRIORITY.BELOW_NORMAL;
  /** Values of the iterations since the last training line. */
  private window: Record<string, number[]> = {};
  private windowMs = 0;
  private windowDataMs = 0;
  private windowIters = 0;
  private loopStartMs = 0;

  private append(runner: RunnerContext, entry: Record<string, unknown>): void {
    fs.appendFileSync(logFileOf(runner.settings.workDir), `${JSON.stringify(entry)}\n`);
  }

  beforeRun(runner: RunnerContext): void {
    if (!runner.isMainProcess || !runner.resumedFrom) return;
    const file = logFileOf(runner.settings.workDir);
    if (!fs.existsSync(file)) return;
    const lines = fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '');
    const kept = logLinesToKeep(lines, runner.iteration, runner.pendingValidation);
    if (kept.length === lines.length) return;
    writeFileAtomic(file, (fd) => fs.writeSync(fd, kept.map((l) => `${l}\n`).join('')));
    runner.print(
      `${file}: resumed at iteration ${runner.iteration}, dropped ${lines.length - kept.length} line(s) ` +
        'logged after it or cut',
    );
  }

  beforeTrain(runner: RunnerContext): void {
    const s = runner.settings;
    if (runner.isMainProcess) {
      const params = runner.groups.reduce((n, g) => n + g.params.length, 0);
      runner.print(
        `training ${s.configName}: iterations ${runner.iteration}..${s.maxIters}, ` +
          `batch ${s.train.batchSize}${s.accum > 1 ? ` x ${s.accum} accumulated` : ''}, ` +
          `${s.train.numWorkers} loader workers, device ${runner.device}${s.amp ? `, amp ${s.amp}` : ''}, ` +
          `${params} parameter tensors in ${runner.groups.length} groups, work dir ${s.workDir}`,
      );
    }
    this.loopStartMs = performance.now();
  }

  afterTrainIter(runner: RunnerContext, t: number, _batch: Batch, out: TrainIterOutputs): void {
    for (const [k, v] of Object.entries(out.values)) (this.window[k] ??= []).push(v);
    this.windowMs += out.endMs - out.startMs;
    this.windowDataMs += out.dataMs - out.startMs;
    this.windowIters++;
    const s = runner.settings,
      it = runner.iteration;
    if (it % s.logInterval !== 0 && it !== s.maxIters) return;
    if (runner.isMainProcess) this.writeTrainLine(runner, t, out.endMs);
    this.window = {};
    this.windowMs = this.windowDataMs = this.windowIters = 0;
  }

  private writeTrainLine(runner: RunnerContext, t: number, endMs: number): void {
    const s = runner.settings,
      it = runner.iteration,
      ow = runner.optimWrapper;
    const mean = (k: string) => this.window[k]!.reduce((a, b) => a + b, 0) / this.window[k]!.length;
    const perIter = (endMs - this.loopStartMs) / 1000 / (it - runner.startIteration);
    const eta = perIter * (s.maxIters - it);
    const entry: Record<string, unknown> = {
      iter: it,
      lr: runner.groups[0]!.lr,
      base_lr: runner.schedule.lrAt(t, s.optimizer.lr),
      time: this.windowMs / 1000 / this.windowIters,
      data_time: this.windowDataMs / 1000 / this.windowIters,
      eta_s: Math.round(eta),
    };
    for (const k of LOSS_KEYS) if (this.window[k]) entry[k] = mean(k);
    const scale = ow.scalerState()?.scale;
    if (scale !== undefined) {
      entry.loss_scale = scale;
      entry.skipped_steps = ow.skippedSteps;
    }
    if (runner.device.startsWith('cuda')) entry.memory_mb = Math.round(cuda.memory().peak / (1024 * 1024));
    this.append(runner, entry);
    const w = String(s.maxIters).length;
    const parts = [
      `Iter(train) [${String(it).padStart(w)}/${s.maxIters}]`,
      `lr: ${(entry.lr as number).toExponential(4)}`,
      `eta: ${formatEta(eta)}`,
      `time: ${(entry.time as number).toFixed(4)}`,
      `data_time: ${(entry.data_time as number).toFixed(4)}`,
    ];
    if (entry.memory_mb !== undefined) parts.push(`memory: ${entry.memory_mb}`);
    for (const k of LOSS_KEYS) if (entry[k] !== undefined) parts.push(`${k}: ${(entry[k] as number).toFixed(4)}`);
    if (scale !== undefined) parts.push(`loss_scale: ${scale}`);
    runner.print(parts.join('  '));
  }

  afterValEpoch(runner: RunnerContext, { metrics: m, seconds }: ValResult): void {
    if (!runner.isMainProcess) return;
    runner.print(
      `Iter(val) [${runner.iteration}]  aAcc: ${m.aAcc.toFixed(2)}  mIoU: ${m.mIoU.toFixed(2)}  ` +
        `mAcc: ${m.mAcc.toFixed(2)}  (${m.images} images, ${seconds.toFixed(1)} s)`,
    );
    this.append(runner, {
      iter: runner.iteration,
      aAcc: m.aAcc,
      mIoU: m.mIoU,
      mAcc: m.mAcc,
      images: m.images,
      time: seconds,
    });
  }
}
