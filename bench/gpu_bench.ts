/**
 * GPU benchmark of beitseg's BEiT-UperNet (random weights), the same phases as
 * bench/peer/gpu_peer.py: ms per 640 window in fp32 and fp16 autocast, training iterations
 * (fp32 batch 2; AMP fp16 with dynamic loss scaling at batch 2 and 8), peak GPU memory.
 * Also checks tiny_public parity on the device. Prints one JSON object.
 *
 *   node dist/bench/gpu_bench.js [--device cuda] [--preset base] [--repeat 10] [--warmup 3] [--phases ...]
 * (`--device cpu --preset tiny` is a smoke test of the same code path without a GPU.)
 */
import { buildSegmentor } from '../src/models/builder.js';
import { loadConfig, type Dict } from '../src/models/config.js';
import { AdamW } from '../src/engine/adamw.js';
import { GradScaler } from '../src/engine/grad_scaler.js';
import { layerDecayParamGroups } from '../src/engine/param_groups.js';
import { autocast, cuda, manualSeed, noGrad } from '../src/tensor/runtime.js';
import { tidy } from '../src/tensor/scope.js';
import { rand, randn } from '../src/tensor/tensor.js';
import { readSafetensors } from '../src/checkpoint/safetensors.js';
import { mapToTensors } from '../src/tensor/host.js';
import { argValue, median } from './bench_util.js';
import path from 'node:path';

const device = argValue('--device', 'cuda');
const preset = argValue('--preset', 'base');
const repeat = Number(argValue('--repeat', '10'));
const warmup = Number(argValue('--warmup', '3'));
const phases = argValue('--phases', 'parity,infer_fp32,infer_fp16,train_bs2_fp32,train_bs2_amp,train_bs8_amp').split(',');
const deviceType = device.startsWith('cuda') ? 'cuda' : 'cpu';
const sync = () => { if (deviceType === 'cuda') cuda.synchronize(); };

function timed(fn: () => void): { ms: number; ms_all: number[]; peak_gb: number } {
  for (let i = 0; i < warmup; i++) fn();
  sync();
  cuda.memory(true);
  const ts: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    fn();
    sync();
    ts.push(performance.now() - t0);
  }
  return { ms: Math.round(median(ts) * 10) / 10, ms_all: ts.map((t) => Math.round(t * 10) / 10), peak_gb: cuda.memory().peak / 2 ** 30 };
}

function configPath(): string {
  if (preset === 'tiny') return 'test/fixtures/tiny_public_config.json';
  return `configs/${preset === 'large' ? 'beit-large_upernet_8xb1-amp-160k_ade20k-640x640' : 'beit-base_upernet_8xb2-160k_ade20k-640x640'}.json`;
}

/** tiny_public parity on the device: whole and slide logits within 1e-4 in fp32; fp16/bf16 deviations. */
function parity(): Record<string, number> {
  const fixtures = path.resolve('..', 'shared', 'fixtures', 'tiny_public');
  const model = buildSegmentor(loadConfig('test/fixtures/tiny_public_config.json').model as Dict);
  model.loadStateDict(mapToTensors(readSafetensors(path.join(fixtures, 'segmentor_state_dict.safetensors')).tensors));
  model.eval().to(device);
  const golden = mapToTensors(readSafetensors(path.join(fixtures, 'tensors.safetensors')).tensors);
  const out: Record<string, number> = {};
  noGrad(() => tidy(() => {
    const diff = (a: ReturnType<typeof randn>, b: ReturnType<typeof randn>) => a.float().to('cpu').sub(b).abs().max().item();
    const whole = golden.get('input.image')!.to(device);
    const slide = golden.get('slide.image')!.to(device);
    out.whole_fp32 = diff(model.inference(whole, { mode: 'whole' }), golden.get('seg.logits_whole')!);
    out.slide_fp32 = diff(model.inference(slide, { mode: 'slide' }), golden.get('slide.logits')!);
    for (const [name, dt] of [['fp16', 'float16'], ['bf16', 'bfloat16']] as const) {
      if (deviceType === 'cpu' && dt === 'float16') continue;
      out[`slide_${name}`] = diff(autocast(deviceType, dt, () => model.inference(slide, { mode: 'slide' })), golden.get('slide.logits')!);
    }
  }));
  return out;
}

function main(): void {
  manualSeed(0);
  const result: Record<string, unknown> = { device, preset, cuda: cuda.isAvailable() };
  if (phases.includes('parity')) result.parity = parity();
  const cfg = loadConfig(configPath());
  const model = buildSegmentor(cfg.model as Dict).to(device);
  const size = model.backbone.window[0] * 16;
  for (const phase of phases.filter((p) => p !== 'parity')) {
    if (phase.startsWith('infer')) {
      model.eval();
      const x = randn([1, 3, size, size]).to(device);
      const amp = phase === 'infer_fp16' ? (deviceType === 'cuda' ? 'float16' : 'bfloat16') : null;
      result[phase] = timed(() => tidy(() => noGrad(() => autocast(deviceType, amp, () => { model.encodeDecode(x); }))));
      continue;
    }
    const batch = phase.includes('bs8') ? 8 : 2;
    const amp = phase.endsWith('amp') ? (deviceType === 'cuda' ? 'float16' : 'bfloat16') : null;
    model.train();
    const x = randn([batch, 3, size, size]).to(device);
    const label = tidy(() => rand([batch, size, size], 0, model.numClasses).floor().to('int64').to(device));
    const numLayers = model.backbone.cfg.num_layers;
    const opt = new AdamW(layerDecayParamGroups(model.namedParameters(), { numLayers, decayRate: 0.9, baseLr: 3e-5, baseWeightDecay: 0.05 }));
    const scaler = amp === 'float16' ? new GradScaler() : null;
    const params = model.parameters();
    result[phase] = timed(() => tidy(() => {
      const out = autocast(deviceType, amp, () => model.loss(x, label));
      (scaler ? out.loss.mul(scaler.scale) : out.loss).backward();
      const finite = scaler ? scaler.unscaleAndCheck(params) : true;
      if (finite) opt.step();
      scaler?.update(!finite);
      opt.zeroGrad();
    }));
    x.dispose();
    label.dispose();
  }
  console.log(JSON.stringify(result));
}

main();
