/**
 * End to end: configs/tiny_synthetic.json (BEiT 64-d × 4 layers + UperNet) trained from
 * scratch on CPU (2 threads) on synthetic ADE20K-layout data for its 160 iterations, validated
 * with the IoU metric on the val split. The validation mIoU must be far above chance (six
 * classes: a constant or random prediction scores below 17).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { train } from '../../src/engine/trainer.js';
import { tempDir } from '../temp.js';
import { syntheticData, tinyConfig } from './fixtures.js';

const tmp = tempDir('beitseg-learns-');
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('tiny_synthetic learns', () => {
  it('reaches a validation mIoU far above chance', async () => {
    const t0 = performance.now();
    const data = await syntheticData(path.join(tmp, 'data'), {
      n: 144,
      height: 64,
      width: 80,
      classes: 6,
      seed: 1,
      splitVal: 24,
    });
    const lines: string[] = [];
    const result = await train({
      config: tinyConfig(data),
      configPath: 'tiny_synthetic.json',
      workDir: path.join(tmp, 'work'),
      device: 'cpu',
      threads: 2,
      log: (l) => lines.push(l),
    });
    const secs = (performance.now() - t0) / 1000;
    const val = result.lastValidation!;
    console.log(lines.filter((l) => l.startsWith('Iter(val)')).join('\n'));
    console.log(
      `160 iterations + 2 validations in ${secs.toFixed(1)} s; final mIoU ${val.mIoU}, mAcc ${val.mAcc}, aAcc ` +
        `${val.aAcc}`,
    );
    assert.equal(result.iteration, 160);
    assert.equal(val.images, 24);
    assert.ok(val.mIoU >= 60, `mIoU ${val.mIoU} is not far above chance`);
    assert.ok(val.aAcc >= 75, `aAcc ${val.aAcc}`);
    assert.equal(result.best!.iteration, 160);
    // checkpoints as configured: interval 80, max_keep_ckpts 2, best mIoU kept
    assert.deepEqual(
      fs
        .readdirSync(path.join(tmp, 'work'))
        .filter((f) => !f.endsWith('.json') && !f.endsWith('.jsonl'))
        .sort(),
      ['best_mIoU_iter_160', 'iter_160', 'iter_80'],
    );
    const log = fs
      .readFileSync(path.join(tmp, 'work', 'log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number | string>);
    const trainEntries = log.filter((e) => 'loss' in e);
    assert.deepEqual(
      log.filter((e) => 'mIoU' in e).map((e) => e.iter),
      [80, 160],
    );
    assert.equal(trainEntries.length, 8);
    assert.ok((trainEntries.at(-1)!.loss as number) < (trainEntries[0]!.loss as number));
    result.model.dispose();
  });
});
