/**
 * A progress file whose last line was cut by a kill (issue 15.7): the fragment is cut off
 * before anything is appended, so that image is redone once and later resumes redo nothing.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SegDataset } from '../../src/data/datasets.js';
import { evaluateDataset } from '../../src/evaluation/evaluate.js';
import type { SegModel } from '../../src/inference/api.js';
import { evalFixture } from './fixtures.js';

function records(file: string): number[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  assert.equal(lines.at(-1), '', 'ends with a newline');
  return lines.slice(1, -1).map((l) => (JSON.parse(l) as { index: number }).index);
}

describe('eval progress file', () => {
  let root = '';
  let model: SegModel;
  let dataset: SegDataset;

  before(async () => {
    ({ root, model, dataset } = await evalFixture('beitseg-progress-', {
      n: 6,
      splitVal: 4,
      height: 64,
      width: 64,
      classes: 5,
      seed: 5,
    }));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('a cut last line is discarded: the image is redone once, later resumes redo nothing', async () => {
    const progress = path.join(root, 'cut.jsonl');
    const full = await evaluateDataset(model, dataset, { mode: 'whole', progressFile: path.join(root, 'full.jsonl') });
    await evaluateDataset(model, dataset, { mode: 'whole', limit: 3, progressFile: progress });
    assert.deepEqual(records(progress), [0, 1, 2]);
    const size = fs.statSync(progress).size;
    fs.truncateSync(progress, size - 25); // killed while writing the record of image 2
    const resumed = await evaluateDataset(model, dataset, { mode: 'whole', progressFile: progress });
    assert.deepEqual(records(progress), [0, 1, 2, 3]);
    assert.deepEqual(resumed, full);
    const before = fs.readFileSync(progress);
    assert.deepEqual(await evaluateDataset(model, dataset, { mode: 'whole', progressFile: progress }), full);
    assert.deepEqual(fs.readFileSync(progress), before, 'nothing redone on the next resume');
  });

  it('a file cut inside its header line starts over', async () => {
    const progress = path.join(root, 'header.jsonl');
    fs.writeFileSync(progress, '{"run":');
    await evaluateDataset(model, dataset, { mode: 'whole', limit: 2, progressFile: progress });
    assert.deepEqual(records(progress), [0, 1]);
  });
});
