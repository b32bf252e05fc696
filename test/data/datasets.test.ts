import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { buildDataset } from '../../src/data/datasets.js';
import { readImage, readLabel } from '../../src/data/image_io.js';
import { makeSyntheticDataset } from '../../src/data/synthetic.js';
import { ADE20K_CLASSES } from '../../src/data/metainfo.js';

let tmp = '';
let root = '';
before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'beitseg-ds-'));
  root = path.join(tmp, 'synth');
  await makeSyntheticDataset(root, { n: 7, height: 24, width: 32, classes: 5, seed: 3, splitVal: 2 });
});
after(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const adeCfg = (r: string, split = 'training') => ({
  type: 'ADE20KDataset',
  data_root: r,
  data_prefix: { img_path: `images/${split}`, seg_map_path: `annotations/${split}` },
});

test('ADE20K layout: sorted pairs, reduce_zero_label on, metainfo.json picked up', async () => {
  const ds = await buildDataset(adeCfg(root));
  assert.equal(ds.length, 5);
  const names = ds.items.map((it) => path.basename(it.imgPath));
  assert.deepEqual(names, [...names].sort());
  for (const it of ds.items) {
    assert.ok(it.reduceZeroLabel);
    assert.equal(path.basename(it.segMapPath!, '.png'), path.basename(it.imgPath, '.jpg'));
    assert.ok(it.segMapPath!.includes(path.join('annotations', 'training')));
  }
  assert.equal(ds.metainfo.classes.length, 5);
  assert.equal(ds.metainfo.palette.length, 5);
  const val = await buildDataset(adeCfg(root, 'validation'));
  assert.equal(val.length, 2);
  const s = val.sample(1);
  assert.equal(s.imgPath, val.items[1].imgPath);
  assert.equal(s.reduceZeroLabel, true);
});

test('without metainfo.json an ADE20KDataset has the 150 ADE classes', async () => {
  const r2 = path.join(tmp, 'nometa');
  await fs.cp(root, r2, { recursive: true });
  await fs.rm(path.join(r2, 'metainfo.json'));
  const ds = await buildDataset(adeCfg(r2));
  assert.equal(ds.metainfo.classes.length, 150);
  assert.equal(ds.metainfo.classes[7], ADE20K_CLASSES[7]);
  // explicit metainfo in the config wins
  const ds2 = await buildDataset({
    ...adeCfg(r2),
    metainfo: {
      classes: ['a', 'b'],
      palette: [
        [1, 2, 3],
        [4, 5, 6],
      ],
    },
  });
  assert.deepEqual(ds2.metainfo, {
    classes: ['a', 'b'],
    palette: [
      [1, 2, 3],
      [4, 5, 6],
    ],
  });
});

test('generic layout with suffixes, reduce_zero_label off, images-only mode', async () => {
  const r3 = path.join(tmp, 'generic');
  await fs.mkdir(path.join(r3, 'img', 'sub'), { recursive: true });
  await fs.mkdir(path.join(r3, 'ann', 'sub'), { recursive: true });
  const src = path.join(root, 'images', 'training', 'synth_000000.jpg');
  const lab = path.join(root, 'annotations', 'training', 'synth_000000.png');
  for (const n of ['b', 'a', 'sub/c']) {
    await fs.copyFile(src, path.join(r3, 'img', `${n}_leftImg.jpg`));
    await fs.copyFile(lab, path.join(r3, 'ann', `${n}_gt.png`));
  }
  await fs.writeFile(path.join(r3, 'img', '.hidden_leftImg.jpg'), 'x');
  const cfg = {
    type: 'BaseSegDataset',
    data_root: r3,
    data_prefix: { img_path: 'img', seg_map_path: 'ann' },
    img_suffix: '_leftImg.jpg',
    seg_map_suffix: '_gt.png',
    metainfo: { classes: ['x', 'y'] },
  };
  const ds = await buildDataset(cfg);
  assert.deepEqual(
    ds.items.map((i) => path.relative(r3, i.imgPath)),
    ['img/a_leftImg.jpg', 'img/b_leftImg.jpg', 'img/sub/c_leftImg.jpg'],
  );
  assert.deepEqual(
    ds.items.map((i) => path.relative(r3, i.segMapPath!)),
    ['ann/a_gt.png', 'ann/b_gt.png', 'ann/sub/c_gt.png'],
  );
  assert.ok(ds.items.every((i) => !i.reduceZeroLabel));
  assert.equal(ds.metainfo.palette.length, 2); // generated
  const imgsOnly = await buildDataset({ ...cfg, data_prefix: { img_path: 'img' } });
  assert.ok(imgsOnly.items.every((i) => i.segMapPath === undefined));
  // ann_file lists names without suffix
  await fs.writeFile(path.join(r3, 'list.txt'), 'b\nsub/c\n');
  const listed = await buildDataset({ ...cfg, ann_file: 'list.txt' });
  assert.equal(listed.length, 2);
});

test('clear errors: unknown type/field, missing folders, image without label; skipBad warns and skips', async () => {
  await assert.rejects(
    buildDataset({ type: 'CityscapesDataset' }),
    /unknown dataset type 'CityscapesDataset'; supported: ADE20KDataset, BaseSegDataset/,
  );
  await assert.rejects(buildDataset({ ...adeCfg(root), img_dir: 'x' }), /unknown field 'img_dir'/);
  await assert.rejects(buildDataset(adeCfg(path.join(tmp, 'missing'))), /image folder not found: .*missing/);
  await assert.rejects(
    buildDataset({
      type: 'ADE20KDataset',
      data_root: root,
      data_prefix: { img_path: 'images/training', seg_map_path: 'nope' },
    }),
    /annotation folder not found: .*nope/,
  );
  const r4 = path.join(tmp, 'broken');
  await fs.cp(root, r4, { recursive: true });
  await fs.rm(path.join(r4, 'annotations', 'training', 'synth_000002.png'));
  await assert.rejects(
    buildDataset(adeCfg(r4)),
    /image .*synth_000002\.jpg has no label \(expected .*synth_000002\.png\)/,
  );
  const warnings: string[] = [];
  const ds = await buildDataset(adeCfg(r4), { skipBad: true, warn: (m) => warnings.push(m) });
  assert.equal(ds.length, 4);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /skipping: image .*synth_000002\.jpg has no label/);
});

test('synthetic generator: deterministic bytes, layout, label values, metainfo', async () => {
  const a = path.join(tmp, 'detA');
  const b = path.join(tmp, 'detB');
  const c = path.join(tmp, 'detC');
  await makeSyntheticDataset(a, { n: 3, height: 20, width: 28, classes: 4, seed: 9, splitVal: 1 });
  await makeSyntheticDataset(b, { n: 3, height: 20, width: 28, classes: 4, seed: 9, splitVal: 1 });
  await makeSyntheticDataset(c, { n: 3, height: 20, width: 28, classes: 4, seed: 10, splitVal: 1 });
  const files = [
    'images/training/synth_000000.jpg',
    'images/training/synth_000001.jpg',
    'images/validation/synth_000002.jpg',
    'annotations/training/synth_000000.png',
    'annotations/validation/synth_000002.png',
    'metainfo.json',
  ];
  let differs = 0;
  for (const f of files) {
    const fa = await fs.readFile(path.join(a, f));
    assert.deepEqual(fa, await fs.readFile(path.join(b, f)), f);
    if (!fa.equals(await fs.readFile(path.join(c, f)))) differs++;
  }
  assert.ok(differs >= 5, 'another seed gives other images');
  const img = await readImage(path.join(a, files[0]));
  assert.deepEqual([img.height, img.width], [20, 28]);
  const meta = JSON.parse(await fs.readFile(path.join(a, 'metainfo.json'), 'utf8'));
  assert.equal(meta.classes.length, 4);
  assert.equal(meta.palette.length, 4);
  // labels hold 0 (other) .. 4 only; over a few images both 0 and real classes appear
  const seen = new Set<number>();
  for (let i = 0; i < 12; i++) {
    const r = path.join(tmp, 'many');
    if (i === 0) await makeSyntheticDataset(r, { n: 12, height: 24, width: 24, classes: 4, seed: 1, splitVal: 0 });
    const l = await readLabel(path.join(r, 'annotations', 'training', `synth_${String(i).padStart(6, '0')}.png`));
    for (const v of l.data) seen.add(v);
  }
  assert.ok([...seen].every((v) => v <= 4));
  assert.ok(seen.has(0) && seen.size >= 4, `values ${[...seen]}`);
});
