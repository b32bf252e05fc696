/**
 * Dynamic loss scaling for fp16 mixed precision, as torch.cuda.amp.GradScaler with its
 * defaults (what mmengine's AmpOptimWrapper uses): the loss is multiplied by `scale` before
 * backward; before the optimizer step the gradients are multiplied by 1/scale and checked; if
 * any is inf/NaN the step is skipped and the scale halves, otherwise the step runs and after
 * `growthInterval` consecutive clean steps the scale doubles.
 */
import { noGrad } from '../tensor/runtime.js';
import { tidy } from '../tensor/scope.js';
import { ampUnscale } from '../tensor/functional.js';
import type { Tensor } from '../tensor/tensor.js';

export interface GradScalerState {
  scale: number;
  growthTracker: number;
}

export class GradScaler {
  scale: number;
  growthTracker = 0;

  constructor(
    readonly o: { initScale?: number; growthFactor?: number; backoffFactor?: number; growthInterval?: number } = {},
  ) {
    this.scale = o.initScale ?? 65536;
  }

  /**
   * Unscales the gradients in place and reports whether they are all finite. Call once per
   * optimizer step, after the last backward of the accumulation window.
   */
  unscaleAndCheck(params: Tensor[]): boolean {
    return noGrad(() =>
      tidy(() => {
        const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
        return ampUnscale(grads, Math.fround(1 / this.scale));
      }),
    );
  }

  /** Updates the scale after a step attempt (found = some gradient was not finite). */
  update(foundInf: boolean): void {
    if (foundInf) {
      this.scale *= this.o.backoffFactor ?? 0.5;
      this.growthTracker = 0;
      return;
    }
    this.growthTracker += 1;
    if (this.growthTracker === (this.o.growthInterval ?? 2000)) {
      this.scale *= this.o.growthFactor ?? 2;
      this.growthTracker = 0;
    }
  }

  state(): GradScalerState {
    return { scale: this.scale, growthTracker: this.growthTracker };
  }

  load(s: GradScalerState): void {
    this.scale = s.scale;
    this.growthTracker = s.growthTracker;
  }
}
