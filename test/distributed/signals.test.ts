/**
 * Scheduler signals (issue 27.2): SIGTERM (Slurm preemption, Kubernetes eviction) and SIGUSR1
 * (Slurm's --signal) to the launcher (2 ranks) and to a single process stop training after an
 * iteration with a checkpoint and exit 128 + the signal's number; the same command with
 * `--resume auto` (which starts fresh when the work dir has no checkpoint) then continues to
 * the end bit-identically to a run never stopped.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { sameCheckpointFiles, syntheticData } from '../engine/fixtures.js';
import { tempDir } from '../temp.js';
import type { Dict } from '../../src/config/schema.js';
import { runCli, waitFor, type Run } from './cli_run.js';
import { deterministicTinyConfig } from './tiny.js';

async function setup(prefix: string, maxIters: number): Promise<{ dir: string; cfgFile: string }> {
  const dir = tempDir(prefix);
  const data = await syntheticData(path.join(dir, 'data'), {
    n: 6,
    height: 48,
    width: 64,
    classes: 6,
    seed: 9,
    splitVal: 1,
  });
  const cfg = deterministicTinyConfig(data, (c) => {
    (c.train_dataloader as Dict).batch_size = 1;
    c.train_cfg = { type: 'IterBasedTrainLoop', max_iters: maxIters, val_interval: 1000 };
    ((c.default_hooks as Dict).checkpoint as Dict).interval = 1000;
    ((c.default_hooks as Dict).logger as Dict).interval = 1;
  });
  const cfgFile = path.join(dir, 'cfg.json');
  fs.writeFileSync(cfgFile, JSON.stringify(cfg));
  return { dir, cfgFile };
}

function trainArgs(cfgFile: string, work: string, nproc: number): string[] {
  const args = ['train', '--config', cfgFile, '--work-dir', work, '--device', 'cpu', '--workers', '0'];
  args.push('--resume', 'auto', '--dist-timeout', '30');
  return nproc > 1 ? [...args, '--nproc-per-node', String(nproc)] : args;
}

/** Runs training and sends `signal` to the process once 2 iterations are logged. */
async function stopWith(signal: NodeJS.Signals, args: string[], work: string): Promise<{ run: Run; sentMs: number }> {
  let sentAt = 0;
  const run = await runCli(args, {
    limitMs: 150_000,
    onStart: (pid) => {
      void (async () => {
        const log = path.join(work, 'log.jsonl');
        const lines = () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').length : 0);
        const started = lines();
        if (!(await waitFor(() => lines() >= started + 2, 120_000))) return;
        process.kill(pid, signal);
        sentAt = Date.now();
      })();
    },
  });
  return { run, sentMs: sentAt ? Date.now() - sentAt : -1 };
}

function stoppedAt(run: Run, code: number): number {
  assert.equal(run.code, code, `exit code (stdout: ${run.stdout.slice(-1500)}; stderr: ${run.stderr.slice(-1500)})`);
  const m = /interrupted at iteration (\d+): saved (\S+) \(continue with --resume\)/.exec(run.stdout);
  assert.ok(m, run.stdout);
  assert.ok(fs.existsSync(path.join(m[2]!, 'model.safetensors')));
  assert.doesNotMatch(run.stderr, /failed|timed out/);
  return Number(m[1]);
}

for (const mode of [
  // enough iterations that both stops land before the end (a single process runs ~10x faster)
  { name: 'launcher, 2 ranks', nproc: 2, first: 'SIGTERM', second: 'SIGUSR1', iters: 16 },
  { name: 'single process', nproc: 1, first: 'SIGUSR1', second: 'SIGTERM', iters: 40 },
] as const) {
  const title = `${mode.name}: ${mode.first} and ${mode.second} stop with a checkpoint`;
  test(`${title}; --resume auto continues bit-identically`, {
    timeout: 400_000,
  }, async () => {
    const MAX_ITERS = mode.iters;
    const { dir, cfgFile } = await setup('beitseg-dsig-', MAX_ITERS);
    const straight = path.join(dir, 'straight'),
      stopped = path.join(dir, 'stopped');
    const ref = await runCli(trainArgs(cfgFile, straight, mode.nproc), { limitMs: 150_000 });
    assert.equal(ref.code, 0, ref.stderr);
    assert.match(ref.stdout, /no complete checkpoint in .*starting from scratch/);

    const a = await stopWith(mode.first, trainArgs(cfgFile, stopped, mode.nproc), stopped);
    const at = stoppedAt(a.run, mode.first === 'SIGTERM' ? 143 : 138);
    assert.ok(at < MAX_ITERS, `stopped only at the end (${at})`);
    // bounded: the running iteration and one checkpoint (a tiny model: seconds)
    assert.ok(a.sentMs < 30_000, `took ${a.sentMs} ms after the signal`);

    const b = await stopWith(mode.second, trainArgs(cfgFile, stopped, mode.nproc), stopped);
    assert.match(b.run.stdout, new RegExp(`resumed from .*iter_${at} at iteration ${at}`));
    const at2 = stoppedAt(b.run, mode.second === 'SIGTERM' ? 143 : 138);
    assert.ok(at2 > at && at2 < MAX_ITERS, `second stop at ${at2} after ${at}`);

    const c = await runCli(trainArgs(cfgFile, stopped, mode.nproc), { limitMs: 150_000 });
    assert.equal(c.code, 0, c.stderr);
    sameCheckpointFiles(path.join(straight, `iter_${MAX_ITERS}`), path.join(stopped, `iter_${MAX_ITERS}`));
    const st = JSON.parse(fs.readFileSync(path.join(stopped, `iter_${MAX_ITERS}`, 'state.json'), 'utf8'));
    assert.deepEqual(st.batch, { worldSize: mode.nproc, perRank: 1, accum: 1, global: mode.nproc });
    if (mode.nproc === 2) {
      // another world size: refused when the global batch changes, accepted (and said) when it does not
      const single = trainArgs(cfgFile, stopped, 1);
      const refused = await runCli([...single, '--max-iters', String(MAX_ITERS + 1)], { limitMs: 60_000 });
      assert.notEqual(refused.code, 0);
      assert.match(
        refused.stderr,
        new RegExp(
          'was trained with a global batch of 2 ranks x batch 1 x accumulation 1 = 2; ' +
            'this run has 1 rank x batch 1 x accumulation 1 = 1: .*--allow-batch-change',
        ),
      );
      const same = await runCli([...single, '--batch-size', '2', '--max-iters', String(MAX_ITERS + 1)], {
        limitMs: 60_000,
      });
      assert.equal(same.code, 0, same.stderr);
      assert.match(
        same.stdout,
        /resume: the same global batch of 2 as 2 ranks x batch 1 x accumulation 1 = 2 now as 1 rank x batch 2 x/,
      );
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
}
