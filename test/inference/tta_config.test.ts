/**
 * The config's tta_pipeline (mmseg 1.x TestTimeAug) decides --tta's scales and flips when no
 * scales are given; its Resize(scale_factor=r) scales the loaded image, not the test scale.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { initModel, inferenceModel, DEFAULT_TTA_SCALES, type SegModel } from '../../src/inference/api.js';
import { imageScaledSize, ttaFromConfig } from '../../src/inference/tta_config.js';
import { loadConfig, type Dict } from '../../src/config/schema.js';
import type { RgbImage } from '../../src/data/types.js';
import { fixtureFile, loadFixtureTensors, maxAbsDiff, repoRoot, tinyConfigPath } from '../helpers.js';

const beitJson = path.join(repoRoot, 'configs', 'beit-base_upernet_8xb2-160k_ade20k-640x640.json');

function ttaPipeline(ratios: number[], flips: number[]): Dict[] {
  return [
    { type: 'LoadImageFromFile', backend_args: null },
    {
      type: 'TestTimeAug',
      transforms: [
        ratios.map((r) => ({ type: 'Resize', scale_factor: r, keep_ratio: true })),
        flips.map((p) => ({ type: 'RandomFlip', prob: p, direction: 'horizontal' })),
        [{ type: 'LoadAnnotations' }],
        [{ type: 'PackSegInputs' }],
      ],
    },
  ];
}

describe('tta_pipeline', () => {
  it("reads mmseg's TestTimeAug: scale factors and flips", () => {
    assert.deepEqual(ttaFromConfig(loadConfig(beitJson)), { scales: [0.5, 0.75, 1, 1.25, 1.5, 1.75], flip: true });
    assert.deepEqual(ttaFromConfig({ tta_pipeline: ttaPipeline([1, 2], [0]) }), { scales: [1, 2], flip: false });
    assert.equal(ttaFromConfig(loadConfig(tinyConfigPath)), null);
  });

  it('refuses what it cannot reproduce, naming the entry', () => {
    const bad = (edit: (p: Dict[]) => void) => {
      const p = ttaPipeline([1], [0, 1]);
      edit(p);
      return () => ttaFromConfig({ tta_pipeline: p });
    };
    const transforms = (p: Dict[]) => p[1].transforms as Dict[][];
    assert.throws(
      bad((p) => {
        transforms(p)[2] = [{ type: 'Bogus' }];
      }),
      /tta_pipeline\[1\]\.transforms\[2\]: \["Bogus"\] is not supported/,
    );
    assert.throws(
      bad((p) => {
        p.push({ type: 'Bogus' });
      }),
      /tta_pipeline\[2\]\.type "Bogus" is not supported \(supported: TestTimeAug/,
    );
    assert.throws(
      bad((p) => {
        transforms(p)[0][0].scale = [512, 512];
      }),
      /tta_pipeline\[1\]\.transforms\[0\]\[0\]: Resize with a fixed scale/,
    );
    assert.throws(
      bad((p) => {
        transforms(p)[0][0].scale_factor = 0;
      }),
      /scale_factor must be > 0, got 0/,
    );
    assert.throws(
      bad((p) => {
        transforms(p)[1][1].prob = 0.5;
      }),
      /transforms\[1\]\[1\]\.prob must be 0 or 1/,
    );
    assert.throws(
      bad((p) => {
        transforms(p)[1][0].direction = 'vertical';
      }),
      /direction must be 'horizontal'/,
    );
    assert.throws(
      bad((p) => {
        p.splice(1, 1);
      }),
      /no TestTimeAug/,
    );
  });

  it('mmcv Resize(scale_factor) sizes', () => {
    assert.deepEqual(imageScaledSize(112, 80, 0.5), [40, 56]);
    assert.deepEqual(imageScaledSize(112, 80, 1.75), [140, 196]);
    assert.deepEqual(imageScaledSize(101, 33, 0.75), [25, 76]);
  });

  describe('--tta without scales', () => {
    let img: RgbImage;
    const probsOf = async (m: SegModel, tta: Parameters<typeof inferenceModel>[2]) =>
      (await inferenceModel(m, img, tta)).logits;
    const model = async (edit: (c: Dict) => void) => {
      const cfg = loadConfig(tinyConfigPath);
      edit(cfg);
      return initModel(cfg, fixtureFile('segmentor_state_dict.safetensors'), { device: 'cpu' });
    };

    it("uses the config's scales and flips; without a tta_pipeline today's default", async () => {
      const rgb = loadFixtureTensors('tensors.safetensors').get('slide.image_rgb_u8')!;
      img = { data: rgb.toTypedArray() as Uint8Array, height: rgb.shape[0], width: rgb.shape[1], channels: 3 };
      // tiny_public's test pipeline has no Resize: image-relative and test-scale-relative ratios coincide
      const withCfg = await model((c) => {
        c.tta_pipeline = ttaPipeline([0.5, 1], [0]);
      });
      const fromConfig = await probsOf(withCfg, { tta: true });
      assert.equal(maxAbsDiff(fromConfig, await probsOf(withCfg, { tta: { scales: [0.5, 1], flip: false } })), 0);
      assert.ok(
        maxAbsDiff(fromConfig, await probsOf(withCfg, { tta: { scales: [0.5, 1] } })) > 1e-4,
        'the flip is off',
      );
      const flipped = await model((c) => {
        c.tta_pipeline = ttaPipeline([1], [0, 1]);
      });
      const explicitFlip = await probsOf(flipped, { tta: { scales: [1], flip: true } });
      assert.equal(maxAbsDiff(await probsOf(flipped, { tta: true }), explicitFlip), 0);
      const plain = await model(() => undefined);
      const defaults = await probsOf(plain, { tta: { scales: DEFAULT_TTA_SCALES } });
      assert.equal(maxAbsDiff(await probsOf(plain, { tta: true }), defaults), 0);
    });

    it('scales the loaded image, not the test Resize scale (mmseg 1.x), unless scales are given', async () => {
      const m = await model((c) => {
        (c.test_pipeline as Dict[]).splice(1, 0, { type: 'Resize', scale: [256, 64], keep_ratio: true });
        c.tta_pipeline = ttaPipeline([1], [0]);
      });
      const fromConfig = await probsOf(m, { tta: true });
      const atImageSize = await probsOf(m, { tta: { scales: [1], flip: false }, noResize: true });
      assert.equal(maxAbsDiff(fromConfig, atImageSize), 0);
      const atTestScale = await probsOf(m, { tta: { scales: [1], flip: false } });
      assert.ok(maxAbsDiff(fromConfig, atTestScale) > 1e-4, 'explicit scales keep the test-scale semantics');
    });
  });
});
