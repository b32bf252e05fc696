/**
 * Feature2Pyramid and UPerHead as ONNX ops, following models/necks/feature2pyramid.ts and
 * models/decode_heads/uper_head.ts. Adaptive average pooling (the PPM) is two matmuls with
 * pooling matrices built in the graph from the map's size with torch's bin rule
 * [floor(i·L/s), ceil((i+1)·L/s)), so any input size pools as AdaptiveAvgPool2d does.
 */
import type { Feature2Pyramid } from '../../models/necks/feature2pyramid.js';
import type { UPerHead } from '../../models/decode_heads/uper_head.js';
import { DataType } from './graph.js';
import type { ExportContext } from './context.js';

export function exportFeature2Pyramid(
  ctx: ExportContext,
  feats: string[],
  neck: Feature2Pyramid,
  key: string,
): string[] {
  const g = ctx.g;
  return feats.map((x, i) => {
    switch (neck.rescales[i]) {
      case 4: {
        const a = ctx.convTranspose(x, `${key}.upsample_4x.0`, 2);
        const b = ctx.gelu(ctx.batchNorm(a, `${key}.upsample_4x.1`));
        return ctx.convTranspose(b, `${key}.upsample_4x.3`, 2);
      }
      case 2:
        return ctx.convTranspose(x, `${key}.upsample_2x.0`, 2);
      case 1:
        return x;
      case 0.5:
        return g.op('MaxPool', [x], { kernel_shape: [2, 2], strides: [2, 2] });
      default:
        return g.op('MaxPool', [x], { kernel_shape: [4, 4], strides: [4, 4] });
    }
  });
}

/** [s, L] matrix whose row i averages the bin [floor(i·L/s), ceil((i+1)·L/s)) of a length-L axis. */
function poolMatrix(ctx: ExportContext, len: string, s: number): string {
  const g = ctx.g;
  const c = (v: number[]) => g.constInt64(v);
  const i = c(Array.from({ length: s }, (_, k) => k));
  const starts = g.op('Div', [g.op('Mul', [i, len]), c([s])]);
  const ends = g.op('Div', [g.op('Add', [g.op('Mul', [g.op('Add', [i, c([1])]), len]), c([s - 1])]), c([s])]);
  const pos = g.op('Range', [g.constInt64([0], []), g.op('Squeeze', [len, c([0])]), g.constInt64([1], [])]);
  const col = (v: string) => g.op('Unsqueeze', [v, c([1])]);
  const row = g.op('Unsqueeze', [pos, c([0])]);
  const inBin = g.op('And', [g.op('GreaterOrEqual', [row, col(starts)]), g.op('Less', [row, col(ends)])]);
  const count = g.op('Cast', [col(g.op('Sub', [ends, starts]))], { to: DataType.FLOAT });
  return g.op('Div', [g.op('Cast', [inBin], { to: DataType.FLOAT }), count], {}, `pool_matrix_${s}`);
}

/** AdaptiveAvgPool2d(s) of NCHW x: P_h · x · P_wᵀ. */
function adaptiveAvgPool(ctx: ExportContext, x: string, s: number): string {
  const g = ctx.g;
  if (s === 1) return g.op('GlobalAveragePool', [x]);
  const ph = poolMatrix(ctx, ctx.dims(x, 2, 3), s);
  const pw = poolMatrix(ctx, ctx.dims(x, 3, 4), s);
  const rows = g.op('MatMul', [x, g.op('Transpose', [pw], { perm: [1, 0] })]);
  return g.op('MatMul', [ph, rows], {}, `adaptive_avg_pool_${s}`);
}

function convModule(ctx: ExportContext, x: string, key: string): string {
  return ctx.g.op('Relu', [ctx.batchNorm(ctx.conv(x, `${key}.conv`), `${key}.bn`)], {}, key);
}

export function exportUPerHead(ctx: ExportContext, features: string[], head: UPerHead, key: string): string {
  const g = ctx.g;
  const cfg = head.upCfg;
  const ac = cfg.align_corners;
  const inIndex = Array.isArray(cfg.in_index) ? cfg.in_index : [cfg.in_index];
  const inputs = inIndex.map((i) => features[i]);
  const levels = inputs.length;
  const laterals = inputs.slice(0, -1).map((x, i) => convModule(ctx, x, `${key}.lateral_convs.${i}`));
  const top = inputs[levels - 1];
  const pooled = cfg.pool_scales.map((s, i) =>
    ctx.resizeLike(convModule(ctx, adaptiveAvgPool(ctx, top, s), `${key}.psp_modules.${i}.1`), top, ac),
  );
  laterals.push(convModule(ctx, g.op('Concat', [top, ...pooled], { axis: 1 }), `${key}.bottleneck`));
  for (let i = levels - 1; i > 0; i--) {
    laterals[i - 1] = g.op('Add', [laterals[i - 1], ctx.resizeLike(laterals[i], laterals[i - 1], ac)]);
  }
  const outs = laterals.map((l, i) => (i === levels - 1 ? l : convModule(ctx, l, `${key}.fpn_convs.${i}`)));
  const fused = g.op(
    'Concat',
    outs.map((o, i) => (i === 0 ? o : ctx.resizeLike(o, outs[0], ac))),
    { axis: 1 },
  );
  const feats = convModule(ctx, fused, `${key}.fpn_bottleneck`);
  return ctx.conv(feats, `${key}.conv_seg`);
}
