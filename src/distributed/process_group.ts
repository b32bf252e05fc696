/**
 * A c10d process group (TCPStore rendezvous + Gloo, or NCCL in CUDA builds that have it) and
 * its collectives. Every collective is bounded by the group's timeout: a dead or hung peer
 * becomes an Error such as "rank 1: allreduce timed out after 30 s (a peer rank gone or
 * hung?)", never a process stuck forever.
 *
 *   const pg = await ProcessGroup.init({ masterAddr: '127.0.0.1', masterPort: 29500, rank, worldSize: 2 });
 *   pg.allReduce(t);              // in place, sum over ranks (blocks at most the timeout)
 *   await pg.allReduceAsync(t);   // the same without blocking the event loop
 *
 * Collectives work in place on contiguous tensors; every rank must call the same collectives
 * in the same order with tensors of the same shape and dtype (as in torch.distributed).
 */
import { native } from '../tensor/native.js';
import { empty, type Tensor } from '../tensor/tensor.js';
import { jobToken, type KeyStore, rendezvous } from './rendezvous.js';
import { jsStoreSupported, startStoreServer, type StoreServer } from './store_server.js';

export type Backend = 'gloo' | 'nccl';
export type ReduceOp = 'sum' | 'max' | 'min' | 'product';

export interface ProcessGroupOptions {
  masterAddr: string;
  /** TCPStore port; 0 on rank 0 picks a free one (read it back from `port`). */
  masterPort: number;
  rank: number;
  worldSize: number;
  /** Per-collective (and rendezvous) timeout in milliseconds (default 30 minutes, as PyTorch). */
  timeoutMs?: number;
  backend?: Backend;
  /**
   * The address this rank's Gloo device binds to. Default: 127.0.0.1 when the master is on the
   * loopback interface, else this machine's hostname (GLOO_SOCKET_IFNAME overrides both).
   */
  hostname?: string;
  /**
   * The store is hosted elsewhere (torchrun's agent, or beitseg's launcher): every rank, rank 0
   * included, connects as a client. Default: TORCHELASTIC_USE_AGENT_STORE=True in the environment.
   */
  agentStore?: boolean;
  /** Key prefix in the store (torchrun: one per restart attempt). */
  storePrefix?: string;
  /** This job's identity, compared at the store (default: jobToken()). */
  token?: string;
  /** Ranks per node, to name the node of a missing rank. */
  localWorldSize?: number;
  /** Rendezvous progress lines ("waiting for N of M ranks"); default stderr on rank 0. */
  log?: (line: string) => void;
}

function torchrunAgentStore(env: NodeJS.ProcessEnv): boolean {
  return String(env.TORCHELASTIC_USE_AGENT_STORE).toLowerCase() === 'true';
}

/**
 * Whether an agent hosts the store: torchrun's says so with TORCHELASTIC_USE_AGENT_STORE=True
 * (as PyTorch's init_process_group reads it), beitseg's launcher with BEITSEG_AGENT_STORE=1.
 */
export function usesAgentStore(env: NodeJS.ProcessEnv = process.env): boolean {
  return torchrunAgentStore(env) || env.BEITSEG_AGENT_STORE === '1';
}

/** The store's key prefix: under torchrun, one per restart attempt (stale keys of a failed attempt stay apart). */
export function storePrefix(env: NodeJS.ProcessEnv = process.env): string {
  return torchrunAgentStore(env) ? `/worker/attempt_${env.TORCHELASTIC_RESTART_COUNT ?? '0'}/beitseg` : 'beitseg';
}

function nativeStore(id: number): KeyStore {
  return {
    set: (k, v) => native.storeSet(id, k, v),
    get: (k) => native.storeGet(id, k),
    add: (k, d) => native.storeAdd(id, k, d),
    check: (ks) => native.storeCheck(id, ks),
    compareSet: (k, e, d) => native.storeCompareSet(id, k, e, d),
  };
}

/** A prefixed view of a store. */
function prefixed(s: KeyStore, prefix: string): KeyStore {
  const p = (k: string) => `${prefix}/${k}`;
  return {
    set: (k, v) => s.set(p(k), v),
    get: (k) => s.get(p(k)),
    add: (k, d) => s.add(p(k), d),
    check: (ks) => s.check(ks.map(p)),
    compareSet: (k, e, d) => s.compareSet(p(k), e, d),
  };
}

export const DEFAULT_TIMEOUT_MS = 30 * 60 * 1000;

function isLoopback(addr: string): boolean {
  return addr === 'localhost' || addr.startsWith('127.') || addr === '::1';
}

export class ProcessGroup {
  private destroyed = false;

  private constructor(
    private readonly id: number,
    readonly rank: number,
    readonly worldSize: number,
    readonly backend: Backend,
    readonly port: number,
    readonly timeoutMs: number,
    private readonly server: StoreServer | null,
  ) {}

  /** Where this process hosts the store (rank 0 without an agent store), else null. */
  get storeAddress(): { address: string; port: number } | null {
    return this.server ? { address: this.server.address, port: this.server.port } : null;
  }

  /**
   * Joins the group: resolves once all `worldSize` ranks have met at the store (or rejects after
   * the timeout, naming the ranks that did not arrive). Rank 0 hosts the store on masterAddr
   * (only that address) unless an agent hosts it.
   */
  static async init(o: ProcessGroupOptions): Promise<ProcessGroup> {
    const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const backend = o.backend ?? 'gloo';
    if (!Number.isInteger(o.worldSize) || o.worldSize < 1)
      throw new Error(`world size must be a positive integer, got ${o.worldSize}`);
    if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize)
      throw new Error(`rank ${o.rank} is outside world size ${o.worldSize}`);
    if (!Number.isInteger(o.masterPort) || o.masterPort < 0 || o.masterPort > 65535) {
      throw new Error(`rank ${o.rank}: master port must be an integer in 0..65535, got ${o.masterPort}`);
    }
    if (backend === 'nccl' && !native.ncclAvailable()) {
      throw new Error(
        'backend nccl: this build of the addon has no NCCL (it needs a CUDA build of libtorch 2.x); use gloo',
      );
    }
    const agent = o.agentStore ?? usesAgentStore();
    if (o.masterPort === 0 && (agent || o.rank !== 0))
      throw new Error(`rank ${o.rank}: port 0 is for rank 0 hosting the store only`);
    const hostname = o.hostname ?? (isLoopback(o.masterAddr) ? '127.0.0.1' : '');
    const hosts = !agent && o.rank === 0;
    const js = jsStoreSupported();
    const server = hosts && js ? await startStoreServer(o.masterAddr, o.masterPort) : null;
    if (server && isLoopback(server.address) && !isLoopback(o.masterAddr) && o.worldSize > (o.localWorldSize ?? 1)) {
      // e.g. Debian's /etc/hosts maps the machine's own name to 127.0.1.1
      (o.log ?? ((line: string) => process.stderr.write(`${line}\n`)))(
        `rendezvous: warning: MASTER_ADDR ${o.masterAddr} resolves to ${server.address} here, which other machines ` +
          "cannot reach: set MASTER_ADDR to this machine's address on the cluster network",
      );
    }
    let port = server?.port ?? o.masterPort;
    let storeId = -1;
    try {
      storeId = await native.storeConnect(o.masterAddr, port, timeoutMs, hosts && !js);
      if (hosts && !js) port = native.storePort(storeId);
      const where = `${o.masterAddr}:${port}`;
      const prefix = o.storePrefix ?? storePrefix();
      const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
      await rendezvous(prefixed(nativeStore(storeId), prefix), {
        rank: o.rank,
        worldSize: o.worldSize,
        timeoutMs,
        token: o.token ?? jobToken(),
        where,
        localWorldSize: o.localWorldSize,
        log,
      });
      const id = await native.pgInit(storeId, prefix, o.rank, o.worldSize, timeoutMs, backend, hostname);
      const info = native.pgInfo(id);
      return new ProcessGroup(id, info.rank, info.size, backend, port, timeoutMs, server);
    } catch (e) {
      void server?.close();
      throw e;
    } finally {
      // the group holds its own reference to the store
      if (storeId >= 0) native.storeClose(storeId);
    }
  }

  /** The native group id (for the addon's autograd all-reduce and DDP reducer). */
  get nativeId(): number {
    this.check();
    return this.id;
  }

  private check(): void {
    if (this.destroyed) throw new Error(`rank ${this.rank}: the process group was destroyed`);
  }

  /** In place: the elementwise reduction over all ranks; blocks at most the timeout. */
  allReduce(t: Tensor, op: ReduceOp = 'sum'): Tensor {
    this.check();
    native.workWait(native.pgAllreduce(this.id, t.handle, op));
    return t;
  }

  /** As allReduce, waiting on a worker thread so the event loop keeps running. */
  async allReduceAsync(t: Tensor, op: ReduceOp = 'sum'): Promise<Tensor> {
    this.check();
    await native.workWaitAsync(native.pgAllreduce(this.id, t.handle, op));
    return t;
  }

  /** In place: the mean over ranks (sum, then divided by the world size). */
  allReduceMean(t: Tensor): Tensor {
    this.allReduce(t, 'sum');
    if (this.worldSize > 1) {
      const mean = t.div(this.worldSize);
      t.copy_(mean);
      mean.dispose();
    }
    return t;
  }

  /** In place: every rank gets rank `root`'s values. */
  broadcast(t: Tensor, root = 0): Tensor {
    this.check();
    native.workWait(native.pgBroadcast(this.id, t.handle, root));
    return t;
  }

  /** Many tensors from `root`, flattened into buckets (how DDP syncs parameters and buffers). */
  broadcastCoalesced(ts: readonly Tensor[], root = 0): void {
    this.check();
    if (ts.length)
      native.pgBroadcastCoalesced(
        this.id,
        ts.map((t) => t.handle),
        root,
      );
  }

  /** Every rank's `t` (same shape and dtype on all ranks), in rank order; the caller owns them. */
  allGather(t: Tensor): Tensor[] {
    this.check();
    const outs = Array.from({ length: this.worldSize }, () => empty(t.shape, t.dtype, t.device));
    try {
      native.workWait(
        native.pgAllgather(
          this.id,
          outs.map((o) => o.handle),
          t.handle,
        ),
      );
    } catch (e) {
      for (const o of outs) o.dispose();
      throw e;
    }
    return outs;
  }

  /** Resolves once every rank has reached its barrier. */
  async barrier(): Promise<void> {
    this.check();
    await native.workWaitAsync(native.pgBarrier(this.id));
  }

  /** Leaves the group (no collective). Later calls on it throw. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    native.pgDestroy(this.id);
    void this.server?.close();
  }
}
