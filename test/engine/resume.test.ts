/**
 * Exact resume on CPU: training 6 iterations straight equals 3 (stopped by SIGINT or a stop
 * request, which saves a checkpoint) + --resume + 3, bit for bit — the final checkpoint files
 * (weights incl. BN statistics, optimizer moments, RNG/loader state) are byte-identical. Also
 * with gradient accumulation stopped in the middle of a window (pending gradients saved).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { train } from '../../src/engine/trainer.js';
import { loadCheckpoint, listCheckpoints } from '../../src/engine/training_checkpoint.js';
import { sameCheckpointFiles, trainOptionsOn } from './fixtures.js';
import { tempDir } from '../temp.js';

const tmp = tempDir('beitseg-resume-');
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('exact resume (CPU, fixed seed)', () => {
  const quiet: string[] = [];
  const base = trainOptionsOn(
    tmp,
    { n: 12, height: 64, width: 72, classes: 6, seed: 5, splitVal: 2 },
    {
      maxIters: 6,
      batchSize: 2,
      valInterval: 6,
      checkpointInterval: 100,
      logInterval: 2,
      valLimit: 2,
      seed: 3,
      log: (l) => quiet.push(l),
    },
  );

  it('6 straight = 3 + SIGINT checkpoint + resume + 3, byte for byte', async () => {
    const straight = await train(base(path.join(tmp, 'straight')));
    assert.equal(straight.iteration, 6);
    assert.equal(straight.interrupted, false);

    const wd = path.join(tmp, 'interrupted');
    const guard = () => {
      /* keeps a late signal from ending the test process */
    };
    process.on('SIGINT', guard);
    let first: Awaited<ReturnType<typeof train>>;
    try {
      first = await train(
        base(wd, {
          onIteration: (it) => {
            if (it === 2) process.kill(process.pid, 'SIGINT');
          },
        }),
      );
    } finally {
      process.removeListener('SIGINT', guard);
    }
    assert.equal(first.interrupted, true);
    assert.ok(first.iteration >= 2 && first.iteration < 6, `stopped at ${first.iteration}`);
    assert.equal(loadCheckpoint(first.lastCheckpoint!).info.iteration, first.iteration);
    straight.model.dispose();
    first.model.dispose();

    const resumed = await train(base(wd, { resume: true }));
    assert.equal(resumed.iteration, 6);
    assert.ok(quiet.some((l) => l.startsWith(`resumed from ${path.join(wd, `iter_${first.iteration}`)}`)));
    sameCheckpointFiles(path.join(tmp, 'straight', 'iter_6'), path.join(wd, 'iter_6'));
    resumed.model.dispose();
    // the JSONL log continues across the interruption
    const iters = fs
      .readFileSync(path.join(wd, 'log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { loss?: number; iter: number })
      .filter((e) => e.loss !== undefined)
      .map((e) => e.iter);
    assert.deepEqual(iters.slice(-1), [6]);
  });

  it('with --accum 2, stopped inside an accumulation window', async () => {
    const straight = await train(base(path.join(tmp, 'acc-straight'), { accum: 2, maxIters: 5 }));
    const wd = path.join(tmp, 'acc-stop');
    const first = await train(
      base(wd, {
        accum: 2,
        maxIters: 5,
        onIteration: (it, t) => {
          if (it === 3) t.requestStop();
        },
      }),
    );
    assert.equal(first.iteration, 3);
    const ck = loadCheckpoint(first.lastCheckpoint!);
    assert.ok((ck.state.pendingGrads as string[]).length > 0, 'gradients of the open window are saved');
    for (const t of [...ck.weights.values(), ...ck.stateTensors.values()]) t.dispose();
    const resumed = await train(base(wd, { accum: 2, maxIters: 5, resume: true }));
    assert.equal(resumed.iteration, 5);
    sameCheckpointFiles(path.join(tmp, 'acc-straight', 'iter_5'), path.join(wd, 'iter_5'));
    assert.deepEqual(
      listCheckpoints(wd).map((c) => `${c.kind}${c.iteration}`),
      ['iter3', 'best5', 'iter5'],
    );
    straight.model.dispose();
    first.model.dispose();
    resumed.model.dispose();
  });

  it('resuming with another --accum in the middle of a window is refused', async () => {
    await assert.rejects(
      // --allow-batch-change lets the global batch change; a window half-accumulated at 2 still cannot go on at 3
      train(
        base(path.join(tmp, 'acc-stop'), {
          accum: 3,
          maxIters: 5,
          resume: path.join(tmp, 'acc-stop', 'iter_3'),
          allowBatchChange: true,
        }),
      ),
      /accumulation window of 2/,
    );
  });
});
