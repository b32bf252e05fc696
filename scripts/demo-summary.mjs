#!/usr/bin/env node
// The demo's summary page: for each predicted validation image, the input, the prediction and the
// ground truth in class colours side by side with the IoU of each class in that image, under the
// evaluation's per-class IoU. Usage (from the repository root, after `npm run build`):
//   node scripts/demo-summary.mjs DATA_ROOT PREDICTIONS_DIR EVAL_JSON OUT_HTML
// Writes OUT_HTML, and beside it inputs/ and ground_truth/ (copies and colour label maps).
import fs from 'node:fs';
import path from 'node:path';
import { readLabel, writeImage } from '../dist/src/data/image_io.js';
import { colorize } from '../dist/src/visualization/overlay.js';
import { imageIoU, summaryHtml } from '../dist/src/visualization/summary_page.js';

const [dataRoot, predDir, evalJson, outHtml] = process.argv.slice(2);
if (!outHtml) {
  console.error('usage: node scripts/demo-summary.mjs DATA_ROOT PREDICTIONS_DIR EVAL_JSON OUT_HTML');
  process.exit(2);
}
const meta = JSON.parse(fs.readFileSync(path.join(dataRoot, 'metainfo.json'), 'utf8'));
const results = JSON.parse(fs.readFileSync(evalJson, 'utf8'));
const outDir = path.dirname(outHtml);
const rel = (p) => path.relative(outDir, p).split(path.sep).join('/');
fs.mkdirSync(path.join(outDir, 'inputs'), { recursive: true });

const images = [];
for (const f of fs
  .readdirSync(predDir)
  .filter((n) => n.endsWith('_pred.png'))
  .sort()) {
  const stem = f.slice(0, -'_pred.png'.length);
  const input = path.join(dataRoot, 'images', 'validation', `${stem}.jpg`);
  const annotation = path.join(dataRoot, 'annotations', 'validation', `${stem}.png`);
  const pred = await readLabel(path.join(predDir, f));
  const gt = await readLabel(annotation);
  const gtColour = path.join(outDir, 'ground_truth', `${stem}_gt.png`);
  await writeImage(gtColour, colorize(gt, meta.palette));
  const inputCopy = path.join(outDir, 'inputs', `${stem}.jpg`);
  fs.copyFileSync(input, inputCopy);
  images.push({
    name: stem,
    input: rel(inputCopy),
    prediction: rel(path.join(predDir, `${stem}_color.png`)),
    groundTruth: rel(gtColour),
    overlay: rel(path.join(predDir, `${stem}_legend.png`)),
    iou: imageIoU(pred.data, gt.data, meta.classes.length),
  });
}
const html = summaryHtml({
  title: 'beitseg demo: a small BEiT-UperNet on synthetic textured scenes',
  classes: meta.classes,
  palette: meta.palette,
  classIoU: meta.classes.map((name) => results.per_class.find((c) => c.class === name)?.IoU ?? null),
  metrics: { mIoU: results.mIoU, mAcc: results.mAcc, aAcc: results.aAcc, images: results.images },
  notes: [
    'Every pixel of these generated scenes belongs to one of the classes (no ignored "other"), so the ' +
      'prediction, the ground truth and the IoU cover the whole image; label ids equal class ids.',
    'Images are upscaled with nearest-neighbour sampling; the model was trained for a few minutes on CPU.',
  ],
  images,
});
const tmp = `${outHtml}.${process.pid}.tmp`;
fs.writeFileSync(tmp, html);
fs.renameSync(tmp, outHtml);
console.log(`summary page: ${path.resolve(outHtml)}`);
