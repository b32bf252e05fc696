/**
 * The runner (mmengine's Runner with mmseg's BEiT recipe): builds the model, the param groups
 * (layer-wise lr decay), AdamW in its optimizer wrapper (optim_wrapper.ts: AMP, gradient
 * accumulation), the lr schedule and the loader, initialises or resumes the weights, registers
 * the default hooks and runs the iteration-based loop (train_loop.ts, whose header lists the hook
 * points and their order):
 *
 *   SignalHook          SIGINT finishes the running iteration, saves a checkpoint and returns
 *                       (a second SIGINT exits at once)
 *   LoggerHook          console lines and <work_dir>/log.jsonl (mmengine 1.x scalars.json style)
 *   ParamSchedulerHook  lr(t) for every group
 *   onIteration         the caller's per-iteration callback (may call trainer.requestStop())
 *   CheckpointHook      iter_N every checkpoint interval and at the end, best_<metric>_iter_N,
 *                       retention, the checkpoint where a stop request ended the loop
 *   + options.hooks     the caller's own hooks, placed by their priority
 *
 * Resume restores weights, optimizer moments, pending accumulated gradients, loss scale, the
 * libtorch CPU generator and the loader position (training_state.ts), so on CPU with fixed
 * seeds N iterations + resume + N iterations equal 2N straight iterations bit for bit.
 */
import { autocastDTypeOf } from '../common/amp.js';
import { mmengineCheckpointOf } from './mmengine_work_dir.js';
import { readMmengineResume } from './mmengine_resume.js';
import fs from 'node:fs';
import path from 'node:path';
import { buildDataset, type DatasetConfig } from '../data/datasets.js';
import { createLoader, type LoaderState, type SegDataLoader } from '../data/loader.js';
import type { TransformConfig } from '../data/transforms/sample.js';
import { buildSegmentor } from '../models/builder.js';
import { cudnnBenchmarkOf, loadConfig, type Dict } from '../config/schema.js';
import type { EncoderDecoder } from '../models/segmentors/encoder_decoder.js';
import { cuda, manualSeed, resolveDevice, setNumThreads, warnEmulatedBf16 } from '../tensor/runtime.js';
import { assertCudaGraphBuild, type CaptureFn } from '../tensor/cuda_graph.js';
import type { Device, Tensor } from '../tensor/tensor.js';
import { AdamW } from './adamw.js';
import type { GradScaler } from './grad_scaler.js';
import { HookList, PRIORITY, type Hook } from './hook.js';
import { CheckpointHook } from './hooks/checkpoint_hook.js';
import { LoggerHook } from './hooks/logger_hook.js';
import { ParamSchedulerHook } from './hooks/param_scheduler_hook.js';
import { SignalHook } from './hooks/signal_hook.js';
import { loadFromCheckpoint, loadPretrainedBackbone } from './init_weights.js';
import { GraphedTrainStep } from './graphed_train_step.js';
import { AmpOptimWrapper, OptimWrapper, type GradientSync } from './optim_wrapper.js';
import { layerDecayParamGroups, singleParamGroup, type ParamGroup } from './param_groups.js';
import type { BestMetric, ProcessGroupInfo, RunnerContext, ValidateFn } from './runner_context.js';
import { LrSchedule } from './schedule.js';
import { trainSettings, type TrainOverrides, type TrainSettings } from './train_config.js';
import { runTrainLoop } from './train_loop.js';
import {
  latestCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
  type LoadedTrainingCheckpoint,
} from './training_checkpoint.js';
import { type BatchRecord, batchRecord, checkResumeBatch } from './batch_record.js';
import { captureTrainState, reconcileBest, restoreTrainState } from './training_state.js';
import { validate, type SegMetrics } from './validation.js';

export { formatEta } from './hooks/logger_hook.js';
export type { BestMetric } from './runner_context.js';

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
  /** Extra hooks, run with the default ones by priority. */
  hooks?: Hook[];
  /** This process's rank and world size (default: one process). */
  dist?: ProcessGroupInfo;
  /** Resume even when the checkpoint's global batch (world size x batch x accumulation) differs. */
  allowBatchChange?: boolean;
  /** Gradient synchronisation around backward and before each optimizer step (data-parallel training). */
  gradSync?: GradientSync;
  /** Replaces the validation of the live model (e.g. a sharded one). */
  validateFn?: ValidateFn;
  /**
   * Replay the training step from a CUDA graph after 2 eager iterations (graphed_train_step.ts):
   * single process, accumulative_counts 1, a CUDA device and a CUDA build.
   */
  cudaGraphs?: boolean;
  /** How the graph is captured (default: a CUDA graph); the tests pass a CPU stand-in. */
  cudaGraphCapture?: CaptureFn;
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

export class Trainer implements RunnerContext {
  readonly settings: TrainSettings;
  readonly model: EncoderDecoder;
  readonly device: Device;
  readonly groups: ParamGroup[];
  readonly optimWrapper: OptimWrapper;
  readonly graphedStep: GraphedTrainStep | null;
  readonly schedule: LrSchedule;
  readonly hooks = new HookList();
  readonly dist: ProcessGroupInfo;
  readonly validateFn: ValidateFn;
  iteration = 0;
  startIteration = 0;
  resumedFrom: string | null = null;
  pendingValidation = false;
  best: BestMetric | null = null;
  lastValidation: SegMetrics | null = null;
  lastSaved: { iteration: number; dir: string } | null = null;
  private currentLoader: SegDataLoader | null = null;
  private stop = false;
  private resumeFrom: LoadedTrainingCheckpoint | null = null;
  private resumeLoaderState: LoaderState | undefined;
  /** Samples already drawn by the mmengine run resumed (its loader state is not in its checkpoint). */
  private resumeSamplesDrawn: number | null = null;
  private readonly printLine: (line: string) => void;

  private constructor(
    readonly options: TrainOptions,
    readonly config: Dict,
    settings: TrainSettings,
    model: EncoderDecoder,
    device: Device,
  ) {
    this.settings = settings;
    this.model = model;
    this.device = device;
    const named = model.namedParameters();
    const s = settings;
    this.groups = s.layerDecay
      ? layerDecayParamGroups(named, {
          ...s.layerDecay,
          baseLr: s.optimizer.lr,
          baseWeightDecay: s.optimizer.weightDecay,
        })
      : singleParamGroup(named, s.optimizer.lr, s.optimizer.weightDecay);
    const optimizer = new AdamW(this.groups, { betas: s.optimizer.betas, eps: s.optimizer.eps });
    const wrapperOptions = {
      accum: s.accum,
      maxIters: s.maxIters,
      deviceType: device.startsWith('cuda') ? ('cuda' as const) : ('cpu' as const),
      gradSync: options.gradSync ?? null,
    };
    const amp = autocastDTypeOf(s.amp);
    if (amp === 'bfloat16') warnEmulatedBf16(device);
    this.optimWrapper = amp
      ? new AmpOptimWrapper(optimizer, this.groups, wrapperOptions, amp)
      : new OptimWrapper(optimizer, this.groups, wrapperOptions);
    this.graphedStep = options.cudaGraphs
      ? new GraphedTrainStep(model, this.optimWrapper, device, {
          capture: options.cudaGraphCapture,
          log: (line) => this.print(line),
        })
      : null;
    this.schedule = new LrSchedule(s.schedulers);
    this.dist = options.dist ?? { rank: 0, worldSize: 1 };
    this.validateFn = options.validateFn ?? validate;
    this.printLine = options.log ?? ((line) => console.log(line));
    this.registerDefaultHooks();
  }

  /** Reads the config, builds the model on its device and initialises or resumes its weights. */
  static async create(o: TrainOptions): Promise<Trainer> {
    const configPath = typeof o.config === 'string' ? o.config : (o.configPath ?? 'config.json');
    const cfg = typeof o.config === 'string' ? loadConfig(o.config) : o.config;
    const settings = trainSettings(cfg, configPath, o);
    if (o.threads) setNumThreads(o.threads);
    const device = resolveDevice(o.device);
    if (settings.amp === 'fp16' && !device.startsWith('cuda')) {
      throw new Error(
        '--amp fp16 needs a CUDA device (float16 autocast with dynamic loss scaling); ' +
          'on CPU use --amp bf16 or no AMP' +
          (o.amp ? '' : ' (the config asks for fp16 through AmpOptimWrapper: pass --amp fp32 to train in float32)'),
      );
    }
    if (o.cudaGraphs && !o.cudaGraphCapture) {
      if (!device.startsWith('cuda')) throw new Error(`--cuda-graphs needs a CUDA device (got ${device})`);
      assertCudaGraphBuild();
    }
    if (device !== 'cpu') cuda.flags({ benchmark: cudnnBenchmarkOf(cfg) });
    manualSeed(settings.seed);
    const model = buildSegmentor(cfg.model as Dict);
    const t = new Trainer(o, cfg, settings, model, device);
    await t.initWeights();
    return t;
  }

  private registerDefaultHooks(): void {
    const o = this.options;
    if (o.handleSignals !== false) this.hooks.register(new SignalHook());
    this.hooks.register(new LoggerHook());
    this.hooks.register(new ParamSchedulerHook());
    const onIteration = o.onIteration;
    if (onIteration) {
      this.hooks.register({
        name: 'IterationCallbackHook',
        priority: PRIORITY.LOW,
        afterTrainIter: (_runner, t) => onIteration(t + 1, this),
      });
    }
    this.hooks.register(new CheckpointHook());
    for (const h of o.hooks ?? []) this.hooks.register(h);
  }

  // ---- RunnerContext ----

  get isMainProcess(): boolean {
    return this.dist.rank === 0;
  }

  get loader(): SegDataLoader | null {
    return this.currentLoader;
  }

  get stopRequested(): boolean {
    return this.stop;
  }

  get valLimit(): number | undefined {
    return this.options.valLimit;
  }

  /** Asks the loop to stop after the running iteration (with a checkpoint), as SIGINT does. */
  requestStop(): void {
    this.stop = true;
  }

  print(line: string): void {
    this.printLine(line);
  }

  saveCheckpoint(kind: 'iter' | 'best'): string {
    const s = this.settings;
    if (!this.currentLoader) {
      throw new Error('saveCheckpoint: no training loader (the loader position is part of the state)');
    }
    const captured = captureTrainState({
      settings: s,
      iteration: this.iteration,
      groups: this.groups,
      optimWrapper: this.optimWrapper,
      schedulers: this.schedule.schedulers,
      loaderState: this.currentLoader.state(),
      best: this.best,
      pendingValidation: this.pendingValidation,
      batch: batchRecord(s, this.dist.worldSize),
    });
    try {
      return saveCheckpoint({
        workDir: s.workDir,
        iteration: this.iteration,
        kind,
        metric: s.saveBest ?? 'mIoU',
        weights: this.model.stateDict(),
        stateTensors: captured.stateTensors,
        state: captured.state as unknown as Record<string, unknown>,
        weightsMetadata: { config: s.configName, producer: 'beitseg train' },
      });
    } finally {
      captured.dispose();
    }
  }

  // ---- compatibility accessors ----

  get optimizer(): AdamW {
    return this.optimWrapper.optimizer;
  }

  get scaler(): GradScaler | null {
    return this.optimWrapper instanceof AmpOptimWrapper ? this.optimWrapper.scaler : null;
  }

  get completedIterations(): number {
    return this.iteration;
  }

  // ---- weights ----

  private async initWeights(): Promise<void> {
    const s = this.settings,
      o = this.options;
    if (o.resume) {
      const explicit = typeof o.resume === 'string' ? o.resume : null;
      const own = explicit ? null : latestCheckpoint(s.workDir);
      // an mmengine work dir (last_checkpoint, iter_N.pth) or runner checkpoint
      const mmengine = own ? null : mmengineCheckpointOf(explicit ?? s.workDir);
      if (mmengine) await this.readMmengineCheckpoint(mmengine);
      else if (explicit ?? own) this.resumeFrom = loadCheckpoint(explicit ?? own!.dir);
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

  /** An mmengine runner checkpoint as the state to resume: its weights loaded as --load-from would, then the rest. */
  private async readMmengineCheckpoint(file: string): Promise<void> {
    for (const line of (await loadFromCheckpoint(this.model, file)).lines) this.print(line);
    const weights = new Map([...this.model.stateDict()].map(([k, t]) => [k, t.clone()] as [string, Tensor]));
    const r = await readMmengineResume(file, {
      groups: this.groups,
      settings: this.settings,
      schedulers: this.schedule.schedulers,
      betas: this.optimWrapper.optimizer.betas,
      eps: this.optimWrapper.optimizer.eps,
      weights,
      worldSize: this.dist.worldSize,
    });
    for (const line of r.lines) this.print(line);
    this.resumeFrom = r.checkpoint;
    this.resumeSamplesDrawn = r.samplesDrawn;
  }

  private rebindParams(): void {
    const byName = new Map<string, Tensor>(this.model.namedParameters());
    for (const g of this.groups) g.params = g.paramNames.map((n) => byName.get(n)!);
  }

  private restore(ck: LoadedTrainingCheckpoint): void {
    const saved = (ck.state as { batch?: BatchRecord }).batch;
    const now = batchRecord(this.settings, this.dist.worldSize);
    for (const line of checkResumeBatch(saved, now, this.options.allowBatchChange === true, ck.info.dir))
      this.print(line);
    const st = restoreTrainState(ck, this.model, this.optimWrapper, this.settings.accum);
    this.iteration = st.iteration;
    this.best = reconcileBest(st.best, this.settings.workDir, this.settings.saveBest, st.iteration);
    this.pendingValidation = st.pendingValidation && this.settings.val !== null;
    this.resumeLoaderState = this.resumeSamplesDrawn === null ? st.loader : undefined;
    this.resumedFrom = ck.info.dir;
    this.print(`resumed from ${ck.info.dir} at iteration ${st.iteration}`);
  }

  // ---- run ----

  private async buildLoader(): Promise<SegDataLoader> {
    const s = this.settings;
    const dataset = await buildDataset({ ...s.train.dataset, pipeline: s.train.pipeline } as DatasetConfig);
    const drawn = this.resumeSamplesDrawn;
    const mmengineState: LoaderState | undefined =
      drawn === null
        ? undefined
        : { sampler: { seed: s.seed, size: dataset.items.length, shuffle: s.train.shuffle, next: drawn } };
    return createLoader({
      dataset,
      pipeline: s.train.pipeline as TransformConfig[],
      batchSize: s.train.batchSize,
      numWorkers: s.train.numWorkers,
      seed: s.seed,
      shuffle: s.train.shuffle,
      mean: s.mean,
      std: s.std,
      padTo: s.padTo ?? undefined,
      padVal: s.padVal,
      segPadVal: s.segPadVal,
      state: this.resumeLoaderState ?? mmengineState,
      rank: this.dist.rank,
      worldSize: this.dist.worldSize,
    });
  }

  /** Runs the loop until max_iters or a stop request; returns where it ended. */
  async run(): Promise<TrainResult> {
    const s = this.settings;
    this.startIteration = this.iteration;
    fs.mkdirSync(s.workDir, { recursive: true });
    if (this.isMainProcess) {
      fs.writeFileSync(path.join(s.workDir, `${s.configName}.json`), `${JSON.stringify(this.config, null, 2)}\n`);
    }
    try {
      await this.hooks.call('beforeRun', this);
      this.currentLoader = await this.buildLoader();
      await runTrainLoop(this, this.hooks);
      return {
        // a validation still due (a stop request before it) is unfinished work as well
        iteration: this.iteration,
        interrupted: this.iteration < s.maxIters || this.pendingValidation,
        workDir: s.workDir,
        lastCheckpoint: this.lastSaved?.dir ?? null,
        best: this.best,
        lastValidation: this.lastValidation,
        model: this.model,
      };
    } finally {
      try {
        await this.hooks.call('afterRun', this);
      } finally {
        this.graphedStep?.dispose();
        await this.currentLoader?.close();
        this.currentLoader = null;
      }
    }
  }
}

/** Builds everything from the options and trains; the returned model stays usable. */
export async function train(o: TrainOptions): Promise<TrainResult> {
  const trainer = await Trainer.create(o);
  return trainer.run();
}
