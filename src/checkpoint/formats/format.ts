/**
 * Recognising checkpoint formats by content, not by file extension (people rename files, and
 * a .pth that is really a safetensors file or an image should get a precise message).
 */
import * as fs from 'node:fs';
import { readHead } from '../file_io.js';

export type CheckpointFormat = 'pth-zip' | 'pth-legacy' | 'safetensors';

/** Start of a pre-1.6 torch.save file: PROTO 2, then LONG1 of torch's magic number 0x1950a86a20f9469cfc6c. */
export const LEGACY_TORCH_MAGIC = Uint8Array.from([
  0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
]);

function startsWith(head: Uint8Array, magic: ArrayLike<number>, at = 0): boolean {
  if (head.byteLength < at + magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (head[at + i] !== magic[i]) return false;
  return true;
}

/** Known non-checkpoint signatures, to name what a wrong file actually is. */
const FOREIGN: [string, number[], number][] = [
  ['a PNG image', [0x89, 0x50, 0x4e, 0x47], 0],
  ['a JPEG image', [0xff, 0xd8, 0xff], 0],
  ['a gzip file', [0x1f, 0x8b], 0],
  ['an HDF5 file (Keras/TensorFlow?)', [0x89, 0x48, 0x44, 0x46], 0],
  ['a NumPy .npy file', [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59], 0],
  ['a GGUF file', [0x47, 0x47, 0x55, 0x46], 0],
];

/**
 * Detects the checkpoint format of `file` from its first bytes; throws an Error naming the file
 * and, where recognisable, what the file is instead.
 */
export function detectFormat(file: string): CheckpointFormat {
  const head = readHead(file, 512);
  if (fs.statSync(file).size === 0) throw new Error(`${file}: file is empty`);
  if (startsWith(head, [0x50, 0x4b, 0x03, 0x04]) || startsWith(head, [0x50, 0x4b, 0x05, 0x06])) return 'pth-zip';
  if (startsWith(head, LEGACY_TORCH_MAGIC)) return 'pth-legacy';
  if (head.byteLength >= 9) {
    const n = new DataView(head.buffer, head.byteOffset, head.byteLength).getBigUint64(0, true);
    // A plausible header length followed by '{'; a length past the end is still reported as a
    // (truncated) safetensors file by the parser rather than as unknown content.
    if (n >= 2n && n <= 100_000_000n && head[8] === 0x7b /* { */) return 'safetensors';
  }
  throw new Error(`${file}: not a PyTorch (.pth) or safetensors checkpoint: ${describeForeign(head)}`);
}

/** Words for an unrecognised file head. */
export function describeForeign(head: Uint8Array): string {
  for (const [what, magic, at] of FOREIGN) if (startsWith(head, magic, at)) return `it looks like ${what}`;
  if (startsWith(head, [0x75, 0x73, 0x74, 0x61, 0x72], 257)) {
    return (
      'it is a tar archive (the torch<=0.3 tar checkpoint format is not supported; re-save it with a current ' +
      'torch.save)'
    );
  }
  if (head.byteLength >= 2 && head[0] === 0x80 && head[1]! <= 5) {
    return 'it is a bare Python pickle, not a torch.save file (no zip archive, no legacy torch magic number)';
  }
  const hex = Array.from(head.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return `unrecognised content (first bytes: ${hex})`;
}
