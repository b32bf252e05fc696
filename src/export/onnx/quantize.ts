/**
 * --quantize int8, as ONNX Runtime's quantize_dynamic does it: each MatMul with a weight
 * initializer becomes DynamicQuantizeLinear (activations to uint8 with a scale and zero point
 * found per run) -> MatMulInteger with int8 weights -> Cast -> Mul by the two scales; the weights
 * are symmetric int8 with one scale per output column. ONNX Runtime fuses this chain into its
 * DynamicQuantizeMatMul kernel. Convolutions (UPerHead's 3×3 ones hold about 40 % of BEiT-B
 * UperNet's weights and most of its time) compute in 8 bits too, with per-output-channel weight
 * scales. A stride-1 convolution becomes one MatMulInteger per kernel tap (convTaps): ONNX
 * Runtime's ConvInteger runs only uint8 weights fast, without the VNNI int8 kernels its
 * MatMulInteger uses, and was the slower of the two (bench/results/onnx-int8-*.txt). Other
 * convolutions use ConvInteger with uint8 weights (int8 + 128, zero point 128), transposed ones
 * keep int8 weights dequantized before an fp32 ConvTranspose. The file shrinks about 4x.
 */
import { DataType, onnx, type GraphBuilder, type NodeProto, type TensorProto } from './graph.js';

/** An INT attribute of a node, or `fallback`. */
function intAttr(n: NodeProto, name: string, fallback: number): number {
  const a = n.attribute?.find((x) => x.name === name);
  return a?.i === undefined || a.i === null ? fallback : Number(a.i);
}

/** The node's INTS attribute `name` (pads, strides, ...), or []. */
function intsAttr(n: NodeProto, name: string): number[] {
  return (n.attribute?.find((a) => a.name === name)?.ints ?? []).map(Number);
}

function allOnes(n: NodeProto, name: string): boolean {
  return intsAttr(n, name).every((v) => v === 1);
}

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

/** A weight quantized per output channel, the channel being axis `axis` of `w`'s dims. */
function quantizePerChannel(w: TensorProto, axis: number) {
  const dims = w.dims!.map(Number);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channels = dims[axis]!;
  return { channels, ...quantizeSymmetric(floats(w), channels, (i) => Math.floor(i / inner) % channels) };
}

/**
 * int32 products back to fp32: Cast, times the activation scale `xs` times the weight scales
 * `ws`, plus `bias` if given. With `as`, the last node writes that node's output in its place.
 */
function rescale(g: GraphBuilder, y: string, xs: string, ws: string, bias: string | null, as?: NodeProto): string {
  const yf = g.op('Cast', [y], { to: DataType.FLOAT });
  const scaled = [yf, g.op('Mul', [xs, ws])];
  const [opType, input] = bias ? ['Add', [g.op('Mul', scaled), bias]] : ['Mul', scaled];
  if (!as) return g.op(opType, input);
  g.nodes.push({ opType, input, output: as.output, name: as.name });
  return as.output![0]!;
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
      rescale(g, g.op('MatMulInteger', [aq, wq, azp, wzp]), as, ws, null, n);
      replaced.add(wName);
    } else if (n.opType === 'Conv' && own && w.dims?.length === 4 && intAttr(n, 'group', 1) === 1) {
      const taps = allOnes(n, 'strides') && allOnes(n, 'dilations');
      for (const name of (taps ? convTaps : convInteger)(g, n, w, inits)) if (uses.get(name) === 1) replaced.add(name);
    } else if ((n.opType === 'Conv' || n.opType === 'ConvTranspose') && own && w.dims?.length === 4) {
      // ConvTranspose weights are [in, out, k, k]: the output channel is axis 1
      const axis = n.opType === 'Conv' ? 0 : 1;
      const { channels, q, scale } = quantizePerChannel(w, axis);
      const wq = g.initializer(`${wName}_quantized`, DataType.INT8, w.dims.map(Number), q);
      const ws = g.float(`${wName}_scale`, [channels], scale);
      const wzp = g.initializer(`${wName}_zero_point`, DataType.INT8, [channels], new Int8Array(channels));
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

/**
 * A Conv computed in 8 bits: dynamic uint8 activations, per-output-channel weights, fp32 out.
 * Returns the initializers the Conv used (its weight, and its bias, now stored [C, 1, 1]).
 */
function convInteger(g: GraphBuilder, n: NodeProto, w: TensorProto, inits: Map<string, TensorProto>): string[] {
  const wName = w.name as string;
  const { channels: cout, q, scale } = quantizePerChannel(w, 0);
  const wq = g.initializer(
    `${wName}_quantized`,
    DataType.UINT8,
    w.dims!.map(Number),
    Uint8Array.from(q, (v) => v + 128),
  );
  const wzp = g.initializer(`${wName}_zero_point`, DataType.UINT8, [], Uint8Array.of(128));
  // [C, 1, 1] broadcasts over N x C x H x W
  const ws = g.float(`${wName}_scale`, [cout, 1, 1], scale);
  const [xq, xs, xzp] = g.ops('DynamicQuantizeLinear', [n.input![0]!], {}, 3);
  const attrs = Object.fromEntries(
    (n.attribute ?? []).filter((a) => a.name !== 'group').map((a) => [a.name as string, (a.ints ?? []).map(Number)]),
  );
  const y = g.op('ConvInteger', [xq, wq, xzp, wzp], attrs);
  const biasName = n.input?.[2];
  const bias = biasName ? inits.get(biasName) : undefined;
  rescale(g, y, xs, ws, bias ? g.float(`${biasName}_chw`, [cout, 1, 1], floats(bias)) : null, n);
  return bias ? [wName, biasName!] : [wName];
}

/**
 * A stride-1 Conv as 8-bit matrix products: the input quantized once (DynamicQuantizeLinear),
 * padded with its zero point, made channels-last; each kernel tap (dy, dx) is a shifted view of
 * it times that tap's [Cin, Cout] int8 weights (MatMulInteger, int32), the taps summed in int32,
 * then scaled to fp32, the bias added and the result made channels-first again.
 */
function convTaps(g: GraphBuilder, n: NodeProto, w: TensorProto, inits: Map<string, TensorProto>): string[] {
  const [cout, cin, kh, kw] = w.dims!.map(Number) as [number, number, number, number];
  const wName = w.name as string;
  const [pt, pl, pb, pr] = intsAttr(n, 'pads').concat([0, 0, 0, 0]);
  const { q, scale } = quantizePerChannel(w, 0);
  const [xq, xs, xzp] = g.ops('DynamicQuantizeLinear', [n.input![0]!], {}, 3);
  const padded = pt || pl || pb || pr ? g.op('Pad', [xq, g.constInt64([0, 0, pt!, pl!, 0, 0, pb!, pr!]), xzp]) : xq;
  const nhwc = g.op('Transpose', [padded], { perm: [0, 2, 3, 1] });
  const wzp = g.initializer(`${wName}_zero_point`, DataType.INT8, [], new Int8Array(1));
  // a view ends kh - 1 - dy rows before the padded input's end (a negative Slice end)
  const end = (d: number, k: number) => (d === k - 1 ? Number.MAX_SAFE_INTEGER : d - (k - 1));
  let sum = '';
  for (let dy = 0; dy < kh; dy++) {
    for (let dx = 0; dx < kw; dx++) {
      const tap = new Int8Array(cin * cout);
      for (let o = 0; o < cout; o++) {
        for (let c = 0; c < cin; c++) tap[c * cout + o] = q[((o * cin + c) * kh + dy) * kw + dx]!;
      }
      const wt = g.initializer(`${wName}_tap${dy}_${dx}`, DataType.INT8, [cin, cout], tap);
      const view =
        kh === 1 && kw === 1
          ? nhwc
          : g.op('Slice', [
              nhwc,
              g.constInt64([dy, dx]),
              g.constInt64([end(dy, kh), end(dx, kw)]),
              g.constInt64([1, 2]),
            ]);
      const y = g.op('MatMulInteger', [view, wt, xzp, wzp]);
      sum = sum ? g.op('Add', [sum, y]) : y;
    }
  }
  const biasName = n.input?.[2];
  const bias = biasName && inits.has(biasName) ? biasName : null;
  const out = rescale(g, sum, xs, g.float(`${wName}_scale`, [cout], scale), bias);
  g.nodes.push({
    opType: 'Transpose',
    input: [out],
    output: n.output,
    name: n.name,
    attribute: [{ name: 'perm', type: onnx.AttributeProto.AttributeType.INTS, ints: [0, 3, 1, 2] }],
  });
  return [wName];
}
