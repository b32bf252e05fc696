/**
 * A model as the HTTP server sees it: admit a task (or refuse it: 503), answer it, drain, close.
 * Two implementations: ModelHost (model_host.ts: the model in a worker thread, what `beitseg serve`
 * runs, so the event loop never computes) and InProcessBackend below (the model on the calling
 * thread: for embedding and tests that inspect the scheduler).
 */
import type { SegModel } from '../inference/api.js';
import { describeModel, type ModelDescription, type WeightsFile } from './model_description.js';
import { SegmentScheduler, type EngineOptions, type Segmentation, type SegmentTask } from './scheduler.js';

export interface ModelBackend {
  readonly description: ModelDescription;
  /** Tasks admitted and not finished by the model (a task answered 504 still counts until its work stops). */
  readonly depth: number;
  readonly capacity: number;
  /** False once the model can no longer compute (its worker died). */
  readonly alive: boolean;
  submit(task: SegmentTask): Promise<Segmentation>;
  /** Refuses new tasks; resolves once the admitted ones have finished. */
  drain(): Promise<void>;
  close(): Promise<void>;
}

export class InProcessBackend implements ModelBackend {
  readonly description: ModelDescription;
  readonly scheduler: SegmentScheduler;
  readonly alive = true;

  constructor(model: SegModel, opts: EngineOptions, weights: WeightsFile | null = null) {
    this.description = describeModel(model, weights);
    this.scheduler = new SegmentScheduler(model, opts);
  }

  get depth(): number {
    return this.scheduler.depth;
  }

  get capacity(): number {
    return this.scheduler.capacity;
  }

  submit(task: SegmentTask): Promise<Segmentation> {
    return this.scheduler.submit(task);
  }

  drain(): Promise<void> {
    return this.scheduler.drain();
  }

  async close(): Promise<void> {}
}
