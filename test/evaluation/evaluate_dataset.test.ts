/**
 * End-to-end evaluation of the tiny fixture model on a small synthetic ADE20K-layout set:
 * the library path, the CLI, and resumption after an interruption (identical numbers).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import type { SegDataset } from '../../src/data/datasets.js';
import { evaluateDataset } from '../../src/evaluation/evaluate.js';
import type { SegModel } from '../../src/inference/api.js';
import { fixtureFile, tinyConfigPath } from '../helpers.js';
import { evalFixture } from './fixtures.js';
import { beitseg } from '../child.js';

describe('dataset evaluation', () => {
  let root: string;
  let model: SegModel;
  let dataset: SegDataset;

  before(async () => {
    ({ root, model, dataset } = await evalFixture('beitseg-eval-', {
      n: 10,
      splitVal: 6,
      height: 72,
      width: 96,
      classes: 5,
      seed: 3,
    }));
  });

  it('computes mmseg metrics over every image', async () => {
    const r = await evaluateDataset(model, dataset, { mode: 'whole' });
    assert.equal(r.images, 6);
    assert.equal(r.perClass.length, 5);
    for (const v of [r.aAcc, r.mIoU, r.mAcc]) assert.ok(v >= 0 && v <= 100, `metric ${v}`);
  });

  it('resumes from a cut-short progress file with identical numbers', async () => {
    const fresh = await evaluateDataset(model, dataset, { mode: 'slide' });
    const progress = path.join(root, 'p.jsonl');
    await evaluateDataset(model, dataset, { mode: 'slide', limit: 4, progressFile: progress });
    // a killed run leaves a partial last line
    fs.appendFileSync(progress, '{"index": 4, "image": "cut');
    let evaluated = 0;
    const resumed = await evaluateDataset(model, dataset, {
      mode: 'slide',
      progressFile: progress,
      onImage: () => {
        evaluated++;
      },
    });
    assert.equal(evaluated, 6);
    assert.deepEqual(resumed, fresh);
  });

  it('refuses to resume the progress of another run', async () => {
    const progress = path.join(root, 'other.jsonl');
    await evaluateDataset(model, dataset, { mode: 'whole', limit: 2, progressFile: progress, runKey: 'weights A' });
    await assert.rejects(
      evaluateDataset(model, dataset, { mode: 'whole', progressFile: progress, runKey: 'weights B' }),
      /progress of another run/,
    );
  });

  it('beitseg eval writes JSON and Markdown tables', async () => {
    const out = path.join(root, 'res', 'results.json');
    const { stdout } = await beitseg([
      'eval',
      '--config',
      tinyConfigPath,
      '--weights',
      fixtureFile('segmentor_state_dict.safetensors'),
      '--data',
      path.join(root, 'data'),
      '--device',
      'cpu',
      '--out',
      out,
    ]);
    assert.match(stdout, /mIoU/);
    const json = JSON.parse(fs.readFileSync(out, 'utf8')) as { mIoU: number; images: number };
    assert.equal(json.images, 6);
    assert.ok(
      fs.readFileSync(path.join(root, 'res', 'results.md'), 'utf8').includes('| Class |') ||
        fs.readFileSync(path.join(root, 'res', 'results.md'), 'utf8').includes('IoU'),
    );
  });
});
