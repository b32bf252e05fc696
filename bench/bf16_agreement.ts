/**
 * Argmax agreement of bf16 inference (`--amp bf16`) with fp32 on a trained model: random
 * weights make near-ties everywhere, so their agreement says little about real use.
 *
 *   node dist/bench/bf16_agreement.js --config C --weights W --images DIR [--limit 60]
 *
 * Prints one JSON line: images, pixels, agreement (fraction of pixels with the same label).
 */
import fs from 'node:fs';
import path from 'node:path';
import { inferenceModel, initModel } from '../src/inference/api.js';
import { argValue } from './bench_util.js';

const config = argValue('--config', 'configs/tiny_synthetic.json');
const weights = argValue('--weights', '');
const dir = argValue('--images', 'data/synthetic/images/validation');
const limit = Number(argValue('--limit', '60'));
if (!weights) throw new Error('--weights is required');

const m = await initModel(config, weights, { device: 'cpu' });
const files = fs.readdirSync(dir).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort().slice(0, limit);
let same = 0, pixels = 0;
for (const f of files) {
  const file = path.join(dir, f);
  const fp32 = await inferenceModel(m, file);
  const bf16 = await inferenceModel(m, file, { amp: 'bfloat16' });
  const a = fp32.pred, b = bf16.pred;
  for (let i = 0; i < a.length; i++) same += a[i] === b[i] ? 1 : 0;
  pixels += a.length;
  fp32.logits.dispose();
  bf16.logits.dispose();
}
console.log(JSON.stringify({ config, weights, images: files.length, pixels, agreement: same / pixels }));
