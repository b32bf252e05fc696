import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { decodeImage, readImage, readLabel, writeImage, writeLabelPng } from '../../src/data/image_io.js';
import { decodePngLabel, encodePngLabel } from '../../src/data/png.js';
import { makeImage, makeLabel } from '../../src/data/types.js';

let dir = '';
before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'beitseg-io-'));
});
after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function gradient(h: number, w: number) {
  const img = makeImage(h, w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) img.data.set([(x * 7 + y) & 255, (y * 11) & 255, (x * y) & 255], (y * w + x) * 3);
  }
  return img;
}

test('PNG RGB write/read is lossless; JPEG is close', async () => {
  const img = gradient(13, 21);
  await writeImage(path.join(dir, 'a.png'), img);
  assert.deepEqual(await readImage(path.join(dir, 'a.png')), img);
  await writeImage(path.join(dir, 'a.jpg'), img, { quality: 95 });
  const j = await readImage(path.join(dir, 'a.jpg'));
  assert.equal(j.height, 13);
  assert.equal(j.width, 21);
  let err = 0;
  for (let i = 0; i < j.data.length; i++) err += Math.abs(j.data[i] - img.data[i]);
  assert.ok(err / j.data.length < 6, `mean abs error ${err / j.data.length}`);
  // no temp files left behind
  assert.deepEqual((await fs.readdir(dir)).sort(), ['a.jpg', 'a.png']);
});

test('alpha dropped without compositing, grey replicated, EXIF orientation applied', async () => {
  const rgba = Buffer.from([10, 20, 30, 0, 40, 50, 60, 255]);
  const png = await sharp(rgba, { raw: { width: 2, height: 1, channels: 4 } })
    .png()
    .toBuffer();
  assert.deepEqual(Array.from((await decodeImage(png)).data), [10, 20, 30, 40, 50, 60]);
  const grey = await sharp(Buffer.from([5, 250]), { raw: { width: 2, height: 1, channels: 1 } })
    .png()
    .toBuffer();
  assert.deepEqual(Array.from((await decodeImage(grey)).data), [5, 5, 5, 250, 250, 250]);
  // Orientation 6 (rotate 90 clockwise to display): a 4x2 (w x h) file decodes as 2x4.
  const raw = gradient(2, 4);
  const jpg = await sharp(raw.data, { raw: { width: 4, height: 2, channels: 3 } })
    .jpeg()
    .withMetadata({ orientation: 6 })
    .toBuffer();
  const o = await decodeImage(jpg);
  assert.deepEqual([o.height, o.width], [4, 2]);
  const kept = await decodeImage(jpg, 'x', { autoOrient: false });
  assert.deepEqual([kept.height, kept.width], [2, 4]);
});

test('missing and corrupt files give errors naming the file', async () => {
  await assert.rejects(readImage(path.join(dir, 'nope.jpg')), /image file not found: .*nope\.jpg/);
  await assert.rejects(readLabel(path.join(dir, 'nope.png')), /label file not found: .*nope\.png/);
  await fs.writeFile(path.join(dir, 'bad.jpg'), 'not an image');
  await assert.rejects(readImage(path.join(dir, 'bad.jpg')), /cannot decode image .*bad\.jpg/);
  await fs.writeFile(
    path.join(dir, 'bad.png'),
    Buffer.concat([encodePngLabel(new Uint8Array(4), 2, 2).subarray(0, 40)]),
  );
  await assert.rejects(readLabel(path.join(dir, 'bad.png')), /cannot decode label .*bad\.png/);
  await fs.rm(path.join(dir, 'bad.jpg'));
  await fs.rm(path.join(dir, 'bad.png'));
});

test('label PNG round trip: grey and palette keep raw values', async () => {
  const lab = makeLabel(
    5,
    7,
    Uint8Array.from({ length: 35 }, (_, i) => (i * 37) % 256),
  );
  await writeLabelPng(path.join(dir, 'g.png'), lab);
  assert.deepEqual(await readLabel(path.join(dir, 'g.png')), lab);
  const pal = new Uint8Array(256 * 3).map((_, i) => (i * 5) & 255);
  await writeLabelPng(path.join(dir, 'p.png'), lab, pal);
  assert.deepEqual(await readLabel(path.join(dir, 'p.png')), lab);
  // sharp sees the palette file as colours; the indices map through PLTE to the same colours.
  const rgb = await sharp(path.join(dir, 'p.png')).removeAlpha().raw().toBuffer();
  for (let i = 0; i < 35; i++) {
    const k = lab.data[i];
    assert.deepEqual(Array.from(rgb.subarray(3 * i, 3 * i + 3)), Array.from(pal.subarray(3 * k, 3 * k + 3)));
  }
});

test('PNG decoder: indices of a sharp-quantised palette PNG, interlaced grey, RGB rejected', async () => {
  const img = gradient(9, 10);
  const palPng = await sharp(img.data, { raw: { width: 10, height: 9, channels: 3 } })
    .png({ palette: true, colours: 16 })
    .toBuffer();
  const d = decodePngLabel(palPng);
  assert.equal(d.kind, 'palette');
  assert.ok(d.palette);
  const viaSharp = await sharp(palPng).removeAlpha().raw().toBuffer();
  for (let i = 0; i < 90; i++) {
    const k = d.data[i];
    assert.deepEqual(
      Array.from(viaSharp.subarray(3 * i, 3 * i + 3)),
      Array.from(d.palette!.subarray(3 * k, 3 * k + 3)),
    );
  }
  const grey = Uint8Array.from({ length: 11 * 13 }, (_, i) => (i * 29) & 255);
  const inter = await sharp(grey, { raw: { width: 13, height: 11, channels: 1 } })
    .toColourspace('b-w')
    .png({ progressive: true })
    .toBuffer();
  assert.equal(inter[28], 1, 'interlace flag set');
  assert.deepEqual(decodePngLabel(inter).data, grey);
  const rgbPng = await sharp(img.data, { raw: { width: 10, height: 9, channels: 3 } })
    .png()
    .toBuffer();
  assert.throws(() => decodePngLabel(rgbPng), /single-channel .*RGB/);
});
