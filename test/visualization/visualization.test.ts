import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Command } from 'commander';
import sharp from 'sharp';
import { register as registerPlotLog } from '../../src/cli/plot_log.js';
import { register as registerSynthetic } from '../../src/cli/make_synthetic_dataset.js';
import { parseSize } from '../../src/cli/options.js';
import { makeImage, makeLabel } from '../../src/data/types.js';
import { classShares, colorize, formatShares, overlay } from '../../src/visualization/overlay.js';
import { ADE20K_CLASSES, ADE20K_PALETTE, generatePalette, paletteBytes } from '../../src/data/metainfo.js';
import {
  formatTick,
  movingAverage,
  niceTicks,
  parseTrainingLog,
  plotLog,
  renderCurvesSvg,
} from '../../src/visualization/plot.js';

let tmp = '';
before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'beitseg-vis-'));
});
after(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

test('ADE20K palette: 150 classes, spot values, the shared grey', () => {
  assert.equal(ADE20K_CLASSES.length, 150);
  assert.equal(ADE20K_PALETTE.length, 150);
  assert.equal(ADE20K_CLASSES[0], 'wall');
  assert.equal(ADE20K_CLASSES[7], 'bed ');
  assert.equal(ADE20K_CLASSES[149], 'flag');
  assert.equal(ADE20K_CLASSES[44], 'chest of drawers');
  assert.deepEqual([...ADE20K_PALETTE[0]], [120, 120, 120]);
  assert.deepEqual([...ADE20K_PALETTE[7]], [204, 5, 255]);
  assert.deepEqual([...ADE20K_PALETTE[149]], [92, 0, 255]);
  assert.deepEqual([...ADE20K_PALETTE[6]], [140, 140, 140]);
  assert.deepEqual([...ADE20K_PALETTE[48]], [140, 140, 140]);
  assert.equal(new Set(ADE20K_PALETTE.map((c) => c.join(','))).size, 149, 'one duplicate colour only');
  assert.equal(paletteBytes(ADE20K_PALETTE).length, 450);
  const g = generatePalette(10);
  assert.equal(new Set(g.map((c) => c.join(','))).size, 10);
});

test('overlay: uint8(image*(1-a) + colour*a); ids >= num classes stay black in the mask', () => {
  const img = makeImage(1, 3, Uint8Array.from([100, 100, 100, 10, 20, 30, 200, 0, 255]));
  const seg = makeLabel(1, 3, Uint8Array.from([0, 1, 255]));
  const pal = [
    [255, 0, 0],
    [0, 255, 0],
  ] as const;
  const o = overlay(img, seg, pal, { alpha: 0.5 });
  // 100*0.5 + 255*0.5 = 177.5 -> 177; 10*0.5 + 0 = 5; 20*0.5 + 127.5 = 137.5 -> 137; ignored: image*0.5
  assert.deepEqual(Array.from(o.data), [177, 50, 50, 5, 137, 15, 100, 0, 127]);
  const keep = overlay(img, seg, pal, { alpha: 0.5, unlabeled: 'image' });
  assert.deepEqual(Array.from(keep.data.subarray(6)), [200, 0, 255]);
  // default alpha 0.8: 100*(1-0.8) + 255*0.8 = 224.0000.. -> 224
  assert.equal(overlay(img, seg, pal).data[0], 224);
  assert.deepEqual(Array.from(colorize(seg, pal).data), [255, 0, 0, 0, 255, 0, 0, 0, 0]);
  assert.throws(() => overlay(img, makeLabel(2, 2), pal), /1x3 but the segmentation is 2x2/);
});

test('class pixel shares, largest first, unlabeled counted apart', () => {
  const seg = makeLabel(2, 4, Uint8Array.from([2, 2, 2, 0, 0, 255, 255, 255]));
  const s = classShares(seg, ['a', 'b', 'c']);
  assert.deepEqual(
    s.classes.map((c) => [c.name, c.pixels]),
    [
      ['c', 3],
      ['a', 2],
    ],
  );
  assert.equal(s.classes[0].share, 3 / 8);
  assert.equal(s.unlabeledPixels, 3);
  assert.match(formatShares(s), /37\.50% {2}c \(3 px\)\n\s+25\.00% {2}a \(2 px\)\n\s+37\.50% {2}\(unlabeled/);
});

test('log parsing: train/val lines, step, 0.x fractions, junk lines skipped', () => {
  const text = [
    '{"iter": 50, "loss": 1.5, "lr": 1e-5, "decode.acc_seg": 40.1}',
    '{"iter": 100, "loss": 1.25, "lr": 2e-5}',
    '{"step": 100, "mIoU": 12.3, "mAcc": 20.5, "aAcc": 60.0}',
    '{"mode": "val", "iter": 200, "mIoU": 0.25, "mAcc": 0.5, "aAcc": 0.75}',
    'not json',
    '{"loss": 3}',
    '',
    '{"iter": 150, "los',
  ].join('\n');
  const log = parseTrainingLog(text);
  assert.deepEqual(
    log.train.map((p) => [p.iter, p.loss, p.lr]),
    [
      [50, 1.5, 1e-5],
      [100, 1.25, 2e-5],
    ],
  );
  assert.equal(log.train[0].accSeg, 40.1);
  assert.deepEqual(log.val, [
    { iter: 100, mIoU: 12.3, mAcc: 20.5, aAcc: 60 },
    { iter: 200, mIoU: 25, mAcc: 50, aAcc: 75 },
  ]);
  assert.equal(log.skipped, 3);
});

test('axis helpers', () => {
  assert.deepEqual(niceTicks(0, 3e-5), [0, 1e-5, 2e-5, 3e-5]);
  assert.deepEqual(niceTicks(0.55, 4.1), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(['0', '3e-5', '0.25', '2k', '160k', '1.5M'], [0, 3e-5, 0.25, 2000, 160000, 1.5e6].map(formatTick));
  assert.deepEqual(movingAverage([1, 3, 5, 7], 2), [1, 2, 4, 6]);
});

test('curves PNG: right size, drawn lines; clear error for a missing log', async () => {
  const lines: string[] = [];
  for (let it = 10; it <= 400; it += 10) {
    lines.push(JSON.stringify({ iter: it, loss: 2 / Math.sqrt(it), lr: 1e-4 * Math.min(1, it / 100) }));
    if (it % 100 === 0) lines.push(JSON.stringify({ iter: it, mIoU: it / 10, mAcc: it / 8, aAcc: 50 + it / 20 }));
  }
  const logPath = path.join(tmp, 'log.jsonl');
  await fs.writeFile(logPath, lines.join('\n'));
  const out = path.join(tmp, 'curves.png');
  const r = await plotLog(logPath, out, { width: 600, height: 500 });
  assert.deepEqual(r, { trainPoints: 40, valPoints: 4, skipped: 0 });
  const { data, info } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height], [600, 500]);
  // the loss line colour (#1f77b4) and the mIoU colour (#2ca02c) are present
  const has = (rgb: number[]) => {
    for (let i = 0; i < data.length; i += info.channels) {
      if (Math.abs(data[i] - rgb[0]) < 8 && Math.abs(data[i + 1] - rgb[1]) < 8 && Math.abs(data[i + 2] - rgb[2]) < 8)
        return true;
    }
    return false;
  };
  assert.ok(has([0x1f, 0x77, 0xb4]), 'loss curve drawn');
  assert.ok(has([0x2c, 0xa0, 0x2c]), 'mIoU curve drawn');
  assert.match(renderCurvesSvg(parseTrainingLog(''), {}), /no data/);
  await assert.rejects(plotLog(path.join(tmp, 'none.jsonl'), out), /log file not found: .*none\.jsonl/);
});

test('CLI commands register and run (plot-log, make-synthetic-dataset)', async () => {
  const program = new Command();
  program.exitOverride();
  registerPlotLog(program);
  registerSynthetic(program);
  const logPath = path.join(tmp, 'cli.jsonl');
  await fs.writeFile(logPath, '{"iter": 1, "loss": 2, "lr": 0.1}\n{"iter": 2, "loss": 1, "lr": 0.1}\n');
  const out = path.join(tmp, 'cli.png');
  const logs: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => logs.push(a.join(' '));
  try {
    await program.parseAsync([
      'node',
      'beitseg',
      'plot-log',
      logPath,
      '--out',
      out,
      '--width',
      '400',
      '--height',
      '300',
    ]);
    const root = path.join(tmp, 'cli-synth');
    await program.parseAsync([
      'node',
      'beitseg',
      'make-synthetic-dataset',
      root,
      '--n',
      '3',
      '--size',
      '16x24',
      '--classes',
      '3',
      '--seed',
      '5',
      '--split-val',
      '1',
    ]);
    assert.equal((await fs.readdir(path.join(root, 'images', 'training'))).length, 2);
    assert.equal((await fs.readdir(path.join(root, 'annotations', 'validation'))).length, 1);
  } finally {
    console.log = orig;
  }
  assert.equal((await sharp(out).metadata()).width, 400);
  assert.match(logs.join('\n'), /wrote .*cli\.png: 2 training points, 0 validation points/);
  assert.match(logs.join('\n'), /wrote 2 training \+ 1 validation images \(16x24\)/);
  assert.deepEqual(parseSize('256x320'), [256, 320]);
  assert.throws(() => parseSize('256'), /HEIGHTxWIDTH/);
});
