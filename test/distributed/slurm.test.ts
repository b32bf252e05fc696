/** Slurm's host lists, tasks per node and CPU shares (issue 27.6), on the examples of Slurm's slurm.conf man page. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { firstSlurmHost, readDistEnv } from '../../src/distributed/env.js';
import { expandHostlist, tasksPerNode, workerThreads } from '../../src/distributed/slurm.js';

test('host lists: the examples of slurm.conf(5) and the product of several ranges', () => {
  const linux = expandHostlist('linux[0-64,128]');
  assert.equal(linux.length, 66);
  assert.deepEqual(
    [linux[0], linux[9], linux[10], linux[64], linux[65]],
    ['linux0', 'linux9', 'linux10', 'linux64', 'linux128'],
  );
  assert.deepEqual(expandHostlist('lx[15,18,32-33]'), ['lx15', 'lx18', 'lx32', 'lx33']);
  const padded = expandHostlist('linux[0000-1023]');
  assert.deepEqual([padded.length, padded[0], padded[7], padded[1023]], [1024, 'linux0000', 'linux0007', 'linux1023']);
  const blades = expandHostlist('rack[0-63]_blade[0-41]');
  assert.deepEqual(
    [blades.length, blades[0], blades[1], blades[42], blades.at(-1)],
    [64 * 42, 'rack0_blade0', 'rack0_blade1', 'rack1_blade0', 'rack63_blade41'],
  );
  assert.deepEqual(expandHostlist('rack[1-2]-node[01-02]'), [
    'rack1-node01',
    'rack1-node02',
    'rack2-node01',
    'rack2-node02',
  ]);
  assert.deepEqual(expandHostlist('gpu[01-02,07],cpu1,big[9-11]'), [
    'gpu01',
    'gpu02',
    'gpu07',
    'cpu1',
    'big9',
    'big10',
    'big11',
  ]);
  assert.deepEqual(expandHostlist('node7'), ['node7']);
  assert.equal(firstSlurmHost('rack[1-2]-node[01-04]'), 'rack1-node01');
  assert.equal(
    readDistEnv({ SLURM_PROCID: '0', SLURM_NTASKS: '8', SLURM_NODELIST: 'rack[1-2]-node[01-04]' })?.masterAddr,
    'rack1-node01',
  );
  assert.equal(readDistEnv({ SLURM_PROCID: '0', SLURM_NTASKS: '2', SLURM_JOB_NODELIST: 'a[3-4]' })?.masterAddr, 'a3');
  for (const [bad, why] of [
    ['node[3-1]', /range 3-1 runs backwards/],
    ['node[1-2', /"\[" is not closed/],
    ['node[x]', /has "x", expected a number or a range/],
    ['node[1-2000000]', /more than 1000000 hosts/],
    ['a[1-1000]b[1-1000]c[1-1000]', /more than 1000000 hosts/],
  ] as const) {
    assert.throws(() => firstSlurmHost(bad), why, bad);
  }
  assert.throws(
    () => readDistEnv({ SLURM_PROCID: '0', SLURM_NTASKS: '2', SLURM_NODELIST: 'n[1-' }),
    /^Error: SLURM_NODELIST="n\[1-"/,
  );
});

test("tasks per node and each worker's threads (SLURM_CPUS_PER_TASK, else cores / local world size)", () => {
  assert.deepEqual(tasksPerNode('2(x3),1'), [2, 2, 2, 1]);
  const slurm = { SLURM_PROCID: '0', SLURM_NTASKS: '8' };
  // srun, one task per rank: the task's CPUs
  assert.equal(workerThreads({ ...slurm, SLURM_CPUS_PER_TASK: '6' }, 64), 6);
  // srun without --cpus-per-task: the node's cores over its tasks
  assert.equal(workerThreads({ ...slurm, SLURM_TASKS_PER_NODE: '4(x2)', SLURM_NODEID: '1' }, 64), 16);
  assert.equal(workerThreads({ ...slurm, SLURM_NTASKS_PER_NODE: '8' }, 64), 8);
  // a launcher (or torchrun) in one task of 32 CPUs starting 4 workers
  assert.equal(workerThreads({ SLURM_CPUS_PER_TASK: '32', LOCAL_WORLD_SIZE: '4', RANK: '0', WORLD_SIZE: '4' }, 128), 8);
  // no Slurm: the machine's cores over the local workers; one worker alone keeps libtorch's default
  assert.equal(workerThreads({ LOCAL_WORLD_SIZE: '2' }, 16), 8);
  assert.equal(workerThreads({ LOCAL_WORLD_SIZE: '1' }, 16), undefined);
  assert.equal(workerThreads({ LOCAL_WORLD_SIZE: '32' }, 16), 1);
});
