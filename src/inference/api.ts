/**
 * The library API, mirroring mmseg's Python API in camelCase:
 *   const model = await initModel('configs/x.json', 'weights.safetensors', { device: 'cpu' });
 *   const { pred, logits } = await inferenceModel(model, 'image.jpg');
 */
import { buildSegmentor } from '../models/builder.js';
import { cudnnBenchmarkOf, isDict, loadConfig, type Dict } from '../config/schema.js';
import type { EncoderDecoder } from '../models/segmentors/encoder_decoder.js';
import { toRgbImage } from '../data/image_io.js';
import type { RgbImage } from '../data/types.js';
import { interpolate, softmax } from '../tensor/functional.js';
import { autocast, cuda, deviceTypeOf, noGrad, resolveDevice } from '../tensor/runtime.js';
import { keep, tidy } from '../tensor/scope.js';
import type { Device, Tensor } from '../tensor/tensor.js';
import { preprocessFromConfig, testResize, toInputTensor, type Preprocess } from './preprocess.js';
import { describeLoad, loadWeights, type WeightsReport } from './weights.js';
import { resizeImage } from '../data/transforms/resize.js';
import { flipImage } from '../data/transforms/flip.js';
import { datasetMetaWithCheckpoint, type DatasetMeta } from './metainfo.js';
import { hfArchitectureOf } from '../checkpoint/convert/hf_beit.js';
import { applyHfArchitecture } from '../checkpoint/convert/hf_beit_config.js';
import { describePlan, planWindows, ttaViews } from './window_plan.js';
import { DEFAULT_TTA_SCALES } from './resize_plan.js';
import { checkPolicy, forwardPrecision, resolvePolicy, type PrecisionPolicy } from './precision.js';
import { checkCudaGraphs, windowForward } from './window_forward.js';

export type { PrecisionPolicy, Quantize } from './precision.js';

export interface SegModel {
  model: EncoderDecoder;
  config: Dict;
  preprocess: Preprocess;
  device: Device;
  meta: DatasetMeta;
  weights: WeightsReport | null;
  /** Default precision of every inference (initModel's `precision`); a call's own options override it. */
  precision?: PrecisionPolicy;
  /** Slide windows replayed from CUDA graphs by default (initModel's `cudaGraphs`). */
  cudaGraphs?: boolean;
}

export interface InitOptions {
  device?: string;
  /** Print load warnings (missing / unexpected keys) to stderr. */
  verbose?: boolean;
  /** Default precision of every inference; its low-precision parts are built here, once. */
  precision?: PrecisionPolicy;
  /**
   * Slide-mode windows from CUDA graphs: each window-batch shape is captured once and replayed
   * (CUDA builds and devices only; whole-image inference stays eager: its shapes vary).
   */
  cudaGraphs?: boolean;
}

export async function initModel(
  config: string | Dict,
  weights?: string | null,
  opts: InitOptions = {},
): Promise<SegModel> {
  let cfg = typeof config === 'string' ? loadConfig(config) : config;
  if (!isDict(cfg.model)) throw new Error(`${typeof config === 'string' ? config : 'config'}: no "model" section`);
  const hf = weights ? hfArchitectureOf(weights) : null;
  if (hf) {
    // HF BEiT weights: the architecture (sizes, tapped layers, norm eps, heads) is config.json's.
    const { model, changes } = applyHfArchitecture(cfg.model as Dict, hf.model);
    cfg = { ...cfg, model };
    if (opts.verbose) for (const c of changes) process.stderr.write(`${hf.configFile}: ${c}\n`);
  }
  const device = resolveDevice(opts.device);
  const model = buildSegmentor(cfg.model as Dict);
  let report: WeightsReport | null = null;
  if (weights) {
    report = await loadWeights(model, weights);
    if (opts.verbose) for (const line of describeLoad(report)) process.stderr.write(`${line}\n`);
  }
  model.eval();
  if (device !== 'cpu') {
    cuda.flags({ benchmark: cudnnBenchmarkOf(cfg) });
    model.to(device);
  }
  const { meta, warnings } = datasetMetaWithCheckpoint(cfg, model.numClasses, report?.description.classes);
  if (opts.verbose) for (const w of warnings) process.stderr.write(`${w}\n`);
  const seg: SegModel = {
    model,
    config: cfg,
    preprocess: preprocessFromConfig(cfg),
    device,
    meta,
    weights: report,
  };
  if (opts.precision) {
    const policy = resolvePolicy(opts.precision, {});
    checkPolicy(policy, device);
    seg.precision = policy;
    forwardPrecision(seg.model, policy);
  }
  if (opts.cudaGraphs) {
    checkCudaGraphs(device);
    seg.cudaGraphs = true;
  }
  return seg;
}

export interface InferenceOptions extends PrecisionPolicy {
  mode?: 'whole' | 'slide';
  /** Skip the test Resize: the image is fed at its own size. */
  noResize?: boolean;
  /** Windows per forward pass in slide mode. */
  windowBatch?: number;
  /** Multi-scale + flip test-time augmentation. */
  tta?: boolean | TtaOptions;
  /** Overrides initModel's `cudaGraphs` for this call. */
  cudaGraphs?: boolean;
  /**
   * Refuse, before any forward pass, an image that needs more slide windows (or whole-image
   * passes) than this in all views (default: no limit). See planWindows.
   */
  maxWindows?: number;
  /** Called after each batch of slide windows of each view: windows done and that view's total. */
  onWindow?: (done: number, total: number) => void;
}

export interface TtaOptions {
  /** Ratios applied to the test Resize scale (mmseg img_ratios). */
  scales?: number[];
  flip?: boolean;
  /** mmseg 0.x Resize(min_size): BEiT's published ms+flip numbers use 640. */
  minSize?: number;
}

export { DEFAULT_TTA_SCALES } from './resize_plan.js';

export interface InferenceResult {
  /** Class index per pixel at the original size, row-major H×W. */
  pred: Int32Array;
  height: number;
  width: number;
  /** [1, C, H, W] float32 at the original size: logits, or averaged probabilities with TTA. The caller disposes it. */
  logits: Tensor;
  kind: 'logits' | 'probs';
}

/**
 * Segments one image exactly as mmseg's test pipeline does: a path, the encoded bytes of an
 * image file (a Buffer or Uint8Array: JPEG, PNG, WebP, ...) or decoded RGB.
 */
export async function inferenceModel(
  m: SegModel,
  image: string | Uint8Array | RgbImage,
  opts: InferenceOptions = {},
): Promise<InferenceResult> {
  const img = await toRgbImage(image);
  if (opts.maxWindows !== undefined) {
    const plan = planWindows(m, img.width, img.height, opts, DEFAULT_TTA_SCALES);
    if (plan.windows > opts.maxWindows) {
      throw new Error(`${img.width}x${img.height} image: ${describePlan(plan)} is over maxWindows ${opts.maxWindows}`);
    }
  }
  const policy = resolvePolicy(m.precision, opts);
  checkPolicy(policy, m.device);
  const logits = noGrad(() =>
    autocast(deviceTypeOf(m.device), policy.amp, () =>
      opts.tta ? ttaProbs(m, img, opts, opts.tta === true ? {} : opts.tta) : singleLogits(m, img, opts),
    ),
  );
  const pred = tidy(() => logits.argmax(1).to('int32').toTypedArray() as Int32Array);
  return { pred, height: img.height, width: img.width, logits, kind: opts.tta ? 'probs' : 'logits' };
}

function forward(m: SegModel, input: Tensor, opts: InferenceOptions): Tensor {
  const policy = resolvePolicy(m.precision, opts);
  const precision = forwardPrecision(m.model, policy);
  const graphs = opts.cudaGraphs ?? m.cudaGraphs ?? false;
  if (graphs) checkCudaGraphs(m.device);
  return m.model.inference(input, {
    mode: opts.mode,
    windowBatch: opts.windowBatch,
    precision,
    windowForward: windowForward(m.model, policy, graphs),
    onWindow: opts.onWindow,
  });
}

function toOriginal(m: SegModel, logits: Tensor, img: RgbImage): Tensor {
  return interpolate(logits.float(), [img.height, img.width], 'bilinear', m.model.decodeHead.cfg.align_corners);
}

function singleLogits(m: SegModel, img: RgbImage, opts: InferenceOptions): Tensor {
  const resized = opts.noResize ? img : testResize(img, m.preprocess.scale);
  return keep(tidy(() => toOriginal(m, forward(m, toInputTensor(resized, m.preprocess, m.device), opts), img)));
}

/**
 * SegTTAModel: softmax of every (scale, flip) view at the original size, averaged. Without
 * explicit scales (or minSize), the config's tta_pipeline decides (mmseg 1.x: factors of the
 * loaded image's size); a config without one keeps DEFAULT_TTA_SCALES on the test scale.
 */
function ttaProbs(m: SegModel, img: RgbImage, opts: InferenceOptions, tta: TtaOptions): Tensor {
  const { sizes, flips } = ttaViews(m, img.width, img.height, opts.noResize ?? false, tta, DEFAULT_TTA_SCALES);
  let sum: Tensor | null = null;
  for (const [h, w] of sizes) {
    const resized = h === img.height && w === img.width ? img : resizeImage(img, h, w);
    for (const flip of flips) {
      const next: Tensor = tidy(() => {
        const view = flip ? flipImage(resized, 'horizontal') : resized;
        let probs = softmax(toOriginal(m, forward(m, toInputTensor(view, m.preprocess, m.device), opts), img), 1);
        if (flip) probs = probs.flip(3);
        return sum ? sum.add(probs) : probs;
      });
      sum?.dispose();
      sum = keep(next);
    }
  }
  const total = sizes.length * flips.length;
  const out = keep(tidy(() => sum!.div(total)));
  sum!.dispose();
  return out;
}
