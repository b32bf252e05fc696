/**
 * Kill-and-resume bookkeeping (issue 15.2): a run killed at a known point (an injected hook
 * that throws, so nothing after it is written, as with a kill) and resumed ends exactly as the
 * same run straight through: the real best checkpoint is kept (never pruned for a worse one),
 * a validation the kill interrupted is done on resume, and log.jsonl holds every iteration once.
 * The validation metric is scripted per iteration by a hook so that the best is where the test
 * needs it whatever the tiny model learns.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { PRIORITY, type Hook } from '../../src/engine/hook.js';
import { logLinesToKeep } from '../../src/engine/hooks/logger_hook.js';
import { train } from '../../src/engine/trainer.js';
import { listCheckpoints } from '../../src/engine/training_checkpoint.js';
import { IN_PROCESS, sameCheckpointFiles, trainOptionsOn } from './fixtures.js';
import { tempDir } from '../temp.js';

const tmp = tempDir('beitseg-kill-resume-');
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Sets the validation mIoU of each iteration before the logger and the checkpoint hook see it. */
function scriptedMiou(byIteration: Record<number, number>): Hook {
  return {
    name: 'ScriptedMiou',
    priority: PRIORITY.HIGHEST,
    afterValEpoch: (runner, { metrics }) => {
      const v = byIteration[runner.iteration];
      if (v !== undefined) metrics.mIoU = v;
    },
  };
}

function stateJson(dir: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as Record<string, unknown>;
}

class Killed extends Error {}

/** Throws at `point` when the runner is at `iteration` (completed iterations). */
function killAt(point: 'afterTrainIter' | 'beforeVal' | 'afterValEpoch', iteration: number): Hook {
  const kill = (runner: { iteration: number }) => {
    if (runner.iteration === iteration) throw new Killed(`killed at ${point} of iteration ${iteration}`);
  };
  return { name: 'Kill', priority: PRIORITY.LOWEST, [point]: kill };
}

function logEntries(workDir: string): { train: number[]; val: number[]; mIoU: number[] } {
  const lines = fs.readFileSync(path.join(workDir, 'log.jsonl'), 'utf8').trim().split('\n');
  const entries = lines.map((l) => JSON.parse(l) as Record<string, number>);
  const val = entries.filter((e) => 'mIoU' in e);
  return {
    train: entries.filter((e) => 'loss' in e).map((e) => e.iter!),
    val: val.map((e) => e.iter!),
    mIoU: val.map((e) => e.mIoU!),
  };
}

describe('log lines kept on resume', () => {
  const lines = [
    '{"iter":1,"lr":1,"loss":2}',
    '{"iter":2,"lr":1,"loss":2}',
    '{"iter":2,"aAcc":1,"mIoU":2,"mAcc":3}',
    '{"iter":3,"lr":1,"loss":2}',
    '{"iter":4,"lr":1,"lo',
  ];
  it('drops what lies after the resumed iteration, a validation due again and a cut line', () => {
    assert.deepEqual(logLinesToKeep(lines, 2, false), lines.slice(0, 3));
    assert.deepEqual(logLinesToKeep(lines, 2, true), lines.slice(0, 2));
    assert.deepEqual(logLinesToKeep(lines, 3, false), lines.slice(0, 4));
    assert.deepEqual(logLinesToKeep(['not json', '{"no":"iter"}', '[1]'], 5, false), []);
  });
});

describe('kill and resume', () => {
  const base = trainOptionsOn(
    tmp,
    { n: 5, height: 32, width: 32, classes: 6, seed: 3, splitVal: 1 },
    {
      ...IN_PROCESS,
      maxIters: 6,
      batchSize: 1,
      valInterval: 2,
      checkpointInterval: 2,
      logInterval: 1,
      valLimit: 1,
      seed: 4,
    },
  );

  it('killed after best_mIoU_iter_4 was written: the resumed run keeps the real best', async () => {
    const miou = scriptedMiou({ 2: 10, 4: 30, 6: 20 });
    const straightDir = path.join(tmp, 'best-straight');
    const straight = await train(base(straightDir, { hooks: [miou] }));
    assert.deepEqual(straight.best, { metric: 'mIoU', value: 30, iteration: 4 });
    straight.model.dispose();

    const wd = path.join(tmp, 'best-killed');
    await assert.rejects(train(base(wd, { hooks: [miou, killAt('afterTrainIter', 5)] })), Killed);
    assert.ok(fs.existsSync(path.join(wd, 'best_mIoU_iter_4')));
    const wd2 = path.join(tmp, 'best-killed-old-state');
    fs.cpSync(wd, wd2, { recursive: true });
    const resumed = await train(base(wd, { hooks: [miou], resume: true }));
    assert.equal(resumed.iteration, 6);
    assert.deepEqual(resumed.best, { metric: 'mIoU', value: 30, iteration: 4 });
    assert.deepEqual(
      listCheckpoints(wd)
        .filter((c) => c.kind === 'best')
        .map((c) => c.iteration),
      [4],
    );
    sameCheckpointFiles(path.join(straightDir, 'iter_6'), path.join(wd, 'iter_6'));
    sameCheckpointFiles(path.join(straightDir, 'best_mIoU_iter_4'), path.join(wd, 'best_mIoU_iter_4'));
    // every iteration and validation once, as in the straight run
    assert.deepEqual(logEntries(wd), logEntries(straightDir));
    assert.deepEqual(logEntries(wd).train, [1, 2, 3, 4, 5, 6]);
    resumed.model.dispose();

    // the same kill (a copy of its work dir) with iter_4 as the code before this fix wrote it: its state, saved
    // before the validation at 4, holds the best of iteration 2 and nothing about a validation; the resumed run
    // takes the best from best_mIoU_iter_4's own state
    const stale = stateJson(path.join(wd2, 'iter_2')).best;
    assert.deepEqual(stale, { metric: 'mIoU', value: 10, iteration: 2 });
    const oldState: Record<string, unknown> = { ...stateJson(path.join(wd2, 'iter_4')), best: stale };
    delete oldState.pendingValidation;
    fs.writeFileSync(path.join(wd2, 'iter_4', 'state.json'), JSON.stringify(oldState, null, 1));
    const resumed2 = await train(base(wd2, { hooks: [miou], resume: true }));
    assert.deepEqual(resumed2.best, { metric: 'mIoU', value: 30, iteration: 4 });
    assert.deepEqual(
      listCheckpoints(wd2)
        .filter((c) => c.kind === 'best')
        .map((c) => c.iteration),
      [4],
    );
    sameCheckpointFiles(path.join(straightDir, 'iter_6'), path.join(wd2, 'iter_6'));
    assert.deepEqual(logEntries(wd2), logEntries(straightDir));
    resumed2.model.dispose();
  });

  it('killed during the final validation: --resume validates', async () => {
    const miou = scriptedMiou({ 2: 10, 4: 20 });
    const straightDir = path.join(tmp, 'final-straight');
    const straight = await train(base(straightDir, { maxIters: 4, hooks: [miou] }));
    straight.model.dispose();

    const wd = path.join(tmp, 'final-killed');
    await assert.rejects(train(base(wd, { maxIters: 4, hooks: [miou, killAt('beforeVal', 4)] })), Killed);
    assert.ok(fs.existsSync(path.join(wd, 'iter_4')), 'the last checkpoint was written before the validation');
    const resumed = await train(base(wd, { maxIters: 4, hooks: [miou], resume: true }));
    assert.equal(resumed.interrupted, false);
    assert.ok(resumed.lastValidation, 'the resumed run validated');
    assert.deepEqual(resumed.best, { metric: 'mIoU', value: 20, iteration: 4 });
    assert.deepEqual(logEntries(wd), logEntries(straightDir));
    assert.deepEqual(logEntries(wd).val, [2, 4]);
    sameCheckpointFiles(path.join(straightDir, 'iter_4'), path.join(wd, 'iter_4'));
    sameCheckpointFiles(path.join(straightDir, 'best_mIoU_iter_4'), path.join(wd, 'best_mIoU_iter_4'));
    resumed.model.dispose();

    // a second resume has nothing left to do and does not validate again
    const again = await train(base(wd, { maxIters: 4, hooks: [miou], resume: true }));
    assert.equal(again.lastValidation, null);
    assert.deepEqual(logEntries(wd).val, [2, 4]);
    again.model.dispose();
  });

  it('stopped at the last iteration before its validation: interrupted, and --resume validates', async () => {
    const wd = path.join(tmp, 'final-stopped');
    const first = await train(
      base(wd, {
        maxIters: 2,
        onIteration: (it, t) => {
          if (it === 2) t.requestStop();
        },
      }),
    );
    assert.equal(first.iteration, 2);
    assert.equal(first.interrupted, true, 'the final validation has not run');
    assert.equal(first.lastValidation, null);
    first.model.dispose();
    const resumed = await train(base(wd, { maxIters: 2, resume: true }));
    assert.equal(resumed.interrupted, false);
    assert.ok(resumed.lastValidation);
    assert.deepEqual(logEntries(wd).val, [2]);
    resumed.model.dispose();
  });
});
