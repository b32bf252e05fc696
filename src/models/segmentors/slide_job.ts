/**
 * mmseg's sliding-window inference as a resumable job over one image: the window grid, the
 * running sum of window logits and the count of windows covering each pixel. The job does not
 * run the network: its owner takes the next windows' crops, runs them (alone, or in one batch
 * with other jobs' windows) and hands the logits back. EncoderDecoder.slideInference runs one job
 * to completion (runSlideJob); serve's window batcher interleaves the jobs of several requests.
 */
import { tidy } from '../../tensor/scope.js';
import { cat, zeros, type Tensor } from '../../tensor/tensor.js';
import { slideWindows, type Window } from './slide_windows.js';

export { slideWindows, type Window } from './slide_windows.js';

/**
 * Adds one window's logits into the full-size sum and its coverage into count: equals mmseg's
 * `preds += F.pad(crop_logits)` and `count_mat[..., y1:y2, x1:x2] += 1`.
 */
export function addWindow(sum: Tensor, count: Tensor, win: Window, logits: Tensor): void {
  sum.slice(2, win.y1, win.y2).slice(3, win.x1, win.x2).add_(logits);
  count.slice(2, win.y1, win.y2).slice(3, win.x1, win.x2).add_(1);
}

export interface SlideJobOptions {
  numClasses: number;
  crop: [number, number];
  stride: [number, number];
}

export class SlideJob {
  readonly windows: Window[];
  /** Index of the next window to compute. */
  next = 0;
  private readonly sum: Tensor;
  private readonly count: Tensor;
  /** Images in `input`'s batch: each window's logits are that many rows. */
  private readonly batch: number;

  /** `input` [B, 3, H, W] (normalised) stays the caller's: the job reads crops of it. */
  constructor(
    readonly input: Tensor,
    opts: SlideJobOptions,
  ) {
    const [b, , h, w] = input.shape;
    this.batch = b;
    this.windows = slideWindows(h, w, opts.crop, opts.stride);
    this.sum = zeros([b, opts.numClasses, h, w], 'float32', input.device);
    this.count = zeros([1, 1, h, w], 'float32', input.device);
  }

  get windowsLeft(): number {
    return this.windows.length - this.next;
  }

  /** "rows x cols" of the next window: only windows of one shape can share a forward pass. */
  nextShape(): string {
    const win = this.windows[this.next];
    return `${win.y2 - win.y1}x${win.x2 - win.x1}`;
  }

  /** How many of the next windows (at most `room`) have the next window's shape. */
  sameShapeRun(room: number): number {
    const shape = this.nextShape();
    let n = 0;
    while (n < room && this.next + n < this.windows.length) {
      const win = this.windows[this.next + n];
      if (`${win.y2 - win.y1}x${win.x2 - win.x1}` !== shape) break;
      n++;
    }
    return n;
  }

  /** The next `n` windows and their crops of the input (views), and moves past them. */
  take(n: number): { windows: Window[]; crops: Tensor[] } {
    const windows = this.windows.slice(this.next, this.next + n);
    this.next += windows.length;
    return { windows, crops: windows.map((win) => this.input.slice(2, win.y1, win.y2).slice(3, win.x1, win.x2)) };
  }

  /** Adds the logits of windows taken: rows [offset + k*B, offset + (k+1)*B) belong to windows[k]. */
  accumulate(windows: Window[], logits: Tensor, offset = 0): void {
    const b = this.batch;
    windows.forEach((win, k) =>
      addWindow(this.sum, this.count, win, logits.slice(0, offset + k * b, offset + (k + 1) * b)),
    );
  }

  /** The averaged logits [B, C, H, W] (sum / count) once every window is in; frees the job's maps. */
  finish(): Tensor {
    if (this.windowsLeft !== 0) throw new Error(`slide job finished with ${this.windowsLeft} windows left`);
    const out = this.sum.div(this.count);
    this.dispose();
    return out;
  }

  /** Frees the sum and count maps (not the input, which is the caller's). */
  dispose(): void {
    for (const t of [this.sum, this.count]) if (!t.isDisposed) t.dispose();
  }
}

export interface RunSlideJobOptions {
  /** Windows per forward pass (same numbers, better throughput). */
  windowBatch?: number;
  /** Called after each forward pass with the windows done and their total. */
  onWindow?: (done: number, total: number) => void;
}

/** Runs a job to completion, `windowBatch` windows per call of `forward` (crops [n*B, 3, h, w] -> logits). */
export function runSlideJob(job: SlideJob, forward: (crops: Tensor) => Tensor, opts: RunSlideJobOptions = {}): Tensor {
  const windowBatch = opts.windowBatch ?? 1;
  try {
    while (job.windowsLeft > 0) {
      tidy(() => {
        const { windows, crops } = job.take(windowBatch);
        job.accumulate(windows, forward(cat(crops, 0)).float());
      });
      opts.onWindow?.(job.next, job.windows.length);
    }
    return job.finish();
  } finally {
    job.dispose();
  }
}
