/**
 * A 3×3, stride-1, pad-1 convolution as Winograd F(2×2, 3×3) in standard ops: each 4×4 input
 * tile (stride 2) is transformed by a grouped Conv (Bᵀ d B), the 16 tile positions become 16
 * batched MatMuls with the transformed weights (G g Gᵀ, computed in the graph from the stored
 * 3×3 weights, so ONNX Runtime folds them once at load), and a grouped ConvTranspose applies
 * Aᵀ m A. 2.25x fewer multiplications than the direct convolution ONNX Runtime runs (UPerHead's
 * large 3×3 layers are most of a BEiT-UperNet window's time there), but the transposes between
 * the steps cost as much again on the test machine (docs/onnx.md): an option, off by default.
 * Input channels go in chunks of at most 768 (their products are summed).
 */
import type { ExportContext } from './context.js';

const BT = [
  [1, 0, -1, 0],
  [0, 1, 1, 0],
  [0, -1, 1, 0],
  [0, 1, 0, -1],
];
const G = [
  [1, 0, 0],
  [0.5, 0.5, 0.5],
  [0.5, -0.5, 0.5],
  [0, 0, 1],
];
const AT = [
  [1, 1, 1, 0],
  [0, 1, -1, -1],
];
const CHUNK = 768;

/** The conv at `key` (bias optional) on NCHW x as Winograd F(2,3). */
export function winogradConv3x3(ctx: ExportContext, x: string, key: string): string {
  const g = ctx.g;
  const w = ctx.raw(`${key}.weight`);
  const [cout, cin] = w.shape;
  const c = (v: number[]) => g.constInt64(v);
  // pad 1 on every side, plus one more row / column where the size is odd (whole 2×2 output tiles)
  const hw = ctx.dims(x, 2, 4);
  const odd = g.op('Mod', [hw, c([2, 2])]);
  const pads = g.op('Concat', [c([0, 0, 1, 1, 0, 0]), g.op('Add', [odd, c([1, 1])])], { axis: 0 });
  const padded = g.op('Pad', [x, pads]);
  // input transform kernels: for tile position (a, b), Bᵀ[a,:] ⊗ Bᵀ[b,:] as a 4×4 kernel
  const chunks: string[] = [];
  for (let start = 0; start < cin; start += CHUNK) {
    const n = Math.min(CHUNK, cin - start);
    const kin = new Float32Array(n * 16 * 16);
    for (let ch = 0; ch < n; ch++) {
      for (let a = 0; a < 4; a++) {
        for (let b = 0; b < 4; b++) {
          for (let i = 0; i < 4; i++) {
            for (let j = 0; j < 4; j++) kin[((ch * 16 + a * 4 + b) * 4 + i) * 4 + j] = BT[a][i] * BT[b][j];
          }
        }
      }
    }
    const part = n === cin ? padded : g.op('Slice', [padded, c([start]), c([start + n]), c([1])]);
    const v = g.op('Conv', [part, g.float(`${key}.winograd_in_${start}`, [n * 16, 1, 4, 4], kin)], {
      kernel_shape: [4, 4],
      strides: [2, 2],
      group: n,
    });
    // [N, n·16, th, tw] -> [16, N, tiles, n]
    const tiles = g.op('Transpose', [g.op('Reshape', [v, c([0, n, 16, -1])])], { perm: [2, 0, 3, 1] });
    // U[k, ci, co] = (G g Gᵀ)[a, b] for k = 4a + b, from the weights' chunk [cout, n, 3, 3]
    const wk = new Float32Array(cout * n * 9);
    for (let o = 0; o < cout; o++) wk.set(w.data.subarray((o * cin + start) * 9, (o * cin + start + n) * 9), o * n * 9);
    const gw = g.float(`${key}.weight_${start}`, [cout, n, 3, 3], wk);
    const gm = g.constFloat(G.flat(), [4, 3]);
    const gmt = g.constFloat(
      [0, 1, 2].flatMap((i) => G.map((r) => r[i])),
      [3, 4],
    );
    const u = g.op('MatMul', [g.op('MatMul', [gm, gw]), gmt]); // [cout, n, 4, 4]
    const uk = g.op('Reshape', [
      g.op('Transpose', [g.op('Reshape', [u, c([cout, n, 16])])], { perm: [2, 1, 0] }),
      c([16, 1, n, cout]),
    ]); // [16, 1, n, cout]: the same for every image of the batch
    chunks.push(g.op('MatMul', [tiles, uk]));
  }
  const m = chunks.reduce((a, b) => g.op('Add', [a, b]));
  // [16, N, tiles, cout] -> [N, cout·16, th, tw]
  const th = g.op('Div', [g.op('Add', [hw, odd]), c([2, 2])]);
  const shape = g.op('Concat', [ctx.dims(x, 0, 1), c([cout * 16]), th], { axis: 0 });
  const mm = g.op('Reshape', [g.op('Transpose', [m], { perm: [1, 3, 0, 2] }), shape]);
  const kout = new Float32Array(cout * 16 * 4);
  for (let o = 0; o < cout; o++) {
    for (let a = 0; a < 4; a++) {
      for (let b = 0; b < 4; b++) {
        for (let i = 0; i < 2; i++)
          for (let j = 0; j < 2; j++) kout[((o * 16 + a * 4 + b) * 2 + i) * 2 + j] = AT[i][a] * AT[j][b];
      }
    }
  }
  const inputs = [mm, g.float(`${key}.winograd_out`, [cout * 16, 1, 2, 2], kout)];
  if (ctx.has(`${key}.bias`)) inputs.push(ctx.weight(`${key}.bias`));
  const y = g.op('ConvTranspose', inputs, { kernel_shape: [2, 2], strides: [2, 2], group: cout });
  // drop the extra row / column of odd sizes
  return g.op('Slice', [y, c([0, 0]), hw, c([2, 3])], {}, `${key}.winograd`);
}
