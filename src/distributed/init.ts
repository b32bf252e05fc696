/**
 * Joining a distributed run from a worker's environment (src/distributed/env.ts): the process
 * group on MASTER_ADDR:MASTER_PORT, the default group for SyncBN, and this worker's device
 * (cuda:LOCAL_RANK for GPU runs, as torchrun workers use).
 */
import { cuda } from '../tensor/runtime.js';
import { setDefaultGroup } from './context.js';
import { readDistEnv, type DistEnv } from './env.js';
import { ProcessGroup, type Backend } from './process_group.js';

export interface JoinedGroup {
  pg: ProcessGroup;
  env: DistEnv;
  /** The device this worker uses. */
  device: string;
}

/** The worker's device: cuda, cuda:N and the default (where a GPU exists) become cuda:LOCAL_RANK; cpu stays cpu. */
export function workerDevice(requested: string | undefined, env: DistEnv, gpu = cuda.isAvailable()): string {
  if (requested === undefined || requested === 'auto') return gpu ? `cuda:${env.localRank}` : 'cpu';
  return requested.startsWith('cuda') ? `cuda:${env.localRank}` : requested;
}

function localWorldSize(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const n = Number(env.LOCAL_WORLD_SIZE ?? env.SLURM_NTASKS_PER_NODE);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * Joins the group described by the environment when it has more than one rank (null
 * otherwise: a single process). `backend` defaults to gloo (nccl must be asked for).
 */
export async function joinFromEnv(
  o: { device?: string; timeoutMs?: number; backend?: Backend } = {},
): Promise<JoinedGroup | null> {
  const env = readDistEnv();
  if (!env || env.worldSize < 2) return null;
  const pg = await ProcessGroup.init({
    masterAddr: env.masterAddr,
    masterPort: env.masterPort,
    rank: env.rank,
    worldSize: env.worldSize,
    timeoutMs: o.timeoutMs,
    backend: o.backend,
    localWorldSize: localWorldSize(),
  });
  setDefaultGroup(pg);
  return { pg, env, device: workerDevice(o.device, env) };
}
