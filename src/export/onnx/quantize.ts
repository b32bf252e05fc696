/**
 * --quantize int8, as ONNX Runtime's quantize_dynamic does it: each MatMul with a weight
 * initializer becomes DynamicQuantizeLinear (activations to uint8 with a scale and zero point
 * found per run) -> MatMulInteger with int8 weights -> Cast -> Mul by the two scales; the weights
 * are symmetric int8 with one scale per output column. ONNX Runtime fuses this chain into its
 * DynamicQuantizeMatMul kernel. Convolution weights are stored int8 too (per output channel,
 * DequantizeLinear before the fp32 Conv): UPerHead's 3×3 convolutions hold about 40 % of
 * BEiT-B UperNet's weights, so the file shrinks about 4x, while they compute in fp32.
 */
import { DataType, type GraphBuilder, type TensorProto } from './graph.js';

function floats(t: TensorProto): Float32Array {
  const raw = t.rawData as Uint8Array;
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
}

/** Symmetric int8 per group: `groupOf(i)` names the group of element i; scale = max|w| / 127. */
function quantizeSymmetric(w: Float32Array, groups: number, groupOf: (i: number) => number) {
  const maxAbs = new Float32Array(groups);
  for (let i = 0; i < w.length; i++) {
    const g = groupOf(i);
    const a = Math.abs(w[i]);
    if (a > maxAbs[g]) maxAbs[g] = a;
  }
  const scale = maxAbs.map((m) => (m > 0 ? m / 127 : 1));
  const q = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) q[i] = Math.max(-127, Math.min(127, Math.round(w[i] / scale[groupOf(i)])));
  return { q, scale };
}

export function quantizeInt8(g: GraphBuilder): void {
  const inits = new Map(g.initializers.map((t) => [t.name as string, t]));
  const uses = new Map<string, number>();
  for (const n of g.nodes) for (const x of n.input ?? []) uses.set(x, (uses.get(x) ?? 0) + 1);
  const replaced = new Set<string>();
  // nodes are re-added in order: g.op appends the replacement chains as they are made
  const original = g.nodes.splice(0, g.nodes.length);
  for (const n of original) {
    const wName = n.input?.[1] ?? '';
    const w = inits.get(wName);
    const own = w && w.dataType === DataType.FLOAT && uses.get(wName) === 1;
    if (n.opType === 'MatMul' && own && w.dims?.length === 2) {
      const [k, cols] = w.dims.map(Number);
      const { q, scale } = quantizeSymmetric(floats(w), cols, (i) => i % cols);
      const wq = g.initializer(`${wName}_quantized`, DataType.INT8, [k, cols], q);
      const ws = g.float(`${wName}_scale`, [cols], scale);
      const wzp = g.initializer(`${wName}_zero_point`, DataType.INT8, [], new Int8Array(1));
      const [aq, as, azp] = g.ops('DynamicQuantizeLinear', [n.input![0]], {}, 3);
      const y = g.op('MatMulInteger', [aq, wq, azp, wzp]);
      const yf = g.op('Cast', [y], { to: DataType.FLOAT });
      const s = g.op('Mul', [as, ws]);
      g.nodes.push({ opType: 'Mul', input: [yf, s], output: n.output, name: n.name });
      replaced.add(wName);
    } else if ((n.opType === 'Conv' || n.opType === 'ConvTranspose') && own && w.dims?.length === 4) {
      // ConvTranspose weights are [in, out, k, k]: the output channel is axis 1
      const axis = n.opType === 'Conv' ? 0 : 1;
      const dims = w.dims.map(Number);
      const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
      const groups = dims[axis];
      const { q, scale } = quantizeSymmetric(floats(w), groups, (i) => Math.floor(i / inner) % groups);
      const wq = g.initializer(`${wName}_quantized`, DataType.INT8, dims, q);
      const ws = g.float(`${wName}_scale`, [groups], scale);
      const wzp = g.initializer(`${wName}_zero_point`, DataType.INT8, [groups], new Int8Array(groups));
      const deq = g.op('DequantizeLinear', [wq, ws, wzp], { axis });
      g.nodes.push({ ...n, input: [n.input![0], deq, ...n.input!.slice(2)] });
      replaced.add(wName);
    } else {
      g.nodes.push(n);
    }
  }
  const kept = g.initializers.filter((t) => !replaced.has(t.name as string));
  g.initializers.splice(0, g.initializers.length, ...kept);
}
