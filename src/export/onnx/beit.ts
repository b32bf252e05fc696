/**
 * BEiT backbone as ONNX ops, following models/backbones/beit.ts step by step: patch embedding,
 * cls token, pre-norm layers with q/v bias, relative position bias and layer scale, NCHW taps.
 * The relative-position index is computed in the graph from the patch grid (the rule of
 * rel_pos.ts) and each layer gathers its bias from its [heads, T] table, so the graph holds
 * tables, not [heads, N, N] biases (1.4 GB for BEiT-B at 640). In dynamic graphs the tables are
 * resampled to the grid as resizeBiasTable does (an identity at the window's own grid).
 */
import type { BEiT } from '../../models/backbones/beit.js';
import type { ExportContext } from './context.js';

interface Grid {
  /** int64 [1] patch rows / columns, and the token count n = rows·cols + 1. */
  gh: string;
  gw: string;
  n: string;
  /** int64 [n·n]: flattened relative-position index of the grid. */
  index: string;
}

/** Relative-position index of the grid (see rel_pos.ts relativePositionIndexArray), in the graph. */
function gridIndex(ctx: ExportContext, patches: string): Grid {
  const g = ctx.g;
  const c = (v: number) => g.constInt64([v]);
  const gh = ctx.dims(patches, 2, 3);
  const gw = ctx.dims(patches, 3, 4);
  const m = g.op('Mul', [gh, gw]);
  const scalar = (v: string) => g.op('Squeeze', [v, c(0)]);
  const i = g.op('Range', [g.constInt64([0], []), scalar(m), g.constInt64([1], [])]);
  const hi = g.op('Div', [i, gw]);
  const wi = g.op('Mod', [i, gw]);
  const diff = (v: string) => g.op('Sub', [g.op('Unsqueeze', [v, c(1)]), g.op('Unsqueeze', [v, c(0)])]);
  const one = c(1);
  const spanW = g.op('Sub', [g.op('Mul', [gw, c(2)]), one]);
  const spanH = g.op('Sub', [g.op('Mul', [gh, c(2)]), one]);
  const dh = g.op('Add', [diff(hi), g.op('Sub', [gh, one])]);
  const dw = g.op('Add', [diff(wi), g.op('Sub', [gw, one])]);
  const rel = g.op('Add', [g.op('Mul', [dh, spanW]), dw]);
  const t = g.op('Mul', [spanH, spanW]);
  const row = g.op('Expand', [t, g.op('Concat', [one, m], { axis: 0 })]);
  const col = g.op('Expand', [g.op('Add', [t, one]), g.op('Concat', [m, one], { axis: 0 })]);
  const corner = g.op('Reshape', [g.op('Add', [t, c(2)]), g.constInt64([1, 1])]);
  const top = g.op('Concat', [corner, row], { axis: 1 });
  const body = g.op('Concat', [col, rel], { axis: 1 });
  const index = g.op('Reshape', [g.op('Concat', [top, body], { axis: 0 }), g.constInt64([-1])], {}, 'rel_pos_index');
  return { gh, gw, n: g.op('Add', [m, one]), index };
}

/** The layer's bias [heads, n, n] gathered from its table (resampled to the grid when dynamic). */
function relativeBias(ctx: ExportContext, key: string, beit: BEiT, grid: Grid, dynamic: boolean): string {
  const g = ctx.g;
  const table = ctx.raw(`${key}.relative_position_bias_table`);
  const [rows, heads] = table.shape;
  const tT = new Float32Array(rows * heads);
  for (let r = 0; r < rows; r++) for (let h = 0; h < heads; h++) tT[h * rows + r] = table.data[r * heads + h];
  let tableT = g.float(`${key}.relative_position_bias_table_t`, [heads, rows], tT);
  if (dynamic) {
    const [wh, ww] = beit.window;
    const [sh, sw] = [2 * wh - 1, 2 * ww - 1];
    const grid4 = g.op('Reshape', [
      g.op('Slice', [tableT, g.constInt64([0]), g.constInt64([sh * sw]), g.constInt64([1])]),
      g.constInt64([1, heads, sh, sw]),
    ]);
    const two = g.constInt64([2]);
    const one = g.constInt64([1]);
    const size = (v: string) => g.op('Sub', [g.op('Mul', [v, two]), one]);
    const sizes = g.op('Concat', [g.constInt64([1, heads]), size(grid.gh), size(grid.gw)], { axis: 0 });
    const resized = g.op('Resize', [grid4, '', '', sizes], {
      mode: 'linear',
      coordinate_transformation_mode: 'half_pixel',
    });
    const cls = g.op('Slice', [tableT, g.constInt64([sh * sw]), g.constInt64([sh * sw + 3]), g.constInt64([1])]);
    tableT = g.op('Concat', [g.op('Reshape', [resized, g.constInt64([heads, -1])]), cls], { axis: 1 });
  }
  const flat = g.op('Gather', [tableT, grid.index], { axis: 1 });
  const shape = g.op('Concat', [g.constInt64([heads]), grid.n, grid.n], { axis: 0 });
  return g.op('Reshape', [flat, shape], {}, `${key}.rel_pos_bias`);
}

function attention(ctx: ExportContext, x: string, key: string, beit: BEiT, grid: Grid, dynamic: boolean): string {
  const g = ctx.g;
  const { embed_dims: c, num_heads: heads, qv_bias } = beit.cfg;
  const hd = c / heads;
  let qkv = ctx.linear(x, `${key}.qkv`, false);
  if (qv_bias) {
    const q = ctx.raw(`${key}.q_bias`).data;
    const v = ctx.raw(`${key}.v_bias`).data;
    const b = new Float32Array(3 * c);
    b.set(q, 0);
    b.set(v, 2 * c);
    qkv = g.op('Add', [qkv, g.float(`${key}.qkv_bias`, [3 * c], b)]);
  }
  const parts = g.op('Transpose', [g.op('Reshape', [qkv, g.constInt64([0, 0, 3, heads, hd])])], {
    perm: [2, 0, 3, 1, 4],
  });
  const [q, k, v] = g.ops('Split', [parts, g.constInt64([1, 1, 1])], { axis: 0 }, 3, `${key}.qkv_split`);
  const sq = (t: string) => g.op('Squeeze', [t, g.constInt64([0])]);
  const scaled = g.op('Mul', [sq(q), g.constFloat([hd ** -0.5], [])]);
  const kT = g.op('Transpose', [sq(k)], { perm: [0, 1, 3, 2] });
  const scores = g.op('Add', [g.op('MatMul', [scaled, kT]), relativeBias(ctx, key, beit, grid, dynamic)]);
  const probs = g.op('Softmax', [scores], { axis: -1 });
  const out = g.op('MatMul', [probs, sq(v)]);
  const merged = g.op('Reshape', [g.op('Transpose', [out], { perm: [0, 2, 1, 3] }), g.constInt64([0, 0, c])]);
  return ctx.linear(merged, `${key}.proj`);
}

function encoderLayer(ctx: ExportContext, x: string, key: string, beit: BEiT, grid: Grid, dynamic: boolean): string {
  const g = ctx.g;
  const a = attention(ctx, ctx.layerNorm(x, `${key}.ln1`), `${key}.attn`, beit, grid, dynamic);
  const y = g.op('Add', [x, g.op('Mul', [a, ctx.weight(`${key}.gamma_1`)])]);
  const h = ctx.gelu(ctx.linear(ctx.layerNorm(y, `${key}.ln2`), `${key}.ffn.layers.0.0`));
  const f = ctx.linear(h, `${key}.ffn.layers.1`);
  return g.op('Add', [y, g.op('Mul', [f, ctx.weight(`${key}.gamma_2`)])], {}, `${key}.out`);
}

/** [B, 3, H, W] -> one NCHW map per out index, as BEiT.forward. */
export function exportBEiT(ctx: ExportContext, img: string, beit: BEiT, key: string, dynamic: boolean): string[] {
  const g = ctx.g;
  const c = beit.cfg.embed_dims;
  const patches = ctx.conv(img, `${key}.patch_embed.projection`);
  const tokens = g.op('Transpose', [g.op('Reshape', [patches, g.constInt64([0, 0, -1])])], { perm: [0, 2, 1] });
  const cls = g.op('Expand', [
    ctx.weight(`${key}.cls_token`),
    g.op('Concat', [ctx.dims(tokens, 0, 1), g.constInt64([1, c])], { axis: 0 }),
  ]);
  let x = g.op('Concat', [cls, tokens], { axis: 1 });
  const grid = gridIndex(ctx, patches);
  const mapShape = ctx.dims(patches, 0, 4);
  const outs: string[] = [];
  for (let i = 0; i < beit.layers.length; i++) {
    x = encoderLayer(ctx, x, `${key}.layers.${i}`, beit, grid, dynamic);
    if (i === beit.layers.length - 1 && beit.finalNorm) x = ctx.layerNorm(x, `${key}.ln1`);
    if (beit.cfg.out_indices.includes(i)) {
      const body = g.op('Slice', [x, g.constInt64([1]), g.constInt64([2 ** 62]), g.constInt64([1])]);
      outs.push(g.op('Reshape', [g.op('Transpose', [body], { perm: [0, 2, 1] }), mapShape], {}, `${key}.out${i}`));
    }
  }
  return outs;
}
