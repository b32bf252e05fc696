/**
 * The batch a run trains with, recorded in every checkpoint's state.json (`batch`) and checked
 * on resume. The global batch (world size x per-rank batch x accumulation) is what the learning
 * rate and schedule were tuned for: resuming with another one is refused unless asked for
 * (--allow-batch-change). Another world size with the same global batch is accepted and said:
 * each optimizer step still averages the same samples of the shared sample stream (the loader
 * position counts samples, not per-rank batches); only float rounding of the all-reduce and
 * SyncBN statistics (over the per-rank batch) differ.
 */
import type { TrainSettings } from './train_config.js';

export interface BatchRecord {
  worldSize: number;
  /** train_dataloader.batch_size: samples per rank per iteration. */
  perRank: number;
  accum: number;
  /** worldSize x perRank x accum: samples per optimizer step. */
  global: number;
}

export function batchRecord(s: Pick<TrainSettings, 'train' | 'accum'>, worldSize: number): BatchRecord {
  const perRank = s.train.batchSize;
  return { worldSize, perRank, accum: s.accum, global: worldSize * perRank * s.accum };
}

function describe(b: BatchRecord): string {
  const ranks = `${b.worldSize} rank${b.worldSize > 1 ? 's' : ''}`;
  return `${ranks} x batch ${b.perRank} x accumulation ${b.accum} = ${b.global}`;
}

/**
 * Checks a resume against the checkpoint's record (absent in checkpoints written before it was
 * recorded: nothing to check). Returns lines to print; throws on a changed global batch unless allowed.
 */
export function checkResumeBatch(
  saved: BatchRecord | undefined,
  now: BatchRecord,
  allowChange: boolean,
  dir: string,
): string[] {
  if (!saved) return [];
  if (saved.global !== now.global) {
    const msg =
      `${dir} was trained with a global batch of ${describe(saved)}; this run has ${describe(now)}: ` +
      'the learning rate and schedule belong to the saved global batch';
    if (!allowChange)
      throw new Error(`${msg} (resume with a matching --batch-size/--accum/world size, or pass --allow-batch-change)`);
    return [`warning: ${msg} (--allow-batch-change: continuing)`];
  }
  if (saved.worldSize !== now.worldSize || saved.perRank !== now.perRank || saved.accum !== now.accum) {
    return [
      `resume: the same global batch of ${now.global} as ${describe(saved)} now as ${describe(now)}: every optimizer ` +
        'step averages the same samples; float rounding and SyncBN statistics (per-rank batch) differ',
    ];
  }
  return [];
}
