/**
 * The loop's hook points and seams: priority order, the order of the points in a run, a
 * caller's hook slotting in, the gradient-sync seam (sync flag per iteration, one call before
 * each optimizer step) and a non-main rank writing no files.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { HookList, PRIORITY, type Hook } from '../../src/engine/hook.js';
import type { GradientSync } from '../../src/engine/optim_wrapper.js';
import { train } from '../../src/engine/trainer.js';
import { IN_PROCESS, trainOptionsOn } from './fixtures.js';
import { tempDir } from '../temp.js';

const tmp = tempDir('beitseg-hooks-');
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('HookList', () => {
  it('calls by priority, equal priorities in registration order', async () => {
    const calls: string[] = [];
    const hook = (name: string, priority?: number): Hook => ({
      name,
      priority,
      beforeTrain: () => {
        calls.push(name);
      },
    });
    const list = new HookList();
    list.register(hook('low', PRIORITY.LOW));
    list.register(hook('normal-a'));
    list.register(hook('high', PRIORITY.HIGH));
    list.register(hook('normal-b', PRIORITY.NORMAL));
    list.register({ name: 'no-point' });
    await list.call('beforeTrain', undefined as never);
    assert.deepEqual(calls, ['high', 'normal-a', 'normal-b', 'low']);
    assert.equal(list.find('low')?.name, 'low');
  });
});

describe('training loop hook points', () => {
  const base = trainOptionsOn(
    tmp,
    { n: 4, height: 32, width: 32, classes: 6, seed: 2, splitVal: 1 },
    {
      ...IN_PROCESS,
      maxIters: 3,
      batchSize: 1,
      valInterval: 2,
      checkpointInterval: 100,
      logInterval: 1,
      valLimit: 1,
      seed: 1,
    },
  );

  it('runs the points in mmengine order, a caller hook between the defaults by priority', async () => {
    const seen: string[] = [];
    const files = (wd: string) => (fs.existsSync(wd) ? fs.readdirSync(wd).sort() : []);
    const wd = path.join(tmp, 'order');
    const recorder: Hook = {
      name: 'Recorder',
      priority: PRIORITY.LOW,
      beforeRun: (r) => {
        seen.push(`beforeRun@${r.iteration}`);
        assert.equal(r.loader, null);
      },
      beforeTrain: (r) => {
        seen.push('beforeTrain');
        assert.ok(r.loader);
        assert.equal(r.model.training, true);
      },
      beforeTrainIter: (r, t) => {
        seen.push(`beforeTrainIter${t}`);
        assert.equal(r.iteration, t);
      },
      afterTrainIter: (r, t, _b, out) => {
        seen.push(`afterTrainIter${t}`);
        assert.equal(r.iteration, t + 1);
        assert.ok(Number.isFinite(out.values.loss));
        // LoggerHook (BELOW_NORMAL) ran before this LOW hook, CheckpointHook (VERY_LOW) runs after
        const log = fs.readFileSync(path.join(wd, 'log.jsonl'), 'utf8').trim().split('\n');
        assert.equal((JSON.parse(log.at(-1)!) as { iter: number }).iter, t + 1);
        if (t + 1 === 3) assert.ok(!files(wd).includes('iter_3'));
      },
      beforeVal: (r) => {
        seen.push(`beforeVal@${r.iteration}`);
      },
      afterValEpoch: (r, v) => {
        seen.push(`afterValEpoch@${r.iteration}`);
        assert.equal(v.metrics.images, 1);
      },
      afterVal: (r) => {
        seen.push(`afterVal@${r.iteration}`);
        assert.equal(r.model.training, true);
      },
      afterTrain: () => {
        seen.push('afterTrain');
      },
      afterRun: () => {
        seen.push('afterRun');
      },
    };
    const result = await train(base(wd, { hooks: [recorder] }));
    assert.deepEqual(seen, [
      'beforeRun@0',
      'beforeTrain',
      'beforeTrainIter0',
      'afterTrainIter0',
      'beforeTrainIter1',
      'afterTrainIter1',
      'beforeVal@2',
      'afterValEpoch@2',
      'afterVal@2',
      'beforeTrainIter2',
      'afterTrainIter2',
      'beforeVal@3',
      'afterValEpoch@3',
      'afterVal@3',
      'afterTrain',
      'afterRun',
    ]);
    assert.ok(files(wd).includes('iter_3'));
    result.model.dispose();
  });

  it('afterRun runs after an error in a hook; the error reaches the caller', async () => {
    const seen: string[] = [];
    const failing: Hook = {
      name: 'Failing',
      afterTrainIter: (_r, t) => {
        if (t === 1) throw new Error('injected failure');
      },
      afterTrain: () => {
        seen.push('afterTrain');
      },
      afterRun: () => {
        seen.push('afterRun');
      },
    };
    await assert.rejects(train(base(path.join(tmp, 'fail'), { hooks: [failing] })), /injected failure/);
    assert.deepEqual(seen, ['afterRun']);
  });

  it('gradient sync: no_sync on accumulation iterations, one beforeStep per optimizer step', async () => {
    const events: string[] = [];
    const gradSync: GradientSync = {
      iteration: (sync, run) => {
        events.push(sync ? 'sync' : 'no_sync');
        return run();
      },
      beforeStep: (params) => {
        events.push(`step(${params.filter((p) => p.grad).length > 0})`);
      },
    };
    const result = await train(base(path.join(tmp, 'sync'), { accum: 2, gradSync }));
    // windows: {0, 1}, then the last incomplete window {2}
    assert.deepEqual(events, ['no_sync', 'sync', 'step(true)', 'sync', 'step(true)']);
    result.model.dispose();
  });

  it('a non-main rank trains and validates but writes no log, checkpoint or config', async () => {
    const wd = path.join(tmp, 'rank1');
    const result = await train(base(wd, { dist: { rank: 1, worldSize: 2 } }));
    assert.equal(result.iteration, 3);
    assert.ok(result.lastValidation, 'validated');
    assert.ok(result.best, 'the best record is kept on every rank');
    assert.deepEqual(fs.existsSync(wd) ? fs.readdirSync(wd) : [], []);
    assert.equal(result.lastCheckpoint, null);
    result.model.dispose();
  });
});
