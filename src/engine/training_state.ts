/**
 * The whole training state of a run at one iteration, as written into a training checkpoint
 * (training_checkpoint.ts holds the directory format) and read back on resume: weights,
 * optimizer moments and meta, gradients pending in an unfinished accumulation window, the loss
 * scaler, the libtorch CPU generator, the loader position and the best-metric record. With all
 * of it restored, N iterations + resume + N iterations equal 2N straight iterations bit for bit.
 */
import type { LoaderState } from '../data/loader.js';
import type { EncoderDecoder } from '../models/segmentors/encoder_decoder.js';
import { getRngState, noGrad, setRngState } from '../tensor/runtime.js';
import { keep, tidy } from '../tensor/scope.js';
import { fromArray, type Tensor } from '../tensor/tensor.js';
import type { AdamWStateDict } from './adamw.js';
import type { BatchRecord } from './batch_record.js';
import type { GradScalerState } from './grad_scaler.js';
import type { OptimWrapper } from './optim_wrapper.js';
import type { ParamGroup } from './param_groups.js';
import type { BestMetric } from './runner_context.js';
import type { SchedulerSpec } from './schedule.js';
import type { TrainSettings } from './train_config.js';
import {
  base64ToBytes,
  bytesToBase64,
  listCheckpoints,
  readCheckpointState,
  type LoadedTrainingCheckpoint,
} from './training_checkpoint.js';

export interface TrainStateJson {
  format: 'beitseg-train-state';
  version: 1;
  config: string;
  iteration: number;
  maxIters: number;
  accum: number;
  seed: number;
  amp: string | null;
  optimizer: AdamWStateDict['meta'];
  /** The schedulers (closed forms: the lr of iteration t follows from t and each group's initial lr). */
  scheduler: { schedulers: readonly SchedulerSpec[]; nextIteration: number };
  scaler: GradScalerState | null;
  loader: LoaderState;
  rng: { torchCpu: string };
  best: BestMetric | null;
  pendingGrads: string[];
  /** Saved before the validation due at `iteration` ran (absent in older checkpoints: false). */
  pendingValidation?: boolean;
  /** World size, per-rank batch, accumulation and global batch (absent in older checkpoints). */
  batch?: BatchRecord;
}

export interface CapturedState {
  state: TrainStateJson;
  /** Optimizer moments and pending gradients (`grad.<param>`). */
  stateTensors: Map<string, Tensor>;
  /** Frees the gradient references taken for the capture. */
  dispose(): void;
}

export interface CaptureSources {
  settings: TrainSettings;
  iteration: number;
  groups: ParamGroup[];
  optimWrapper: OptimWrapper;
  schedulers: readonly SchedulerSpec[];
  loaderState: LoaderState;
  best: BestMetric | null;
  pendingValidation: boolean;
  batch?: BatchRecord;
}

/** The training state at `iteration`, ready for saveCheckpoint. */
export function captureTrainState(src: CaptureSources): CapturedState {
  const s = src.settings;
  const moments = src.optimWrapper.optimizer.stateDict();
  const stateTensors = new Map(moments.tensors);
  const pendingGrads: string[] = [];
  // gradients accumulated in an unfinished window are part of the state
  const grads: Tensor[] = [];
  for (const g of src.groups) {
    g.params.forEach((p, i) => {
      const gr = p.grad;
      if (!gr) return;
      grads.push(gr);
      pendingGrads.push(g.paramNames[i]!);
      stateTensors.set(`grad.${g.paramNames[i]}`, gr);
    });
  }
  const rng = getRngState();
  const state: TrainStateJson = {
    format: 'beitseg-train-state',
    version: 1,
    config: s.configName,
    iteration: src.iteration,
    maxIters: s.maxIters,
    accum: s.accum,
    seed: s.seed,
    amp: s.amp,
    optimizer: moments.meta,
    scheduler: { schedulers: src.schedulers, nextIteration: src.iteration },
    scaler: src.optimWrapper.scalerState(),
    loader: src.loaderState,
    rng: { torchCpu: bytesToBase64(rng.toBytes()) },
    best: src.best,
    pendingGrads,
    pendingValidation: src.pendingValidation,
    batch: src.batch,
  };
  rng.dispose();
  return {
    state,
    stateTensors,
    dispose: () => {
      for (const g of grads) g.dispose();
    },
  };
}

export interface RestoredState {
  iteration: number;
  best: BestMetric | null;
  loader: LoaderState;
  pendingValidation: boolean;
}

/**
 * Loads a checkpoint's training state into the model, the optimizer (moments, pending
 * gradients, loss scaler) and the libtorch CPU generator; frees the checkpoint's tensors.
 */
export function restoreTrainState(
  ck: LoadedTrainingCheckpoint,
  model: EncoderDecoder,
  optimWrapper: OptimWrapper,
  accum: number,
): RestoredState {
  const st = ck.state as unknown as TrainStateJson;
  if (st.format !== 'beitseg-train-state') {
    throw new Error(`${ck.info.dir}: not a beitseg training state (state.json format ${JSON.stringify(st.format)})`);
  }
  tidy(() => model.loadStateDict(ck.weights, { strict: true, origin: ck.info.dir }));
  const moments = new Map([...ck.stateTensors].filter(([k]) => !k.startsWith('grad.')));
  optimWrapper.optimizer.loadStateDict({ tensors: moments, meta: st.optimizer });
  if (st.pendingGrads.length) {
    if (st.accum !== accum) {
      throw new Error(
        `${ck.info.dir} was saved in the middle of a gradient-accumulation window of ${st.accum}; ` +
          `resume with --accum ${st.accum}`,
      );
    }
    const byName = new Map(model.namedParameters());
    noGrad(() => {
      for (const name of st.pendingGrads) {
        const p = byName.get(name),
          g = ck.stateTensors.get(`grad.${name}`);
        if (!p || !g) throw new Error(`${ck.info.dir}: pending gradient of ${name} missing`);
        p.grad = keep(g.to(p.device).clone());
      }
    });
  }
  if (st.scaler) optimWrapper.loadScalerState(st.scaler);
  const rngBytes = base64ToBytes(st.rng.torchCpu);
  const rngState = fromArray(rngBytes, [rngBytes.length], { dtype: 'uint8', copy: true });
  setRngState(rngState);
  rngState.dispose();
  for (const t of [...ck.weights.values(), ...ck.stateTensors.values()]) t.dispose();
  return {
    iteration: st.iteration,
    best: st.best,
    loader: st.loader,
    pendingValidation: st.pendingValidation === true,
  };
}

/**
 * The best record a resumed run continues with: the higher of the resumed state's own and
 * those of the work dir's best checkpoints up to the resumed iteration (each written after its
 * validation, so it holds the record that validation produced even where the resumed state,
 * saved earlier at the same iteration, does not).
 */
export function reconcileBest(
  resumed: BestMetric | null,
  workDir: string,
  metric: string | null,
  upToIteration: number,
): BestMetric | null {
  // another metric's record (save_best changed between the runs) is left as it is
  if (!metric || (resumed && resumed.metric !== metric)) return resumed;
  let best = resumed;
  for (const c of listCheckpoints(workDir)) {
    if (c.kind !== 'best' || c.iteration > upToIteration) continue;
    const rec = (readCheckpointState(c.dir) as Partial<TrainStateJson>).best;
    if (!rec || rec.metric !== metric || !Number.isFinite(rec.value)) continue;
    if (!best || rec.value > best.value) best = { metric: rec.metric, value: rec.value, iteration: rec.iteration };
  }
  return best;
}
