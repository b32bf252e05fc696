import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { buildDataset, type DatasetConfig } from '../../src/data/datasets.js';
import { createLoader } from '../../src/data/loader.js';
import type { TransformConfig } from '../../src/data/transforms/sample.js';
import type { Dict } from '../../src/config/schema.js';
import { tempWithData } from '../engine/fixtures.js';
import { deterministicTinyConfig } from './tiny.js';

test('rank split of the sample stream: 2 ranks x batch 2 see the batches of 1 process x batch 4, pixel for pixel; ' +
  'state resumes', {
  timeout: 60_000,
}, async () => {
  const { dir, data } = await tempWithData('beitseg-split-', {
    n: 7,
    height: 64,
    width: 80,
    classes: 6,
    seed: 2,
    splitVal: 1,
  });
  const cfg = deterministicTinyConfig(data);
  const dl = cfg.train_dataloader as Dict;
  const pipeline = (dl.dataset as Dict).pipeline as TransformConfig[];
  const dataset = await buildDataset({ ...(dl.dataset as DatasetConfig), pipeline } as DatasetConfig);
  const make = (
    batchSize: number,
    rank = 0,
    worldSize = 1,
    state?: ReturnType<ReturnType<typeof createLoader>['state']>,
  ) => createLoader({ dataset, pipeline, batchSize, numWorkers: 0, seed: 7, padTo: [64, 64], rank, worldSize, state });
  const single = make(4),
    r0 = make(2, 0, 2),
    r1 = make(2, 1, 2);
  // 3 iterations cross the epoch boundary (6 training images, 12 samples)
  for (let it = 0; it < 3; it++) {
    const [s, a, b] = [await single.next(), await r0.next(), await r1.next()];
    // stream positions 4k..4k+3: rank 0 takes 4k, 4k+2; rank 1 takes 4k+1, 4k+3
    assert.deepEqual([a.indices[0], b.indices[0], a.indices[1], b.indices[1]], s.indices, `iteration ${it}`);
    const per = 3 * 64 * 64;
    for (const [rankBatch, offset] of [
      [a, 0],
      [b, 1],
    ] as const) {
      for (let j = 0; j < 2; j++) {
        const k = 2 * j + offset;
        assert.deepEqual(rankBatch.img.subarray(j * per, (j + 1) * per), s.img.subarray(k * per, (k + 1) * per));
      }
    }
  }
  // the saved position counts samples of the shared stream: the single-process format
  assert.equal(r0.state().sampler.next, 12);
  assert.deepEqual(r0.state(), single.state());
  const resumed = make(2, 1, 2, r1.state()),
    next = await single.next();
  assert.deepEqual((await resumed.next()).indices, [next.indices[1], next.indices[3]]);
  assert.throws(
    () => make(2, 0, 5, { sampler: { ...single.state().sampler, next: 16 } }),
    /not a multiple of the world size 5/,
  );
  assert.throws(() => make(2, 2, 2), /rank 2 \/ world size 2/);
  for (const l of [single, r0, r1, resumed]) await l.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
