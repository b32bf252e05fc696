/**
 * Multi-process test harness: runs a worker script as `n` ranks on 127.0.0.1 (torchrun-style
 * environment), each bounded in time; collects exit codes and output. A worker file does
 * nothing unless BEITSEG_TEST_WORKER is set (the test runner also loads it as a test file).
 */
import { spawn } from 'node:child_process';
import { runNode } from '../child.js';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const here = path.dirname(fileURLToPath(import.meta.url));

/** A TCP port that was free a moment ago (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface RankResult {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunRanksOptions {
  worldSize?: number;
  /** Extra environment per rank. */
  env?: (rank: number) => Record<string, string>;
  /** Kill every rank after this long (ms). */
  limitMs?: number;
  args?: string[];
}

/** Runs `script` (a compiled worker in this folder) as every rank of a fresh group. */
export async function runRanks(script: string, o: RunRanksOptions = {}): Promise<RankResult[]> {
  const worldSize = o.worldSize ?? 2;
  const port = await freePort();
  const file = path.join(here, script);
  const runs = Array.from({ length: worldSize }, async (_, rank): Promise<RankResult> => {
    const env = {
      ...process.env,
      BEITSEG_TEST_WORKER: '1',
      BEITSEG_NUM_THREADS: '1',
      RANK: String(rank),
      LOCAL_RANK: String(rank),
      WORLD_SIZE: String(worldSize),
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(port),
      ...(o.env?.(rank) ?? {}),
    };
    const { code, signal, stdout, stderr, ms } = await runNode(file, o.args ?? [], {
      env,
      limitMs: o.limitMs ?? 60_000,
    });
    return { rank, code, signal, stdout, stderr, ms };
  });
  return Promise.all(runs);
}

/** The last JSON line a worker printed. */
export function lastJson(r: RankResult): Record<string, unknown> {
  const lines = r.stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'));
  if (!lines.length) throw new Error(`rank ${r.rank} printed no JSON (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

export interface SpawnedRank {
  /** stdout and stderr so far. */
  out(): string;
  done: Promise<RankResult>;
}

/** Starts one rank of `script` with the given environment (no torchrun variables added), killed after limitMs. */
export function spawnRank(script: string, rank: number, env: Record<string, string>, limitMs = 60_000): SpawnedRank {
  const t0 = Date.now();
  const child = spawn(process.execPath, [path.join(here, script)], {
    env: { ...process.env, BEITSEG_TEST_WORKER: '1', BEITSEG_NUM_THREADS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '',
    stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  const done = new Promise<RankResult>((resolve) => {
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ rank, code, signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
  return { out: () => stdout + stderr, done };
}
