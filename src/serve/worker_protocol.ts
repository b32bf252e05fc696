/** The messages between the main thread (model_host.ts) and the model worker (model_worker.ts). */
import type { Dict } from '../config/schema.js';
import type { AutocastDType } from '../tensor/runtime.js';
import type { Quantize } from '../inference/precision.js';
import type { ModelDescription, WeightsFile } from './model_description.js';

/** Everything the worker needs to load the model (structured-cloned as workerData). */
export interface WorkerSpec {
  /** The loaded config (with --cfg-options applied). */
  config: Dict;
  weights?: string;
  weightsFile: WeightsFile | null;
  device?: string;
  quantize?: Quantize;
  cudaGraphs?: boolean;
  capacity: number;
  windowBatch: number;
  amp: AutocastDType | null;
}

export type ToWorker =
  | {
      type: 'task';
      id: number;
      image: { data: Uint8Array; width: number; height: number };
      mode: 'slide' | 'whole';
      tta: boolean;
      deadline: number;
    }
  | { type: 'cancel'; id: number };

export type FromWorker =
  | { type: 'ready'; description: ModelDescription }
  | { type: 'loadError'; message: string }
  | {
      type: 'result';
      id: number;
      pred: Uint8Array;
      width: number;
      height: number;
      queueMs?: number;
      computeMs?: number;
    }
  | { type: 'error'; id: number; status: number; message: string; headers: Record<string, string> };
