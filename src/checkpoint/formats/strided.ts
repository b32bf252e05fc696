/**
 * Turning a torch (storage, storage_offset, size, stride) view into contiguous row-major bytes.
 *
 * torch.save stores whole storages plus view geometry, so a saved tensor may be a slice, a
 * transpose or an expanded view of a larger storage. Contiguous views become zero-copy
 * subarrays of the storage bytes; any other layout is gathered element by element into a new
 * buffer (a copy is unavoidable: HostTensor is always contiguous).
 */
import { numel } from '../../common/host_tensor.js';

/** True when `stride` is the row-major stride of `size` (dimensions of extent 1 may have any stride). */
export function isContiguous(size: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let d = size.length - 1; d >= 0; d--) {
    if (size[d] === 0) return true;
    if (size[d] !== 1 && stride[d] !== expected) return false;
    expected *= size[d]!;
  }
  return true;
}

/**
 * Number of storage elements a view touches, counted from element 0 of the storage
 * (offset + the farthest element + 1); 0 for an empty view.
 */
export function requiredStorageElements(offset: number, size: readonly number[], stride: readonly number[]): number {
  if (numel(size) === 0) return 0;
  let last = offset;
  for (let d = 0; d < size.length; d++) last += (size[d]! - 1) * stride[d]!;
  return last + 1;
}

/**
 * Returns the view's elements as contiguous bytes: a subarray of `storage` when the view is
 * contiguous, otherwise a gathered copy. `storage` holds raw elements of `elemSize` bytes.
 * Throws (with `what` in the message) if the view reaches outside the storage.
 */
export function viewBytes(
  storage: Uint8Array,
  elemSize: number,
  offset: number,
  size: readonly number[],
  stride: readonly number[],
  what: string,
): Uint8Array {
  if (size.length !== stride.length)
    throw new Error(`${what}: size has ${size.length} dims but stride has ${stride.length}`);
  if (offset < 0 || size.some((s) => s < 0) || stride.some((s) => s < 0)) {
    throw new Error(
      `${what}: negative offset, size or stride (offset ${offset}, size [${size.join(', ')}], stride ` +
        `[${stride.join(', ')}])`,
    );
  }
  const storageElems = Math.floor(storage.byteLength / elemSize);
  const needed = requiredStorageElements(offset, size, stride);
  if (needed > storageElems) {
    throw new Error(
      `${what}: view (offset ${offset}, size [${size.join(', ')}], stride [${stride.join(', ')}]) needs ${needed} ` +
        `elements but the storage holds ${storageElems}`,
    );
  }
  const n = numel(size);
  if (isContiguous(size, stride)) return storage.subarray(offset * elemSize, (offset + n) * elemSize);

  const out = new Uint8Array(n * elemSize);
  const ndim = size.length;
  // Copy whole innermost rows at once when they are dense; otherwise one element at a time.
  const innerDense = stride[ndim - 1] === 1;
  const rowLen = innerDense ? size[ndim - 1]! : 1;
  const outerDims = innerDense ? ndim - 1 : ndim;
  const index = new Array<number>(outerDims).fill(0);
  let src = offset;
  let dst = 0;
  const rowBytes = rowLen * elemSize;
  for (let done = 0; done < n; done += rowLen) {
    const s = src * elemSize;
    if (rowBytes === elemSize) {
      for (let b = 0; b < elemSize; b++) out[dst + b] = storage[s + b]!;
    } else {
      out.set(storage.subarray(s, s + rowBytes), dst);
    }
    dst += rowBytes;
    // Advance the multi-index over the outer dimensions (last fastest), updating the source offset.
    for (let d = outerDims - 1; d >= 0; d--) {
      const next = index[d]! + 1;
      src += stride[d]!;
      if (next < size[d]!) {
        index[d] = next;
        break;
      }
      src -= stride[d]! * size[d]!;
      index[d] = 0;
    }
  }
  return out;
}
