import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { buildDataset, type SegDataset } from '../../src/data/datasets.js';
import { createLoader, type Batch } from '../../src/data/loader.js';
import { InfiniteSampler } from '../../src/data/sampler.js';
import { makeSyntheticDataset } from '../../src/data/synthetic.js';
import type { TransformConfig } from '../../src/data/transforms/sample.js';

let tmp = '';
let ds: SegDataset;
const pipeline: TransformConfig[] = [
  { type: 'LoadImageFromFile' },
  { type: 'LoadAnnotations', reduce_zero_label: true },
  { type: 'RandomResize', scale: [128, 32], ratio_range: [0.5, 2.0], keep_ratio: true },
  { type: 'RandomCrop', crop_size: [32, 32], cat_max_ratio: 0.75 },
  { type: 'RandomFlip', prob: 0.5 },
  { type: 'PhotoMetricDistortion' },
  { type: 'PackSegInputs' },
];

before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'beitseg-loader-'));
  await makeSyntheticDataset(tmp, { n: 5, height: 24, width: 40, classes: 4, seed: 2, splitVal: 0 });
  ds = await buildDataset({
    type: 'ADE20KDataset',
    data_root: tmp,
    data_prefix: { img_path: 'images/training', seg_map_path: 'annotations/training' },
  });
});
after(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function take(numWorkers: number, nBatches: number, extra: Record<string, unknown> = {}): Promise<Batch[]> {
  const loader = createLoader({ dataset: ds, pipeline, batchSize: 2, numWorkers, seed: 17, padTo: [32, 32], ...extra });
  try {
    const out: Batch[] = [];
    for (let i = 0; i < nBatches; i++) out.push(await loader.next());
    return out;
  } finally {
    await loader.close();
  }
}

test('sampler: a permutation per epoch, pure function of (seed, k)', () => {
  const s = new InfiniteSampler(5, 3);
  const e0 = [0, 1, 2, 3, 4].map((k) => s.at(k).index);
  const e1 = [5, 6, 7, 8, 9].map((k) => s.at(k).index);
  assert.deepEqual([...e0].sort(), [0, 1, 2, 3, 4]);
  assert.deepEqual([...e1].sort(), [0, 1, 2, 3, 4]);
  assert.notDeepEqual(e0, e1);
  assert.deepEqual(new InfiniteSampler(5, 3).at(7), s.at(7));
  assert.deepEqual(
    [0, 1, 2].map((k) => new InfiniteSampler(5, 3, false).at(k).index),
    [0, 1, 2],
  );
});

test('batches: shapes, label values, metas', async () => {
  const [b] = await take(0, 1);
  assert.equal(b.n, 2);
  assert.deepEqual([b.height, b.width], [32, 32]);
  assert.equal(b.img.length, 2 * 3 * 32 * 32);
  assert.equal(b.label.length, 2 * 32 * 32);
  assert.ok(b.label.every((v) => v < 4 || v === 255));
  assert.equal(b.metas.length, 2);
  assert.ok(b.metas[0].img_path!.endsWith('.jpg'));
  assert.deepEqual(b.metas[0].pad_shape, [32, 32]);
  assert.deepEqual(b.shapes[0].pad, [32, 32]);
  assert.deepEqual(b.shapes[0].ori, [24, 40]);
  assert.ok(b.shapes[0].img[0] <= 32 && b.shapes[0].img[1] <= 32);
  assert.equal(b.iteration, 0);
  assert.ok(b.img.every((v) => Number.isFinite(v) && Math.abs(v) < 3));
});

test('same seed -> identical batches with 0, 1 and 2 workers; saved state resumes exactly', async () => {
  const a = await take(0, 5);
  const b = await take(1, 4);
  const c = await take(2, 4);
  assert.deepEqual(b, a.slice(0, 4));
  assert.deepEqual(c, a.slice(0, 4));
  // 10 samples over a 5-item dataset: epoch 0 then epoch 1, each a permutation
  assert.deepEqual(
    a.flatMap((x) => x.epochs),
    [0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
  );
  assert.deepEqual(
    a
      .flatMap((x) => x.indices)
      .slice(0, 5)
      .sort(),
    [0, 1, 2, 3, 4],
  );
  assert.deepEqual(
    a
      .flatMap((x) => x.indices)
      .slice(5)
      .sort(),
    [0, 1, 2, 3, 4],
  );
  assert.deepEqual(
    a.map((x) => x.iteration),
    [0, 1, 2, 3, 4],
  );
  const d = await take(0, 2, { seed: 18 });
  assert.notDeepEqual(
    d.map((x) => x.img),
    a.slice(0, 2).map((x) => x.img),
  );

  // Resume: stop after 2 batches, save (through JSON), continue in a new loader with another worker count.
  const first = createLoader({ dataset: ds, pipeline, batchSize: 2, numWorkers: 0, seed: 17, padTo: [32, 32] });
  await first.next();
  await first.next();
  const saved = JSON.parse(JSON.stringify(first.state()));
  await first.close();
  const resumed = createLoader({
    dataset: ds,
    pipeline,
    batchSize: 2,
    numWorkers: 1,
    seed: 17,
    padTo: [32, 32],
    state: saved,
  });
  try {
    for (let i = 2; i < 5; i++) assert.deepEqual(await resumed.next(), a[i]);
  } finally {
    await resumed.close();
  }
  assert.throws(() => createLoader({ dataset: ds, pipeline, batchSize: 2, seed: 99, state: saved }), /seed/);
});

test('errors name the file and propagate from workers; config errors are immediate', async () => {
  const items = ds.items.map((it, i) => (i === 1 ? { ...it, imgPath: path.join(tmp, 'missing.jpg') } : it));
  for (const numWorkers of [0, 1]) {
    const loader = createLoader({
      dataset: items,
      pipeline,
      batchSize: 5,
      numWorkers,
      seed: 1,
      shuffle: false,
      padTo: [32, 32],
    });
    try {
      await assert.rejects(loader.next(), /image file not found: .*missing\.jpg/);
      await assert.rejects(loader.next(), /missing\.jpg/); // stays broken
    } finally {
      await loader.close();
    }
  }
  assert.throws(
    () => createLoader({ dataset: ds, pipeline: [{ type: 'Nope' }], batchSize: 1, seed: 0 }),
    /unknown transform type 'Nope'/,
  );
});

test('without padTo, batches are padded to the largest sample (test-style pipeline, 255 labels)', async () => {
  const loader = createLoader({
    dataset: ds,
    pipeline: [
      { type: 'LoadImageFromFile' },
      { type: 'LoadAnnotations' },
      { type: 'RandomResize', scale: [80, 20], ratio_range: [0.5, 2], keep_ratio: true },
      { type: 'PackSegInputs' },
    ],
    batchSize: 3,
    numWorkers: 0,
    seed: 5,
  });
  try {
    const b = await loader.next();
    const shapes = b.metas.map((m) => m.img_shape!);
    assert.equal(b.height, Math.max(...shapes.map((s) => s[0])));
    assert.equal(b.width, Math.max(...shapes.map((s) => s[1])));
    const i = shapes.findIndex((s) => s[0] < b.height || s[1] < b.width);
    if (i >= 0) {
      const [h, w] = shapes[i];
      const plane = b.height * b.width;
      assert.equal(b.label[i * plane + (b.height - 1) * b.width + b.width - 1], 255);
      assert.equal(b.img[i * 3 * plane + (b.height - 1) * b.width + b.width - 1], 0);
      assert.ok(h <= b.height && w <= b.width);
    }
  } finally {
    await loader.close();
  }
});
