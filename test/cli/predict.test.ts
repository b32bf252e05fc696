/**
 * `beitseg predict` end to end in a child process: PNG in, label PNG / overlay / JSON /
 * logits out, checked against mmseg's slide-inference golden tensors.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, before } from 'node:test';
import { readImage, readLabel } from '../../src/data/image_io.js';
import { readSafetensors } from '../../src/checkpoint/formats/safetensors.js';
import { toTensor } from '../../src/tensor/host.js';
import { assertClose, fixtureFile, loadFixtureTensors, tinyConfigPath } from '../helpers.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { writeSlideImage } from './fixtures.js';
import { beitseg } from '../child.js';

describe('beitseg predict', () => {
  let dir: string;
  let golden: Map<string, Tensor>;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-predict-'));
    golden = loadFixtureTensors('tensors.safetensors');
    await writeSlideImage(path.join(dir, 'scene.png'), golden);
  });

  it('matches mmseg slide inference from a .pth checkpoint and writes every output', async () => {
    const out = path.join(dir, 'out');
    const logits = path.join(dir, 'logits.safetensors');
    await beitseg([
      'predict',
      '--config',
      tinyConfigPath,
      '--weights',
      fixtureFile('segmentor_mmseg.pth'),
      '--device',
      'cpu',
      '--out',
      out,
      '--save-logits',
      logits,
      path.join(dir, 'scene.png'),
    ]);
    const saved = toTensor(readSafetensors(logits).tensors.get('logits')!);
    assertClose(saved, golden.get('slide.logits')!, 1e-4, 'saved logits');
    const pred = await readLabel(path.join(out, 'scene_pred.png'));
    assert.deepEqual([...pred.data], [...(golden.get('slide.pred')!.toTypedArray() as Uint8Array)]);
    const overlay = await readImage(path.join(out, 'scene_overlay.png'));
    assert.equal(overlay.width, 112);
    assert.equal(overlay.height, 80);
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'scene.json'), 'utf8')) as {
      classes: { share: number }[];
    };
    const total = summary.classes.reduce((a, c) => a + c.share, 0);
    assert.ok(Math.abs(total - 1) < 1e-4, `class shares sum to ${total}`);
    assert.deepEqual(
      fs.readdirSync(out).filter((f) => f.includes('.tmp')),
      [],
    );
  });

  it('--tta writes averaged probabilities that sum to one per pixel', async () => {
    const probs = path.join(dir, 'probs.safetensors');
    await beitseg([
      'predict',
      '--config',
      tinyConfigPath,
      '--weights',
      fixtureFile('segmentor_state_dict.safetensors'),
      '--tta',
      '--tta-scales',
      '1,1.5',
      '--out',
      path.join(dir, 'tta'),
      '--save-logits',
      probs,
      path.join(dir, 'scene.png'),
    ]);
    const p = toTensor(readSafetensors(probs).tensors.get('probs')!);
    assert.deepEqual(p.shape, [1, 5, 80, 112]);
    const sums = p.sum(1).toFloat32Array();
    for (const s of sums) assert.ok(Math.abs(s - 1) < 1e-5);
  });

  it('fails with one clear line for a missing image and for a corrupt checkpoint', async () => {
    await assert.rejects(
      beitseg(['predict', '--config', tinyConfigPath, '--random-weights', path.join(dir, 'nope.png')]),
      (err: { stderr: string; code: number }) => err.code === 1 && /nope\.png: no such file/.test(err.stderr),
    );
    const bad = path.join(dir, 'bad.pth');
    fs.writeFileSync(bad, Buffer.from('PK\x03\x04 not really a zip'));
    await assert.rejects(
      beitseg(['predict', '--config', tinyConfigPath, '--weights', bad, path.join(dir, 'scene.png')]),
      (err: { stderr: string; code: number }) =>
        err.code === 1 && err.stderr.includes('bad.pth') && !err.stderr.includes('Segmentation'),
    );
  });
});
