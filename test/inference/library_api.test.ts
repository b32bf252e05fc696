/**
 * What library users script with (issue 14.5), through the package's entry point: decoding an
 * image from a Buffer, inferenceModel on a Buffer as on a path, and writing predictions.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as beitseg from '../../src/index.js';
import { fixtureFile, loadFixtureTensors, repoRoot, tinyConfigPath } from '../helpers.js';

const scene = path.join(repoRoot, 'test', 'fixtures', 'images', 'scene.png');

describe('library API', () => {
  let dir = '';
  let model: beitseg.SegModel;
  let goldenPred: number[];
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-lib-'));
    model = await beitseg.initModel(tinyConfigPath, fixtureFile('segmentor_mmseg.pth'), { device: 'cpu' });
    goldenPred = [...(loadFixtureTensors('tensors.safetensors').get('slide.pred')!.toTypedArray() as Uint8Array)];
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('decodeImage reads a Buffer as readImage reads the file', async () => {
    const bytes = fs.readFileSync(scene);
    assert.deepEqual(await beitseg.decodeImage(bytes, 'scene.png'), await beitseg.readImage(scene));
    await assert.rejects(
      beitseg.decodeImage(Buffer.from('not an image'), 'junk.bin'),
      /^Error: cannot decode image junk\.bin: /,
    );
  });

  it('inferenceModel takes a Buffer, a path or decoded RGB, with the same (golden) result', async () => {
    const fromBuffer = await beitseg.inferenceModel(model, fs.readFileSync(scene));
    const fromPath = await beitseg.inferenceModel(model, scene);
    const fromRgb = await beitseg.inferenceModel(model, await beitseg.readImage(scene));
    for (const r of [fromBuffer, fromPath, fromRgb]) {
      assert.deepEqual([r.height, r.width], [80, 112]);
      assert.deepEqual([...r.pred], goldenPred);
    }
    fromPath.logits.dispose();
    fromRgb.logits.dispose();
    await beitseg.writePrediction(path.join(dir, 'scene'), await beitseg.readImage(scene), fromBuffer, model.meta);
    fromBuffer.logits.dispose();
    assert.deepEqual(fs.readdirSync(dir).sort(), ['scene.json', 'scene_overlay.png', 'scene_pred.png']);
    assert.deepEqual([...(await beitseg.readLabel(path.join(dir, 'scene_pred.png'))).data], goldenPred);
  });

  it('exports the pixel limit, image writers and the dataset metadata', () => {
    assert.equal(beitseg.DEFAULT_MAX_PIXELS, 40_000_000);
    assert.equal(beitseg.DEFAULT_MAX_WINDOWS, 1000);
    assert.equal(typeof beitseg.readImageSize, 'function');
    assert.equal(typeof beitseg.planWindows, 'function');
    assert.equal(typeof beitseg.setMaxPixels, 'function');
    assert.equal(typeof beitseg.writeImage, 'function');
    assert.equal(typeof beitseg.overlay, 'function');
    assert.equal(beitseg.ADE20K_CLASSES.length, 150);
  });
});
