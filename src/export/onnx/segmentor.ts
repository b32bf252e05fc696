/**
 * The whole segmentor as one ONNX model: input [N, 3, H, W] normalised RGB -> logits
 * [N, classes, H, W] (mmseg's encode_decode: backbone, neck, decode head, bilinear resize to the
 * input; the auxiliary head is training-only and left out), with the model's metadata.
 */
import type { SegModel } from '../../inference/api.js';
import { META_FORMAT, META_KEY, type ModelMeta } from '../../inference/model_meta.js';
import { ttaFromConfig } from '../../inference/tta_config.js';
import { UPerHead } from '../../models/decode_heads/uper_head.js';
import { tidy } from '../../tensor/scope.js';
import { exportBEiT } from './beit.js';
import { ExportContext, type HostWeight } from './context.js';
import { toFloat16 } from './fp16.js';
import { DataType, encodeModel, type ValueInfo } from './graph.js';
import { exportFeature2Pyramid, exportUPerHead } from './heads.js';
import { quantizeInt8 } from './quantize.js';
import { winogradConv3x3 } from './winograd.js';

export interface OnnxExportOptions {
  opset?: number;
  /** A graph for one fixed window size (default in slide mode), or for any input size. */
  shape?: 'window' | 'dynamic';
  fp16?: boolean;
  quantize?: 'int8';
  /**
   * 3×3 convolutions as Winograd F(2,3) in the graph (default off: on the 2-core test machine
   * BEiT-B's window took 21.6 s against 19.0 s direct, with 5.6 GB peak RSS against 3.2 GB;
   * docs/onnx.md). Not with int8, whose convolutions keep int8 weights.
   */
  winograd?: boolean;
  producerVersion?: string;
}

export const MIN_OPSET = 17;
export const MAX_OPSET = 21;

function hostWeights(seg: SegModel): Map<string, HostWeight> {
  const out = new Map<string, HostWeight>();
  for (const [key, t] of seg.model.stateDict()) {
    if (key.startsWith('auxiliary_head.') || t.dtype === 'int64') continue;
    out.set(
      key,
      tidy(() => ({ data: t.toFloat32Array(), shape: t.shape })),
    );
  }
  return out;
}

/** The graph's input window: the slide crop, or the backbone's pretraining window in whole mode. */
function windowOf(seg: SegModel): [number, number] {
  const t = seg.model.testCfg;
  if (t.mode === 'slide' && t.crop_size) return [t.crop_size[0], t.crop_size[1]];
  const p = seg.model.backbone.cfg.patch_size;
  return [seg.model.backbone.window[0] * p, seg.model.backbone.window[1] * p];
}

export function modelMeta(seg: SegModel, o: Required<Pick<OnnxExportOptions, 'opset'>> & OnnxExportOptions): ModelMeta {
  const t = seg.model.testCfg;
  const dynamic = (o.shape ?? (t.mode === 'slide' ? 'window' : 'dynamic')) === 'dynamic';
  return {
    format: META_FORMAT,
    classes: seg.meta.classes,
    palette: seg.meta.palette,
    mean: seg.preprocess.mean,
    std: seg.preprocess.std,
    scale: seg.preprocess.scale,
    testCfg: {
      mode: t.mode,
      ...(t.crop_size ? { crop_size: t.crop_size } : {}),
      ...(t.stride ? { stride: t.stride } : {}),
    },
    alignCorners: seg.model.decodeHead.cfg.align_corners,
    numClasses: seg.model.numClasses,
    window: dynamic ? null : windowOf(seg),
    tta: ttaFromConfig(seg.config),
    precision: o.quantize ? 'int8' : o.fp16 ? 'fp16' : 'fp32',
    opset: o.opset,
  };
}

/** Encodes the model as ONNX bytes. */
export function exportSegmentorOnnx(seg: SegModel, o: OnnxExportOptions = {}): { bytes: Uint8Array; meta: ModelMeta } {
  const opset = o.opset ?? MIN_OPSET;
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new Error(`--opset must be ${MIN_OPSET}..${MAX_OPSET} (LayerNormalization needs 17), got ${o.opset}`);
  }
  if (o.fp16 && o.quantize) throw new Error('--fp16 and --quantize int8 exclude each other');
  const m = seg.model;
  if (!(m.decodeHead instanceof UPerHead)) throw new Error('export: only UPerHead decode heads are supported');
  if (!m.neck) throw new Error('export: a model without a neck is not supported');
  const meta = modelMeta(seg, { ...o, opset });
  const ctx = new ExportContext(m, hostWeights(seg));
  if (o.winograd && !o.quantize) ctx.winograd = winogradConv3x3;
  const g = ctx.g;
  const input = 'input';
  const feats = exportBEiT(ctx, input, m.backbone, 'backbone', meta.window === null);
  const pyramid = exportFeature2Pyramid(ctx, feats, m.neck, 'neck');
  const logits = exportUPerHead(ctx, pyramid, m.decodeHead, 'decode_head');
  const resized = ctx.resizeLike(logits, input, meta.alignCorners);
  g.nodes.push({ opType: 'Identity', input: [resized], output: ['logits'], name: g.name('output') });
  const [h, w]: (number | string)[] = meta.window ?? ['height', 'width'];
  const inputs: ValueInfo[] = [{ name: input, elemType: DataType.FLOAT, dims: ['batch', 3, h, w] }];
  const outputs: ValueInfo[] = [{ name: 'logits', elemType: DataType.FLOAT, dims: ['batch', meta.numClasses, h, w] }];
  if (o.fp16) toFloat16(g, input, 'logits');
  if (o.quantize === 'int8') quantizeInt8(g);
  const bytes = encodeModel({
    graph: g,
    graphName: 'beitseg_encoder_decoder',
    inputs,
    outputs,
    opset,
    metadata: { [META_KEY]: JSON.stringify(meta) },
    producerVersion: o.producerVersion ?? '0.1.0',
    docString: 'BEiT + UperNet segmentor exported by beitseg: input normalised RGB NCHW, output logits at input size',
  });
  return { bytes, meta };
}
