/**
 * The whole training step (forward, backward, [fp16 unscale and inf/NaN check], AdamW) replayed
 * from one CUDA graph, as PyTorch's whole-network capture does: on a fast GPU a BEiT step is a
 * few thousand small kernels whose launches cost more than their work at small batches.
 *
 * What makes the step capturable: nothing in it reads a value back to the host. The numbers the
 * host decides per iteration (each parameter's decay, step size and bias correction, which
 * follow the lr schedule and step count, and the loss scale) are written into device tensors
 * before every replay; the fp16 verdict (some gradient not finite) stays a device tensor that
 * turns the optimizer update into an exact no-op on the device (adamwStepDevice); accuracy is
 * computed on the device. After the replay one read brings back the logged losses and the
 * verdict, and the host's own bookkeeping (AdamW step counts, GradScaler, skipped steps) moves
 * on exactly as after an eager step, so checkpoints and resume are those of the eager path.
 *
 * The first `warmup` iterations run eagerly (cuDNN and cuBLAS choose their kernels and make their
 * workspaces outside the capture); then the batch shape is captured once; a batch of another
 * shape runs eagerly. Gradients are not left on the parameters between iterations (as after an
 * eager step's zero_grad); the graph keeps its own gradient buffers. Single process, no gradient
 * accumulation: a DDP all-reduce and a deferred step are not captured.
 */
import type { Batch } from '../data/loader.js';
import type { EncoderDecoder, LossOutput } from '../models/segmentors/encoder_decoder.js';
import { captureCudaGraph, type CaptureFn, type GraphCapture } from '../tensor/cuda_graph.js';
import { adamwStepDevice, ampUnscaleDevice } from '../tensor/functional.js';
import { withoutHostReads } from '../tensor/host_reads.js';
import { keep, tidy } from '../tensor/scope.js';
import { fromArray, stack, zeros, type Device, type Tensor } from '../tensor/tensor.js';
import type { GradScaler } from './grad_scaler.js';
import { AmpOptimWrapper, type OptimWrapper } from './optim_wrapper.js';

/** The logged numbers of one iteration (loss, decode.loss_ce, decode.acc_seg, aux.*). */
export type LossValues = Record<string, number>;

export interface GraphedTrainStepOptions {
  /** Eager iterations before the capture (default 2). */
  warmup?: number;
  /** How the capture is made: a CUDA graph by default; the tests pass a CPU stand-in. */
  capture?: CaptureFn;
  /** Where the one line about the capture goes. */
  log?: (line: string) => void;
}

/** The batch as tensors on `device`: normalised images [N, 3, H, W] and int64 labels [N, H, W]. */
export function batchTensors(batch: Batch, device: Device): { img: Tensor; label: Tensor } {
  const img = fromArray(batch.img, [batch.n, 3, batch.height, batch.width]).to(device);
  const label = fromArray(batch.label, [batch.n, batch.height, batch.width], { dtype: 'uint8' }).to(device).to('int64');
  return { img, label };
}

/** The logged terms of a loss output, named as mmseg logs them (aux.* only with an auxiliary head). */
export function lossTerms(out: LossOutput): [string, Tensor][] {
  const terms: [string, Tensor | undefined][] = [
    ['loss', out.loss],
    ['decode.loss_ce', out['decode.loss_ce']],
    ['decode.acc_seg', out['decode.acc_seg']],
    ['aux.loss_ce', out['aux.loss_ce']],
    ['aux.acc_seg', out['aux.acc_seg']],
  ];
  return terms.filter((e): e is [string, Tensor] => e[1] !== undefined);
}

/** The device tensors a captured step reads and writes; they live as long as the graph. */
interface StepBuffers {
  img: Tensor;
  label: Tensor;
  /** adamwStepDevice's settings for every trainable parameter. */
  settings: Tensor;
  skipSettings: Tensor;
  scale: Tensor;
  invScale: Tensor;
  foundInf: Tensor;
}

interface CapturedStep {
  shape: string;
  buffers: StepBuffers;
  capture: GraphCapture;
  /** Names of the logged terms in the capture's output, in order (with a scaler the fp16 verdict follows). */
  terms: string[];
}

function shapeKey(batch: Batch): string {
  return `${batch.n}x${batch.height}x${batch.width}`;
}

export class GraphedTrainStep {
  private readonly warmup: number;
  private readonly captureFn: CaptureFn;
  private readonly log: (line: string) => void;
  private readonly scaler: GradScaler | null;
  /** The parameters the graph steps, fixed at the capture (a device move replaces the tensors before it). */
  private trainable: Tensor[] = [];
  private captured: CapturedStep | null = null;
  /** The graph's gradient buffers, one per trainable parameter. */
  private gradBuffers: Tensor[] = [];
  private eagerRuns = 0;
  /** Replays so far, and iterations run eagerly because their batch had another shape. */
  replays = 0;
  otherShapeIterations = 0;

  constructor(
    private readonly model: EncoderDecoder,
    private readonly optimWrapper: OptimWrapper,
    private readonly device: Device,
    opts: GraphedTrainStepOptions = {},
  ) {
    this.warmup = opts.warmup ?? 2;
    this.captureFn = opts.capture ?? captureCudaGraph;
    this.log = opts.log ?? (() => undefined);
    if (optimWrapper.o.accum !== 1) {
      throw new Error(
        `CUDA-graphed training steps need accumulative_counts 1 (got ${optimWrapper.o.accum}): ` +
          'a deferred optimizer step is not captured',
      );
    }
    if (optimWrapper.gradSync) {
      throw new Error('CUDA-graphed training steps are single-process: the DDP gradient all-reduce is not captured');
    }
    this.scaler = optimWrapper instanceof AmpOptimWrapper ? optimWrapper.scaler : null;
  }

  /** Whether the step has been captured (replays follow). */
  get isCaptured(): boolean {
    return this.captured !== null;
  }

  /** One iteration: eager while warming up or for a batch of another shape, otherwise the graph. */
  run(batch: Batch, eager: () => LossValues): LossValues {
    if (!this.captured) {
      if (this.eagerRuns < this.warmup) {
        this.eagerRuns++;
        return eager();
      }
      return this.captureAndRun(batch);
    }
    if (shapeKey(batch) !== this.captured.shape) {
      this.otherShapeIterations++;
      return eager();
    }
    this.prepare(this.captured.buffers, batch);
    this.captured.capture.replay();
    this.replays++;
    return this.finish(this.captured);
  }

  /** Frees the graph and the tensors it holds. */
  dispose(): void {
    const c = this.captured;
    if (!c) return;
    this.captured = null;
    c.capture.dispose();
    for (const t of [...Object.values(c.buffers), ...this.gradBuffers]) t.dispose();
    this.gradBuffers = [];
  }

  private captureAndRun(batch: Batch): LossValues {
    const ow = this.optimWrapper;
    this.trainable = ow.params.filter((p) => p.requiresGrad);
    const buffers = this.allocate(batch);
    // moments allocated now, outside the capture (a capture would re-zero them on every replay)
    ow.optimizer.ensureState(this.trainable);
    ow.optimizer.zeroGrad();
    this.prepare(buffers, batch);
    const terms: string[] = [];
    let capture: GraphCapture;
    try {
      capture = this.captureFn(
        () => withoutHostReads('a captured training step', () => tidy(() => this.stepOnDevice(buffers, terms))),
        this.device,
      );
    } catch (e) {
      for (const t of Object.values(buffers)) t.dispose();
      ow.optimizer.zeroGrad();
      throw e;
    }
    keep(capture.output);
    this.captured = { shape: shapeKey(batch), buffers, capture, terms };
    this.log(
      `cuda graphs: training step captured for batch ${this.captured.shape} after ${this.eagerRuns} eager ` +
        `iteration(s); ${this.trainable.length} parameters stepped on the device`,
    );
    if (!capture.executed) capture.replay();
    this.replays++;
    return this.finish(this.captured);
  }

  private allocate(batch: Batch): StepBuffers {
    const n = this.trainable.length;
    const skip = new Float32Array(4 + 3 * n);
    skip.set([1, 0, 1, 0]);
    for (let i = 0; i < n; i++) skip.set([1, 0, 1], 4 + 3 * i);
    return tidy(() => ({
      img: keep(zeros([batch.n, 3, batch.height, batch.width], 'float32', this.device)),
      label: keep(zeros([batch.n, batch.height, batch.width], 'int64', this.device)),
      settings: keep(zeros([4 + 3 * n], 'float32', this.device)),
      skipSettings: keep(fromArray(skip, [skip.length]).to(this.device)),
      scale: keep(zeros([], 'float32', this.device)),
      invScale: keep(zeros([1], 'float32', this.device)),
      foundInf: keep(zeros([1], 'float32', this.device)),
    }));
  }

  /** Writes this iteration's batch, optimizer settings and loss scale into the graph's inputs. */
  private prepare(buffers: StepBuffers, batch: Batch): void {
    tidy(() => {
      const { img, label } = batchTensors(batch, this.device);
      buffers.img.copy_(img);
      buffers.label.copy_(label);
      const settings = this.optimWrapper.optimizer.deviceSettings(this.trainable);
      buffers.settings.copy_(fromArray(settings, [settings.length]).to(this.device));
      if (this.scaler) {
        buffers.scale.fill_(this.scaler.scale);
        buffers.invScale.fill_(Math.fround(1 / this.scaler.scale));
      }
    });
  }

  /**
   * The captured work, mmengine's train_step with accumulative_counts 1 and no host reads:
   * loss (under autocast) → [· scale] → backward → [unscale, check] → AdamW. Returns the logged
   * terms (names in `terms`) and, with a scaler, the fp16 verdict, stacked into one float64 tensor.
   */
  private stepOnDevice(b: StepBuffers, terms: string[]): Tensor {
    const ow = this.optimWrapper;
    const out = ow.optimContext(() => this.model.loss(b.img, b.label));
    const loss = out.loss.float();
    (this.scaler ? loss.mul(b.scale) : loss).backward();
    // an eager step skips parameters without a gradient; a captured one has a fixed list
    const missing = this.trainable.filter((p) => p.grad === null).map((p) => this.nameOf(p));
    if (missing.length) {
      throw new Error(
        `CUDA-graphed training steps need a gradient for every trainable parameter; none for ` +
          `${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}`,
      );
    }
    for (const g of this.gradBuffers) g.dispose();
    // the graph's gradient buffers, held here so they outlive the parameters' .grad
    this.gradBuffers = this.trainable.map((p) => keep(p.grad!));
    let skip: { foundInf: Tensor; settings: Tensor } | null = null;
    if (this.scaler) {
      b.foundInf.fill_(0);
      ampUnscaleDevice(this.gradBuffers, b.foundInf, b.invScale);
      skip = { foundInf: b.foundInf, settings: b.skipSettings };
    }
    const { expAvgs, expAvgSqs } = ow.optimizer.moments(this.trainable);
    adamwStepDevice(this.trainable, this.gradBuffers, expAvgs, expAvgSqs, b.settings, ow.optimizer.eps, skip);
    const logged = lossTerms(out);
    terms.splice(0, terms.length, ...logged.map(([name]) => name));
    const values = logged.map(([, t]) => t);
    if (this.scaler) values.push(b.foundInf.reshape());
    return stack(values.map((t) => t.to('float64')));
  }

  private nameOf(p: Tensor): string {
    for (const g of this.optimWrapper.groups) {
      const i = g.params.indexOf(p);
      if (i >= 0) return g.paramNames[i]!;
    }
    return '?';
  }

  /** Reads the replay's values and moves the host's bookkeeping on as an eager step would. */
  private finish(c: CapturedStep): LossValues {
    const read = c.capture.output.toTypedArray();
    const values: LossValues = {};
    c.terms.forEach((name, i) => (values[name] = Number(read[i])));
    const skipped = this.scaler !== null && Number(read[c.terms.length]) !== 0;
    if (this.scaler) {
      this.scaler.update(skipped);
      if (skipped) this.optimWrapper.skippedSteps++;
    }
    if (!skipped) this.optimWrapper.optimizer.countStep(this.trainable);
    // as after an eager step: no gradient left on the parameters (the graph keeps its buffers)
    this.optimWrapper.optimizer.zeroGrad();
    return values;
  }
}
