/**
 * The training loop (mmengine's IterBasedTrainLoop with mmseg's BEiT recipe):
 *
 *   per iteration t = 0 .. max_iters−1:
 *     batch from the loader (train pipeline in worker threads, normalised, padded to the
 *     data_preprocessor size) → lr(t) for every group → loss (decode + aux, weights from the
 *     config) under autocast if AMP → (loss / K) · loss_scale → backward →
 *     every K iterations (and at the end): [fp16: unscale, skip on inf/NaN] AdamW step, zero grad
 *     → log every `logInterval`, checkpoint every `checkpointInterval`, validate every
 *     `valInterval` (and at the end), keeping the best-mIoU checkpoint.
 *
 * Gradient accumulation follows mmengine's OptimWrapper(accumulative_counts=K): the loss is
 * divided by K, except in a last incomplete window, where it is divided by the window's size.
 * SIGINT finishes the running iteration, writes a checkpoint and returns (a second SIGINT exits
 * at once). The JSONL log (<work_dir>/log.jsonl) has mmengine 1.x scalars.json-style lines:
 * training {iter, lr, base_lr, loss, decode.loss_ce, decode.acc_seg, aux.*, time, data_time,
 * eta_s, ...}, validation {iter, aAcc, mIoU, mAcc (percent), images, time}. Resume restores weights, optimizer moments, pending accumulated gradients, loss
 * scale, the libtorch CPU generator and the loader position, so on CPU with fixed seeds N
 * iterations + resume + N iterations equal 2N straight iterations bit for bit.
 */
import fs from 'node:fs';
import path from 'node:path';
import { buildDataset, type DatasetConfig } from '../data/datasets.js';
import { createLoader, type LoaderState, type SegDataLoader } from '../data/loader.js';
import type { TransformConfig } from '../data/transforms/sample.js';
import { buildSegmentor } from '../models/builder.js';
import { cudnnBenchmarkOf, loadConfig, type Dict } from '../models/config.js';
import type { EncoderDecoder } from '../models/segmentors/encoder_decoder.js';
import {
  autocast, cuda, getRngState, manualSeed, noGrad, resolveDevice, setNumThreads, setRngState, type AutocastDType,
} from '../tensor/runtime.js';
import { keep, tidy } from '../tensor/scope.js';
import { fromArray, type Device, type Tensor } from '../tensor/tensor.js';
import { AdamW, type AdamWStateDict } from './adamw.js';
import {
  base64ToBytes, bytesToBase64, latestCheckpoint, loadCheckpoint, pruneCheckpoints, saveCheckpoint, type LoadedTrainingCheckpoint,
} from './checkpoint.js';
import { validate, type SegMetrics } from './evaluate.js';
import { GradScaler, type GradScalerState } from './grad_scaler.js';
import { loadFromCheckpoint, loadPretrainedBackbone } from './init_weights.js';
import { layerDecayParamGroups, singleParamGroup, type ParamGroup } from './param_groups.js';
import { LrSchedule, type SchedulerSpec } from './schedule.js';
import { trainSettings, type TrainOverrides, type TrainSettings } from './train_config.js';

export interface TrainOptions extends TrainOverrides {
  /** Config file (mmseg structure, JSON), or an already loaded config with `configPath` naming it. */
  config: string | Dict;
  configPath?: string;
  /** true: continue from the latest complete checkpoint in the work dir; a path: from that checkpoint. */
  resume?: boolean | string;
  /** libtorch intra-op threads. */
  threads?: number;
  /** Validate on only the first n val images (quick checks). */
  valLimit?: number;
  /** Where console lines go (default: console.log). */
  log?: (line: string) => void;
  /** Install the SIGINT handler (default true). */
  handleSignals?: boolean;
  /** Called after every iteration (1-based count of completed iterations); may call trainer.requestStop(). */
  onIteration?: (iteration: number, trainer: Trainer) => void;
}

export interface BestMetric {
  metric: string;
  value: number;
  iteration: number;
}

export interface TrainResult {
  /** Completed iterations. */
  iteration: number;
  interrupted: boolean;
  workDir: string;
  lastCheckpoint: string | null;
  best: BestMetric | null;
  lastValidation: SegMetrics | null;
  model: EncoderDecoder;
}

interface TrainStateJson {
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
}

const LOSS_KEYS = ['loss', 'decode.loss_ce', 'decode.acc_seg', 'aux.loss_ce', 'aux.acc_seg'] as const;

/** "1 day, 2:03:04" like mmengine's ETA. */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const days = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const hms = `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`;
  return days ? `${days} day${days > 1 ? 's' : ''}, ${hms}` : hms;
}

export class Trainer {
  readonly settings: TrainSettings;
  readonly model: EncoderDecoder;
  readonly device: Device;
  readonly groups: ParamGroup[];
  readonly optimizer: AdamW;
  readonly schedule: LrSchedule;
  readonly scaler: GradScaler | null;
  private loader: SegDataLoader | null = null;
  private iteration = 0;
  private stopRequested = false;
  private best: BestMetric | null = null;
  private lastValidation: SegMetrics | null = null;
  private lastSaved: { iteration: number; dir: string } | null = null;
  private readonly logFile: string;
  private readonly print: (line: string) => void;
  private readonly params: Tensor[];

  private constructor(readonly options: TrainOptions, readonly config: Dict, settings: TrainSettings, model: EncoderDecoder, device: Device) {
    this.settings = settings;
    this.model = model;
    this.device = device;
    const named = model.namedParameters();
    const s = settings;
    this.groups = s.layerDecay
      ? layerDecayParamGroups(named, { ...s.layerDecay, baseLr: s.optimizer.lr, baseWeightDecay: s.optimizer.weightDecay })
      : singleParamGroup(named, s.optimizer.lr, s.optimizer.weightDecay);
    this.params = this.groups.flatMap((g) => g.params);
    this.optimizer = new AdamW(this.groups, { betas: s.optimizer.betas, eps: s.optimizer.eps });
    this.schedule = new LrSchedule(s.schedulers);
    this.scaler = s.amp === 'fp16' ? new GradScaler() : null;
    this.logFile = path.join(s.workDir, 'log.jsonl');
    this.print = options.log ?? ((line) => console.log(line));
  }

  /** Reads the config, builds the model on its device and initialises or resumes its weights. */
  static async create(o: TrainOptions): Promise<Trainer> {
    const configPath = typeof o.config === 'string' ? o.config : (o.configPath ?? 'config.json');
    const cfg = typeof o.config === 'string' ? loadConfig(o.config) : o.config;
    const settings = trainSettings(cfg, configPath, o);
    if (o.threads) setNumThreads(o.threads);
    const device = resolveDevice(o.device);
    if (settings.amp === 'fp16' && !device.startsWith('cuda')) {
      throw new Error('--amp fp16 needs a CUDA device (float16 autocast with dynamic loss scaling); on CPU use --amp bf16 or no AMP' +
        (o.amp ? '' : ' (the config asks for fp16 through AmpOptimWrapper: pass --amp fp32 to train in float32)'));
    }
    if (device !== 'cpu') cuda.flags({ benchmark: cudnnBenchmarkOf(cfg) });
    manualSeed(settings.seed);
    const model = buildSegmentor(cfg.model as Dict);
    const t = new Trainer(o, cfg, settings, model, device);
    await t.initWeights();
    return t;
  }

  private resumeFrom: LoadedTrainingCheckpoint | null = null;

  private async initWeights(): Promise<void> {
    const s = this.settings, o = this.options;
    if (o.resume) {
      const target = typeof o.resume === 'string' ? o.resume : latestCheckpoint(s.workDir)?.dir;
      if (target) this.resumeFrom = loadCheckpoint(target);
      else this.print(`resume: no complete checkpoint in ${s.workDir}, starting from scratch`);
    }
    if (!this.resumeFrom) {
      if (s.pretrained && !s.loadFrom) {
        for (const line of (await loadPretrainedBackbone(this.model, s.pretrained)).lines) this.print(line);
      }
      if (s.loadFrom) for (const line of (await loadFromCheckpoint(this.model, s.loadFrom)).lines) this.print(line);
    }
    if (this.device !== 'cpu') this.model.to(this.device);
    // groups hold the parameter tensors: a device move replaces them, so rebuild the references
    if (this.device !== 'cpu') this.rebindParams();
    if (this.resumeFrom) this.restore(this.resumeFrom);
  }

  private rebindParams(): void {
    const byName = new Map(this.model.namedParameters());
    for (const g of this.groups) g.params = g.paramNames.map((n) => byName.get(n)!);
    this.params.length = 0;
    this.params.push(...this.groups.flatMap((g) => g.params));
  }

  private restore(ck: LoadedTrainingCheckpoint): void {
    const st = ck.state as unknown as TrainStateJson;
    if (st.format !== 'beitseg-train-state') throw new Error(`${ck.info.dir}: not a beitseg training state (state.json format ${JSON.stringify(st.format)})`);
    tidy(() => this.model.loadStateDict(ck.weights, { strict: true, origin: ck.info.dir }));
    const moments = new Map([...ck.stateTensors].filter(([k]) => !k.startsWith('grad.')));
    this.optimizer.loadStateDict({ tensors: moments, meta: st.optimizer });
    if (st.pendingGrads.length) {
      if (st.accum !== this.settings.accum) {
        throw new Error(`${ck.info.dir} was saved in the middle of a gradient-accumulation window of ${st.accum}; resume with --accum ${st.accum}`);
      }
      const byName = new Map(this.model.namedParameters());
      noGrad(() => {
        for (const name of st.pendingGrads) {
          const p = byName.get(name), g = ck.stateTensors.get(`grad.${name}`);
          if (!p || !g) throw new Error(`${ck.info.dir}: pending gradient of ${name} missing`);
          p.grad = keep(g.to(p.device).clone());
        }
      });
    }
    if (this.scaler && st.scaler) this.scaler.load(st.scaler);
    const rngBytes = base64ToBytes(st.rng.torchCpu);
    const rngState = fromArray(rngBytes, [rngBytes.length], { dtype: 'uint8', copy: true });
    setRngState(rngState);
    rngState.dispose();
    this.iteration = st.iteration;
    this.best = st.best;
    this.resumeLoaderState = st.loader;
    for (const t of [...ck.weights.values(), ...ck.stateTensors.values()]) t.dispose();
    this.print(`resumed from ${ck.info.dir} at iteration ${st.iteration}`);
  }

  private resumeLoaderState: LoaderState | undefined;

  /** Asks the loop to stop after the running iteration (with a checkpoint), as SIGINT does. */
  requestStop(): void {
    this.stopRequested = true;
  }

  get completedIterations(): number {
    return this.iteration;
  }

  private amp(): AutocastDType | null {
    return this.settings.amp === 'bf16' ? 'bfloat16' : this.settings.amp === 'fp16' ? 'float16' : null;
  }

  /** mmengine's loss factor: K, or the size of the last incomplete accumulation window. */
  private lossFactor(t: number): number {
    const K = this.settings.accum, T = this.settings.maxIters;
    const rem = T % K;
    return rem !== 0 && t >= T - rem ? rem : K;
  }

  private isStepIteration(t: number): boolean {
    return (t + 1) % this.settings.accum === 0 || t + 1 === this.settings.maxIters;
  }

  private appendLog(entry: Record<string, unknown>): void {
    fs.appendFileSync(this.logFile, JSON.stringify(entry) + '\n');
  }

  private saveCheckpointNow(kind: 'iter' | 'best'): string {
    const s = this.settings;
    const moments = this.optimizer.stateDict();
    const stateTensors = new Map(moments.tensors);
    const pendingGrads: string[] = [];
    // gradients accumulated in an unfinished window are part of the state
    const grads: Tensor[] = [];
    for (const g of this.groups) {
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
      format: 'beitseg-train-state', version: 1, config: s.configName, iteration: this.iteration, maxIters: s.maxIters,
      accum: s.accum, seed: s.seed, amp: s.amp, optimizer: moments.meta,
      scheduler: { schedulers: this.schedule.schedulers, nextIteration: this.iteration }, scaler: this.scaler?.state() ?? null,
      loader: this.loader!.state(), rng: { torchCpu: bytesToBase64(rng.toBytes()) }, best: this.best, pendingGrads,
    };
    rng.dispose();
    try {
      const dir = saveCheckpoint({
        workDir: s.workDir, iteration: this.iteration, kind, metric: s.saveBest ?? 'mIoU',
        weights: this.model.stateDict(), stateTensors, state: state as unknown as Record<string, unknown>,
        weightsMetadata: { config: s.configName, producer: 'beitseg train' },
      });
      pruneCheckpoints(s.workDir, s.maxKeepCkpts);
      return dir;
    } finally {
      for (const g of grads) g.dispose();
    }
  }

  private async runValidation(): Promise<SegMetrics | null> {
    const s = this.settings;
    if (!s.val) return null;
    const t0 = performance.now();
    const m = await validate(this.model, {
      config: this.config, dataset: s.val.dataset, pipeline: s.val.pipeline, device: this.device, amp: this.amp(),
      limit: this.options.valLimit,
    });
    const secs = (performance.now() - t0) / 1000;
    this.lastValidation = m;
    this.print(`Iter(val) [${this.iteration}]  aAcc: ${m.aAcc.toFixed(2)}  mIoU: ${m.mIoU.toFixed(2)}  mAcc: ${m.mAcc.toFixed(2)}  (${m.images} images, ${secs.toFixed(1)} s)`);
    this.appendLog({ iter: this.iteration, aAcc: m.aAcc, mIoU: m.mIoU, mAcc: m.mAcc, images: m.images, time: secs });
    const key = s.saveBest;
    if (key) {
      const value = (m as unknown as Record<string, number>)[key];
      if (typeof value === 'number' && Number.isFinite(value) && (!this.best || value > this.best.value)) {
        this.best = { metric: key, value, iteration: this.iteration };
        const dir = this.saveCheckpointNow('best');
        this.print(`best ${key} ${value.toFixed(2)} at iteration ${this.iteration}: ${dir}`);
      }
    }
    return m;
  }

  /** Runs the loop until max_iters or a stop request; returns where it ended. */
  async run(): Promise<TrainResult> {
    const s = this.settings;
    fs.mkdirSync(s.workDir, { recursive: true });
    fs.writeFileSync(path.join(s.workDir, `${s.configName}.json`), JSON.stringify(this.config, null, 2) + '\n');
    const dataset = await buildDataset({ ...s.train.dataset, pipeline: s.train.pipeline } as DatasetConfig);
    this.loader = createLoader({
      dataset, pipeline: s.train.pipeline as TransformConfig[], batchSize: s.train.batchSize, numWorkers: s.train.numWorkers,
      seed: s.seed, shuffle: s.train.shuffle, mean: s.mean, std: s.std, padTo: s.padTo ?? undefined, padVal: s.padVal,
      segPadVal: s.segPadVal, state: this.resumeLoaderState,
    });
    const onSigint = () => {
      if (this.stopRequested) {
        this.print('second interrupt: exiting without a checkpoint');
        process.exit(130);
      }
      this.print('interrupt: the running iteration finishes, then a checkpoint is saved (Ctrl-C again to abort)');
      this.stopRequested = true;
    };
    if (this.options.handleSignals !== false) process.on('SIGINT', onSigint);
    const deviceType = this.device.startsWith('cuda') ? 'cuda' : 'cpu';
    const amp = this.amp();
    this.model.train();
    this.print(`training ${s.configName}: iterations ${this.iteration}..${s.maxIters}, batch ${s.train.batchSize}` +
      `${s.accum > 1 ? ` x ${s.accum} accumulated` : ''}, ${s.train.numWorkers} loader workers, device ${this.device}` +
      `${s.amp ? `, amp ${s.amp}` : ''}, ${this.params.length} parameter tensors in ${this.groups.length} groups, work dir ${s.workDir}`);
    const window: Record<string, number[]> = {};
    let windowTime = 0, windowData = 0, windowIters = 0, skippedSteps = 0;
    const startIter = this.iteration;
    const t0 = performance.now();
    try {
      while (this.iteration < s.maxIters) {
        // one turn of the event loop per iteration: delivers SIGINT and the loader workers'
        // finished samples even when the next batch is already there
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.stopRequested) break;
        const t = this.iteration;
        const tStart = performance.now();
        const batch = await this.loader.next();
        const tData = performance.now();
        this.schedule.apply(this.groups, t);
        const factor = this.lossFactor(t);
        const values = tidy(() => {
          const img = fromArray(batch.img, [batch.n, 3, batch.height, batch.width]).to(this.device);
          const label = fromArray(batch.label, [batch.n, batch.height, batch.width], { dtype: 'uint8' }).to(this.device).to('int64');
          const out = autocast(deviceType, amp, () => this.model.loss(img, label));
          let loss = out.loss.float();
          if (factor !== 1) loss = loss.div(factor);
          if (this.scaler) loss = loss.mul(this.scaler.scale);
          loss.backward();
          const v: Record<string, number> = { loss: out.loss.item(), 'decode.loss_ce': out['decode.loss_ce'].item(), 'decode.acc_seg': out['decode.acc_seg'] };
          if (out['aux.loss_ce']) v['aux.loss_ce'] = out['aux.loss_ce'].item();
          if (out['aux.acc_seg'] !== undefined) v['aux.acc_seg'] = out['aux.acc_seg'];
          return v;
        });
        if (this.isStepIteration(t)) {
          let ok = true;
          if (this.scaler) {
            ok = this.scaler.unscaleAndCheck(this.params);
            this.scaler.update(!ok);
            if (!ok) skippedSteps++;
          }
          if (ok) this.optimizer.step();
          this.optimizer.zeroGrad();
        }
        this.iteration = t + 1;
        const tEnd = performance.now();
        for (const [k, v] of Object.entries(values)) (window[k] ??= []).push(v);
        windowTime += tEnd - tStart;
        windowData += tData - tStart;
        windowIters++;

        const it = this.iteration;
        if (it % s.logInterval === 0 || it === s.maxIters) {
          const mean = (k: string) => window[k]!.reduce((a, b) => a + b, 0) / window[k]!.length;
          const perIter = (tEnd - t0) / 1000 / (it - startIter);
          const eta = perIter * (s.maxIters - it);
          const entry: Record<string, unknown> = {
            iter: it, lr: this.groups[0]!.lr, base_lr: this.schedule.lrAt(t, s.optimizer.lr),
            time: windowTime / 1000 / windowIters, data_time: windowData / 1000 / windowIters, eta_s: Math.round(eta),
          };
          for (const k of LOSS_KEYS) if (window[k]) entry[k] = mean(k);
          if (this.scaler) { entry.loss_scale = this.scaler.scale; entry.skipped_steps = skippedSteps; }
          if (deviceType === 'cuda') entry.memory_mb = Math.round(cuda.memory().peak / (1024 * 1024));
          this.appendLog(entry);
          const w = String(s.maxIters).length;
          const parts = [`Iter(train) [${String(it).padStart(w)}/${s.maxIters}]`, `lr: ${(entry.lr as number).toExponential(4)}`,
            `eta: ${formatEta(eta)}`, `time: ${(entry.time as number).toFixed(4)}`, `data_time: ${(entry.data_time as number).toFixed(4)}`];
          if (entry.memory_mb !== undefined) parts.push(`memory: ${entry.memory_mb}`);
          for (const k of LOSS_KEYS) if (entry[k] !== undefined) parts.push(`${k}: ${(entry[k] as number).toFixed(4)}`);
          if (this.scaler) parts.push(`loss_scale: ${this.scaler.scale}`);
          this.print(parts.join('  '));
          for (const k of Object.keys(window)) delete window[k];
          windowTime = windowData = windowIters = 0;
        }
        this.options.onIteration?.(it, this);
        if (it % s.checkpointInterval === 0 || it === s.maxIters) {
          this.lastSaved = { iteration: it, dir: this.saveCheckpointNow('iter') };
          this.print(`saved checkpoint ${this.lastSaved.dir}`);
        }
        if (this.stopRequested) break;
        if (it % s.valInterval === 0 || it === s.maxIters) {
          this.model.eval();
          try { await this.runValidation(); } finally { this.model.train(); }
        }
      }
      const interrupted = this.iteration < s.maxIters;
      if (interrupted && this.lastSaved?.iteration !== this.iteration) {
        this.lastSaved = { iteration: this.iteration, dir: this.saveCheckpointNow('iter') };
        this.print(`interrupted at iteration ${this.iteration}: saved ${this.lastSaved.dir} (continue with --resume)`);
      }
      return {
        iteration: this.iteration, interrupted, workDir: s.workDir, lastCheckpoint: this.lastSaved?.dir ?? null, best: this.best,
        lastValidation: this.lastValidation, model: this.model,
      };
    } finally {
      if (this.options.handleSignals !== false) process.removeListener('SIGINT', onSigint);
      await this.loader.close();
      this.loader = null;
    }
  }
}

/** Builds everything from the options and trains; the returned model stays usable. */
export async function train(o: TrainOptions): Promise<TrainResult> {
  const trainer = await Trainer.create(o);
  return trainer.run();
}
