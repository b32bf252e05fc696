/**
 * The model worker: a worker thread that loads the model and runs the scheduler, so forward
 * passes never block the main thread's event loop (/livez, /metrics, 503s and disconnects stay
 * answered within milliseconds while the model computes). The addon keeps its JS classes per
 * thread, so it loads here as well as on the main thread. Cancellations arrive as messages and
 * are seen between windows (the scheduler yields to this thread's event loop after each pass).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { initModel } from '../inference/api.js';
import { HttpError } from './errors.js';
import { describeModel } from './model_description.js';
import { SegmentScheduler } from './scheduler.js';
import type { FromWorker, ToWorker, WorkerSpec } from './worker_protocol.js';

const port = parentPort;
if (!port) throw new Error('model_worker.js runs as a worker thread');
const spec = workerData as WorkerSpec;
const send = (m: FromWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);

try {
  const model = await initModel(spec.config, spec.weights, {
    device: spec.device,
    verbose: true,
    precision: spec.quantize ? { quantize: spec.quantize } : undefined,
    cudaGraphs: spec.cudaGraphs,
  });
  const scheduler = new SegmentScheduler(model, {
    capacity: spec.capacity,
    windowBatch: spec.windowBatch,
    amp: spec.amp,
  });
  const aborters = new Map<number, AbortController>();
  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'cancel') {
      aborters.get(msg.id)?.abort();
      return;
    }
    const aborter = new AbortController();
    aborters.set(msg.id, aborter);
    const { data, width, height } = msg.image;
    scheduler
      .submit({
        image: { data, width, height, channels: 3 },
        mode: msg.mode,
        tta: msg.tta,
        deadline: msg.deadline,
        signal: aborter.signal,
      })
      .then(
        (seg) => send({ type: 'result', id: msg.id, ...seg }, [seg.pred.buffer as ArrayBuffer]),
        (e: unknown) => {
          const err = e instanceof Error ? e : new Error(String(e));
          const status = err instanceof HttpError ? err.statusCode : 500;
          const headers = err instanceof HttpError ? err.headers : {};
          send({ type: 'error', id: msg.id, status, message: err.message, headers });
        },
      )
      .finally(() => aborters.delete(msg.id));
  });
  send({ type: 'ready', description: describeModel(model, spec.weightsFile) });
} catch (e) {
  send({ type: 'loadError', message: e instanceof Error ? e.message : String(e) });
}
