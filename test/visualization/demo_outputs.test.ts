/**
 * The demo's showcase pieces (issue 30.10): the 'full' synthetic scene (every pixel a class,
 * labels 0..C-1, the 'ade' scene unchanged), predict's colour label map and overlay with a legend,
 * the per-image IoU and the summary page.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readImage, readLabel } from '../../src/data/image_io.js';
import { deriveSeed, Rng } from '../../src/data/rng.js';
import { classStyles, generateScene, makeSyntheticDataset } from '../../src/data/synthetic.js';
import { makeImage } from '../../src/data/types.js';
import type { InferenceResult } from '../../src/inference/api.js';
import { writePrediction } from '../../src/inference/outputs.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { withLegend } from '../../src/visualization/legend.js';
import { imageIoU, summaryHtml } from '../../src/visualization/summary_page.js';

/** sha256 (first 16 hex digits) of the first 8 'ade' labels (seed 0, 32x40, 6 classes), before the option. */
const ADE_DIGEST = 'd82e7407878578af';

let dir = '';
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-demo-out-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("synthetic scene 'full'", () => {
  it('every pixel is a class 0..C-1 and every class appears; the metainfo says so', async () => {
    const root = path.join(dir, 'full');
    await makeSyntheticDataset(root, { n: 12, splitVal: 2, height: 40, width: 48, classes: 6, seed: 3, scene: 'full' });
    const seen = new Set<number>();
    for (const split of ['training', 'validation']) {
      for (const f of fs.readdirSync(path.join(root, 'annotations', split))) {
        for (const v of (await readLabel(path.join(root, 'annotations', split, f))).data) seen.add(v);
      }
    }
    assert.deepEqual([...seen].sort(), [0, 1, 2, 3, 4, 5]);
    const meta = JSON.parse(fs.readFileSync(path.join(root, 'metainfo.json'), 'utf8'));
    assert.equal(meta.reduce_zero_label, false);
    assert.equal(meta.generator.scene, 'full');
  });

  it("the 'ade' scene (the default, used by the tests' data) is unchanged, 0 = other included", () => {
    const styles = classStyles(6);
    const scene = (i: number, kind?: 'ade') => generateScene(new Rng(deriveSeed(0, i)), 32, 40, styles, kind);
    const labels = Array.from({ length: 8 }, (_, i) => scene(i).label.data);
    assert.deepEqual(scene(5, 'ade').label.data, labels[5]);
    assert.ok(
      labels.some((l) => l.includes(0)),
      'some "other" pixels',
    );
    const digest = createHash('sha256');
    for (const l of labels) digest.update(l);
    // The labels of the generator before the 'full' option: tests that train on data/synthetic see the same data.
    assert.equal(digest.digest('hex').slice(0, 16), ADE_DIGEST);
  });

  it('refuses an unknown scene', async () => {
    await assert.rejects(makeSyntheticDataset(path.join(dir, 'x'), { n: 1, scene: 'forest' as 'full' }), {
      message: `synthetic dataset: scene must be 'ade' or 'full', got "forest"`,
    });
  });
});

describe('colour outputs', () => {
  it('writePrediction color: the label map in palette colours and the overlay with a legend', async () => {
    const img = makeImage(20, 30);
    img.data.fill(100);
    const pred = new Int32Array(20 * 30).map((_, i) => (i % 30 < 10 ? 0 : 2));
    const result = { pred, height: 20, width: 30, kind: 'logits', logits: null as unknown as Tensor };
    const meta = {
      classes: ['sky', 'road', 'a <b>&"tree"'],
      palette: [
        [10, 20, 30],
        [40, 50, 60],
        [200, 100, 0],
      ] as [number, number, number][],
    };
    const stem = path.join(dir, 'pred', 'x');
    await writePrediction(stem, img, result as InferenceResult, meta, { color: true });
    assert.deepEqual(fs.readdirSync(path.join(dir, 'pred')).sort(), [
      'x.json',
      'x_color.png',
      'x_legend.png',
      'x_overlay.png',
      'x_pred.png',
    ]);
    const colour = await readImage(`${stem}_color.png`);
    assert.deepEqual([...colour.data.subarray(0, 3)], [10, 20, 30]);
    assert.deepEqual([...colour.data.subarray(3 * 29, 3 * 30)], [200, 100, 0]);
    const legend = await readImage(`${stem}_legend.png`);
    const overlayImg = await readImage(`${stem}_overlay.png`);
    assert.equal(legend.width, 30 + 190);
    assert.ok(legend.height >= 20);
    // the overlay sits unchanged at the left
    assert.deepEqual([...legend.data.subarray(0, 3 * 30)], [...overlayImg.data.subarray(0, 3 * 30)]);
    // the first swatch (the largest class, id 2: 2/3 of the pixels) in its colour
    const at = (x: number, y: number) => [
      ...legend.data.subarray(3 * (y * legend.width + x), 3 * (y * legend.width + x) + 3),
    ];
    assert.deepEqual(at(30 + 12, 12), [200, 100, 0]);
    assert.deepEqual(at(30 + 12, 12 + 18), [10, 20, 30]);
  });

  it('withLegend keeps a taller legend than the image', async () => {
    const entries = Array.from({ length: 5 }, (_, k) => ({
      name: `c${k}`,
      colour: [k, k, k] as [number, number, number],
      share: 0.2,
    }));
    const out = await withLegend(makeImage(8, 8), entries);
    assert.deepEqual([out.width, out.height], [8 + 190, 12 + 5 * 18]);
  });
});

describe('summary page', () => {
  it('imageIoU: per class intersection over union, ignored pixels skipped, absent classes null', () => {
    const gt = Uint8Array.from([0, 0, 1, 1, 255, 2]);
    const pred = Uint8Array.from([0, 1, 1, 1, 0, 2]);
    const iou = imageIoU(pred, gt, 4);
    assert.deepEqual(
      iou.map((v) => (v === null ? v : Number(v.toFixed(6)))),
      [50, 66.666667, 100, null],
    );
    assert.throws(() => imageIoU(pred, gt.subarray(1), 4), /6 predicted vs 5 true pixels/);
  });

  it('shows input, prediction and ground truth with the IoU, escaping file-derived text', () => {
    const html = summaryHtml({
      title: 'demo',
      classes: ['sky', '<script>x</script>'],
      palette: [
        [1, 2, 3],
        [4, 5, 6],
      ],
      classIoU: [91.25, null],
      metrics: { mIoU: 91.25, mAcc: 95, aAcc: 96.5, images: 3 },
      images: [
        { name: 'a"b', input: 'in/a.jpg', prediction: 'p/a_color.png', groundTruth: 'g/a.png', iou: [80, null] },
      ],
    });
    assert.ok(!html.includes('<script>'));
    assert.ok(html.includes('&lt;script&gt;x&lt;/script&gt;'));
    for (const s of ['src="in/a.jpg"', 'src="p/a_color.png"', 'src="g/a.png"', '<b>mIoU 91.3</b>', 'a&quot;b']) {
      assert.ok(html.includes(s), s);
    }
    assert.match(html, /rgb\(1,2,3\)"><\/span>sky <b>80\.0<\/b>/);
  });
});
