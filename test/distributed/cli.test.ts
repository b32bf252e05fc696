import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { SyntheticOptions } from '../../src/data/synthetic.js';
import { tempWithData } from '../engine/fixtures.js';
import { runCli, waitFor } from './cli_run.js';
import { deterministicTinyConfig } from './tiny.js';
import type { Dict } from '../../src/config/schema.js';

/** The pid of the launcher's worker with RANK=rank (from /proc). */
function workerPid(launcherPid: number, rank: number): number | null {
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== launcherPid) continue;
      if (fs.readFileSync(`/proc/${name}/environ`, 'utf8').split('\0').includes(`RANK=${rank}`)) return Number(name);
    } catch {
      /* gone */
    }
  }
  return null;
}

/**
 * A temp folder (`prefix`) with synthetic data (`o`) and its cfg.json: the deterministic tiny config
 * with batch 1, `maxIters` iterations, no validation, a log line per iteration, then `edit`.
 */
async function launcherSetup(
  prefix: string,
  o: SyntheticOptions,
  maxIters: number,
  edit?: (c: Dict) => void,
): Promise<{ dir: string; data: string; cfgFile: string; work: string }> {
  const { dir, data } = await tempWithData(prefix, o);
  const cfg = deterministicTinyConfig(data, (c) => {
    (c.train_dataloader as Dict).batch_size = 1;
    c.train_cfg = { type: 'IterBasedTrainLoop', max_iters: maxIters, val_interval: 1000 };
    ((c.default_hooks as Dict).logger as Dict).interval = 1;
    edit?.(c);
  });
  const cfgFile = path.join(dir, 'cfg.json');
  fs.writeFileSync(cfgFile, JSON.stringify(cfg));
  return { dir, data, cfgFile, work: path.join(dir, 'work') };
}

test('launcher: a rank killed mid-training stops the run with a clear error; --resume continues; distributed eval = ' +
  'single-process eval', {
  timeout: 420_000,
}, async () => {
  const { dir, data, cfgFile, work } = await launcherSetup(
    'beitseg-dcli-',
    { n: 11, height: 64, width: 80, classes: 6, seed: 5, splitVal: 3 },
    12,
    (c) => {
      ((c.default_hooks as Dict).checkpoint as Dict).interval = 2;
    },
  );
  const trainArgs = [
    'train',
    '--config',
    cfgFile,
    '--work-dir',
    work,
    '--device',
    'cpu',
    '--workers',
    '0',
    '--nproc-per-node',
    '2',
    '--dist-timeout',
    '20',
  ];

  let killedAt = 0;
  const first = await runCli(trainArgs, {
    onStart: (pid) => {
      void (async () => {
        if (!(await waitFor(() => fs.existsSync(path.join(work, 'iter_4')), 100_000))) return;
        const victim = workerPid(pid, 1);
        if (victim) {
          process.kill(victim, 'SIGKILL');
          killedAt = Date.now();
        }
      })();
    },
  });
  assert.ok(killedAt > 0, `rank 1 was never killed: ${first.stderr}`);
  if (process.env.BEITSEG_TEST_VERBOSE) process.stderr.write(first.stderr);
  assert.notEqual(first.code, 0, 'the launcher must exit non-zero');
  assert.match(first.stderr, /launcher: worker rank 1 exited with signal SIGKILL; stopping the other workers/);
  assert.match(first.stderr, /launcher: worker rank 0: rank 0: .*(failed|timed out)/, first.stderr);
  assert.ok(Date.now() - killedAt < 40_000, 'the other rank took too long to stop');
  assert.ok(!fs.existsSync(path.join(work, 'iter_12')));

  const second = await runCli([...trainArgs, '--resume']);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /resumed from .*iter_(4|6|8|10) at iteration (4|6|8|10)/);
  assert.match(second.stdout, /distributed: world size 2 \(gloo\), global batch 2 x 1 = 2/);
  assert.ok(fs.existsSync(path.join(work, 'iter_12', 'model.safetensors')));

  const weights = path.join(work, 'iter_12', 'model.safetensors');
  const evalArgs = (out: string) => [
    'eval',
    '--config',
    cfgFile,
    '--weights',
    weights,
    '--data',
    data,
    '--device',
    'cpu',
    '--out',
    path.join(dir, out),
  ];
  const single = await runCli(evalArgs('single.json'));
  assert.equal(single.code, 0, single.stderr);
  const dist = await runCli([...evalArgs('dist.json'), '--nproc-per-node', '2']);
  assert.equal(dist.code, 0, dist.stderr);
  const a = JSON.parse(fs.readFileSync(path.join(dir, 'single.json'), 'utf8')) as Record<string, unknown>;
  const b = JSON.parse(fs.readFileSync(path.join(dir, 'dist.json'), 'utf8')) as Record<string, unknown>;
  assert.ok(JSON.stringify(a).includes('mIoU'), 'no metrics in the single-process results');
  assert.deepEqual(b, a);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('launcher: SIGINT stops every rank after the same iteration with a checkpoint from rank 0', {
  timeout: 240_000,
}, async () => {
  const { dir, cfgFile, work } = await launcherSetup(
    'beitseg-dint-',
    { n: 6, height: 64, width: 80, classes: 6, seed: 6, splitVal: 1 },
    500,
  );
  let signalled = false;
  const run = await runCli(
    [
      'train',
      '--config',
      cfgFile,
      '--work-dir',
      work,
      '--device',
      'cpu',
      '--workers',
      '0',
      '--nproc-per-node',
      '2',
      '--dist-timeout',
      '30',
    ],
    {
      onStart: (pid) => {
        void (async () => {
          const log = path.join(work, 'log.jsonl');
          if (
            !(await waitFor(() => fs.existsSync(log) && fs.readFileSync(log, 'utf8').split('\n').length > 3, 100_000))
          )
            return;
          process.kill(pid, 'SIGINT');
          signalled = true;
        })();
      },
    },
  );
  assert.ok(signalled, run.stderr);
  assert.equal(run.code, 130, run.stderr);
  const m = /interrupted at iteration (\d+): saved (\S+) \(continue with --resume\)/.exec(run.stdout);
  assert.ok(m, run.stdout);
  assert.ok(Number(m[1]) < 500);
  assert.ok(fs.existsSync(path.join(m[2]!, 'model.safetensors')));
  assert.doesNotMatch(run.stderr, /failed|timed out/);
  fs.rmSync(dir, { recursive: true, force: true });
});
