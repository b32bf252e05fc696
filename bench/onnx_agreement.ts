/**
 * Argmax agreement of exported models on a dataset's validation images: ONNX Runtime fp32 vs
 * beitseg on libtorch (the export's fidelity), and int8 (`--quantize int8`) vs fp32 (the cost of
 * quantization), with the sizes of both files.
 *   node dist/bench/onnx_agreement.js --config C --weights W --images DIR [--limit 60] [--out f.txt]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exportSegmentorOnnx } from '../src/export/onnx/segmentor.js';
import { initModel, inferenceModel } from '../src/inference/api.js';
import { loadOnnxModel } from '../src/inference/backends/onnxruntime.js';
import { segmentHost } from '../src/inference/host_segment.js';
import { readImage } from '../src/data/image_io.js';
import { argValue } from './bench_util.js';

const config = argValue('--config', 'configs/tiny_synthetic.json');
const weights = argValue('--weights', '');
const dir = argValue('--images', 'data/synthetic/images/validation');
const limit = Number(argValue('--limit', '60'));
const seg = await initModel(config, weights, { device: 'cpu' });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-agree-'));
const files: Record<string, string> = {};
const sizes: Record<string, number> = {};
for (const [name, o] of [
  ['fp32', {}],
  ['int8', { quantize: 'int8' as const }],
] as const) {
  const { bytes } = exportSegmentorOnnx(seg, o);
  files[name] = path.join(tmp, `${name}.onnx`);
  fs.writeFileSync(files[name], bytes);
  sizes[name] = bytes.byteLength;
}
const fp32 = await loadOnnxModel(files.fp32);
const int8 = await loadOnnxModel(files.int8);
const images = fs
  .readdirSync(dir)
  .filter((f) => /\.(jpg|png)$/.test(f))
  .sort()
  .slice(0, limit);
let pixels = 0;
let sameTorch = 0;
let sameInt8 = 0;
let maxLogitDiff = 0;
for (const f of images) {
  const img = await readImage(path.join(dir, f));
  const ref = await inferenceModel(seg, img);
  const refLogits = ref.logits.toFloat32Array();
  ref.logits.dispose();
  const a = await segmentHost(fp32, img);
  const b = await segmentHost(int8, img);
  for (let i = 0; i < a.pred.length; i++) {
    if (a.pred[i] === ref.pred[i]) sameTorch++;
    if (b.pred[i] === a.pred[i]) sameInt8++;
  }
  for (let i = 0; i < refLogits.length; i++)
    maxLogitDiff = Math.max(maxLogitDiff, Math.abs(refLogits[i] - a.logits[i]));
  pixels += a.pred.length;
}
const pct = (n: number) => ((100 * n) / pixels).toFixed(3);
const lines = [
  `model: ${config} with ${weights} (${images.length} images of ${dir}, ${pixels} pixels)`,
  `ONNX fp32 vs libtorch fp32: ${pct(sameTorch)} % of pixels agree, max |logit diff| ${maxLogitDiff.toExponential(2)}`,
  `ONNX int8 vs ONNX fp32: ${pct(sameInt8)} % of pixels agree`,
  `files: fp32 ${(sizes.fp32 / 1e6).toFixed(2)} MB, int8 ${(sizes.int8 / 1e6).toFixed(2)} MB ` +
    `(${(sizes.int8 / sizes.fp32).toFixed(3)})`,
];
const text = `${lines.join('\n')}\n`;
process.stdout.write(text);
const out = argValue('--out', '');
if (out) fs.writeFileSync(out, text);
fs.rmSync(tmp, { recursive: true, force: true });
