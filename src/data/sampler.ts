/**
 * Infinite shuffled sampler (mmengine InfiniteSampler semantics: a new
 * permutation of the dataset every epoch, epochs chained forever).
 *
 * Sample number k (0, 1, 2, ... over the whole run) maps to
 * epoch = floor(k / size), position = k mod size and
 * index = permutation_epoch[position], where permutation_epoch comes from
 * Rng(deriveSeed(seed, SHUFFLE_TAG, epoch)). Everything is a pure function of
 * (seed, k), so the state is just the next k: saving it gives an exact resume.
 */

import { deriveSeed, Rng } from './rng.js';

const SHUFFLE_TAG = 0x5348; // 'SH': keeps shuffle streams apart from per-sample streams

export interface SamplerState {
  seed: number;
  size: number;
  shuffle: boolean;
  /** Number of samples already handed out. */
  next: number;
}

export interface SamplePosition {
  /** Running sample number since the start of training. */
  k: number;
  epoch: number;
  /** Position within the epoch. */
  pos: number;
  /** Dataset index. */
  index: number;
}

export class InfiniteSampler {
  private permEpoch = -1;
  private perm: Int32Array = new Int32Array(0);

  constructor(
    readonly size: number,
    readonly seed: number,
    readonly shuffle = true,
  ) {
    if (!Number.isInteger(size) || size < 1)
      throw new Error(`sampler: dataset size must be a positive integer, got ${size}`);
    if (!Number.isSafeInteger(seed) || seed < 0)
      throw new Error(`sampler: seed must be a non-negative integer, got ${seed}`);
  }

  /** Where sample number k comes from. */
  at(k: number): SamplePosition {
    const epoch = Math.floor(k / this.size);
    const pos = k - epoch * this.size;
    if (!this.shuffle) return { k, epoch, pos, index: pos };
    if (epoch !== this.permEpoch) {
      this.perm = new Rng(deriveSeed(this.seed, SHUFFLE_TAG, epoch)).permutation(this.size);
      this.permEpoch = epoch;
    }
    return { k, epoch, pos, index: this.perm[pos] };
  }

  static fromState(st: SamplerState): { sampler: InfiniteSampler; next: number } {
    if (!st || typeof st !== 'object' || !Number.isSafeInteger(st.next) || st.next < 0) {
      throw new Error(`sampler: bad state ${JSON.stringify(st)}`);
    }
    return { sampler: new InfiniteSampler(st.size, st.seed, st.shuffle), next: st.next };
  }

  state(next: number): SamplerState {
    return { seed: this.seed, size: this.size, shuffle: this.shuffle, next };
  }
}
