/** Runs the beitseg CLI as a child (bounded in time) for the distributed CLI tests. */
import { cliPath, runProgram, type ChildResult } from '../child.js';

export type Run = ChildResult;

/** The worker-environment variables a test's own environment must not pass on. */
const DIST_VARS = [
  'RANK',
  'WORLD_SIZE',
  'LOCAL_RANK',
  'LOCAL_WORLD_SIZE',
  'MASTER_ADDR',
  'MASTER_PORT',
  'SLURM_PROCID',
  'SLURM_NTASKS',
  'SLURM_JOB_ID',
  'TORCHELASTIC_USE_AGENT_STORE',
  'BEITSEG_AGENT_STORE',
  'BEITSEG_RUN_TOKEN',
];

export function runCli(
  args: string[],
  o: { limitMs?: number; onStart?: (pid: number) => void; env?: NodeJS.ProcessEnv; command?: string[] } = {},
): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, BEITSEG_NUM_THREADS: '1' };
  for (const k of DIST_VARS) delete env[k];
  Object.assign(env, o.env);
  const [cmd, ...pre] = o.command ?? [process.execPath, cliPath];
  return runProgram(cmd!, [...pre, ...args], { env, limitMs: o.limitMs ?? 120_000, onStart: o.onStart });
}

export async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
