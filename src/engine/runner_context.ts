/**
 * What the loop and the hooks see of the runner (mmengine's `runner` argument): the built
 * pieces, the loop position and the bookkeeping the hooks share. The Trainer (trainer.ts)
 * implements it; hooks depend on this interface only, so a hook never imports the Trainer.
 *
 * `dist` is the seam for data-parallel training: rank and world size of this process. Hooks
 * that write files (logs, checkpoints, the config dump) do so only where `isMainProcess`, as
 * mmengine's master_only; everything else (the step, validation on a shard, the best record)
 * runs on every rank.
 */
import type { SegDataLoader } from '../data/loader.js';
import type { Dict } from '../config/schema.js';
import type { EncoderDecoder } from '../models/segmentors/encoder_decoder.js';
import type { Device } from '../tensor/tensor.js';
import type { GraphedTrainStep } from './graphed_train_step.js';
import type { OptimWrapper } from './optim_wrapper.js';
import type { ParamGroup } from './param_groups.js';
import type { LrSchedule } from './schedule.js';
import type { TrainSettings } from './train_config.js';
import type { SegMetrics, ValidateOptions } from './validation.js';

export interface BestMetric {
  metric: string;
  value: number;
  iteration: number;
}

/** This process's place in a data-parallel group (one process: rank 0 of 1). */
export interface ProcessGroupInfo {
  rank: number;
  worldSize: number;
}

/** The validation of the live model; replaceable (e.g. by one that evaluates a shard per rank and sums the areas). */
export type ValidateFn = (model: EncoderDecoder, o: ValidateOptions) => Promise<SegMetrics>;

export interface RunnerContext {
  readonly config: Dict;
  readonly settings: TrainSettings;
  readonly model: EncoderDecoder;
  readonly device: Device;
  readonly groups: ParamGroup[];
  readonly optimWrapper: OptimWrapper;
  /** The training step replayed from a CUDA graph (--cuda-graphs), or null: eager. */
  readonly graphedStep: GraphedTrainStep | null;
  readonly schedule: LrSchedule;
  readonly dist: ProcessGroupInfo;
  /** Rank 0: the process that writes logs, checkpoints and the config dump. */
  readonly isMainProcess: boolean;
  /** The training loader (exists from beforeTrain to afterTrain). */
  readonly loader: SegDataLoader | null;
  /** Completed iterations. */
  iteration: number;
  /** The iteration the run started (or resumed) at. */
  readonly startIteration: number;
  /** The checkpoint directory the run resumed from (null: a fresh start). */
  readonly resumedFrom: string | null;
  /**
   * The validation due at `iteration` has not run yet (set when an iteration that validates
   * ends, cleared when its validation has its metrics); saved with the checkpoints, so a run
   * killed or stopped before that validation does it on resume.
   */
  pendingValidation: boolean;
  /** Best validation result so far (save_best bookkeeping). */
  best: BestMetric | null;
  lastValidation: SegMetrics | null;
  /** The newest checkpoint this run wrote. */
  lastSaved: { iteration: number; dir: string } | null;
  readonly stopRequested: boolean;
  /** Asks the loop to stop after the running iteration (with a checkpoint), as SIGINT does. */
  requestStop(): void;
  /** Console output. */
  print(line: string): void;
  /** Validates the live model (options from the config). */
  readonly validateFn: ValidateFn;
  /** Validate on only the first n val images. */
  readonly valLimit: number | undefined;
  /** Writes a checkpoint of the whole training state at the current iteration; returns its directory. */
  saveCheckpoint(kind: 'iter' | 'best'): string;
}
