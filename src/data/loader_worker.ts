/**
 * Worker-thread side of the data loader: builds the pipeline once, then
 * answers {k, index, seed} tasks with processed samples (buffers transferred,
 * not copied). Errors are sent back as messages (with the file name, which the
 * I/O layer puts in every message), never thrown out of the thread.
 */

import { parentPort, workerData } from 'node:worker_threads';
import type { DataItem } from './datasets.js';
import { processSample, type ProcessorConfig } from './sample_processor.js';
import { buildPipeline } from './transforms/pipeline.js';

interface InitData {
  items: DataItem[];
  proc: ProcessorConfig;
}

interface Task {
  type: 'task';
  k: number;
  index: number;
  seed: number;
}

const port = parentPort;
if (!port) throw new Error('loader_worker.js must run in a worker thread');
const init = workerData as InitData;
const pipeline = buildPipeline(init.proc.pipeline);

port.on('message', (msg: Task | { type: 'close' }) => {
  if (msg.type === 'close') {
    port.close();
    return;
  }
  const { k, index, seed } = msg;
  const item = init.items[index];
  processSample(pipeline, init.proc, item, index, seed).then(
    (r) => port.postMessage({ k, ok: true, sample: r }, [r.img.buffer as ArrayBuffer, r.label.buffer as ArrayBuffer]),
    (e: unknown) => port.postMessage({ k, ok: false, error: e instanceof Error ? e.message : String(e) }),
  );
});
