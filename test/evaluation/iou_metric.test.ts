import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IoUMetric, intersectAndUnion, nanMean, npRound } from '../../src/evaluation/iou_metric.js';
import { formatClassTable, formatResults, pyCenter, pyFloat, toJSON, toMarkdown } from '../../src/evaluation/report.js';

test('npRound is numpy round-half-even on x*100; nanMean skips NaN', () => {
  assert.equal(npRound(0.125), 0.12);
  assert.equal(npRound(0.375), 0.38);
  assert.equal(npRound(12.345678), 12.35);
  assert.equal(npRound(2.5, 0), 2);
  assert.equal(npRound(3.5, 0), 4);
  assert.ok(Number.isNaN(npRound(NaN)));
  assert.equal(nanMean([1, NaN, 3]), 2);
  assert.ok(Number.isNaN(nanMean([NaN, NaN])));
});

test('per-image areas by hand, with ignore pixels', () => {
  // classes 0..3, 255 = ignore
  const label = [0, 0, 1, 1, 255, 2, 2, 2];
  const pred = [0, 1, 1, 1, 3, 2, 0, 3];
  const a = intersectAndUnion(pred, label, 4);
  // valid pixels: all but index 4. intersect: idx0 (0), idx2,3 (1), idx5 (2)
  assert.deepEqual(Array.from(a.intersect), [1, 2, 1, 0]);
  assert.deepEqual(Array.from(a.pred), [2, 3, 1, 1]); // pred 3 at idx4 is ignored
  assert.deepEqual(Array.from(a.label), [2, 2, 3, 0]);
  assert.deepEqual(Array.from(a.union), [3, 3, 3, 1]);
  // out-of-range ids are not counted (torch.histc range)
  const b = intersectAndUnion([7, 0], [7, 0], 4);
  assert.deepEqual(Array.from(b.pred), [1, 0, 0, 0]);
  assert.deepEqual(Array.from(b.intersect), [1, 0, 0, 0]);
  assert.throws(() => intersectAndUnion([0], [0, 1], 4), /1 pixels, label has 2/);
});

test('metric by hand: NaN for absent classes, IoU 0 for predicted-but-absent, aAcc', () => {
  const m = new IoUMetric(5, { classNames: ['a', 'b', 'c', 'd', 'e'] });
  // image 1 (same as above, 4 classes used; class 4 never appears)
  m.add([0, 1, 1, 1, 3, 2, 0, 3], [0, 0, 1, 1, 255, 2, 2, 2]);
  // image 2: all class 1, predicted 1 except one 0
  m.add(Uint8Array.from([1, 1, 0, 1]), Uint8Array.from([1, 1, 1, 1]));
  // totals: intersect [1, 5, 1, 0, 0]; pred [3, 6, 1, 1, 0]; label [2, 6, 3, 0, 0]; union [4, 7, 3, 1, 0]
  const r = m.compute();
  const t = m.totals();
  assert.deepEqual(Array.from(t.intersect), [1, 5, 1, 0, 0]);
  assert.deepEqual(Array.from(t.union), [4, 7, 3, 1, 0]);
  // IoU: 1/4, 5/7, 1/3, 0 (predicted, not in GT), NaN (nowhere)
  assert.deepEqual(
    r.perClass.map((c) => c.iou),
    [25, 71.43, 33.33, 0, NaN],
  );
  // Acc: 1/2, 5/6, 1/3, NaN, NaN
  assert.deepEqual(
    r.perClass.map((c) => c.acc),
    [50, 83.33, 33.33, NaN, NaN],
  );
  // mIoU = mean(0.25, 0.714286, 0.333333, 0) = 0.324405 -> 32.44
  assert.equal(r.mIoU, 32.44);
  // mAcc = mean(0.5, 0.833333, 0.333333) = 0.555556 -> 55.56
  assert.equal(r.mAcc, 55.56);
  // aAcc = 7 / 11 = 0.636364 -> 63.64
  assert.equal(r.aAcc, 63.64);
  assert.equal(r.images, 2);
});

test('accumulator state save/restore (through JSON) gives identical results', () => {
  let seed = 1;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  const imgs = Array.from({ length: 6 }, () => {
    const label = Uint8Array.from({ length: 500 }, () => (rand(10) === 0 ? 255 : rand(7)));
    const pred = Uint8Array.from(label, (l) => (rand(3) === 0 ? rand(7) : l === 255 ? 0 : l));
    return { pred, label };
  });
  const full = new IoUMetric(7);
  for (const x of imgs) full.add(x.pred, x.label);
  const part = new IoUMetric(7);
  for (const x of imgs.slice(0, 3)) part.add(x.pred, x.label);
  const saved = JSON.parse(JSON.stringify(part.getState()));
  const resumed = IoUMetric.fromState(saved);
  for (const x of imgs.slice(3)) resumed.add(x.pred, x.label);
  assert.deepEqual(resumed.compute(), full.compute());
  assert.throws(() => new IoUMetric(3).setState(saved), /7 classes/);
});

test('empty metric: everything NaN, no throw', () => {
  const r = new IoUMetric(2).compute();
  assert.ok(Number.isNaN(r.mIoU) && Number.isNaN(r.aAcc));
});

test('table, markdown and JSON output', () => {
  const m = new IoUMetric(3, { classNames: ['wall', 'bed ', 'sky'] });
  m.add([0, 0, 1, 1], [0, 1, 1, 1]);
  const r = m.compute();
  const table = formatClassTable(r);
  assert.equal(
    table,
    [
      '+-------+-------+-------+',
      '| Class |  IoU  |  Acc  |',
      '+-------+-------+-------+',
      '|  wall |  50.0 | 100.0 |',
      '|  bed  | 66.67 | 66.67 |',
      '|  sky  |  nan  |  nan  |',
      '+-------+-------+-------+',
    ].join('\n'),
  );
  assert.match(formatResults(r), /per class results:\n\+-/);
  assert.match(formatResults(r), /Summary:\n.*\n\| aAcc \| {2}mIoU \| {2}mAcc \|\n.*\n\| 75.0 \| 58.33 \| 83.33 \|/);
  const md = toMarkdown(r);
  assert.match(md, /\*\*mIoU 58.33\*\*/);
  assert.match(md, /\| bed {2}\| 66.67 \| 66.67 \|/);
  assert.match(md, /\| sky \| nan \| nan \|/);
  const js = JSON.parse(JSON.stringify(toJSON(r)));
  assert.deepEqual(js.per_class[2], { class: 'sky', IoU: null, Acc: null });
  assert.equal(js.mIoU, 58.33);
  assert.equal(js.aAcc, 75);
  assert.equal(pyFloat(50), '50.0');
  assert.equal(pyFloat(66.67), '66.67');
  // CPython str.center puts the odd space on the left when the width is odd
  assert.equal(pyCenter('ab', 5), '  ab ');
  assert.equal(pyCenter('abc', 6), ' abc  ');
});
