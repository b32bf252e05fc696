/**
 * GPU benchmark of beitseg's BEiT-UperNet (random weights), the same phases as
 * bench/peer/gpu_peer.py: ms per 640 window in fp32, fp16 and bf16 autocast (one window per
 * forward, and `_b4`: four), training iterations (fp32 batch 2; AMP fp16 with dynamic loss
 * scaling at batch 2 and 8; `_graph`: the step replayed from a CUDA graph), peak GPU memory.
 * Also checks tiny_public parity on the device, and (train_graph_parity) the graphed training
 * step against the eager one.
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
import { loadConfig, type Dict } from '../src/config/schema.js';
import type { EncoderDecoder } from '../src/models/segmentors/encoder_decoder.js';
import type { Batch } from '../src/data/loader.js';
import { AdamW } from '../src/engine/adamw.js';
import { GraphedTrainStep } from '../src/engine/graphed_train_step.js';
import { AmpOptimWrapper, OptimWrapper, type OptimWrapperOptions } from '../src/engine/optim_wrapper.js';
import { layerDecayParamGroups } from '../src/engine/param_groups.js';
import { eagerTrainIter } from '../src/engine/train_loop.js';
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
import { readSafetensors } from '../src/checkpoint/formats/safetensors.js';
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
    'train_graph_parity,train_bs2_fp32,train_bs2_amp,train_bs2_amp_graph,train_bs8_amp,train_bs8_amp_graph',
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

/** A host batch as the loader makes them: random images, random labels with the top eighth ignored. */
function syntheticBatch(n: number, size: number, classes: number, seed: number): Batch {
  manualSeed(seed);
  return tidy(() => {
    const label = rand([n, size, size], 0, classes).floor().to('uint8');
    label.slice(1, 0, size >> 3).fill_(255);
    return {
      img: randn([n, 3, size, size]).toFloat32Array(),
      label: label.toTypedArray() as Uint8Array,
      n,
      height: size,
      width: size,
      metas: [],
    } as unknown as Batch;
  });
}

/** AdamW with BEiT's layer decay in mmengine's optimizer wrapper: AMP fp16 (loss scaling) or bf16, or fp32. */
function optimWrapperFor(model: EncoderDecoder, amp: AutocastDType | null): OptimWrapper {
  const groups = layerDecayParamGroups(model.namedParameters(), {
    numLayers: model.backbone.cfg.num_layers,
    decayRate: 0.9,
    baseLr: 3e-5,
    baseWeightDecay: 0.05,
  });
  const o: OptimWrapperOptions = { accum: 1, maxIters: Number.MAX_SAFE_INTEGER, deviceType };
  return amp ? new AmpOptimWrapper(new AdamW(groups), groups, o, amp) : new OptimWrapper(new AdamW(groups), groups, o);
}

/**
 * train_bs<N>_<fp32|amp>[_graph]: ms per training step (mmengine's train_step: loss, backward,
 * [fp16 unscale + inf check], AdamW, zero grad), eager or replayed from a CUDA graph (captured
 * after 2 eager steps inside the timed warm-up).
 */
function trainPhase(model: EncoderDecoder, phase: string, size: number): Timing {
  const graphs = phase.endsWith('_graph');
  const name = phase.replace(/_graph$/, '');
  const batchSize = name.includes('bs8') ? 8 : 2;
  const amp: AutocastDType | null = name.endsWith('amp') ? (deviceType === 'cuda' ? 'float16' : 'bfloat16') : null;
  if (graphs && warmup < 3) throw new Error('a graphed step needs --warmup 3 or more (2 eager steps, the capture)');
  model.train();
  const batch = syntheticBatch(batchSize, size, model.numClasses, 1);
  const ow = optimWrapperFor(model, amp);
  const runner = { model, optimWrapper: ow, device };
  const graphed = graphs ? new GraphedTrainStep(model, ow, device) : null;
  try {
    const step = () => {
      const eager = () => eagerTrainIter(runner, 0, batch);
      graphed ? graphed.run(batch, eager) : eager();
    };
    return { ...timed(step, 1, 'ms per step'), batch: batchSize };
  } finally {
    graphed?.dispose();
    ow.optimizer.dispose();
    ow.optimizer.zeroGrad();
  }
}

/**
 * The CUDA-graphed training step against the eager one on the device: the tiny model without
 * dropout or stochastic depth (their random numbers come from the graph's own generator offsets),
 * 6 steps from the same weights and batches, fp16 (loss scaling from 2^20, so that early steps
 * can overflow and be skipped) and bf16. Reports the largest parameter difference relative to the largest
 * parameter, the losses of both and the skipped steps; an eager rerun gives the device's own
 * run-to-run difference for scale.
 */
function trainGraphParity(): Record<string, unknown> {
  const cfg = loadConfig('test/fixtures/tiny_public_config.json').model as Dict;
  (cfg.backbone as Dict).drop_path_rate = 0;
  for (const head of ['decode_head', 'auxiliary_head']) (cfg[head] as Dict).dropout_ratio = 0;
  const out: Record<string, unknown> = {};
  for (const amp of deviceType === 'cuda' ? (['float16', 'bfloat16'] as const) : (['bfloat16'] as const)) {
    const train = (graphs: boolean) => {
      manualSeed(0);
      const model = buildSegmentor(cfg).to(device).train();
      const ow = optimWrapperFor(model, amp);
      if (ow instanceof AmpOptimWrapper && ow.scaler) ow.scaler.scale = 2 ** 20;
      const graphed = graphs ? new GraphedTrainStep(model, ow, device) : null;
      const size = model.backbone.window[0] * 16;
      const losses: number[] = [];
      for (let t = 0; t < 6; t++) {
        const batch = syntheticBatch(2, size, model.numClasses, 10 + t);
        const eager = () => eagerTrainIter({ model, optimWrapper: ow, device }, t, batch);
        losses.push((graphed ? graphed.run(batch, eager) : eager()).loss!);
      }
      graphed?.dispose();
      return { model, losses, skipped: ow.skippedSteps, replays: graphed?.replays ?? 0, ow };
    };
    const [a, b, c] = [train(false), train(true), train(false)];
    const relDiff = (x: EncoderDecoder, y: EncoderDecoder) => {
      const other = new Map(y.namedParameters());
      let diff = 0,
        scale = 0;
      for (const [n, p] of x.namedParameters()) {
        diff = Math.max(
          diff,
          tidy(() => p.sub(other.get(n)!).abs().max().item()),
        );
        scale = Math.max(
          scale,
          tidy(() => p.abs().max().item()),
        );
      }
      return diff / scale;
    };
    out[amp] = {
      graph_vs_eager_rel: relDiff(a.model, b.model),
      eager_vs_eager_rel: relDiff(a.model, c.model),
      losses_eager: a.losses,
      losses_graph: b.losses,
      skipped_eager: a.skipped,
      skipped_graph: b.skipped,
      replays: b.replays,
    };
    for (const r of [a, b, c]) {
      r.ow.optimizer.dispose();
      r.model.dispose();
    }
  }
  return out;
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
  if (phases.includes('train_graph_parity')) run('train_graph_parity', trainGraphParity);
  const model = buildSegmentor(loadConfig(configPath()).model as Dict).to(device);
  const size = model.backbone.window[0] * 16;
  for (const phase of phases.filter((p) => p !== 'parity' && p !== 'train_graph_parity')) {
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
