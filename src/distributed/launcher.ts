/**
 * `--nproc-per-node N`: starts this node's workers like torchrun (each gets RANK, LOCAL_RANK,
 * WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) running the same command without the
 * launcher options. If a worker fails, the others get a grace period to fail on their own (a
 * collective with a dead peer errors out at once, naming the rank and operation), then they
 * are stopped (SIGTERM, then SIGKILL); the launcher exits with the first failed worker's code
 * and repeats every worker's error line. SIGINT/SIGTERM
 * are forwarded to every worker once (workers run in their own process groups, so a terminal's
 * Ctrl-C reaches them only through the launcher and counts once).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { DEFAULT_MASTER_PORT } from './env.js';

export interface LaunchOptions {
  nprocPerNode: number;
  nnodes?: number;
  nodeRank?: number;
  masterAddr?: string;
  masterPort?: number;
  /** The worker command: node script and its arguments (without launcher options). */
  script: string;
  args: string[];
  /** Extra environment for the workers. */
  env?: NodeJS.ProcessEnv;
  /** After a worker fails: how long the others may take to fail or finish before SIGTERM (ms). */
  stopGraceMs?: number;
  /** Grace period between SIGTERM and SIGKILL when stopping workers (ms). */
  killGraceMs?: number;
  log?: (line: string) => void;
}

/** The launcher's own options, which the workers must not see again. */
export const LAUNCHER_FLAGS = ['--nproc-per-node', '--nnodes', '--node-rank', '--master-addr', '--master-port'];

/** argv without the launcher options (both `--flag value` and `--flag=value`). */
export function stripLauncherFlags(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (LAUNCHER_FLAGS.includes(a)) {
      i++;
      continue;
    }
    if (LAUNCHER_FLAGS.some((f) => a.startsWith(`${f}=`))) continue;
    out.push(a);
  }
  return out;
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Runs the workers to the end; resolves with the exit code the launcher should return. */
export async function launch(o: LaunchOptions): Promise<number> {
  const nnodes = o.nnodes ?? 1,
    nodeRank = o.nodeRank ?? 0,
    n = o.nprocPerNode;
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (!Number.isInteger(n) || n < 1) throw new Error(`--nproc-per-node must be a positive integer, got ${n}`);
  if (!Number.isInteger(nnodes) || nnodes < 1) throw new Error(`--nnodes must be a positive integer, got ${nnodes}`);
  if (!Number.isInteger(nodeRank) || nodeRank < 0 || nodeRank >= nnodes)
    throw new Error(`--node-rank ${nodeRank} is outside 0..${nnodes - 1}`);
  if (nnodes > 1 && !o.masterAddr)
    throw new Error('--nnodes > 1 needs --master-addr (the address of node 0, reachable from every node)');
  const masterAddr = o.masterAddr ?? '127.0.0.1';
  const masterPort = o.masterPort ?? (nnodes === 1 ? await freeLoopbackPort() : DEFAULT_MASTER_PORT);
  const worldSize = n * nnodes;
  const children: { child: ChildProcess; rank: number; lastError: string }[] = [];
  let failure: { rank: number; code: number; lastError: string } | null = null;
  let interrupted = false;
  let stopping = false;

  const stopAll = (signal: NodeJS.Signals) => {
    for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill(signal);
  };
  const onSignal = (signal: NodeJS.Signals) => () => {
    interrupted = true;
    stopAll(signal);
  };
  const onInt = onSignal('SIGINT'),
    onTerm = onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  const exited = children.map(() => Promise.resolve());
  try {
    for (let local = 0; local < n; local++) {
      const rank = nodeRank * n + local;
      const child = spawn(process.execPath, [o.script, ...o.args], {
        env: {
          ...process.env,
          ...o.env,
          RANK: String(rank),
          LOCAL_RANK: String(local),
          WORLD_SIZE: String(worldSize),
          LOCAL_WORLD_SIZE: String(n),
          MASTER_ADDR: masterAddr,
          MASTER_PORT: String(masterPort),
        },
        stdio: ['ignore', 'inherit', 'pipe'],
        detached: true,
      });
      const entry = { child, rank, lastError: '' };
      child.stderr!.on('data', (d: Buffer) => {
        process.stderr.write(d);
        // the CLI reports a failure as one "beitseg: error: ..." line
        const errors = d
          .toString()
          .split('\n')
          .filter((l) => l.startsWith('beitseg: error: '));
        if (errors.length) entry.lastError = errors[errors.length - 1]!.slice('beitseg: error: '.length);
      });
      children.push(entry);
      exited.push(
        new Promise<void>((resolve) => {
          child.on('exit', (code, signal) => {
            const c = code ?? (signal ? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : 2) : 1);
            if (c !== 0 && !failure && !stopping && !(interrupted && c === 130)) {
              failure = { rank, code: c, lastError: entry.lastError };
              stopping = true;
              const grace = o.stopGraceMs ?? 10_000;
              log(
                `launcher: worker rank ${rank} exited with ${code !== null ? `code ${code}` : `signal ${signal}`}; ` +
                  `stopping the other workers (in ${grace / 1000} s unless they end first)`,
              );
              const term = setTimeout(() => {
                stopAll('SIGTERM');
                setTimeout(() => stopAll('SIGKILL'), o.killGraceMs ?? 5000).unref();
              }, grace);
              term.unref();
            }
            resolve();
          });
          child.on('error', (e) => {
            failure ??= { rank, code: 1, lastError: e.message };
            resolve();
          });
        }),
      );
    }
    await Promise.all(exited);
  } finally {
    process.removeListener('SIGINT', onInt);
    process.removeListener('SIGTERM', onTerm);
  }
  const f = failure as { rank: number; code: number; lastError: string } | null;
  if (f) {
    log(`launcher: failed: worker rank ${f.rank} (exit code ${f.code})${f.lastError ? `: ${f.lastError}` : ''}`);
    for (const c of children)
      if (c.rank !== f.rank && c.lastError) log(`launcher: worker rank ${c.rank}: ${c.lastError}`);
    return f.code;
  }
  return interrupted ? 130 : 0;
}
