/**
 * `--nproc-per-node N`: starts this node's workers like torchrun (each gets RANK, LOCAL_RANK,
 * WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) running the same command without the
 * launcher options. If a worker fails, the others get a grace period to fail on their own (a
 * collective with a dead peer errors out at once, naming the rank and operation), then they
 * are stopped (SIGTERM, then SIGKILL); the launcher exits with the first failed worker's code
 * and repeats every worker's error line. SIGINT, SIGTERM and SIGUSR1 are forwarded to every
 * worker (workers run in their own process groups, so a terminal's Ctrl-C reaches them only
 * through the launcher and counts once); the workers then stop after the same iteration with a
 * checkpoint and the launcher exits with their code (128 + the signal's number).
 *
 * Node 0's launcher hosts the rendezvous store on --master-addr only (like torchrun's agent),
 * and the workers connect to it as clients (BEITSEG_AGENT_STORE=1). A one-machine run has a
 * random job token the workers check at the store.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { defaultMasterPort } from './env.js';
import net from 'node:net';
import { jsStoreSupported, startStoreServer, type StoreServer } from './store_server.js';

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

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGUSR1'] as const;

/** A port free a moment ago (libtorch 2.x builds, where rank 0 hosts libtorch's own store). */
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
  // one machine: a free port (0) unless one is given; several: the agreed default
  const wantedPort = o.masterPort ?? (nnodes === 1 && !process.env.SLURM_JOB_ID ? 0 : defaultMasterPort());
  const js = jsStoreSupported();
  const server: StoreServer | null = nodeRank === 0 && js ? await startStoreServer(masterAddr, wantedPort) : null;
  const masterPort = server?.port ?? (wantedPort === 0 ? await freeLoopbackPort() : wantedPort);
  const token =
    nnodes === 1 ? { BEITSEG_RUN_TOKEN: `${os.hostname()}-${process.pid}-${randomBytes(6).toString('hex')}` } : {};
  const worldSize = n * nnodes;
  const children: { child: ChildProcess; rank: number; lastError: string }[] = [];
  let failure: { rank: number; code: number; lastError: string } | null = null;
  let interrupted: NodeJS.Signals | null = null;
  let stopping = false;

  const stopAll = (signal: NodeJS.Signals) => {
    for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill(signal);
  };
  const handlers = FORWARDED.map((signal) => {
    const h = () => {
      interrupted ??= signal;
      stopAll(signal);
    };
    process.on(signal, h);
    return [signal, h] as const;
  });
  // a worker stopped by a forwarded signal exits 128 + its number (after saving a checkpoint)
  const stoppedBySignal = (c: number) =>
    interrupted !== null && FORWARDED.some((s) => c === 128 + os.constants.signals[s]);
  const exited = children.map(() => Promise.resolve());
  try {
    for (let local = 0; local < n; local++) {
      const rank = nodeRank * n + local;
      const child = spawn(process.execPath, [o.script, ...o.args], {
        env: {
          ...process.env,
          ...o.env,
          ...token,
          // node 0's launcher hosts the store (libtorch 2.x: rank 0 hosts libtorch's)
          ...(js ? { BEITSEG_AGENT_STORE: '1' } : {}),
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
            if (c !== 0 && !failure && !stopping && !stoppedBySignal(c)) {
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
    for (const [signal, h] of handlers) process.removeListener(signal, h);
    await server?.close();
  }
  const f = failure as { rank: number; code: number; lastError: string } | null;
  if (f) {
    log(`launcher: failed: worker rank ${f.rank} (exit code ${f.code})${f.lastError ? `: ${f.lastError}` : ''}`);
    for (const c of children)
      if (c.rank !== f.rank && c.lastError) log(`launcher: worker rank ${c.rank}: ${c.lastError}`);
    return f.code;
  }
  if (interrupted) return 128 + os.constants.signals[interrupted];
  return 0;
}
