/**
 * AdamW as torch.optim.AdamW (single-tensor path, amsgrad off, maximize off), per group:
 *
 *   p ← p · (1 − lr·wd)                        (decoupled weight decay)
 *   m ← β1·m + (1 − β1)·g
 *   v ← β2·v + (1 − β2)·g²
 *   p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
 *
 * with the same operation order as PyTorch (so results agree to rounding), all in place and
 * without autograd history, each stage over the whole group at once (libtorch's multi-tensor
 * kernels on CUDA). Parameters without a gradient are skipped (their step count does
 * not advance), as PyTorch does. State per parameter: step, exp_avg, exp_avg_sq.
 */
import { noGrad } from '../tensor/runtime.js';
import { keep, tidy } from '../tensor/scope.js';
import { adamwStep } from '../tensor/functional.js';
import { zeros, type Tensor } from '../tensor/tensor.js';
import type { ParamGroup } from './param_groups.js';

export interface AdamWOptions {
  betas?: [number, number];
  eps?: number;
}

export interface ParamState {
  step: number;
  expAvg: Tensor;
  expAvgSq: Tensor;
}

/** What `stateDict()` returns: moments by parameter name plus the JSON-able rest. */
export interface AdamWStateDict {
  tensors: Map<string, Tensor>;
  meta: {
    betas: [number, number];
    eps: number;
    steps: Record<string, number>;
    groups: { name: string; lr: number; initialLr: number; weightDecay: number }[];
  };
}

export class AdamW {
  readonly betas: [number, number];
  readonly eps: number;
  private readonly state = new Map<Tensor, ParamState>();

  constructor(
    readonly groups: ParamGroup[],
    o: AdamWOptions = {},
  ) {
    this.betas = o.betas ?? [0.9, 0.999];
    this.eps = o.eps ?? 1e-8;
    const seen = new Set<Tensor>();
    for (const g of groups) {
      if (g.params.length !== g.paramNames.length)
        throw new Error(`AdamW: group ${g.name} has ${g.params.length} params but ${g.paramNames.length} names`);
      for (const p of g.params) {
        if (seen.has(p)) throw new Error(`AdamW: a parameter appears in more than one group (${g.name})`);
        seen.add(p);
      }
    }
  }

  /** Drops every parameter's gradient (set_to_none, PyTorch's default). */
  zeroGrad(): void {
    for (const g of this.groups) for (const p of g.params) p.zeroGrad();
  }

  /**
   * Creates zero moments (step 0, as the first step would) for parameters that have none yet:
   * a captured step must find its state tensors allocated outside the capture.
   */
  ensureState(params: Tensor[]): void {
    noGrad(() => {
      for (const p of params) if (!this.state.has(p)) this.state.set(p, this.freshState(p));
    });
  }

  /** The moments of `params`, in order (ensureState first). */
  moments(params: Tensor[]): { expAvgs: Tensor[]; expAvgSqs: Tensor[] } {
    const states = params.map((p) => {
      const st = this.state.get(p);
      if (!st) throw new Error('AdamW.moments: a parameter has no state (call ensureState)');
      return st;
    });
    return { expAvgs: states.map((st) => st.expAvg), expAvgSqs: states.map((st) => st.expAvgSq) };
  }

  /**
   * The numbers of the next update of `params` as adamwStepDevice reads them: [β1, 1−β1, β2,
   * 1−β2, then per parameter: decay, −stepSize, √(1−β2^t)], computed as step() computes them.
   * Step counts advance only through countStep, once the step is known to have run.
   */
  deviceSettings(params: Tensor[]): Float32Array {
    const [b1, b2] = this.betas;
    const groupOf = this.groupsByParam();
    const out = new Float32Array(4 + 3 * params.length);
    out.set([b1, 1 - b1, b2, 1 - b2]);
    params.forEach((p, i) => {
      const group = groupOf.get(p);
      if (!group) throw new Error('AdamW.deviceSettings: a parameter is in no group');
      const update = this.updateNumbers(group, (this.state.get(p)?.step ?? 0) + 1);
      out.set([update.decay, -update.stepSize, update.bc2Sqrt], 4 + 3 * i);
    });
    return out;
  }

  /** Counts one step for each of `params` (after a device-side step that ran). */
  countStep(params: Tensor[]): void {
    for (const p of params) {
      const st = this.state.get(p);
      if (!st) throw new Error('AdamW.countStep: a parameter has no state');
      st.step += 1;
    }
  }

  /** One update of every parameter that has a gradient: one multi-tensor call per group. */
  step(): void {
    const [b1, b2] = this.betas;
    noGrad(() =>
      tidy(() => {
        for (const group of this.groups) {
          const params: Tensor[] = [],
            grads: Tensor[] = [],
            expAvgs: Tensor[] = [],
            expAvgSqs: Tensor[] = [];
          const stepSizes: number[] = [],
            bc2Sqrts: number[] = [];
          for (const p of group.params) {
            const grad = p.grad;
            if (!grad) continue;
            let st = this.state.get(p);
            if (!st) {
              st = this.freshState(p);
              this.state.set(p, st);
            }
            st.step += 1;
            params.push(p);
            grads.push(grad);
            expAvgs.push(st.expAvg);
            expAvgSqs.push(st.expAvgSq);
            const update = this.updateNumbers(group, st.step);
            stepSizes.push(update.stepSize);
            bc2Sqrts.push(update.bc2Sqrt);
          }
          adamwStep(params, grads, expAvgs, expAvgSqs, stepSizes, bc2Sqrts, {
            decay: decayOf(group),
            beta1: b1,
            beta2: b2,
            eps: this.eps,
          });
        }
      }),
    );
  }

  /** Decoupled weight decay factor, step size and √(1−β2^t) of update number `step` in `group`. */
  private updateNumbers(group: ParamGroup, step: number): { decay: number; stepSize: number; bc2Sqrt: number } {
    const [b1, b2] = this.betas;
    return {
      decay: decayOf(group),
      stepSize: group.lr / (1 - b1 ** step),
      bc2Sqrt: Math.sqrt(1 - b2 ** step),
    };
  }

  private freshState(p: Tensor): ParamState {
    return {
      step: 0,
      expAvg: keep(zeros(p.shape, p.dtype, p.device)),
      expAvgSq: keep(zeros(p.shape, p.dtype, p.device)),
    };
  }

  private groupsByParam(): Map<Tensor, ParamGroup> {
    const byParam = new Map<Tensor, ParamGroup>();
    for (const g of this.groups) for (const p of g.params) byParam.set(p, g);
    return byParam;
  }

  /** State of one parameter (undefined before its first step). */
  paramState(p: Tensor): ParamState | undefined {
    return this.state.get(p);
  }

  /**
   * Moments keyed `<param name>.exp_avg` / `.exp_avg_sq` (the live tensors, not copies) and
   * the step counts and group settings as JSON.
   */
  stateDict(): AdamWStateDict {
    const tensors = new Map<string, Tensor>();
    const steps: Record<string, number> = {};
    for (const g of this.groups) {
      g.params.forEach((p, i) => {
        const st = this.state.get(p);
        // step 0: made by ensureState, never stepped; an eager run has no state there yet
        if (!st || st.step === 0) return;
        const name = g.paramNames[i]!;
        tensors.set(`${name}.exp_avg`, st.expAvg);
        tensors.set(`${name}.exp_avg_sq`, st.expAvgSq);
        steps[name] = st.step;
      });
    }
    return {
      tensors,
      meta: {
        betas: [...this.betas],
        eps: this.eps,
        steps,
        groups: this.groups.map((g) => ({
          name: g.name,
          lr: g.lr,
          initialLr: g.initialLr,
          weightDecay: g.weightDecay,
        })),
      },
    };
  }

  /**
   * Restores moments and steps (copied into fresh tensors on each parameter's device and
   * dtype) and the groups' lr. Group names must match; a missing or extra state is an error.
   */
  loadStateDict(sd: AdamWStateDict): void {
    const names = this.groups.map((g) => g.name);
    const saved = sd.meta.groups.map((g) => g.name);
    if (names.join(',') !== saved.join(',')) {
      throw new Error(
        `optimizer state: parameter groups differ (saved ${saved.join(', ')}; model ${names.join(', ')})`,
      );
    }
    const known = new Set<string>();
    noGrad(() => {
      for (const st of this.state.values()) {
        st.expAvg.dispose();
        st.expAvgSq.dispose();
      }
      this.state.clear();
      this.groups.forEach((g, gi) => {
        g.lr = sd.meta.groups[gi]!.lr;
        g.initialLr = sd.meta.groups[gi]!.initialLr;
        g.params.forEach((p, i) => {
          const name = g.paramNames[i]!;
          known.add(name);
          const step = sd.meta.steps[name];
          if (step === undefined) return;
          const load = (suffix: string): Tensor => {
            const t = sd.tensors.get(`${name}.${suffix}`);
            if (!t) throw new Error(`optimizer state: ${name}.${suffix} missing`);
            if (t.shape.join(',') !== p.shape.join(',')) {
              throw new Error(
                `optimizer state: ${name}.${suffix} has shape [${t.shape}] but the parameter is [${p.shape}]`,
              );
            }
            const out = keep(zeros(p.shape, p.dtype, p.device));
            out.copy_(t);
            return out;
          };
          this.state.set(p, { step, expAvg: load('exp_avg'), expAvgSq: load('exp_avg_sq') });
        });
      });
    });
    const unknown = Object.keys(sd.meta.steps).filter((n) => !known.has(n));
    if (unknown.length)
      throw new Error(
        `optimizer state for unknown parameters: ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ', ...' : ''}`,
      );
  }

  dispose(): void {
    for (const st of this.state.values()) {
      st.expAvg.dispose();
      st.expAvgSq.dispose();
    }
    this.state.clear();
  }
}

/** The decoupled weight decay factor of one update: p ← p · (1 − lr·wd). */
function decayOf(group: ParamGroup): number {
  return 1 - group.lr * group.weightDecay;
}
