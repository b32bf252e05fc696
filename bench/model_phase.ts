/**
 * One benchmark phase of beitseg's BEiT-UperNet, run in its own process so that its peak RSS
 * is its own (the same phases and units as bench/peer/model_peer.py):
 *   infer_fp32 / infer_bf16: ms per window (encode_decode of one S×S window, eval, no grad);
 *     at S = 1280 this is whole-image inference of a 1280×1280 image (N = 6401 tokens)
 *   infer_int8: the same with the backbone's linear layers in int8 (`--quantize int8`), the rest fp32
 *   infer_int8_bf16: int8 linear layers with everything else in bf16 (`--quantize int8 --amp bf16`)
 *   slide_fp32: ms per S×round(S·853/640) image (2 windows + argmax)
 *   train_fp32: ms per step at batch 2 (train mode, loss, backward, AdamW with layer decay)
 * Prints one JSON line.
 */
import { buildSegmentor } from '../src/models/builder.js';
import { loadConfig, type Dict } from '../src/config/schema.js';
import { AdamW } from '../src/engine/adamw.js';
import { layerDecayParamGroups } from '../src/engine/param_groups.js';
import os from 'node:os';
import { buildForwardPrecision } from '../src/inference/precision.js';
import {
  attentionImpl,
  autocast,
  buildInfo,
  manualSeed,
  noGrad,
  quantizedEngines,
  setNumThreads,
} from '../src/tensor/runtime.js';
import { tidy } from '../src/tensor/scope.js';
import { randn, rand, type Tensor } from '../src/tensor/tensor.js';
import { argValue, configFor, median } from './bench_util.js';

// CPU time (user + system, all threads) per timed run: on a shared machine it moves less
// than wall time (the peer reports the same figure).
let cpuMsPerIter = 0;

function timed(fn: () => void, warmup: number, repeat: number): number[] {
  for (let i = 0; i < warmup; i++) fn();
  const ts: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  const cpu = process.cpuUsage(cpu0);
  cpuMsPerIter = Math.round((cpu.user + cpu.system) / 1000 / Math.max(repeat, 1));
  return ts;
}

function main(): void {
  const phase = argValue('--phase', 'infer_fp32');
  const preset = argValue('--preset', 'base');
  const size = Number(argValue('--size', '640'));
  const threads = Number(argValue('--threads', '2'));
  const warmup = Number(argValue('--warmup', '1'));
  const repeat = Number(argValue('--repeat', '2'));
  setNumThreads(threads);
  manualSeed(0);
  const cfg = configFor(
    loadConfig(
      argValue(
        '--config',
        `configs/${
          preset === 'large'
            ? 'beit-large_upernet_8xb1-amp-160k_ade20k-640x640'
            : 'beit-base_upernet_8xb2-160k_ade20k-640x640'
        }.json`,
      ),
    ),
    size,
  );
  const model = buildSegmentor(cfg.model as Dict);
  const rssModel = process.resourceUsage().maxRSS / 1024;
  const extra: Record<string, unknown> = {};
  let ts: number[];
  if (['infer_fp32', 'infer_bf16', 'infer_int8', 'infer_int8_bf16'].includes(phase)) {
    model.eval();
    const x = randn([1, 3, size, size]);
    const amp = phase === 'infer_bf16' || phase === 'infer_int8_bf16' ? 'bfloat16' : null;
    // what `predict --amp bf16` / `--quantize int8` run (src/inference/precision.ts)
    const precision = buildForwardPrecision(model, { amp, quantize: phase.startsWith('infer_int8') ? 'int8' : null });
    ts = timed(
      () =>
        tidy(() =>
          noGrad(() =>
            autocast('cpu', amp, () => {
              model.encodeDecode(x, precision);
            }),
          ),
        ),
      warmup,
      repeat,
    );
    extra.unit = 'ms per window';
    // the peak of the timed runs alone: the agreement check below runs fp32 in the same process
    extra.peak_rss_mb = Math.round(process.resourceUsage().maxRSS / 1024);
    if (phase !== 'infer_fp32')
      extra.argmax_agreement_vs_fp32 = tidy(() =>
        noGrad(() => {
          const a = model.encodeDecode(x).argmax(1);
          const b = autocast('cpu', amp, () => model.encodeDecode(x, precision)).argmax(1);
          return a.eq(b).float().mean().item();
        }),
      );
  } else if (phase === 'slide_fp32') {
    model.eval();
    const h = size,
      w = Math.round((size * 853) / 640);
    const x = randn([1, 3, h, w]);
    ts = timed(
      () =>
        tidy(() =>
          noGrad(() => {
            model.slideInference(x, { windowBatch: 1 }).argmax(1);
          }),
        ),
      warmup,
      repeat,
    );
    extra.unit = 'ms per image';
    extra.image_hw = [h, w];
  } else if (phase === 'train_fp32') {
    model.train();
    const batch = Number(argValue('--batch', '2'));
    const x = randn([batch, 3, size, size]);
    const label: Tensor = tidy(() => {
      const l = rand([batch, size, size], 0, model.numClasses).floor().to('int64');
      l.slice(1, 0, Math.floor(size / 8)).fill_(255); // ignored rows, as padded crops have
      return l;
    });
    const numLayers = model.backbone.cfg.num_layers;
    const opt = new AdamW(
      layerDecayParamGroups(model.namedParameters(), {
        numLayers,
        decayRate: numLayers >= 24 ? 0.95 : 0.9,
        baseLr: numLayers >= 24 ? 2e-5 : 3e-5,
        baseWeightDecay: 0.05,
      }),
    );
    ts = timed(
      () =>
        tidy(() => {
          const out = model.loss(x, label);
          out.loss.backward();
          opt.step();
          opt.zeroGrad();
        }),
      warmup,
      repeat,
    );
    extra.unit = 'ms per step';
    extra.batch = batch;
  } else {
    throw new Error(`unknown phase ${phase}`);
  }
  const info = buildInfo();
  console.log(
    JSON.stringify({
      phase,
      preset,
      size,
      threads,
      cpu: os.cpus()[0]?.model ?? 'cpu',
      cpu_capability: info.cpuCapability,
      onednn_isa: info.onednnIsa,
      blas_core: info.blasCore,
      quantized_engine: quantizedEngines().engine,
      attention: attentionImpl(),
      torch: info.torchVersion,
      ms: Math.round(median(ts) * 10) / 10,
      ms_all: ts.map((t) => Math.round(t)),
      peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
      rss_model_mb: Math.round(rssModel),
      cpu_ms_per_iter: cpuMsPerIter,
      ...extra,
    }),
  );
}

main();
