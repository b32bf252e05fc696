/**
 * A small ONNX graph builder: nodes, initializers and value names, encoded with onnx-proto's
 * protobuf definitions (no hand-written protobuf). The exporters in this folder add nodes in
 * the order forward() computes, so the graph reads like the module tree.
 */
import onnxProto from 'onnx-proto';

export const { onnx } = onnxProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;

export const DataType = onnx.TensorProto.DataType;

export type AttrValue = number | string | number[] | { floats: number[] } | TensorProto;

/** Integer-valued attributes that ONNX types as floats (e.g. epsilon, alpha). */
const FLOAT_ATTRS = new Set(['epsilon', 'alpha', 'beta', 'momentum', 'value_float']);

function attribute(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') {
    return FLOAT_ATTRS.has(name) || !Number.isInteger(v) ? { name, type: T.FLOAT, f: v } : { name, type: T.INT, i: v };
  }
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ('floats' in v) return { name, type: T.FLOATS, floats: v.floats };
  return { name, type: T.TENSOR, t: v };
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private readonly used = new Set<string>();
  private readonly constCache = new Map<string, string>();

  /** A fresh value name derived from `hint`. */
  name(hint: string): string {
    let n = hint;
    for (let k = 1; this.used.has(n); k++) n = `${hint}_${k}`;
    this.used.add(n);
    return n;
  }

  /** An initializer (weights or constants) under a unique name near `hint`. */
  initializer(hint: string, dataType: number, dims: number[], data: ArrayBufferView): string {
    const name = this.name(hint);
    this.initializers.push({ name, dataType, dims, rawData: bytesOf(data) });
    return name;
  }

  float(hint: string, dims: number[], data: Float32Array): string {
    return this.initializer(hint, DataType.FLOAT, dims, data);
  }

  /** A small constant, shared between uses with the same values. */
  constInt64(values: number[], dims: number[] = [values.length]): string {
    const key = `i64:${dims.join('x')}:${values.join(',')}`;
    let n = this.constCache.get(key);
    if (!n) {
      n = this.initializer('const_i64', DataType.INT64, dims, BigInt64Array.from(values.map((v) => BigInt(v))));
      this.constCache.set(key, n);
    }
    return n;
  }

  constFloat(values: number[], dims: number[] = [values.length]): string {
    const key = `f32:${dims.join('x')}:${values.join(',')}`;
    let n = this.constCache.get(key);
    if (!n) {
      n = this.float('const_f32', dims, Float32Array.from(values));
      this.constCache.set(key, n);
    }
    return n;
  }

  /** Adds a node and returns its output names (`outputs` of them). */
  ops(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs = 1, hint = opType): string[] {
    const outs = Array.from({ length: outputs }, () => this.name(hint));
    this.nodes.push({
      opType,
      input: inputs,
      output: outs,
      name: this.name(`${hint}_node`),
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outs;
  }

  /** Adds a single-output node and returns its output name. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, hint = opType): string {
    return this.ops(opType, inputs, attrs, 1, hint)[0];
  }
}

export interface ValueInfo {
  name: string;
  elemType: number;
  /** Fixed sizes or symbolic names. */
  dims: (number | string)[];
}

export function valueInfo(v: ValueInfo): onnxProto.onnx.IValueInfoProto {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: v.elemType,
        shape: { dim: v.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export interface ModelParts {
  graph: GraphBuilder;
  graphName: string;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  opset: number;
  metadata: Record<string, string>;
  producerVersion: string;
  docString?: string;
}

/** IR version 8 (ONNX 1.10..1.12) reads opsets up to 17, the default; newer opsets need a newer IR. */
export function irVersionFor(opset: number): number {
  return opset <= 17 ? 8 : opset <= 19 ? 9 : 10;
}

export function encodeModel(p: ModelParts): Uint8Array {
  const model: onnxProto.onnx.IModelProto = {
    irVersion: irVersionFor(p.opset),
    producerName: 'beitseg',
    producerVersion: p.producerVersion,
    opsetImport: [{ domain: '', version: p.opset }],
    docString: p.docString ?? '',
    graph: {
      name: p.graphName,
      node: p.graph.nodes,
      initializer: p.graph.initializers,
      input: p.inputs.map(valueInfo),
      output: p.outputs.map(valueInfo),
    },
    metadataProps: Object.entries(p.metadata).map(([key, value]) => ({ key, value })),
  };
  return onnx.ModelProto.encode(model).finish();
}
