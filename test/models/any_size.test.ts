/**
 * Beyond mmseg: inputs whose patch grid differs from the model window. The relative position
 * bias is the model table resampled bilinearly (align_corners=false) over the offset grid; this
 * checks it against an independent JS implementation and runs whole inference on a
 * non-square image mmseg would reject.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { EncoderDecoder } from '../../src/models/segmentors/encoder_decoder.js';
import { noGrad } from '../../src/tensor/runtime.js';
import { randn } from '../../src/tensor/tensor.js';
import { loadTinyModel } from '../helpers.js';

/** PyTorch's bilinear rule (align_corners=false) on one axis: source index pair and weight. */
function sourceOf(dst: number, inSize: number, outSize: number): [number, number, number] {
  const src = Math.max(((dst + 0.5) * inSize) / outSize - 0.5, 0);
  const i0 = Math.floor(src);
  const i1 = Math.min(i0 + 1, inSize - 1);
  return [i0, i1, src - i0];
}

describe('any input size', () => {
  let model: EncoderDecoder;

  before(() => {
    model = loadTinyModel();
  });

  it('resamples the relative position bias for a 3x6 grid like an independent bilinear', () => {
    noGrad(() => {
      const attn = model.backbone.layers.at(1).attn;
      const [wh, ww] = attn.window; // 4x4
      const grid: [number, number] = [3, 6];
      const table = attn.parameter('relative_position_bias_table').toFloat32Array();
      const heads = attn.numHeads;
      const [sh, sw, dh, dw] = [2 * wh - 1, 2 * ww - 1, 2 * grid[0] - 1, 2 * grid[1] - 1];
      const T = sh * sw + 3;
      // expected table on the new offset grid, cls rows copied
      const expected = (row: number, h: number): number => {
        if (row >= dh * dw) return table[(sh * sw + (row - dh * dw)) * heads + h];
        const [y0, y1, ly] = sourceOf(Math.floor(row / dw), sh, dh);
        const [x0, x1, lx] = sourceOf(row % dw, sw, dw);
        const at = (y: number, x: number) => table[(y * sw + x) * heads + h];
        return (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) + ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1));
      };
      assert.equal(table.length, T * heads);
      const bias = attn.relativePositionBias(grid).contiguous().toFloat32Array(); // [heads, N, N]
      const n = grid[0] * grid[1] + 1;
      const tNew = dh * dw + 3;
      const index = (a: number, b: number): number => {
        if (a === 0 && b === 0) return tNew - 1;
        if (a === 0) return tNew - 3;
        if (b === 0) return tNew - 2;
        const [hi, wi, hj, wj] = [
          Math.floor((a - 1) / grid[1]),
          (a - 1) % grid[1],
          Math.floor((b - 1) / grid[1]),
          (b - 1) % grid[1],
        ];
        return (hi - hj + grid[0] - 1) * dw + (wi - wj + grid[1] - 1);
      };
      let worst = 0;
      for (let h = 0; h < heads; h++) {
        for (let a = 0; a < n; a++) {
          for (let b = 0; b < n; b++)
            worst = Math.max(worst, Math.abs(bias[(h * n + a) * n + b] - expected(index(a, b), h)));
        }
      }
      assert.ok(worst < 1e-6, `max |diff| ${worst}`);
    });
  });

  it('runs whole inference on a non-square 56x104 image (grid 3x6) with finite logits at full size', () => {
    noGrad(() => {
      const logits = model.inference(randn([1, 3, 56, 104]), { mode: 'whole' });
      assert.deepEqual(logits.shape, [1, 5, 56, 104]);
      assert.equal(logits.isfinite().logicalNot().sum().item(), 0);
    });
  });

  it('leaves the table untouched when the grid equals the window', () => {
    noGrad(() => {
      const attn = model.backbone.layers.at(0).attn;
      const a = attn.relativePositionBias(attn.window).contiguous().toFloat32Array();
      const table = attn.parameter('relative_position_bias_table').toFloat32Array();
      const index = attn.buffer('relative_position_index').toTypedArray() as BigInt64Array;
      const n = attn.window[0] * attn.window[1] + 1;
      for (let h = 0; h < attn.numHeads; h++) {
        for (let k = 0; k < n * n; k++) assert.equal(a[h * n * n + k], table[Number(index[k]) * attn.numHeads + h]);
      }
    });
  });
});
