/**
 * The serving scheduler: one model, one FIFO queue of segmentation tasks, computed in arrival order
 * on the thread that owns the model (in `beitseg serve`, the model worker: model_worker.ts).
 *
 * - Bounded: at most `capacity` tasks are admitted (waiting or computing); more answer 503.
 * - Deadlines and aborts: a task whose deadline passed or whose client went away is dropped
 *   before its compute starts (or between two forward passes once started), freeing its place.
 * - Slide-mode tasks without TTA are computed window by window, and windows of consecutive tasks
 *   share forward passes (up to `windowBatch` windows each); whole-image and TTA tasks run alone
 *   through `inferenceModel`.
 * - The loop gives the event loop a turn between forward passes, so cancellations (a client gone,
 *   a deadline) are seen between windows.
 * - When the queue runs dry the C heaps are trimmed (trimHeap), and after `releaseAfterMs` of
 *   idleness the tensor cache is emptied too (cpuCache(true)), so the process's RSS returns to
 *   what it uses at rest instead of keeping what the last (large) request freed; a steady
 *   stream of requests keeps the cache it reuses.
 */
import { inferenceModel, type SegModel } from '../inference/api.js';
import type { RgbImage } from '../data/types.js';
import { cpuCache, trimHeap, type AutocastDType } from '../tensor/runtime.js';
import { HttpError } from './errors.js';
import {
  createWindowJob,
  disposeWindowJob,
  finishWindowJob,
  nextWindowShape,
  runWindowBatch,
  windowsLeft,
  type WindowJob,
} from './window_batcher.js';

export interface SegmentTask {
  image: RgbImage;
  mode: 'slide' | 'whole';
  tta: boolean;
  /** Epoch milliseconds after which the task is dropped with 504. */
  deadline: number;
  /** Aborted when the client disconnects. */
  signal?: AbortSignal;
}

export interface Segmentation {
  /** Class id per pixel, row-major. */
  pred: Uint8Array;
  height: number;
  width: number;
  /** Milliseconds waiting in the queue, then computing (for the request log). */
  queueMs?: number;
  computeMs?: number;
}

export interface EngineOptions {
  /** Most tasks admitted at once (waiting + computing). */
  capacity: number;
  /** Most slide windows per forward pass, across tasks. */
  windowBatch: number;
  amp: AutocastDType | null;
  /** Seconds a client is told to wait (Retry-After) when the queue is full. */
  retryAfterS?: number;
  /** Idle milliseconds after which cached tensor memory is handed back (default 1000). */
  releaseAfterMs?: number;
}

interface Entry {
  task: SegmentTask;
  resolve: (s: Segmentation) => void;
  reject: (e: Error) => void;
  job?: WindowJob;
  done: boolean;
  admittedAt: number;
  /** When its first forward pass started. */
  startedAt?: number;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class SegmentScheduler {
  private readonly waiting: Entry[] = [];
  private readonly active: Entry[] = [];
  private running = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private releaseTimer: NodeJS.Timeout | null = null;
  /** Forward passes run so far (for tests and metrics: batching shows as fewer passes). */
  forwardPasses = 0;

  constructor(
    private readonly m: SegModel,
    private readonly opts: EngineOptions,
  ) {
    if (!(opts.capacity >= 1)) throw new Error(`engine capacity must be at least 1, got ${opts.capacity}`);
    if (!(opts.windowBatch >= 1)) throw new Error(`window batch must be at least 1, got ${opts.windowBatch}`);
  }

  /** Tasks admitted and not finished (waiting or computing). */
  get depth(): number {
    return this.waiting.length + this.active.length;
  }

  get waitingCount(): number {
    return this.waiting.length;
  }

  get capacity(): number {
    return this.opts.capacity;
  }

  /** Queues a task; rejects with an HttpError (503 full or closing, 504 deadline, 499 client gone). */
  submit(task: SegmentTask): Promise<Segmentation> {
    if (this.closed) return Promise.reject(new HttpError(503, 'server is shutting down', { 'retry-after': '5' }));
    if (this.depth >= this.opts.capacity) {
      const retry = String(this.opts.retryAfterS ?? 1);
      return Promise.reject(
        new HttpError(503, `queue full (${this.opts.capacity} requests): retry later`, { 'retry-after': retry }),
      );
    }
    if (task.signal?.aborted) return Promise.reject(clientGone());
    return new Promise<Segmentation>((resolve, reject) => {
      const entry: Entry = { task, resolve, reject, done: false, admittedAt: Date.now() };
      this.waiting.push(entry);
      task.signal?.addEventListener('abort', () => this.dropIfWaiting(entry), { once: true });
      this.kick();
    });
  }

  /** Refuses new tasks and resolves once every admitted task has finished. */
  drain(): Promise<void> {
    this.closed = true;
    return this.whenIdle();
  }

  /** Resolves when nothing is waiting or computing. */
  whenIdle(): Promise<void> {
    if (!this.running && this.depth === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private kick(): void {
    if (this.releaseTimer) clearTimeout(this.releaseTimer);
    this.releaseTimer = null;
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      // let tasks submitted in the same turn join the first batch
      await yieldToEventLoop();
      while (this.depth > 0) {
        this.dropExpired();
        await this.step();
        await yieldToEventLoop();
      }
    } finally {
      this.running = false;
      if (this.depth === 0) {
        trimHeap();
        this.releaseTimer = setTimeout(() => {
          this.releaseTimer = null;
          cpuCache(true);
          trimHeap();
        }, this.opts.releaseAfterMs ?? 1000);
        this.releaseTimer.unref();
      }
      for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  private async step(): Promise<void> {
    const head = this.waiting[0];
    if (this.active.length === 0 && head && !isWindowed(head.task)) {
      this.waiting.shift();
      await this.runAlone(head);
      return;
    }
    const batch = this.collectBatch();
    if (batch.length === 0) return;
    try {
      this.forwardPasses++;
      runWindowBatch(
        this.m,
        batch.map((b) => ({ job: b.entry.job!, take: b.take })),
        this.opts.amp,
      );
    } catch (e) {
      for (const { entry } of batch) this.fail(entry, this.computeError(entry, e));
      return;
    }
    for (const { entry } of batch) if (windowsLeft(entry.job!) === 0) this.finish(entry);
  }

  /** The next windows in arrival order, of one shape, up to windowBatch; activates waiting tasks as room allows. */
  private collectBatch(): { entry: Entry; take: number }[] {
    const batch: { entry: Entry; take: number }[] = [];
    let room = this.opts.windowBatch;
    let shape: string | null = null;
    for (let i = 0; room > 0; i++) {
      const entry = this.active[i] ?? this.activateNext();
      if (!entry) break;
      const job = entry.job!;
      if (windowsLeft(job) === 0) continue;
      const s = nextWindowShape(job);
      if (shape !== null && s !== shape) break;
      shape = s;
      const take = job.slide.sameShapeRun(room);
      batch.push({ entry, take });
      room -= take;
      if (windowsLeft(job) > take) break;
    }
    return batch;
  }

  /** Moves the head of the queue into the active set if it is a windowed task. */
  private activateNext(): Entry | undefined {
    while (this.waiting.length > 0 && isWindowed(this.waiting[0].task)) {
      const entry = this.waiting.shift()!;
      try {
        entry.job = createWindowJob(this.m, entry.task.image);
      } catch (e) {
        this.fail(entry, this.computeError(entry, e));
        continue;
      }
      entry.startedAt = Date.now();
      this.active.push(entry);
      return entry;
    }
    return undefined;
  }

  private async runAlone(entry: Entry): Promise<void> {
    const { task } = entry;
    entry.startedAt = Date.now();
    try {
      this.forwardPasses++;
      const r = await inferenceModel(this.m, task.image, {
        mode: task.mode,
        tta: task.tta,
        amp: this.opts.amp,
        windowBatch: this.opts.windowBatch,
      });
      r.logits.dispose();
      this.settle(entry, () =>
        entry.resolve({ pred: toLabels(r.pred), height: r.height, width: r.width, ...timing(entry) }),
      );
    } catch (e) {
      this.fail(entry, this.computeError(entry, e));
    }
  }

  private finish(entry: Entry): void {
    this.remove(entry);
    let pred: Int32Array;
    try {
      pred = finishWindowJob(this.m, entry.job!);
    } catch (e) {
      this.fail(entry, asError(e));
      return;
    }
    const { height, width } = entry.task.image;
    this.settle(entry, () => entry.resolve({ pred: toLabels(pred), height, width, ...timing(entry) }));
  }

  /**
   * A failed forward pass: 422 when the image is smaller than the model's window (too small for
   * its pooling layers: the client's input, not the server, is at fault), otherwise the error as is (500).
   */
  private computeError(entry: Entry, e: unknown): Error {
    const err = asError(e);
    const crop = this.m.model.testCfg.crop_size;
    const { width, height } = entry.task.image;
    if (!(err instanceof HttpError) && crop && (height < crop[0] || width < crop[1])) {
      return new HttpError(
        422,
        `image ${width}x${height} is too small for this model (window ${crop[1]}x${crop[0]}): ${err.message}`,
      );
    }
    return err;
  }

  private fail(entry: Entry, e: Error): void {
    this.remove(entry);
    if (entry.job) disposeWindowJob(entry.job);
    this.settle(entry, () => entry.reject(e));
  }

  private settle(entry: Entry, fn: () => void): void {
    if (entry.done) return;
    entry.done = true;
    fn();
  }

  private remove(entry: Entry): void {
    for (const list of [this.waiting, this.active]) {
      const i = list.indexOf(entry);
      if (i >= 0) list.splice(i, 1);
    }
  }

  private dropIfWaiting(entry: Entry): void {
    if (this.waiting.includes(entry)) this.fail(entry, clientGone());
  }

  /** Drops aborted and overdue tasks, waiting or between windows. */
  private dropExpired(): void {
    const now = Date.now();
    for (const entry of [...this.waiting, ...this.active]) {
      if (entry.task.signal?.aborted) this.fail(entry, clientGone());
      else if (now > entry.task.deadline)
        this.fail(entry, new HttpError(504, 'deadline passed before the segmentation finished'));
    }
  }
}

function timing(entry: Entry): { queueMs: number; computeMs: number } {
  const started = entry.startedAt ?? entry.admittedAt;
  return { queueMs: started - entry.admittedAt, computeMs: Date.now() - started };
}

function isWindowed(task: SegmentTask): boolean {
  return task.mode === 'slide' && !task.tta;
}

function toLabels(pred: Int32Array): Uint8Array {
  const out = new Uint8Array(pred.length);
  for (let i = 0; i < pred.length; i++) out[i] = pred[i];
  return out;
}

function clientGone(): HttpError {
  return new HttpError(499, 'client closed the request');
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
