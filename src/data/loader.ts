/**
 * Training data loader: decodes and augments samples in worker threads and
 * hands out batches in a fixed order.
 *
 *   const loader = createLoader({ dataset, pipeline, batchSize: 2, numWorkers: 2, seed: 0, padTo: [640, 640] });
 *   const batch = await loader.next();   // {img: Float32Array NCHW, label: Uint8Array NHW, ...}
 *   const saved = loader.state();        // JSON; createLoader({..., state: saved}) resumes exactly
 *   await loader.close();
 *
 * Determinism: sample number k (over the whole run) gets dataset index
 * sampler.at(k) and its own RNG seeded with deriveSeed(seed, epoch, position,
 * index). No random state is shared between samples, so which worker runs a
 * sample, and how many workers there are (0 = in this thread), does not
 * change a single byte of the batches.
 *
 * Prefetch: up to `prefetch` batches beyond the one being waited for are in
 * flight, spread over the workers by load. Workers are unref'd while idle so a
 * forgotten loader does not keep the process alive; close() ends them cleanly.
 *
 * Errors (unreadable file, bad label...) reject the next() that needs that
 * sample with a message naming the file; the loader is then broken and every
 * later next() rejects with the same error.
 */

import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { DataItem, SegDataset } from './datasets.js';
import { deriveSeed } from './rng.js';
import { processSample, type ProcessedSample, type ProcessorConfig } from './sample_processor.js';
import { InfiniteSampler, type SamplerState } from './sampler.js';
import type { SampleMeta } from './transforms/pack.js';
import { buildPipeline, type Pipeline } from './transforms/pipeline.js';
import type { TransformConfig } from './transforms/sample.js';
import { IGNORE_INDEX } from './types.js';

export interface LoaderOptions {
  /** A dataset (its items are used) or a plain item list. */
  dataset: SegDataset | readonly DataItem[];
  /** Transform configs; defaults to the dataset's own pipeline. */
  pipeline?: readonly TransformConfig[];
  batchSize: number;
  /** Worker threads; 0 runs everything in this thread. Default: min(4, cpus - 1), at least 1. */
  numWorkers?: number;
  seed: number;
  /** Shuffle each epoch (default true). */
  shuffle?: boolean;
  /** Batches to prepare ahead of the one requested (default 2). */
  prefetch?: number;
  mean?: readonly number[];
  std?: readonly number[];
  /** Pad every sample to at least (h, w), e.g. the crop size (mmseg data_preprocessor size). */
  padTo?: [number, number];
  /** Image padding in normalised space (default 0). */
  padVal?: number;
  /** Label padding (default 255). */
  segPadVal?: number;
  /** Resume from a saved loader state. */
  state?: LoaderState;
  /**
   * Data-parallel split as mmengine's InfiniteSampler: one shuffled stream shared by all ranks,
   * rank r takes stream positions r, r + W, r + 2W, ... (default rank 0 of 1). N ranks x batch
   * b then see together the batches of 1 process x batch N*b with the same seed.
   */
  rank?: number;
  worldSize?: number;
}

export interface LoaderState {
  sampler: SamplerState;
}

export interface Batch {
  /** float32 N x 3 x H x W, normalised; padding is padVal (0). */
  img: Float32Array;
  /** uint8 N x H x W; 255 = ignore (also padding). */
  label: Uint8Array;
  n: number;
  height: number;
  width: number;
  /** mmseg-style meta per sample (img_path, ori_shape, img_shape, pad_shape, flip, ...). */
  metas: SampleMeta[];
  /**
   * Per sample (h, w): `ori` as loaded, `img` after the pipeline (the valid
   * region, top-left), `pad` the batch size. Same numbers as in `metas`.
   */
  shapes: { ori: [number, number]; img: [number, number]; pad: [number, number] }[];
  /** Dataset index of each sample. */
  indices: number[];
  /** Epoch of each sample. */
  epochs: number[];
  /** Batch number since the start of training (resumes continue the count). */
  iteration: number;
}

interface Deferred {
  promise: Promise<ProcessedSample>;
  resolve: (s: ProcessedSample) => void;
  reject: (e: Error) => void;
  worker: number;
  index: number;
  epoch: number;
}

interface WorkerSlot {
  worker: Worker;
  inflight: number;
  exited: boolean;
}

type WorkerReply = { k: number; ok: true; sample: ProcessedSample } | { k: number; ok: false; error: string };

export class SegDataLoader {
  private readonly items: readonly DataItem[];
  private readonly sampler: InfiniteSampler;
  private readonly proc: ProcessorConfig;
  private readonly batchSize: number;
  private readonly prefetch: number;
  private readonly pending = new Map<number, Deferred>();
  private readonly slots: WorkerSlot[] = [];
  private pipeline: Pipeline | undefined;
  private nextDispatch: number;
  private nextConsume: number;
  private broken: Error | undefined;
  private closed = false;
  private busy = false;
  private readonly rank: number;
  private readonly world: number;

  constructor(opts: LoaderOptions) {
    const items = Array.isArray(opts.dataset)
      ? (opts.dataset as readonly DataItem[])
      : (opts.dataset as SegDataset).items;
    if (items.length === 0) throw new Error('loader: the dataset is empty');
    const pipelineCfg =
      opts.pipeline ?? (Array.isArray(opts.dataset) ? undefined : (opts.dataset as SegDataset).pipeline);
    if (!pipelineCfg) throw new Error('loader: no pipeline given (pass `pipeline` or a dataset that has one)');
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1)
      throw new Error(`loader: batchSize must be a positive integer, got ${opts.batchSize}`);
    this.world = opts.worldSize ?? 1;
    this.rank = opts.rank ?? 0;
    if (
      !Number.isInteger(this.world) ||
      this.world < 1 ||
      !Number.isInteger(this.rank) ||
      this.rank < 0 ||
      this.rank >= this.world
    ) {
      throw new Error(`loader: rank ${opts.rank} / world size ${opts.worldSize} is not a valid split`);
    }
    const numWorkers = opts.numWorkers ?? Math.max(1, Math.min(4, os.cpus().length - 1));
    if (!Number.isInteger(numWorkers) || numWorkers < 0)
      throw new Error(`loader: numWorkers must be >= 0, got ${numWorkers}`);
    const prefetch = opts.prefetch ?? 2;
    if (!Number.isInteger(prefetch) || prefetch < 0) throw new Error(`loader: prefetch must be >= 0, got ${prefetch}`);

    this.items = items;
    this.batchSize = opts.batchSize;
    this.prefetch = prefetch;
    this.proc = {
      pipeline: pipelineCfg,
      mean: opts.mean,
      std: opts.std,
      padTo: opts.padTo ?? null,
      padVal: opts.padVal ?? 0,
      segPadVal: opts.segPadVal ?? IGNORE_INDEX,
    };
    // Build once here too: config errors surface now, not inside a worker.
    const pipeline = buildPipeline(pipelineCfg);
    if (opts.state) {
      const { sampler, next } = InfiniteSampler.fromState(opts.state.sampler);
      if (sampler.size !== items.length) {
        throw new Error(`loader: saved state is for a dataset of ${sampler.size} items, this one has ${items.length}`);
      }
      if (sampler.seed !== opts.seed || sampler.shuffle !== (opts.shuffle ?? true)) {
        throw new Error(
          `loader: saved state has seed ${sampler.seed}/shuffle ${sampler.shuffle}, options say ` +
            `${opts.seed}/${opts.shuffle ?? true}`,
        );
      }
      this.sampler = sampler;
      // the state counts samples of the shared stream (all ranks together)
      if (next % this.world !== 0) {
        throw new Error(
          `loader: saved state is at sample ${next} of the shared stream, not a multiple of the world size ` +
            `${this.world}`,
        );
      }
      this.nextDispatch = next / this.world;
      this.nextConsume = next / this.world;
    } else {
      this.sampler = new InfiniteSampler(items.length, opts.seed, opts.shuffle ?? true);
      this.nextDispatch = 0;
      this.nextConsume = 0;
    }
    if (numWorkers === 0) {
      this.pipeline = pipeline;
    } else {
      for (let i = 0; i < numWorkers; i++) this.slots.push(this.startWorker(i));
    }
  }

  private startWorker(i: number): WorkerSlot {
    const worker = new Worker(new URL('./loader_worker.js', import.meta.url), {
      workerData: { items: this.items, proc: this.proc },
    });
    const slot: WorkerSlot = { worker, inflight: 0, exited: false };
    worker.unref();
    worker.on('message', (msg: WorkerReply) => {
      const d = this.pending.get(msg.k);
      slot.inflight--;
      if (slot.inflight === 0) worker.unref();
      if (!d) return;
      if (msg.ok) d.resolve(msg.sample);
      else d.reject(new Error(msg.error));
    });
    const fail = (err: Error): void => {
      slot.exited = true;
      if (this.closed) return;
      const e = new Error(`loader worker ${i} died: ${err.message}`);
      this.broken ??= e;
      for (const d of this.pending.values()) if (d.worker === i) d.reject(e);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (!slot.exited) fail(new Error(`exited with code ${code}`));
    });
    return slot;
  }

  private dispatch(k: number): void {
    const { epoch, pos, index } = this.sampler.at(this.rank + this.world * k);
    const seed = deriveSeed(this.sampler.seed, epoch, pos, index);
    let resolve!: (s: ProcessedSample) => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<ProcessedSample>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Rejections are observed by next(); this keeps an early one from being "unhandled".
    promise.catch(() => undefined);
    const item = this.items[index];
    const withName = (e: unknown): Error => {
      const msg = e instanceof Error ? e.message : String(e);
      return new Error(
        msg.includes(item.imgPath) || (item.segMapPath && msg.includes(item.segMapPath))
          ? msg
          : `${item.imgPath}: ${msg}`,
      );
    };
    const d: Deferred = { promise, resolve, reject: (e) => reject(withName(e)), worker: -1, index, epoch };
    this.pending.set(k, d);
    if (this.slots.length === 0) {
      processSample(this.pipeline!, this.proc, item, index, seed).then(d.resolve, d.reject);
      return;
    }
    let best = -1;
    for (let i = 0; i < this.slots.length; i++) {
      if (this.slots[i].exited) continue;
      if (best < 0 || this.slots[i].inflight < this.slots[best].inflight) best = i;
    }
    if (best < 0) {
      d.reject(this.broken ?? new Error('no loader worker is running'));
      return;
    }
    const slot = this.slots[best];
    d.worker = best;
    if (slot.inflight === 0) slot.worker.ref();
    slot.inflight++;
    slot.worker.postMessage({ type: 'task', k, index, seed });
  }

  private fill(): void {
    const limit = this.nextConsume + this.batchSize * (1 + this.prefetch);
    while (this.nextDispatch < limit) this.dispatch(this.nextDispatch++);
  }

  /** The next batch. Calls must not overlap (await each one). */
  async next(): Promise<Batch> {
    if (this.closed) throw new Error('loader is closed');
    if (this.broken) throw this.broken;
    if (this.busy) throw new Error('loader.next() called again before the previous call finished');
    this.busy = true;
    try {
      this.fill();
      const first = this.nextConsume;
      const ks = Array.from({ length: this.batchSize }, (_, i) => first + i);
      let samples: ProcessedSample[];
      try {
        samples = await Promise.all(ks.map((k) => this.pending.get(k)!.promise));
      } catch (e) {
        this.broken = e as Error;
        throw e;
      }
      const metaOfK = ks.map((k) => this.pending.get(k)!);
      for (const k of ks) this.pending.delete(k);
      this.nextConsume = first + this.batchSize;
      this.fill();
      return collate(
        samples,
        metaOfK.map((d) => d.index),
        metaOfK.map((d) => d.epoch),
        first / this.batchSize,
        this.proc,
      );
    } finally {
      this.busy = false;
    }
  }

  /** State after the last batch returned by next(): pass as `state` to resume exactly there. */
  state(): LoaderState {
    return { sampler: this.sampler.state(this.nextConsume * this.world) };
  }

  /** Stop the workers and wait for them to exit. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const closing = new Error('loader closed');
    for (const d of this.pending.values()) d.reject(closing);
    this.pending.clear();
    await Promise.all(
      this.slots.map(
        (slot) =>
          new Promise<void>((resolve) => {
            if (slot.exited) {
              resolve();
              return;
            }
            const timer = setTimeout(() => {
              void slot.worker.terminate();
            }, 5000);
            slot.worker.once('exit', () => {
              clearTimeout(timer);
              slot.exited = true;
              resolve();
            });
            slot.worker.postMessage({ type: 'close' });
          }),
      ),
    );
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Batch> {
    for (;;) yield await this.next();
  }
}

export function createLoader(opts: LoaderOptions): SegDataLoader {
  return new SegDataLoader(opts);
}

/**
 * Stack samples into one batch, padding each to the largest height/width in
 * the batch (mmseg stack_batch): image with padVal, label with segPadVal.
 */
export function collate(
  samples: ProcessedSample[],
  indices: number[],
  epochs: number[],
  iteration: number,
  proc: Pick<ProcessorConfig, 'padVal' | 'segPadVal'>,
): Batch {
  const H = Math.max(...samples.map((s) => s.height));
  const W = Math.max(...samples.map((s) => s.width));
  const n = samples.length;
  const plane = H * W;
  const img = new Float32Array(n * 3 * plane);
  const label = new Uint8Array(n * plane);
  const padVal = proc.padVal ?? 0;
  const segPad = proc.segPadVal ?? IGNORE_INDEX;
  samples.forEach((s, i) => {
    if (s.height === H && s.width === W) {
      img.set(s.img, i * 3 * plane);
      label.set(s.label, i * plane);
      return;
    }
    img.subarray(i * 3 * plane, (i + 1) * 3 * plane).fill(padVal);
    label.subarray(i * plane, (i + 1) * plane).fill(segPad);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < s.height; y++) {
        const src = c * s.height * s.width + y * s.width;
        img.set(s.img.subarray(src, src + s.width), i * 3 * plane + c * plane + y * W);
      }
    }
    for (let y = 0; y < s.height; y++) label.set(s.label.subarray(y * s.width, (y + 1) * s.width), i * plane + y * W);
    s.meta.pad_shape = [H, W];
  });
  const metas = samples.map((s) => s.meta);
  const shapes = metas.map((m) => ({
    ori: m.ori_shape ?? m.img_shape ?? [H, W],
    img: m.img_shape ?? [H, W],
    pad: [H, W] as [number, number],
  }));
  return { img, label, n, height: H, width: W, metas, shapes, indices, epochs, iteration };
}
