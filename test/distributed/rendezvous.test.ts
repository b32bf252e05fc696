/**
 * The rendezvous store and its checks (issues 25.2, 27.1, 27.3, 27.6): the store listens on the
 * master address only; torchrun's agent store (static rendezvous) and c10d rendezvous work with
 * Debian's torch 1.13; a rank that never arrives is named at the timeout with "waiting for N of
 * M ranks" progress before; a rank of another job reaching the store by a shared port is refused
 * while the job it reached goes on; the default port follows SLURM_JOB_ID.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { defaultMasterPort, readDistEnv } from '../../src/distributed/env.js';
import { ProcessGroup } from '../../src/distributed/process_group.js';
import { startStoreServer } from '../../src/distributed/store_server.js';
import { freePort, here, lastJson, runRanks, spawnRank } from './helpers.js';
import { runCli, waitFor } from './cli_run.js';

/** This machine's addresses other than loopback. */
function otherAddresses(): string[] {
  return Object.values(os.networkInterfaces())
    .flat()
    .filter((a) => a && !a.internal && a.family === 'IPv4')
    .map((a) => a!.address);
}

function connectResult(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.setTimeout(3000, () => {
      s.destroy();
      resolve('timeout');
    });
    s.on('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

test('the store listens on the master address only (127.0.0.1), not on other addresses of this machine', {
  timeout: 60_000,
}, async (t) => {
  const pg = await ProcessGroup.init({
    masterAddr: '127.0.0.1',
    masterPort: 0,
    rank: 0,
    worldSize: 1,
    timeoutMs: 10_000,
  });
  const launcherStore = await startStoreServer('127.0.0.1', 0);
  try {
    const hosted = pg.storeAddress!;
    assert.deepEqual(hosted, { address: '127.0.0.1', port: pg.port });
    assert.equal(launcherStore.address, '127.0.0.1');
    for (const port of [pg.port, launcherStore.port]) {
      assert.equal(await connectResult('127.0.0.1', port), 'connected');
      const others = otherAddresses();
      if (!others.length) t.diagnostic('this machine has no non-loopback IPv4 address: checked the bound address only');
      for (const a of others) assert.equal(await connectResult(a, port), 'ECONNREFUSED', `${a}:${port}`);
      // IPv6 wildcard: not listening there either
      assert.notEqual(await connectResult('::1', port), 'connected');
    }
    // a second store on a taken port is a clear error, not a shared listener
    await assert.rejects(
      startStoreServer('127.0.0.1', pg.port),
      /cannot host the rendezvous store on 127\.0\.0\.1:\d+: EADDRINUSE/,
    );
  } finally {
    pg.destroy();
    await launcherStore.close();
  }
});

test('a rank that never arrives: progress "waiting for 1 of 3 ranks", then an error naming it at the timeout', {
  timeout: 60_000,
}, async () => {
  const results = await runRanks('worker_collectives.js', {
    worldSize: 3,
    args: ['rank2-absent'],
    env: () => ({ TEST_TIMEOUT_MS: '3000', LOCAL_WORLD_SIZE: '2' }),
    limitMs: 30_000,
  });
  const [r0, r1] = results;
  assert.notEqual(r0!.code, 0);
  assert.match(r0!.stderr, /rendezvous: waiting for 1 of 3 ranks \(missing 2 \(node rank 1\)\)/);
  assert.match(
    r0!.stderr,
    new RegExp(
      'rank 0: rendezvous at 127\\.0\\.0\\.1:\\d+ timed out after 3 s with 2 of 3 ranks: ' +
        `arrived 0-1 on ${os.hostname()}; missing 2 \\(node rank 1\\)`,
    ),
  );
  // rank 1 times out as well, or first sees the store's host (rank 0) end
  assert.match(
    r1!.stderr,
    /rank 1: (rendezvous at .* timed out after 3 s with 2 of 3 ranks|the rendezvous store at .* went away)/,
  );
  assert.notEqual(r1!.code, 0);
  for (const r of [r0!, r1!]) assert.ok(r.ms < 20_000, `rank ${r.rank} took ${r.ms} ms`);
});

test("two jobs on one port: the other job's rank is refused naming both jobs; this job goes on", {
  timeout: 90_000,
}, async () => {
  const port = await freePort();
  const base = { WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), TEST_TIMEOUT_MS: '20000' };
  const a0 = spawnRank('worker_collectives.js', 0, { ...base, RANK: '0', SLURM_JOB_ID: '4100' });
  assert.ok(await waitFor(() => /waiting for 1 of 2 ranks/.test(a0.out()), 30_000), a0.out());
  // job 4101 on the same node and port: its rank 0 cannot host, its rank 1 reaches job 4100's store
  const b0 = await spawnRank('worker_collectives.js', 0, { ...base, RANK: '0', SLURM_JOB_ID: '4101' }).done;
  assert.match(b0.stderr, /cannot host the rendezvous store on 127\.0\.0\.1:\d+: EADDRINUSE/);
  const b1 = await spawnRank('worker_collectives.js', 1, { ...base, RANK: '1', SLURM_JOB_ID: '4101' }).done;
  assert.notEqual(b1.code, 0);
  assert.match(
    b1.stderr,
    /rank 1: the store at 127\.0\.0\.1:\d+ belongs to another job \(slurm job 4100; this rank is slurm job 4101\)/,
  );
  const a1 = spawnRank('worker_collectives.js', 1, { ...base, RANK: '1', SLURM_JOB_ID: '4100' });
  for (const r of [await a0.done, await a1.done]) {
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(lastJson(r).sum, [3, 30]);
  }
});

test('the default port follows SLURM_JOB_ID (20000-29999); 29500 outside Slurm', () => {
  assert.equal(defaultMasterPort({ SLURM_JOB_ID: '123456' }), 23456);
  assert.equal(defaultMasterPort({}), 29500);
  const env = readDistEnv({ SLURM_PROCID: '1', SLURM_NTASKS: '4', SLURM_JOB_ID: '77', SLURM_NODELIST: 'n[1-2]' });
  assert.equal(env?.masterPort, 20077);
});

const python = '/usr/bin/python3';
const torchrun = spawnSync(python, ['-c', 'import torch.distributed.run'], { stdio: 'ignore' }).status === 0;

for (const rdzv of ['static', 'c10d'] as const) {
  test(`torchrun (Debian's torch 1.13, ${rdzv} rendezvous) starts 2 workers that train collectives`, {
    timeout: 120_000,
    skip: torchrun ? false : `${python} -m torch.distributed.run is not available (apt install python3-torch)`,
  }, async () => {
    const port = await freePort();
    const flags =
      rdzv === 'static'
        ? ['--nnodes', '1', '--master_addr', '127.0.0.1', '--master_port', String(port)]
        : ['--nnodes', '1', '--rdzv_backend', 'c10d', '--rdzv_endpoint', `127.0.0.1:${port}`];
    const run = await runCli(
      // --redirects 1 --tee 1: Debian's torch 1.13 under Python 3.11 fails to parse the default "0"
      // (AttributeError in to_map); the workers' stdout then comes back prefixed "[default<rank>]:"
      [
        ...flags,
        '--redirects',
        '1',
        '--tee',
        '1',
        '--nproc_per_node',
        '2',
        '--no_python',
        process.execPath,
        path.join(here, 'worker_collectives.js'),
      ],
      {
        command: [python, '-m', 'torch.distributed.run'],
        env: { BEITSEG_TEST_WORKER: '1', TEST_TIMEOUT_MS: '20000', OMP_NUM_THREADS: '1' },
        limitMs: 100_000,
      },
    );
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const rows = run.stdout
      .split('\n')
      .map((l) => l.replace(/^\[default\d+\]:/, ''))
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { rank: number; sum: number[] });
    assert.deepEqual(rows.map((r) => r.rank).sort(), [0, 1]);
    for (const r of rows) assert.deepEqual(r.sum, [3, 30]);
  });
}
