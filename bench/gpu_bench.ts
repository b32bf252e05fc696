/**
 * GPU benchmark of beitseg's BEiT-UperNet (random weights), the same phases as
 * bench/peer/gpu_peer.py: ms per 640 window in fp32, fp16 and bf16 autocast (one window per
 * forward, and `_b4`: four), training iterations (fp32 batch 2; AMP fp16 with dynamic loss
 * scaling at batch 2 and 8), peak GPU memory. Also checks tiny_public parity on the device.
 * cuDNN benchmark mode is on, as mmseg's env_cfg sets it and as the peer runs.
 *
 *   node dist/bench/gpu_bench.js [--device cuda] [--preset base] [--repeat 10] [--warmup 3]
 *        [--phases parity,infer_fp32,...] [--fixtures DIR] [--out result.json]
 * backbone_<precision>[_b<N>] times the backbone alone; infer_<precision>[_b<N>]_graph replays the
 * forward from a CUDA graph (`--cuda-graphs`; needs a CUDA build) and reports its difference from
 * the eager one. A phase name may end in @sdpa or @math to run it with that attention kernel
 * (attentionImpl).
 * (`--device cpu --preset tiny` is a smoke test of the same code path without a GPU.)
 * Each phase's result (or its error) is written to --out as soon as it is known.
 */
import fs from 'node:fs';
import path from 'node:path';
import { buildSegmentor } from '../src/models/builder.js';
import { loadConfig, type Dict } from '../src/models/config.js';
import type { EncoderDecoder } from '../src/models/segmentors/encoder_decoder.js';
import { AdamW } from '../src/engine/adamw.js';
import { GradScaler } from '../src/engine/grad_scaler.js';
import { layerDecayParamGroups } from '../src/engine/param_groups.js';
import {
  attentionImpl,
  autocast,
  buildInfo,
  cuda,
  manualSeed,
  noGrad,
  type AutocastDType,
} from '../src/tensor/runtime.js';
import type { AttentionImpl } from '../src/tensor/native.js';
import { tidy } from '../src/tensor/scope.js';
import { rand, randn, type Tensor } from '../src/tensor/tensor.js';
import { readSafetensors } from '../src/checkpoint/safetensors.js';
import { mapToTensors } from '../src/tensor/host.js';
import { GraphedForward } from '../src/inference/graphed_forward.js';
import { argValue, median } from './bench_util.js';

const device = argValue('--device', 'cuda');
const preset = argValue('--preset', 'base');
const repeat = Number(argValue('--repeat', '10'));
const warmup = Number(argValue('--warmup', '3'));
const fixtures = argValue('--fixtures', path.resolve('test', 'fixtures', 'tiny_public'));
const outFile = argValue('--out', '');
const phases = argValue(
  '--phases',
  'parity,infer_fp32,infer_fp16,infer_bf16,infer_fp16_b4,infer_bf16_b4,infer_bf16_b4_graph,infer_fp16_b4_graph,' +
    'train_bs2_fp32,train_bs2_amp,train_bs8_amp',
).split(',');
const deviceType = device.startsWith('cuda') ? 'cuda' : 'cpu';
const sync = () => {
  if (deviceType === 'cuda') cuda.synchronize();
};

interface Timing {
  ms: number;
  ms_all: number[];
  peak_gb: number;
  unit: string;
  batch: number;
}

function timed(fn: () => void, perItem: number, unit: string): Timing {
  for (let i = 0; i < warmup; i++) fn();
  sync();
  cuda.memory(true);
  const ts: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    fn();
    sync();
    ts.push((performance.now() - t0) / perItem);
  }
  const r2 = (x: number) => Math.round(x * 100) / 100;
  return {
    ms: r2(median(ts)),
    ms_all: ts.map(r2),
    peak_gb: Math.round((cuda.memory().peak / 2 ** 30) * 1000) / 1000,
    unit,
    batch: perItem,
  };
}

function configPath(): string {
  if (preset === 'tiny') return 'test/fixtures/tiny_public_config.json';
  const name =
    preset === 'large'
      ? 'beit-large_upernet_8xb1-amp-160k_ade20k-640x640'
      : 'beit-base_upernet_8xb2-160k_ade20k-640x640';
  return `configs/${name}.json`;
}

/**
 * tiny_public parity on the device: whole and slide logits against mmseg's, in exact fp32
 * (TF32 off) and with PyTorch's default flags (TF32 cuDNN convolutions), plus the fp16 and
 * bf16 autocast deviations.
 */
function parity(): Record<string, number> {
  const model = buildSegmentor(loadConfig('test/fixtures/tiny_public_config.json').model as Dict);
  model.loadStateDict(mapToTensors(readSafetensors(path.join(fixtures, 'segmentor_state_dict.safetensors')).tensors));
  model.eval().to(device);
  const golden = mapToTensors(readSafetensors(path.join(fixtures, 'tensors.safetensors')).tensors);
  const out: Record<string, number> = {};
  const saved = cuda.flags();
  noGrad(() =>
    tidy(() => {
      const diff = (a: Tensor, b: Tensor) => a.float().to('cpu').sub(b).abs().max().item();
      const whole = golden.get('input.image')!.to(device);
      const slide = golden.get('slide.image')!.to(device);
      const slideLogits = (dtype: AutocastDType | null) =>
        autocast(deviceType, dtype, () => model.inference(slide, { mode: 'slide' }));
      cuda.flags({ tf32Matmul: false, tf32Cudnn: false });
      out.whole_fp32 = diff(model.inference(whole, { mode: 'whole' }), golden.get('seg.logits_whole')!);
      out.slide_fp32 = diff(slideLogits(null), golden.get('slide.logits')!);
      cuda.flags(saved);
      out.slide_fp32_default_flags = diff(slideLogits(null), golden.get('slide.logits')!);
      if (deviceType === 'cuda') out.slide_fp16 = diff(slideLogits('float16'), golden.get('slide.logits')!);
      out.slide_bf16 = diff(slideLogits('bfloat16'), golden.get('slide.logits')!);
    }),
  );
  cuda.flags(saved);
  for (const t of golden.values()) t.dispose();
  return out;
}

function inferPhase(model: EncoderDecoder, phase: string, size: number): Timing & { graph_vs_eager_max_abs?: number } {
  const graphs = phase.endsWith('_graph');
  const [, precision, batchTag] = phase.replace(/_graph$/, '').split('_');
  const batch = batchTag ? Number(batchTag.slice(1)) : 1;
  const amp: AutocastDType | null = precision === 'fp16' ? 'float16' : precision === 'bf16' ? 'bfloat16' : null;
  if (amp === 'float16' && deviceType === 'cpu') throw new Error('fp16 autocast needs CUDA');
  model.eval();
  const x = randn([batch, 3, size, size]).to(device);
  const forward = phase.startsWith('backbone')
    ? () => {
        model.backbone.forward(x);
      }
    : () => {
        model.encodeDecode(x);
      };
  try {
    if (graphs) return graphedInfer(model, x, amp, batch);
    return timed(() => tidy(() => noGrad(() => autocast(deviceType, amp, forward))), batch, 'ms per window');
  } finally {
    x.dispose();
  }
}

/**
 * encode_decode replayed from a CUDA graph (what `--cuda-graphs` runs per window batch: input
 * copied in, output copied out), timed like the eager phases, with its largest difference
 * from the eager forward on the same input.
 */
function graphedInfer(
  model: EncoderDecoder,
  x: Tensor,
  amp: AutocastDType | null,
  batch: number,
): Timing & { graph_vs_eager_max_abs: number } {
  const graphed = new GraphedForward((input) => model.encodeDecode(input));
  const run = (fn: () => Tensor) => tidy(() => noGrad(() => autocast(deviceType, amp, fn)).float());
  try {
    const diff = tidy(() =>
      run(() => graphed.run(x))
        .sub(run(() => model.encodeDecode(x)))
        .abs()
        .max()
        .item(),
    );
    const timing = timed(() => tidy(() => void run(() => graphed.run(x))), batch, 'ms per window');
    return { ...timing, graph_vs_eager_max_abs: diff };
  } finally {
    graphed.dispose();
  }
}

function trainPhase(model: EncoderDecoder, phase: string, size: number): Timing {
  const batch = phase.includes('bs8') ? 8 : 2;
  const amp: AutocastDType | null = phase.endsWith('amp') ? (deviceType === 'cuda' ? 'float16' : 'bfloat16') : null;
  model.train();
  const x = randn([batch, 3, size, size]).to(device);
  // random classes with the top eighth of every label ignored, as the peer does
  const label = tidy(() => {
    const l = rand([batch, size, size], 0, model.numClasses).floor().to('int64');
    l.slice(1, 0, size >> 3).fill_(255);
    return l.to(device);
  });
  const numLayers = model.backbone.cfg.num_layers;
  const opt = new AdamW(
    layerDecayParamGroups(model.namedParameters(), { numLayers, decayRate: 0.9, baseLr: 3e-5, baseWeightDecay: 0.05 }),
  );
  const scaler = amp === 'float16' ? new GradScaler() : null;
  const params = model.parameters();
  try {
    const t = timed(
      () =>
        tidy(() => {
          const out = autocast(deviceType, amp, () => model.loss(x, label));
          (scaler ? out.loss.mul(scaler.scale) : out.loss).backward();
          const finite = scaler ? scaler.unscaleAndCheck(params) : true;
          if (finite) opt.step();
          scaler?.update(!finite);
          opt.zeroGrad();
        }),
      1,
      'ms per step',
    );
    return { ...t, batch };
  } finally {
    x.dispose();
    label.dispose();
    opt.dispose();
    for (const p of params) p.zeroGrad();
  }
}

function main(): void {
  manualSeed(0);
  if (deviceType === 'cuda') cuda.flags({ benchmark: true });
  const result: Record<string, unknown> = {
    device,
    preset,
    cuda: cuda.isAvailable(),
    build: buildInfo().torchVersion,
    flags: cuda.flags(),
    attention: attentionImpl(),
  };
  const save = () => {
    if (!outFile) return;
    fs.writeFileSync(`${outFile}.tmp`, `${JSON.stringify(result)}\n`);
    fs.renameSync(`${outFile}.tmp`, outFile);
  };
  const run = (phase: string, fn: () => unknown) => {
    try {
      result[phase] = fn();
    } catch (err) {
      result[phase] = { error: (err as Error).message.split('\n')[0].slice(0, 300) };
    }
    process.stderr.write(`beitseg ${phase}: ${JSON.stringify(result[phase])}\n`);
    save();
  };
  if (phases.includes('parity')) run('parity', parity);
  const model = buildSegmentor(loadConfig(configPath()).model as Dict).to(device);
  const size = model.backbone.window[0] * 16;
  for (const phase of phases.filter((p) => p !== 'parity')) {
    const [name, impl] = phase.split('@');
    run(phase, () => {
      const saved = attentionImpl();
      attentionImpl((impl ?? saved) as AttentionImpl);
      try {
        return name.startsWith('infer') || name.startsWith('backbone')
          ? inferPhase(model, name, size)
          : trainPhase(model, name, size);
      } finally {
        attentionImpl(saved);
      }
    });
  }
  console.log(JSON.stringify(result));
}

main();
