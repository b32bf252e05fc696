/**
 * cv2.resize numerics. Expected values marked "cv2" were produced by OpenCV
 * 4.6 (cv2.resize on the same inputs) while writing cv_resize.ts; the others
 * are derived by hand from the formulas in the comments.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resizeLinearU8, resizeNearestU8, roundHalfEven } from '../../src/data/transforms/cv_resize.js';

const flat = (rows: number[][]): Uint8Array => Uint8Array.from(rows.flat());

test('roundHalfEven matches cvRound on ties', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, 2.4999, 1536.0].map(roundHalfEven), [0, 2, 2, -0, -2, 2, 1536]);
});

test('bilinear 2x2 -> 4x4 (hand-derived, = cv2)', () => {
  // scale 0.5: fx = (dx + 0.5) * 0.5 - 0.5 = -0.25, 0.25, 0.75, 1.25.
  // dx=0 clamps to src 0, dx=3 to src 1; dx=1 weights (1536, 512), dx=2 (512, 1536).
  // Row 0 = [0, 100]: horizontal sums 0, 100*512, 100*1536, 100*2048.
  // Output row 0 reads source row 0 twice (fy=-0.25 -> rows clip(-1), 0):
  // ((51200>>4)*512>>16) + ((51200>>4)*1536>>16) = 25 + 75 -> (100+2)>>2 = 25.
  const out = resizeLinearU8(
    flat([
      [0, 100],
      [200, 50],
    ]),
    2,
    2,
    1,
    4,
    4,
  );
  assert.deepEqual(Array.from(out.subarray(0, 4)), [0, 25, 75, 100]);
  // cv2:
  assert.deepEqual(
    Array.from(out),
    Array.from(
      flat([
        [0, 25, 75, 100],
        [50, 59, 78, 88],
        [150, 128, 84, 63],
        [200, 162, 87, 50],
      ]),
    ),
  );
});

test('bilinear exact 2x downscale uses the area average (a+b+c+d+2)>>2 (= cv2)', () => {
  const src = flat([
    [10, 20, 30, 40],
    [50, 60, 70, 80],
    [90, 100, 110, 120],
    [130, 140, 150, 161],
  ]);
  const out = resizeLinearU8(src, 4, 4, 1, 2, 2);
  // (10+20+50+60+2)>>2 = 35; (110+120+150+161+2)>>2 = 135 (135.25 rounds down)
  assert.deepEqual(Array.from(out), [35, 55, 115, 135]);
  assert.deepEqual(
    Array.from(out),
    Array.from(
      flat([
        [35, 55],
        [115, 135],
      ]),
    ),
  );
});

test('bilinear 4x4 -> 3x3 (cv2)', () => {
  const src = flat([
    [10, 20, 30, 40],
    [50, 60, 70, 80],
    [90, 100, 110, 120],
    [130, 140, 150, 161],
  ]);
  assert.deepEqual(
    Array.from(resizeLinearU8(src, 4, 4, 1, 3, 3)),
    Array.from(
      flat([
        [18, 32, 45],
        [72, 85, 98],
        [125, 138, 152],
      ]),
    ),
  );
});

test('bilinear random RGB 5x7 -> 9x4 and 3x11 (cv2)', () => {
  const src = Uint8Array.from([
    139, 74, 229, 241, 169, 65, 6, 160, 149, 106, 38, 175, 188, 205, 175, 229, 98, 249, 10, 148, 95, 86, 147, 198, 66,
    39, 106, 213, 171, 45, 167, 57, 69, 81, 55, 14, 153, 178, 215, 76, 52, 39, 250, 72, 215, 50, 161, 223, 112, 172,
    161, 233, 38, 17, 89, 1, 221, 6, 242, 127, 143, 6, 60, 210, 94, 25, 166, 33, 249, 189, 12, 204, 33, 57, 124, 30,
    199, 149, 202, 119, 72, 220, 3, 209, 122, 136, 147, 77, 133, 82, 115, 87, 162, 230, 70, 71, 240, 62, 47, 184, 31,
    34, 63, 65, 146,
  ]);
  assert.deepEqual(
    Array.from(resizeLinearU8(src, 5, 7, 3, 9, 4)),
    [
      177, 110, 167, 18, 145, 152, 178, 184, 175, 92, 129, 153, 144, 109, 166, 81, 149, 117, 149, 141, 123, 96, 119,
      137, 89, 107, 164, 186, 155, 59, 101, 69, 38, 103, 102, 110, 121, 106, 188, 171, 156, 90, 98, 33, 98, 99, 97, 96,
      175, 105, 218, 127, 155, 143, 107, 6, 196, 92, 95, 85, 185, 86, 157, 150, 79, 171, 64, 103, 168, 159, 68, 125,
      183, 78, 110, 165, 25, 189, 53, 168, 135, 202, 47, 152, 135, 113, 118, 143, 62, 165, 169, 102, 82, 143, 50, 122,
      105, 135, 122, 129, 85, 150, 239, 63, 50, 108, 52, 104,
    ],
  );
  assert.deepEqual(
    Array.from(resizeLinearU8(src, 5, 7, 3, 3, 11)),
    [
      121, 98, 219, 149, 111, 155, 173, 129, 82, 104, 153, 105, 93, 120, 123, 126, 44, 140, 143, 115, 128, 166, 147,
      153, 199, 127, 227, 110, 120, 149, 32, 116, 76, 250, 72, 215, 159, 112, 219, 56, 162, 217, 95, 169, 178, 156, 123,
      109, 233, 38, 17, 141, 14, 147, 66, 67, 195, 14, 220, 136, 81, 113, 90, 143, 6, 60, 151, 122, 106, 131, 112, 121,
      110, 96, 141, 130, 72, 165, 149, 63, 144, 164, 66, 89, 168, 92, 84, 175, 95, 71, 188, 65, 50, 149, 52, 112, 115,
      44, 167,
    ],
  );
});

test('same size is a copy', () => {
  const src = Uint8Array.from([1, 2, 3, 4, 5, 6]);
  const out = resizeLinearU8(src, 1, 2, 3, 1, 2);
  assert.deepEqual(out, src);
  assert.notEqual(out, src);
});

test('constant image stays constant at any size', () => {
  const src = new Uint8Array(7 * 9 * 3).fill(201);
  for (const [h, w] of [
    [13, 4],
    [3, 17],
    [640, 853],
    [1, 1],
  ]) {
    const out = resizeLinearU8(src, 7, 9, 3, h, w);
    assert.ok(
      out.every((v) => v === 201),
      `${h}x${w}`,
    );
  }
});

test('nearest: src = min(floor(dst / (dw/sw)), size-1) (hand-derived, = cv2)', () => {
  const src = flat([
    [10, 20, 30, 40],
    [50, 60, 70, 80],
    [90, 100, 110, 120],
    [130, 140, 150, 161],
  ]);
  // 4 -> 3: 1/(3/4) = 1.333..: rows/cols 0, 1, 2
  assert.deepEqual(Array.from(resizeNearestU8(src, 4, 4, 1, 3, 3)), [10, 20, 30, 50, 60, 70, 90, 100, 110]);
  assert.deepEqual(
    Array.from(resizeNearestU8(src, 4, 4, 1, 3, 3)),
    Array.from(
      flat([
        [10, 20, 30],
        [50, 60, 70],
        [90, 100, 110],
      ]),
    ),
  );
  // 2x2 -> 5 rows x 3 cols: rows floor(y*0.4) = 0,0,0,1,1; cols floor(x*0.667) = 0,0,1
  const a = flat([
    [0, 100],
    [200, 50],
  ]);
  assert.deepEqual(
    Array.from(resizeNearestU8(a, 2, 2, 1, 5, 3)),
    Array.from(
      flat([
        [0, 0, 100],
        [0, 0, 100],
        [0, 0, 100],
        [200, 200, 50],
        [200, 200, 50],
      ]),
    ),
  );
});

test('nearest keeps label values (no new ids appear)', () => {
  const src = Uint8Array.from({ length: 6 * 5 }, (_, i) => [3, 7, 255][i % 3]);
  const out = resizeNearestU8(src, 6, 5, 1, 17, 11);
  assert.ok(out.every((v) => v === 3 || v === 7 || v === 255));
});

test('bad arguments throw', () => {
  assert.throws(() => resizeLinearU8(new Uint8Array(5), 2, 2, 1, 3, 3), /expected 2x2x1/);
  assert.throws(() => resizeNearestU8(new Uint8Array(4), 2, 2, 1, 0, 3), /positive/);
});
