import assert from 'node:assert/strict';
import { test } from 'node:test';
import { firstSlurmHost, readDistEnv } from '../../src/distributed/env.js';
import { lastJson, runRanks } from './helpers.js';

test('collectives over Gloo on 127.0.0.1, 2 ranks', { timeout: 90_000 }, async () => {
  const results = await runRanks('worker_collectives.js');
  for (const r of results) assert.equal(r.code, 0, `rank ${r.rank}: ${r.stderr}`);
  for (const r of results) {
    const j = lastJson(r);
    assert.equal(j.size, 2);
    assert.deepEqual(j.sum, [3, 30]);
    assert.deepEqual(j.max, [1, 0]);
    assert.deepEqual(j.mean, [1.5]);
    assert.deepEqual(j.asyncSum, [2]);
    assert.deepEqual(j.bcast, [6, 7]);
    assert.deepEqual(j.gathered, [
      [0, 0],
      [1, 1],
    ]);
    assert.equal(j.ints, 3);
    assert.deepEqual(j.coalesced, [[0, 0], 0]);
  }
});

test('a peer that exits turns the next collective into an error naming rank and operation', {
  timeout: 90_000,
}, async () => {
  const [r0] = await runRanks('worker_collectives.js', {
    args: ['peer-exits'],
    env: () => ({ TEST_TIMEOUT_MS: '5000' }),
  });
  const j = lastJson(r0!);
  assert.match(String(j.error), /^rank 0: allreduce (failed|timed out)/);
  assert.ok((j.ms as number) < 15_000, `took ${j.ms} ms`);
});

test('a peer that never joins a collective: the wait times out with a named error', { timeout: 90_000 }, async () => {
  const [r0] = await runRanks('worker_collectives.js', {
    args: ['peer-hangs'],
    env: () => ({ TEST_TIMEOUT_MS: '2000' }),
  });
  const j = lastJson(r0!);
  assert.match(String(j.error), /^rank 0: allreduce timed out after 2 s/);
  assert.ok((j.ms as number) >= 1500 && (j.ms as number) < 10_000, `took ${j.ms} ms`);
});

test('worker environment: torchrun-style, Slurm, and clear errors', () => {
  assert.equal(readDistEnv({}), null);
  assert.deepEqual(
    readDistEnv({ RANK: '1', LOCAL_RANK: '1', WORLD_SIZE: '2', MASTER_ADDR: 'h', MASTER_PORT: '1234' }),
    { rank: 1, localRank: 1, worldSize: 2, masterAddr: 'h', masterPort: 1234, source: 'torchrun' },
  );
  assert.deepEqual(
    readDistEnv({ SLURM_PROCID: '5', SLURM_LOCALID: '1', SLURM_NTASKS: '8', SLURM_NODELIST: 'gpu[03-06]' }),
    { rank: 5, localRank: 1, worldSize: 8, masterAddr: 'gpu03', masterPort: 29500, source: 'slurm' },
  );
  assert.equal(firstSlurmHost('node7,node9'), 'node7');
  assert.throws(() => readDistEnv({ RANK: '2', WORLD_SIZE: '2', MASTER_ADDR: 'h' }), /rank 2 is outside world size 2/);
  assert.throws(() => readDistEnv({ RANK: 'x', WORLD_SIZE: '2', MASTER_ADDR: 'h' }), /RANK="x"/);
});
