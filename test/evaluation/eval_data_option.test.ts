/**
 * `eval --data ROOT` keeps the config's dataset settings: a dataset whose labels have no "other"
 * (reduce_zero_label false, as the demo's) scores the same under --data as from the config's own
 * val_dataloader. Before, --data always read ADE20K's convention and shifted every label by one
 * (the demo's 85 % mIoU model scored 0.54 %).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, it } from 'node:test';
import { makeSyntheticDataset } from '../../src/data/synthetic.js';
import { fixtureFile, repoRoot, tinyConfigPath } from '../helpers.js';

const run = promisify(execFile);
const cli = path.join(repoRoot, 'bin', 'beitseg.js');
let dir = '';

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-eval-data-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

it('eval --data uses the val_dataloader dataset type and reduce_zero_label', async () => {
  const data = path.join(dir, 'full');
  await makeSyntheticDataset(data, { n: 3, splitVal: 2, height: 40, width: 50, classes: 6, seed: 1, scene: 'full' });
  const cfg = JSON.parse(fs.readFileSync(tinyConfigPath, 'utf8'));
  cfg.val_dataloader = {
    batch_size: 1,
    dataset: {
      type: 'BaseSegDataset',
      data_root: data,
      data_prefix: { img_path: 'images/validation', seg_map_path: 'annotations/validation' },
      reduce_zero_label: false,
    },
  };
  const config = path.join(dir, 'config.json');
  fs.writeFileSync(config, JSON.stringify(cfg));
  const evaluate = async (name: string, extra: string[]) => {
    const out = path.join(dir, `${name}.json`);
    const weights = fixtureFile('segmentor_state_dict.safetensors');
    await run('node', [
      cli,
      'eval',
      '--config',
      config,
      '--weights',
      weights,
      '--device',
      'cpu',
      '--out',
      out,
      ...extra,
    ]);
    const { aAcc, mIoU, per_class } = JSON.parse(fs.readFileSync(out, 'utf8'));
    return { aAcc, mIoU, per_class };
  };
  const own = await evaluate('own', []);
  assert.ok(own.aAcc > 0);
  assert.deepEqual(await evaluate('data', ['--data', data]), own);
});
