/**
 * Argmax agreement of bf16 inference (`--amp bf16`) or int8 inference (`--quantize int8`,
 * with --variant int8) with fp32 on a trained model: random weights make near-ties
 * everywhere, so their agreement says little about real use.
 *
 *   node dist/bench/bf16_agreement.js --config C --weights W --images DIR [--limit 60] [--variant bf16|int8|int8-bf16]
 *
 * Prints one JSON line: variant, images, pixels, agreement (fraction of pixels with the same
 * label), and the mean seconds per image of fp32 and of the variant (one process, alternating).
 */
import fs from 'node:fs';
import path from 'node:path';
import { inferenceModel, initModel } from '../src/inference/api.js';
import { argValue } from './bench_util.js';

const config = argValue('--config', 'configs/tiny_synthetic.json');
const weights = argValue('--weights', '');
const dir = argValue('--images', 'data/synthetic/images/validation');
const limit = Number(argValue('--limit', '60'));
const variant = argValue('--variant', 'bf16');
const POLICIES = {
  bf16: { amp: 'bfloat16' as const },
  int8: { quantize: 'int8' as const },
  // int8 Linears, everything else bf16 (--quantize int8 --amp bf16)
  'int8-bf16': { quantize: 'int8' as const, amp: 'bfloat16' as const },
};
if (!(variant in POLICIES)) throw new Error(`--variant must be bf16, int8 or int8-bf16, got ${variant}`);
const policy = POLICIES[variant as keyof typeof POLICIES];
if (!weights) throw new Error('--weights is required');

const m = await initModel(config, weights, { device: 'cpu' });
const files = fs
  .readdirSync(dir)
  .filter((f) => /\.(jpe?g|png)$/i.test(f))
  .sort()
  .slice(0, limit);
let same = 0,
  pixels = 0,
  fp32Ms = 0,
  lowMs = 0;
for (const f of files) {
  const file = path.join(dir, f);
  let t0 = performance.now();
  const fp32 = await inferenceModel(m, file);
  fp32Ms += performance.now() - t0;
  t0 = performance.now();
  const low = await inferenceModel(m, file, policy);
  lowMs += performance.now() - t0;
  const a = fp32.pred,
    b = low.pred;
  for (let i = 0; i < a.length; i++) same += a[i] === b[i] ? 1 : 0;
  pixels += a.length;
  fp32.logits.dispose();
  low.logits.dispose();
}
console.log(
  JSON.stringify({
    variant,
    config,
    weights,
    images: files.length,
    pixels,
    agreement: same / pixels,
    s_per_image_fp32: fp32Ms / 1000 / files.length,
    s_per_image_variant: lowMs / 1000 / files.length,
  }),
);
