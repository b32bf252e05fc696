/**
 * A worker's place in a distributed run, from its environment: torchrun-style (RANK,
 * LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, set by `beitseg --nproc-per-node`, torchrun
 * or any launcher) or Slurm's (SLURM_PROCID, SLURM_LOCALID, SLURM_NTASKS, the first host of
 * SLURM_NODELIST), as mmengine reads them. null: not a distributed worker.
 */
import { expandHostlist } from './slurm.js';

export interface DistEnv {
  rank: number;
  localRank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  source: 'torchrun' | 'slurm';
}

export const DEFAULT_MASTER_PORT = 29500;

/**
 * The rendezvous port when none is given: inside a Slurm job one derived from SLURM_JOB_ID
 * (20000-29999, below Linux's ephemeral ports), so that two jobs sharing a node do not meet at
 * one port; else 29500, as torchrun.
 */
export function defaultMasterPort(env: NodeJS.ProcessEnv = process.env): number {
  const id = Number(env.SLURM_JOB_ID);
  return Number.isInteger(id) && id >= 0 ? 20000 + (id % 10000) : DEFAULT_MASTER_PORT;
}

function intVar(env: NodeJS.ProcessEnv, name: string, min: number): number {
  const raw = env[name];
  const n = Number(raw);
  if (raw === undefined || raw.trim() === '' || !Number.isInteger(n) || n < min) {
    throw new Error(`environment variable ${name}=${JSON.stringify(raw)}: expected an integer >= ${min}`);
  }
  return n;
}

/** The first host of a Slurm node list: "gpu[01-04,07],cpu1" -> "gpu01", "rack[1-2]-node[01-04]" -> "rack1-node01". */
export function firstSlurmHost(nodelist: string, name = 'SLURM_NODELIST'): string {
  return expandHostlist(nodelist, `${name}=${JSON.stringify(nodelist)}`)[0]!;
}

function check(d: DistEnv, names: string): DistEnv {
  if (d.rank >= d.worldSize) throw new Error(`${names}: rank ${d.rank} is outside world size ${d.worldSize}`);
  if (d.masterPort > 65535) throw new Error(`${names}: master port ${d.masterPort} is not a port`);
  return d;
}

export function readDistEnv(env: NodeJS.ProcessEnv = process.env): DistEnv | null {
  if (env.RANK !== undefined || env.WORLD_SIZE !== undefined) {
    const worldSize = intVar(env, 'WORLD_SIZE', 1),
      rank = intVar(env, 'RANK', 0);
    const localRank = env.LOCAL_RANK === undefined ? rank : intVar(env, 'LOCAL_RANK', 0);
    if (worldSize > 1 && !env.MASTER_ADDR) throw new Error('RANK/WORLD_SIZE are set but MASTER_ADDR is not');
    const masterPort = env.MASTER_PORT === undefined ? DEFAULT_MASTER_PORT : intVar(env, 'MASTER_PORT', 1);
    return check(
      { rank, localRank, worldSize, masterAddr: env.MASTER_ADDR ?? '127.0.0.1', masterPort, source: 'torchrun' },
      'RANK/WORLD_SIZE/MASTER_PORT',
    );
  }
  if (env.SLURM_PROCID !== undefined && env.SLURM_NTASKS !== undefined) {
    const worldSize = intVar(env, 'SLURM_NTASKS', 1),
      rank = intVar(env, 'SLURM_PROCID', 0);
    const localRank = env.SLURM_LOCALID === undefined ? 0 : intVar(env, 'SLURM_LOCALID', 0);
    const list = env.SLURM_NODELIST ? 'SLURM_NODELIST' : env.SLURM_JOB_NODELIST ? 'SLURM_JOB_NODELIST' : null;
    const masterAddr = env.MASTER_ADDR ?? (list ? firstSlurmHost(env[list]!, list) : '127.0.0.1');
    const masterPort = env.MASTER_PORT === undefined ? defaultMasterPort(env) : intVar(env, 'MASTER_PORT', 1);
    return check({ rank, localRank, worldSize, masterAddr, masterPort, source: 'slurm' }, 'SLURM_PROCID/SLURM_NTASKS');
  }
  return null;
}
