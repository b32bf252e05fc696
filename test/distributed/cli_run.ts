/** Runs the beitseg CLI as a child (bounded in time) for the distributed CLI tests. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../helpers.js';

export const cli = path.join(repoRoot, 'bin', 'beitseg.js');

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  pid: number;
}

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
  return new Promise((resolve) => {
    const t0 = Date.now();
    const env: NodeJS.ProcessEnv = { ...process.env, BEITSEG_NUM_THREADS: '1' };
    for (const k of DIST_VARS) delete env[k];
    Object.assign(env, o.env);
    const [cmd, ...pre] = o.command ?? [process.execPath, cli];
    const child = spawn(cmd!, [...pre, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '',
      stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    o.onStart?.(child.pid!);
    const timer = setTimeout(() => child.kill('SIGKILL'), o.limitMs ?? 120_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0, pid: child.pid! });
    });
  });
}

export async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
