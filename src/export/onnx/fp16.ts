/**
 * --fp16: every float initializer stored as float16 and every cast to float made a cast to
 * float16, with the graph's input and output kept float32 (a Cast after the input and before
 * the output), so callers feed and read the same arrays as from an fp32 export.
 */
import { float32ToFloat16Bits } from '../../checkpoint/formats/float_convert.js';
import { DataType, type GraphBuilder } from './graph.js';

export function toFloat16(g: GraphBuilder, input: string, output: string): void {
  for (const t of g.initializers) {
    if (t.dataType !== DataType.FLOAT || !t.rawData) continue;
    const raw = t.rawData as Uint8Array;
    const f = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    const h = new Uint16Array(f.length);
    for (let i = 0; i < f.length; i++) h[i] = float32ToFloat16Bits(f[i]);
    t.dataType = DataType.FLOAT16;
    t.rawData = new Uint8Array(h.buffer);
  }
  const half = g.name(`${input}_fp16`);
  const producedOutput = g.name(`${output}_fp16`);
  for (const n of g.nodes) {
    for (const a of n.attribute ?? [])
      if (n.opType === 'Cast' && a.name === 'to' && a.i === DataType.FLOAT) a.i = DataType.FLOAT16;
    n.input = (n.input ?? []).map((x) => (x === input ? half : x));
    n.output = (n.output ?? []).map((x) => (x === output ? producedOutput : x));
  }
  const cast = (from: string, to: string, type: number) => ({
    opType: 'Cast',
    input: [from],
    output: [to],
    name: g.name('cast'),
    attribute: [{ name: 'to', type: 2, i: type }],
  });
  g.nodes.unshift(cast(input, half, DataType.FLOAT16));
  g.nodes.push(cast(producedOutput, output, DataType.FLOAT));
}
