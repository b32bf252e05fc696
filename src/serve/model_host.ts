/**
 * The main thread's side of the model worker (model_worker.ts): admits tasks (503 when the
 * queue is full or draining), posts them to the worker and answers each when the worker does,
 * when its deadline passes (504 at once; the worker drops the task at its next window) or when
 * the client goes away (the worker is told to drop it). A task's place in the queue is freed
 * when the worker has stopped working on it, so the queue depth is the worker's real load.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ModelBackend } from './backend.js';
import { HttpError } from './errors.js';
import type { ModelDescription, WeightsFile } from './model_description.js';
import type { Segmentation, SegmentTask } from './scheduler.js';
import type { FromWorker, ToWorker, WorkerSpec } from './worker_protocol.js';

interface Pending {
  resolve: (s: Segmentation) => void;
  reject: (e: Error) => void;
  answered: boolean;
  timer: NodeJS.Timeout;
}

export class ModelHost implements ModelBackend {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  private dead: string | null = null;
  private idleWaiters: (() => void)[] = [];

  private constructor(
    private readonly worker: Worker,
    readonly description: ModelDescription,
    readonly capacity: number,
  ) {
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (e) => this.onDeath(`model worker failed: ${e.message}`));
    worker.on('exit', (code) => this.onDeath(`model worker exited (code ${code})`));
  }

  /** Starts the worker and resolves once the model is loaded (rejects with the load error). */
  static async start(spec: WorkerSpec): Promise<ModelHost> {
    const worker = new Worker(new URL('./model_worker.js', import.meta.url), { workerData: spec });
    const description = await new Promise<ModelDescription>((resolve, reject) => {
      const onExit = (code: number): void => reject(new Error(`model worker exited (code ${code}) while loading`));
      worker.once('error', reject);
      worker.once('exit', onExit);
      worker.once('message', (m: FromWorker) => {
        worker.off('error', reject);
        worker.off('exit', onExit);
        if (m.type === 'ready') resolve(m.description);
        else reject(new Error(m.type === 'loadError' ? m.message : `unexpected first message ${m.type}`));
      });
    }).catch(async (e: unknown) => {
      await worker.terminate();
      throw e;
    });
    return new ModelHost(worker, description, spec.capacity);
  }

  get depth(): number {
    return this.pending.size;
  }

  get alive(): boolean {
    return this.dead === null;
  }

  submit(task: SegmentTask): Promise<Segmentation> {
    if (this.dead) return Promise.reject(new HttpError(503, this.dead));
    if (this.closed) return Promise.reject(new HttpError(503, 'server is shutting down', { 'retry-after': '5' }));
    if (this.pending.size >= this.capacity) {
      return Promise.reject(
        new HttpError(503, `queue full (${this.capacity} requests): retry later`, { 'retry-after': '1' }),
      );
    }
    if (task.signal?.aborted) return Promise.reject(new HttpError(499, 'client closed the request'));
    const id = this.nextId++;
    return new Promise<Segmentation>((resolve, reject) => {
      const answer = (e: Error): void => {
        const p = this.pending.get(id);
        if (!p || p.answered) return;
        p.answered = true;
        reject(e);
        this.post({ type: 'cancel', id });
      };
      const timer = setTimeout(
        () => answer(new HttpError(504, 'deadline passed before the segmentation finished')),
        Math.max(0, task.deadline - Date.now()),
      );
      this.pending.set(id, { resolve, reject, answered: false, timer });
      task.signal?.addEventListener('abort', () => answer(new HttpError(499, 'client closed the request')), {
        once: true,
      });
      const { data, width, height } = task.image;
      this.post({
        type: 'task',
        id,
        image: { data, width, height },
        mode: task.mode,
        tta: task.tta,
        deadline: task.deadline,
      });
    });
  }

  drain(): Promise<void> {
    this.closed = true;
    if (this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.dead ??= 'model worker stopped';
    await this.worker.terminate();
  }

  private post(m: ToWorker): void {
    if (!this.dead) this.worker.postMessage(m);
  }

  private onMessage(m: FromWorker): void {
    if (m.type !== 'result' && m.type !== 'error') return;
    const p = this.pending.get(m.id);
    if (!p) return;
    this.settle(m.id, p);
    if (p.answered) return;
    if (m.type === 'result') {
      const { pred, width, height, queueMs, computeMs } = m;
      p.resolve({ pred, width, height, queueMs, computeMs });
    } else {
      p.reject(m.status >= 500 && m.status !== 503 && m.status !== 504 ? new Error(m.message) : httpError(m));
    }
  }

  private settle(id: number, p: Pending): void {
    clearTimeout(p.timer);
    this.pending.delete(id);
    if (this.pending.size === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private onDeath(reason: string): void {
    if (this.dead) return;
    this.dead = reason;
    for (const [id, p] of [...this.pending]) {
      this.settle(id, p);
      if (!p.answered) p.reject(new Error(reason));
    }
  }
}

function httpError(m: { status: number; message: string; headers: Record<string, string> }): HttpError {
  return new HttpError(m.status, m.message, m.headers);
}

/** Name, size and SHA-256 of a weights file, read as a stream (a folder: name and total size only). */
export async function weightsFileInfo(file: string | undefined): Promise<WeightsFile | null> {
  if (!file) return null;
  const st = await fs.promises.stat(file);
  if (st.isDirectory()) {
    let bytes = 0;
    for (const f of await fs.promises.readdir(file, { withFileTypes: true }))
      if (f.isFile()) bytes += (await fs.promises.stat(path.join(file, f.name))).size;
    return { file: path.basename(file), bytes, sha256: null };
  }
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return { file: path.basename(file), bytes: st.size, sha256: hash.digest('hex') };
}
