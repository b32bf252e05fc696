/**
 * Hosts the rendezvous store (store_protocol.ts) on the master address only — 127.0.0.1 for a
 * one-machine run — on a worker thread, so that rank 0's training loop (which blocks its own
 * thread in collectives) never delays another rank's store request. Hosted by the launcher of
 * node 0 (like torchrun's agent) or, without a launcher, by rank 0.
 */
import { Worker } from 'node:worker_threads';
import { native } from '../tensor/native.js';

/**
 * Whether this build's TCPStore client speaks the protocol store_protocol.ts serves (libtorch
 * 1.x). libtorch 2.x changed the wire protocol: there rank 0 hosts libtorch's own server, which
 * listens on every interface (unrun here).
 */
export function jsStoreSupported(): boolean {
  return Number(native.buildInfo().torchVersion.split('.')[0]) < 2;
}

export interface StoreServer {
  /** The address and port the store listens on. */
  address: string;
  port: number;
  close(): Promise<void>;
}

/** The address to bind for a master address: a name is bound as whatever it resolves to here. */
export function bindAddress(masterAddr: string): string {
  return masterAddr === 'localhost' ? '127.0.0.1' : masterAddr;
}

/**
 * Starts the store on `host`:`port` (0: a free port). Rejects with a one-line error if the
 * address is not this machine's or the port is taken. The thread does not keep the process alive.
 */
export function startStoreServer(host: string, port: number): Promise<StoreServer> {
  const worker = new Worker(new URL('./store_thread.js', import.meta.url), {
    workerData: { host: bindAddress(host), port },
  });
  return new Promise((resolve, reject) => {
    worker.once('error', (e) => reject(e));
    worker.once('message', (m: { address?: string; port?: number; error?: string }) => {
      if (m.error) {
        void worker.terminate();
        reject(new Error(`cannot host the rendezvous store on ${host}:${port}: ${m.error}`));
        return;
      }
      worker.unref();
      resolve({
        address: m.address!,
        port: m.port!,
        close: async () => {
          await worker.terminate();
        },
      });
    });
  });
}
