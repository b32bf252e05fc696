/**
 * Data-parallel gradients as PyTorch's DistributedDataParallel, on c10d's own DDP engine (the
 * Reducer that libtorch ships): parameters and buffers are broadcast from rank 0 when wrapping;
 * before a backward pass whose gradients should be synchronised, `prepareBackward()` arms the
 * Reducer, which then all-reduces the gradients bucket by bucket (buckets of ~25 MB, the first
 * 1 MB, in reverse parameter order) from autograd hooks as soon as each bucket's gradients are
 * ready, overlapping communication with the rest of the backward pass, and leaves the average
 * over ranks in every .grad when backward returns. Skipping prepareBackward() is DDP's no_sync
 * (gradient accumulation steps): gradients then just accumulate locally.
 *
 * Where the Reducer cannot be driven (libtorch 2.x, whose Reducer constructor changes from
 * release to release; or BEITSEG_DDP=flat) the same buckets are flattened and all-reduced
 * when `finish()` is called after the backward pass (correct, without the overlap). Call
 * finish() after every synchronised backward; it does nothing in Reducer mode.
 */
import { native } from '../tensor/native.js';
import { noGrad } from '../tensor/runtime.js';
import { tensor, type Tensor } from '../tensor/tensor.js';
import type { ProcessGroup } from './process_group.js';

export interface DdpOptions {
  bucketMB?: number;
  firstBucketMB?: number;
}

const BYTES: Record<string, number> = { float32: 4, float16: 2, bfloat16: 2, float64: 8 };

export class DistributedDataParallel {
  private id: number | null;
  readonly buckets: number;
  /** 'reducer': c10d's Reducer, overlapped with backward; 'flat': bucketed all-reduce in finish(). */
  readonly mode: 'reducer' | 'flat';
  /** Bytes of gradients all-reduced per synchronised step. */
  readonly bytesPerStep: number;

  constructor(
    readonly pg: ProcessGroup,
    readonly params: readonly Tensor[],
    buffers: readonly Tensor[],
    o: DdpOptions = {},
  ) {
    noGrad(() => pg.broadcastCoalesced([...params, ...buffers], 0));
    const r = native.ddpCreate(
      pg.nativeId,
      params.map((p) => p.handle),
      o.bucketMB ?? 25,
      o.firstBucketMB ?? 1,
    );
    this.id = r.id;
    this.buckets = r.buckets;
    this.mode = r.mode;
    this.bytesPerStep = params.reduce((a, p) => a + p.numel * (BYTES[p.dtype] ?? 4), 0);
  }

  /** Arms gradient averaging for the next backward pass (omit it on accumulation steps). */
  prepareBackward(): void {
    if (this.id === null) throw new Error(`rank ${this.pg.rank}: DistributedDataParallel was disposed`);
    native.ddpPrepare(this.id);
  }

  /** Flat mode: averages the gradients of the armed backward pass (no-op in Reducer mode). */
  finish(): void {
    if (this.id === null) throw new Error(`rank ${this.pg.rank}: DistributedDataParallel was disposed`);
    native.ddpFinish(this.id);
  }

  /**
   * True when `ok` holds on every rank (AMP: all ranks skip or step together). Gradients are
   * averaged before the check, so ranks agree anyway; this makes it a guarantee.
   */
  allAgree(ok: boolean): boolean {
    const flag = tensor([ok ? 0 : 1]);
    try {
      this.pg.allReduce(flag, 'max');
      return flag.item() === 0;
    } finally {
      flag.dispose();
    }
  }

  dispose(): void {
    if (this.id !== null) native.ddpDispose(this.id);
    this.id = null;
  }
}
