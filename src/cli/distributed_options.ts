/**
 * The distributed options of `train` and `eval`: `--nproc-per-node N` makes the command a
 * launcher of N workers (src/distributed/launcher.ts); a worker (started by that launcher, by
 * torchrun or by Slurm) joins the group from its environment.
 */
import { Option, type Command } from 'commander';
import { launch, stripLauncherFlags } from '../distributed/launcher.js';
import type { Backend } from '../distributed/process_group.js';
import { parseNonNegativeInt, parsePort, parsePositiveInt, UsageError } from './options.js';

export interface DistributedCliOptions {
  nprocPerNode?: number;
  nnodes?: number;
  nodeRank?: number;
  masterAddr?: string;
  masterPort?: number;
  distTimeout: number;
  distBackend?: Backend;
}

export function addDistributedOptions(cmd: Command): Command {
  return cmd
    .option(
      '--nproc-per-node <n>',
      'start N worker processes on this machine (data-parallel, like torchrun)',
      parsePositiveInt,
    )
    .option('--nnodes <n>', 'machines taking part (each runs the same command with its --node-rank)', parsePositiveInt)
    .option('--node-rank <r>', "this machine's index, 0..nnodes-1", parseNonNegativeInt)
    .option('--master-addr <addr>', 'address of node 0 (default 127.0.0.1 on one machine)')
    .option(
      '--master-port <port>',
      'rendezvous port on node 0 (default: a free port on one machine, 29500 on several)',
      parsePort,
    )
    .option('--dist-timeout <seconds>', 'timeout of the rendezvous and of every collective', parsePositiveInt, 1800)
    .addOption(
      new Option('--dist-backend <name>', 'gloo (CPU, default) or nccl (CUDA builds with NCCL)').choices([
        'gloo',
        'nccl',
      ] satisfies Backend[]),
    );
}

/**
 * When the command was given --nproc-per-node, runs it as a launcher and returns true (the
 * process exit code is set); otherwise false and the caller does the work itself.
 */
export async function launchIfRequested(o: DistributedCliOptions): Promise<boolean> {
  if (o.nprocPerNode === undefined) {
    for (const [flag, v] of [
      ['--nnodes', o.nnodes],
      ['--node-rank', o.nodeRank],
    ] as const) {
      if (v !== undefined) throw new UsageError(`${flag} needs --nproc-per-node`);
    }
    return false;
  }
  if (process.env.RANK !== undefined)
    throw new UsageError('--nproc-per-node given inside a worker (RANK is set): start the launcher once');
  const script = process.argv[1]!;
  process.exitCode = await launch({
    nprocPerNode: o.nprocPerNode,
    nnodes: o.nnodes,
    nodeRank: o.nodeRank,
    masterAddr: o.masterAddr,
    masterPort: o.masterPort,
    script,
    args: stripLauncherFlags(process.argv.slice(2)),
    stopGraceMs: stopGraceMs(o.distTimeout),
  });
  return true;
}

/**
 * How long the other workers get to end after one fails. Most notice at once (their next
 * collective fails on the dead peer's closed connection), but one blocked where the closed
 * connection does not reach it learns of it only from its collective timeout: a short
 * --dist-timeout is waited for (plus 5 s), so that worker still reports its own error, up to a
 * minute; never less than 10 s.
 */
function stopGraceMs(distTimeoutS: number): number {
  return Math.min(60, Math.max(10, distTimeoutS + 5)) * 1000;
}
