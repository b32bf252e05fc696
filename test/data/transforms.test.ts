import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/data/rng.js';
import {
  adjustSaturation,
  ade20kTestPipeline,
  ade20kTrainPipeline,
  buildPipeline,
  convertU8,
  cropPassesCatMaxRatio,
  flipImage,
  flipLabel,
  normalizeImage,
  Pad,
  padImage,
  padLabel,
  PhotoMetricDistortion,
  RandomCrop,
  RandomFlip,
  RandomResize,
  reduceZeroLabel,
  rescaleSize,
  Resize,
  scaleSize,
  shiftHue,
  type Sample,
} from '../../src/data/transforms/index.js';
import { makeImage, makeLabel, type RgbImage } from '../../src/data/types.js';

function randomImage(h: number, w: number, seed = 1): RgbImage {
  const r = new Rng(seed);
  return makeImage(
    h,
    w,
    Uint8Array.from({ length: h * w * 3 }, () => r.randint(256)),
  );
}

test('mmcv rescale sizes: factor = min(long/long_side, short/short_side), int(x*s + 0.5)', () => {
  // 683x512 (w x h) -> short side 640: s = min(2560/683, 640/512) = 1.25 -> 854 x 640
  assert.deepEqual(rescaleSize(683, 512, [2560, 640]).slice(0, 2), [854, 640]);
  // 256x256 -> 640x640
  assert.deepEqual(rescaleSize(256, 256, [2560, 640]).slice(0, 2), [640, 640]);
  // very wide image: the long side binds: 3000x500 -> s = min(2560/3000, 640/500) = 0.8533 -> 2560 x 427
  assert.deepEqual(rescaleSize(3000, 500, [2560, 640]).slice(0, 2), [2560, 427]);
  // order of the scale pair does not matter
  assert.deepEqual(rescaleSize(683, 512, [640, 2560]), rescaleSize(683, 512, [2560, 640]));
  assert.deepEqual(scaleSize(5, 3, 0.5), [3, 2]); // int(2.5+0.5)=3, int(1.5+0.5)=2
  assert.deepEqual(rescaleSize(10, 20, 0.25).slice(0, 2), [3, 5]);
});

test('test Resize(scale=(2560,640), keep_ratio) keeps the label untouched when loaded after it', () => {
  const s: Sample = { img: randomImage(512, 683), oriShape: [512, 683], imgShape: [512, 683] };
  new Resize({ type: 'Resize', scale: [2560, 640], keep_ratio: true }).apply(s);
  assert.deepEqual([s.img!.height, s.img!.width], [640, 854]);
  assert.deepEqual(s.imgShape, [640, 854]);
  assert.deepEqual(s.scaleFactor, [854 / 683, 640 / 512]);
});

test('Resize without keep_ratio goes to exactly (w, h); label resized by nearest', () => {
  const lab = makeLabel(
    4,
    6,
    Uint8Array.from({ length: 24 }, (_, i) => i % 5),
  );
  const s: Sample = { img: randomImage(4, 6), gtSeg: lab };
  new Resize({ type: 'Resize', scale: [9, 7] }).apply(s);
  assert.deepEqual([s.img!.height, s.img!.width, s.gtSeg!.height, s.gtSeg!.width], [7, 9, 7, 9]);
  assert.ok(s.gtSeg!.data.every((v) => v < 5));
});

test('RandomResize: target = (int(2560 r), int(640 r)), r in [0.5, 2)', () => {
  const t = new RandomResize({ type: 'RandomResize', scale: [2560, 640], ratio_range: [0.5, 2.0], keep_ratio: true });
  const rng = new Rng(5);
  for (let i = 0; i < 200; i++) {
    const [w, h] = t.sampleScale(rng);
    assert.ok(h >= 320 && h < 1280 && w >= 1280 && w < 5120);
    assert.ok(Math.abs(w / 2560 - h / 640) < 0.005);
  }
  const s: Sample = { img: randomImage(30, 40), gtSeg: makeLabel(30, 40) };
  t.apply(s, new Rng(2));
  assert.equal(s.img!.height, s.gtSeg!.height);
  assert.equal(s.img!.width, s.gtSeg!.width);
  // short side equals the drawn short target (aspect < 4 here)
  assert.ok(Math.abs(Math.min(s.img!.height, s.img!.width) - s.scale![1]) <= 1);
});

test('RandomCrop: sizes, smaller images, and offsets cover the margin', () => {
  const crop = new RandomCrop({ type: 'RandomCrop', crop_size: [5, 7] });
  const seen = new Set<string>();
  const rng = new Rng(11);
  for (let i = 0; i < 300; i++) {
    const img = makeImage(
      8,
      9,
      Uint8Array.from({ length: 8 * 9 * 3 }, (_, k) => Math.floor(k / 3)),
    );
    const s: Sample = {
      img,
      gtSeg: makeLabel(
        8,
        9,
        Uint8Array.from({ length: 72 }, (_, k) => k),
      ),
    };
    crop.apply(s, rng);
    assert.deepEqual([s.img!.height, s.img!.width, s.gtSeg!.height, s.gtSeg!.width], [5, 7, 5, 7]);
    // image pixel value = its source index, like the label: they were cropped together
    for (let k = 0; k < 35; k++) assert.equal(s.img!.data[3 * k], s.gtSeg!.data[k]);
    const top = s.gtSeg!.data[0];
    seen.add(`${Math.floor(top / 9)},${top % 9}`);
  }
  assert.equal(seen.size, 4 * 3, 'offsets 0..3 x 0..2 all drawn'); // margins 3 and 2, inclusive
  const small: Sample = { img: randomImage(3, 4), gtSeg: makeLabel(3, 4) };
  crop.apply(small, rng);
  assert.deepEqual([small.img!.height, small.img!.width], [3, 4]);
});

test('RandomCrop cat_max_ratio: rejects single-class crops, ignores 255', () => {
  // 20x20 label: left half class 1, right half class 2, top-left 4x4 corner 255.
  const lab = makeLabel(20, 20);
  for (let y = 0; y < 20; y++)
    for (let x = 0; x < 20; x++) lab.data[y * 20 + x] = y < 4 && x < 4 ? 255 : x < 10 ? 1 : 2;
  assert.equal(cropPassesCatMaxRatio(lab, [0, 10, 0, 10], 0.75, 255), false); // only class 1 (+255)
  assert.equal(cropPassesCatMaxRatio(lab, [0, 10, 5, 15], 0.75, 255), true); // 50/50
  // box y 0..10, x 2..12: class 1 = 8 cols x 10 rows - 8 corner cells (x 2..3, y 0..3) = 72,
  // class 2 = 2 cols x 10 = 20 -> 72 / 92 = 0.78
  assert.equal(cropPassesCatMaxRatio(lab, [0, 10, 2, 12], 0.75, 255), false);
  assert.equal(cropPassesCatMaxRatio(lab, [0, 10, 2, 12], 0.8, 255), true);
  // With cat_max_ratio, the chosen crop must pass whenever a passing box is likely to be found.
  const crop = new RandomCrop({ type: 'RandomCrop', crop_size: [10, 10], cat_max_ratio: 0.75 });
  const rng = new Rng(4);
  let passed = 0;
  for (let i = 0; i < 200; i++) {
    const box = crop.chooseBox({ img: randomImage(20, 20), gtSeg: lab }, rng);
    if (cropPassesCatMaxRatio(lab, box, 0.75, 255)) passed++;
  }
  // a random box passes when its x offset is 3..7 (about 5/11); 11 tries fail together ~0.1% of the time
  assert.ok(passed > 180, `passed ${passed}/200`);
  // a label with one class can never pass: after 10 re-draws the 11th box is used
  const uniform = makeLabel(20, 20).data.fill(3);
  const r2 = new Rng(1);
  const before = r2.getState();
  crop.chooseBox({ img: randomImage(20, 20), gtSeg: makeLabel(20, 20, uniform) }, r2);
  const r3 = Rng.fromState(before);
  for (let i = 0; i < 22; i++) r3.randint(0, 11);
  assert.equal(r2.nextU32(), r3.nextU32(), 'exactly 11 boxes (22 draws) were drawn');
});

test('flip twice is the identity; flip moves columns', () => {
  const img = randomImage(5, 8);
  assert.deepEqual(flipImage(flipImage(img)), img);
  assert.deepEqual(flipImage(flipImage(img, 'vertical'), 'vertical'), img);
  const lab = makeLabel(2, 3, Uint8Array.from([1, 2, 3, 4, 5, 6]));
  assert.deepEqual(Array.from(flipLabel(lab).data), [3, 2, 1, 6, 5, 4]);
  assert.deepEqual(
    Array.from(flipImage(makeImage(1, 2, Uint8Array.from([1, 2, 3, 4, 5, 6]))).data),
    [4, 5, 6, 1, 2, 3],
  );
});

test('RandomFlip(prob 0.5) flips about half the time, image and label together', () => {
  const t = new RandomFlip({ type: 'RandomFlip', prob: 0.5 });
  const rng = new Rng(8);
  let flips = 0;
  for (let i = 0; i < 400; i++) {
    const s: Sample = {
      img: makeImage(1, 2, Uint8Array.from([1, 1, 1, 2, 2, 2])),
      gtSeg: makeLabel(1, 2, Uint8Array.from([1, 2])),
    };
    t.apply(s, rng);
    if (s.flip) {
      flips++;
      assert.equal(s.flipDirection, 'horizontal');
      assert.deepEqual(Array.from(s.gtSeg!.data), [2, 1]);
      assert.equal(s.img!.data[0], 2);
    } else {
      assert.deepEqual(Array.from(s.gtSeg!.data), [1, 2]);
    }
  }
  assert.ok(flips > 160 && flips < 240, `${flips}`);
});

test('Pad: image 0 / label 255 at bottom-right; normalised padding = 0', () => {
  const img = makeImage(2, 3, new Uint8Array(18).fill(200));
  const p = padImage(img, 4, 5);
  assert.equal(p.data[(1 * 5 + 2) * 3], 200);
  assert.equal(p.data[(1 * 5 + 3) * 3], 0);
  assert.equal(p.data[(2 * 5 + 0) * 3], 0);
  const l = padLabel(makeLabel(2, 3, new Uint8Array(6).fill(7)), 4, 5);
  assert.deepEqual(Array.from(l.data), [7, 7, 7, 255, 255, 7, 7, 7, 255, 255, ...new Array(10).fill(255)]);
  const s: Sample = { img, gtSeg: makeLabel(2, 3) };
  new Pad({ type: 'Pad', size: [4, 5], pad_val: 0, seg_pad_val: 255 }).apply(s);
  assert.deepEqual(s.padShape, [4, 5]);
  assert.deepEqual(s.imgShape, [2, 3]);
  const x = normalizeImage(s.img!, { validHeight: s.imgShape![0], validWidth: s.imgShape![1], padVal: s.imgPadVal });
  assert.equal(x[4], 0); // (0, 4) is padding: 0 in normalised space, not (0 - mean) / std
  assert.ok(Math.abs(x[0] - (200 - 123.675) / 58.395) < 1e-5);
});

test('normalizeImage: float32 (x - mean) / std per RGB channel, CHW, optional padTo', () => {
  const img = makeImage(1, 2, Uint8Array.from([0, 128, 255, 10, 20, 30]));
  const x = normalizeImage(img, { padTo: [2, 3] });
  const f = Math.fround;
  assert.equal(x.length, 18);
  assert.equal(x[0], f(f(0 - f(123.675)) / f(58.395)));
  assert.equal(x[1], f(f(10 - f(123.675)) / f(58.395)));
  assert.equal(x[6], f(f(128 - f(116.28)) / f(57.12))); // G plane
  assert.equal(x[12 + 1], f(f(30 - f(103.53)) / f(57.375))); // B plane
  assert.equal(x[2], 0);
  assert.equal(x[3], 0);
});

test('reduce_zero_label: 0 -> 255, k -> k-1, 255 stays 255', () => {
  const l = reduceZeroLabel(makeLabel(1, 5, Uint8Array.from([0, 1, 150, 254, 255])));
  assert.deepEqual(Array.from(l.data), [255, 0, 149, 253, 255]);
});

test('convertU8 is numpy float32 clip + truncation', () => {
  const d = Uint8Array.from([0, 10, 100, 250, 255]);
  convertU8(d, 1, 10.7);
  assert.deepEqual(Array.from(d), [10, 20, 110, 255, 255]);
  const e = Uint8Array.from([0, 3, 100, 200]);
  convertU8(e, 1.5, 0);
  assert.deepEqual(Array.from(e), [0, 4, 150, 255]);
  const g = Uint8Array.from([5, 100]);
  convertU8(g, 1, -7.9);
  assert.deepEqual(Array.from(g), [0, 92]);
});

test('saturation x1 and hue +0 keep primaries; hue shift wraps mod 180', () => {
  const img = makeImage(1, 3, Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255]));
  assert.deepEqual(adjustSaturation(img, 1), img);
  assert.deepEqual(shiftHue(img, 0), img);
  // red (H 0) - 60 -> H 120 = blue; green (60) -> 0 = red; blue (120) -> 60 = green
  assert.deepEqual(Array.from(shiftHue(img, -60).data), [0, 0, 255, 255, 0, 0, 0, 255, 0]);
  // saturation 0 -> grey at V
  assert.deepEqual(Array.from(adjustSaturation(img, 0).data), new Array(9).fill(255));
});

test('PhotoMetricDistortion: deterministic for a seed, keeps shape, changes pixels', () => {
  const t = new PhotoMetricDistortion();
  const img = randomImage(16, 40, 3);
  const a = t.apply({ img }, new Rng(1)).img!;
  const b = t.apply({ img }, new Rng(1)).img!;
  assert.deepEqual(a, b);
  assert.deepEqual([a.height, a.width], [16, 40]);
  let changed = 0;
  for (let seed = 0; seed < 20; seed++) {
    const c = t.apply({ img }, new Rng(seed)).img!;
    if (!c.data.every((v, i) => v === img.data[i])) changed++;
  }
  assert.ok(changed >= 15, `${changed}`);
});

test('buildPipeline: ADE pipelines build; unknown types and fields are clear errors', () => {
  assert.equal(buildPipeline(ade20kTrainPipeline()).transforms.length, 7);
  assert.equal(buildPipeline(ade20kTestPipeline()).transforms.length, 4);
  assert.throws(
    () => buildPipeline([{ type: 'RandomRotate' }]),
    /unknown transform type 'RandomRotate'; supported: .*RandomCrop/,
  );
  assert.throws(
    () => buildPipeline([{ type: 'RandomCrop', crop_size: [640, 640], cat_max: 0.75 }]),
    /pipeline\[0\]: RandomCrop: unknown field 'cat_max'; supported fields: crop_size, cat_max_ratio, ignore_index/,
  );
  assert.throws(() => buildPipeline([{ type: 'RandomFlip' }]), /prob is required/);
  assert.throws(() => buildPipeline([{ type: 'Resize', scale: [1, 2], interpolation: 'bicubic' }]), /interpolation/);
});

test('train pipeline on in-memory data: 640 crop, labels aligned, deterministic', async () => {
  // Skip the loaders: start from a loaded sample.
  const p = buildPipeline(ade20kTrainPipeline().slice(2));
  const lab = makeLabel(300, 400);
  for (let i = 0; i < lab.data.length; i++) lab.data[i] = i % 400 < 200 ? 1 : 255;
  const mk = (): Sample => ({ img: randomImage(300, 400, 9), gtSeg: makeLabel(300, 400, lab.data.slice()) });
  const a = await p.run(mk(), new Rng(3));
  const b = await p.run(mk(), new Rng(3));
  assert.deepEqual(a, b);
  assert.ok(a.packed);
  assert.ok(a.img!.height <= 640 && a.img!.width <= 640);
  assert.deepEqual([a.gtSeg!.height, a.gtSeg!.width], [a.img!.height, a.img!.width]);
  assert.ok(a.gtSeg!.data.every((v) => v === 1 || v === 255));
});
