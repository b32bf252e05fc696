/**
 * The optimizer step apart from the loop, as mmengine's OptimWrapper / AmpOptimWrapper:
 *
 *   optimContext(t, forward)   the forward pass of iteration t (AMP: under autocast)
 *   backward(loss, t)          (loss / K) · loss_scale → backward
 *   stepIfDue(t)               every K iterations (and at the end): gradient sync, [fp16: unscale,
 *                              skip on inf/NaN], AdamW step, zero grad
 *
 * Gradient accumulation follows OptimWrapper(accumulative_counts=K): the loss is divided by K,
 * except in a last incomplete window, where it is divided by the window's size.
 *
 * `GradientSync` is the seam for data-parallel training: `iteration` wraps one iteration's
 * forward and backward (sync = false on accumulation iterations, where DDP's no_sync skips the
 * all-reduce) and `beforeStep` runs once per optimizer step after the last backward of the
 * window (e.g. all-reduce and divide by the world size), before the fp16 unscale, so every rank
 * finds the same inf/NaN and steps or skips together (mmengine's order).
 */
import { autocast, type AutocastDType } from '../tensor/runtime.js';
import type { Tensor } from '../tensor/tensor.js';
import type { AdamW } from './adamw.js';
import { GradScaler, type GradScalerState } from './grad_scaler.js';
import type { ParamGroup } from './param_groups.js';

export interface GradientSync {
  iteration<T>(sync: boolean, run: () => T): T;
  beforeStep(params: Tensor[]): void;
  /** AMP: whether every rank found finite gradients (all ranks then step or skip together). */
  allAgree?(ok: boolean): boolean;
}

export interface OptimWrapperOptions {
  /** Gradient accumulation count K (accumulative_counts). */
  accum: number;
  maxIters: number;
  /** 'cuda' or 'cpu': where autocast applies. */
  deviceType: 'cuda' | 'cpu';
  gradSync?: GradientSync | null;
}

export class OptimWrapper {
  /** Optimizer steps skipped because a gradient was not finite (fp16 only). */
  skippedSteps = 0;
  gradSync: GradientSync | null;

  constructor(
    readonly optimizer: AdamW,
    readonly groups: ParamGroup[],
    readonly o: OptimWrapperOptions,
  ) {
    this.gradSync = o.gradSync ?? null;
  }

  /** The parameters of every group (rebuilt by the caller's groups after a device move). */
  get params(): Tensor[] {
    return this.groups.flatMap((g) => g.params);
  }

  /** Autocast dtype of the forward pass (null: float32). */
  get autocastDType(): AutocastDType | null {
    return null;
  }

  /** mmengine's loss factor: K, or the size of the last incomplete accumulation window. */
  lossFactor(t: number): number {
    const K = this.o.accum,
      T = this.o.maxIters;
    const rem = T % K;
    return rem !== 0 && t >= T - rem ? rem : K;
  }

  /** Whether iteration t ends an accumulation window (mmengine's should_update). */
  shouldUpdate(t: number): boolean {
    return (t + 1) % this.o.accum === 0 || t + 1 === this.o.maxIters;
  }

  /** Runs one iteration's forward and backward inside the gradient-sync context. */
  iteration<T>(t: number, run: () => T): T {
    return this.gradSync ? this.gradSync.iteration(this.shouldUpdate(t), run) : run();
  }

  /** The forward pass of iteration t (mmengine's optim_context). */
  optimContext<T>(forward: () => T): T {
    return forward();
  }

  /** Loss as backpropagated (AMP: times the loss scale). */
  scaleLoss(loss: Tensor): Tensor {
    return loss;
  }

  /** (loss / K) [· loss_scale] → backward. */
  backward(loss: Tensor, t: number): void {
    const factor = this.lossFactor(t);
    let l = loss.float();
    if (factor !== 1) l = l.div(factor);
    this.scaleLoss(l).backward();
  }

  /** The optimizer step on window ends: gradient sync, step, zero grad. */
  stepIfDue(t: number): void {
    if (!this.shouldUpdate(t)) return;
    this.gradSync?.beforeStep(this.params);
    if (this.readyToStep()) this.optimizer.step();
    this.optimizer.zeroGrad();
  }

  /** Whether the gradients allow a step (AMP: finite after unscaling). */
  protected readyToStep(): boolean {
    return true;
  }

  /** Loss-scaler state for the training checkpoint (null without one). */
  scalerState(): GradScalerState | null {
    return null;
  }

  loadScalerState(_s: GradScalerState): void {
    // no scaler
  }
}

/** mmengine's AmpOptimWrapper: autocast forward; with fp16 also dynamic loss scaling. */
export class AmpOptimWrapper extends OptimWrapper {
  readonly scaler: GradScaler | null;

  constructor(
    optimizer: AdamW,
    groups: ParamGroup[],
    o: OptimWrapperOptions,
    readonly dtype: AutocastDType,
  ) {
    super(optimizer, groups, o);
    this.scaler = dtype === 'float16' ? new GradScaler() : null;
  }

  override get autocastDType(): AutocastDType {
    return this.dtype;
  }

  override optimContext<T>(forward: () => T): T {
    return autocast(this.o.deviceType, this.dtype, forward);
  }

  override scaleLoss(loss: Tensor): Tensor {
    return this.scaler ? loss.mul(this.scaler.scale) : loss;
  }

  protected override readyToStep(): boolean {
    if (!this.scaler) return true;
    const localOk = this.scaler.unscaleAndCheck(this.params);
    const ok = this.gradSync?.allAgree ? this.gradSync.allAgree(localOk) : localOk;
    this.scaler.update(!ok);
    if (!ok) this.skippedSteps++;
    return ok;
  }

  override scalerState(): GradScalerState | null {
    return this.scaler?.state() ?? null;
  }

  override loadScalerState(s: GradScalerState): void {
    this.scaler?.load(s);
  }
}
